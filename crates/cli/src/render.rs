//! Text output, in the shape of the original documentation page.
use std::fmt::Write;

use assemble_core::{
    buildkit::history::Build,
    engine::EngineView,
    time::{ago, seconds_text},
    units::human_size,
    BackendInfo, CacheRecord, CacheTotals,
};

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub fn info(info: &BackendInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "ID: {} ({})", info.id, info.state);
    let _ = writeln!(out, "Image: {}", info.image_digest);
    let _ = writeln!(out, "{}", engine_line(&info.engine));
    let _ = writeln!(out, "\nSidecar containers:");
    if info.sidecars.is_empty() {
        let _ = writeln!(out, " (none: no host ports are proxied)");
    }
    for sidecar in &info.sidecars {
        let _ = writeln!(out, " - {} {} ({})", short(&sidecar.id), sidecar.name, sidecar.state);
    }
    for notice in &info.port_notices {
        let _ = writeln!(out, " Note: {notice}");
    }
    let _ = writeln!(out, "\nFound {} worker(s):", info.workers.len());
    for worker in &info.workers {
        let _ = writeln!(out, "\n - {}", worker.id);
        let _ = writeln!(out, "   Platforms:");
        for platform in &worker.platforms {
            let _ = writeln!(out, "    - {platform}");
        }
        // BuildKit lists only what the kernel runs; the image's emulators run these too.
        for platform in &worker.emulated_platforms {
            let _ = writeln!(out, "    - {platform} (emulated)");
        }
        let _ = writeln!(out, "   Labels:");
        for (key, value) in &worker.labels {
            let _ = writeln!(out, "    - {key}: {value}");
        }
    }
    // After the original page's parts, so that its shape stays.
    let _ = writeln!(out, "\nSecurity: {}", info.security_text);
    let _ = writeln!(out, "\nHost network: {}", info.network_host_text);
    let _ = writeln!(out, "\nLocal images: {}", info.local_images_text);
    for container in &info.mirror {
        let _ = writeln!(out, " - {} {} ({})", short(&container.id), container.name, container.state);
    }
    // Only when set, so that the default output keeps the original page's shape.
    if info.cache_limit.is_some() {
        let _ = writeln!(out, "\nCache limit: {}", info.cache_limit_text);
    }
    let _ = writeln!(
        out,
        "\nBuild cache contains {} entries, total size {} ({} currently in use)",
        info.cache.entries,
        human_size(info.cache.total),
        human_size(info.cache.in_use)
    );
    out
}

/// `context "desktop-linux" (unix:///…)`, for sentences.
pub fn engine_text(engine: &EngineView) -> String {
    format!("context {:?} {}", engine.context, address(engine))
}

/// `Context: desktop-linux (unix:///…)`, the line `info` and `start` print.
pub fn engine_line(engine: &EngineView) -> String {
    format!("Context: {} {}", engine.context, address(engine))
}

fn address(engine: &EngineView) -> String {
    format!("({}{})", engine.host, if engine.tls { ", TLS" } else { "" })
}

pub fn cache_usage(records: &[CacheRecord], now: i64) -> String {
    let mut out = String::new();
    let rows: Vec<[String; 5]> = records
        .iter()
        .map(|r| {
            [
                if r.in_use { format!("{}*", r.id) } else { r.id.clone() },
                r.record_type.clone(),
                human_size(r.size),
                r.reclaimable().to_string(),
                r.last_used.map(|t| ago(t, now)).unwrap_or_else(|| "never".into()),
            ]
        })
        .collect();
    let headers = ["ID", "TYPE", "SIZE", "RECLAIMABLE", "LAST USED"].map(String::from);
    let widths: Vec<usize> =
        (0..5).map(|i| rows.iter().map(|r| r[i].len()).chain([headers[i].len()]).max().unwrap_or(0)).collect();
    for row in std::iter::once(&headers).chain(rows.iter()) {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("   ").trim_end());
    }
    let totals = CacheTotals::of(records);
    let _ = writeln!(out, "\nEntries:\t{}", totals.entries);
    let _ = writeln!(out, "In use:\t\t{}", human_size(totals.in_use));
    let _ = writeln!(out, "Reclaimable:\t{}", human_size(totals.reclaimable));
    let _ = writeln!(out, "Total:\t\t{}", human_size(totals.total));
    out
}

pub fn purge(removed: &[CacheRecord]) -> String {
    let freed: i64 = removed.iter().map(|r| r.size).sum();
    format!("Deleted {} build cache entries\nTotal reclaimed space: {}\n", removed.len(), human_size(freed))
}

/// The builds as a table, newest first, like `docker buildx history ls`.
pub fn builds(builds: &[Build], now: i64) -> String {
    if builds.is_empty() {
        return "No builds yet: build with `docker buildx build --builder assemble .`\n".to_string();
    }
    let rows: Vec<[String; 7]> = builds
        .iter()
        .map(|b| {
            [
                b.reference.clone(),
                b.name.clone(),
                b.status.as_str().to_string(),
                ago(b.created_seconds as i64, now),
                b.duration_seconds().map_or_else(|| "-".to_string(), seconds_text),
                format!("{}/{} ({} cached)", b.completed_steps, b.total_steps, b.cached_steps),
                b.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["REF", "NAME", "STATUS", "CREATED", "DURATION", "STEPS", "ERROR"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        let _ = writeln!(out, "{}", cells.join("   ").trim_end());
    }
    out
}

/// `ports`: one line per proxied port and its sidecar's state.
pub fn ports(statuses: &[assemble_core::PortStatus]) -> String {
    if statuses.is_empty() {
        return "No host ports are proxied; add one with `docker assemble backend ports add 5000`.\n".to_string();
    }
    let mut out = format!("{:<7} {:<12} {}\n", "PORT", "STATE", "SIDECAR");
    for status in statuses.iter().filter(|s| s.note.is_none()) {
        let state =
            serde_json::to_value(status.state).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        let _ = writeln!(out, "{:<7} {:<12} {}", status.port, state, status.sidecar.as_deref().unwrap_or("-"));
    }
    for note in statuses.iter().filter_map(|s| s.note.as_deref()) {
        let _ = writeln!(out, "Note: {note}");
    }
    out
}

/// `nodes ls`: one line per node, the local one first; a declared platform is marked `*`, as
/// `docker buildx ls` marks it.
pub fn nodes(statuses: &[assemble_core::nodes::NodeStatus]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "CONTEXT".into(),
        "ENDPOINT".into(),
        "CACHE".into(),
        "STATE".into(),
        "PLATFORMS".into(),
    ]];
    for node in statuses {
        let mut platforms: Vec<String> = node.declared_platforms.iter().map(|p| format!("{p}*")).collect();
        platforms.extend(node.platforms.iter().filter(|p| !node.declared_platforms.contains(p)).cloned());
        platforms.extend(
            node.emulated_platforms
                .iter()
                .filter(|p| !node.declared_platforms.contains(p))
                .map(|p| format!("{p} (emulated)")),
        );
        let name = if node.local { format!("{} (local)", node.name) } else { node.name.clone() };
        let state = match &node.reason {
            Some(reason) if node.state == assemble_core::nodes::NodeState::Unreachable => {
                format!("unreachable: {reason}")
            }
            _ => node.state.as_str().to_string(),
        };
        rows.push([
            name,
            node.context.clone(),
            node.host.clone().unwrap_or_else(|| "-".into()),
            node.cache_text.clone().unwrap_or_else(|| "-".into()),
            state,
            platforms.join(", "),
        ]);
    }
    // The last column (state, then platforms) is not padded: an unreachable node's reason is long.
    let widths: Vec<usize> = (0..4).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let (state, platforms) = (&row[4], &row[5]);
        let _ = writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {:11}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            state,
            platforms,
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
    out
}

/// What `nodes rm` did, in one sentence.
pub fn node_removed(removed: &assemble_core::nodes::NodeRemoved) -> String {
    let mut sentence = format!("Removed node {:?} from the buildx builder \"assemble\"", removed.name);
    if let Some(id) = &removed.container {
        sentence.push_str(&format!(" and its container ({})", &id[..id.len().min(12)]));
    }
    if let Some(volume) = &removed.removed_volume {
        sentence.push_str(&format!("; its cache volume {volume:?} was removed"));
    }
    if let Some(volume) = &removed.kept_volume {
        sentence.push_str(&format!("; its cache volume {volume:?} was kept"));
    }
    if let Some(reason) = &removed.unreachable {
        sentence.push_str(&format!("; its engine did not answer ({reason}), so whatever runs there was left"));
    }
    sentence.push('.');
    sentence
}
