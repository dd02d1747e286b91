//! The rules that must hold between operations, read straight from the engine (not through the
//! core, which is what is under test: the live ports come from the kit's own reading of the port
//! record, never the core's parser) and from the CLI's `info --format json`.
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::{Duration, Instant},
};

use assemble_core::backend::labels;
use bollard::query_parameters::ListContainersOptionsBuilder;

use crate::world::World;

/// A backend container as the engine lists it.
struct SeenBackend {
    id: String,
    name: String,
    running: bool,
    /// The ports it proxies now (its port record, else its label), or why they cannot be read.
    ports: Result<BTreeSet<u16>, String>,
}

/// Our containers as the engine lists them.
struct Seen {
    backends: Vec<SeenBackend>,
    /// (name, port, running, backend id)
    sidecars: Vec<(String, Option<u16>, bool, String)>,
}

async fn seen(world: &World) -> Result<Seen, String> {
    let filters =
        HashMap::from([("label".to_string(), vec![format!("{}={}", labels::OWNER, world.user.names.user())])]);
    let list = world
        .docker
        .list_containers(Some(ListContainersOptionsBuilder::default().all(true).filters(&filters).build()))
        .await
        .map_err(|e| format!("listing containers: {e}"))?;
    let mut seen = Seen { backends: Vec::new(), sidecars: Vec::new() };
    for container in list {
        let labels = container.labels.unwrap_or_default();
        let name =
            container.names.and_then(|n| n.into_iter().next()).unwrap_or_default().trim_start_matches('/').to_string();
        let running = container.state.map(|s| s.to_string()).as_deref() == Some("running");
        match labels.get(labels::ROLE).map(String::as_str) {
            Some("backend") => {
                let id = container.id.unwrap_or_default();
                // The live set: the port record, which changes without a restart.
                let ports = crate::world::live_ports(world, &id, labels.get(labels::PORTS).map(String::as_str)).await;
                seen.backends.push(SeenBackend { id, name, running, ports });
            }
            Some("proxy") => {
                let port = labels.get(labels::PORT).and_then(|p| p.parse().ok());
                seen.sidecars.push((name, port, running, labels.get(labels::BACKEND).cloned().unwrap_or_default()));
            }
            _ => {}
        }
    }
    Ok(seen)
}

/// Every rule that is broken now, as sentences.
pub async fn broken(world: &World) -> Vec<String> {
    let seen = match seen(world).await {
        Ok(seen) => seen,
        Err(err) => return vec![err],
    };
    let mut broken = Vec::new();
    // No port outside what the soak asks for is ever relayed (the flood fault plants one).
    let universe = crate::world::universe(world);
    for (name, port, ..) in &seen.sidecars {
        if port.is_some_and(|p| !universe.contains(&p)) {
            broken.push(format!("sidecar {name} relays port {port:?}, which the settings never named"));
        }
    }
    if seen.backends.len() > 1 {
        broken.push(format!(
            "{} backends: {:?}",
            seen.backends.len(),
            seen.backends.iter().map(|b| &b.name).collect::<Vec<_>>()
        ));
    }
    let running = seen.backends.iter().find(|b| b.running);
    match running {
        Some(SeenBackend { id, ports, .. }) => {
            let wanted = match ports {
                Ok(ports) => ports.clone(),
                Err(reason) => {
                    broken.push(format!("the running backend's live ports cannot be read: {reason}"));
                    return broken;
                }
            };
            let mut have: BTreeMap<u16, usize> = BTreeMap::new();
            for (name, port, running, backend) in &seen.sidecars {
                match port {
                    Some(port) if *running && backend == id && wanted.contains(port) => {
                        *have.entry(*port).or_default() += 1
                    }
                    _ => broken.push(format!("sidecar {name} does not belong (running {running}, port {port:?})")),
                }
            }
            if have.keys().copied().collect::<BTreeSet<_>>() != wanted || have.values().any(|n| *n != 1) {
                broken.push(format!("sidecars {have:?} do not match the live ports {wanted:?}"));
            }
        }
        None => {
            for (name, ..) in &seen.sidecars {
                broken.push(format!("sidecar {name} exists while no backend runs"));
            }
        }
    }
    for volume in &world.named_volumes {
        if world.docker.inspect_volume(volume).await.is_err() {
            broken.push(format!("named cache volume {volume} is gone"));
        }
    }
    broken.extend(info_disagrees(world, running.map(|b| b.id.as_str()), &seen).await);
    if let Some(backend) = running {
        broken.extend(history_lost(world, &backend.id).await);
    }
    broken
}

/// BuildKit's own cap on its history (its `[history] maxEntries` default): beyond it the oldest
/// records go by design, so the rule below is checked under it.
const HISTORY_CAP: usize = 50;

/// A finished build never leaves the history while the cache volume that holds it lives: every
/// finished build ever listed on this volume must still be listed.
async fn history_lost(world: &World, backend: &str) -> Option<String> {
    let volume = match world.docker.inspect_container(backend, None).await {
        Ok(inspect) => inspect
            .mounts
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.destination.as_deref() == Some(assemble_core::backend::spec::STATE_DIR))
            .and_then(|m| m.name)?,
        Err(err) => return Some(format!("inspecting the backend: {err}")),
    };
    let run = world.cli(&["backend", "builds", "--format", "json"]).await;
    if !run.ok() {
        return Some(format!("builds failed while the backend runs: {}", run.describe()));
    }
    let mut listed = BTreeSet::new();
    let mut finished = BTreeSet::new();
    for line in run.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let build: serde_json::Value = match serde_json::from_str(line) {
            Ok(build) => build,
            Err(err) => return Some(format!("builds printed a line that is not JSON ({err}): {line}")),
        };
        let Some(reference) = build["ref"].as_str() else { return Some(format!("a build without a ref: {line}")) };
        listed.insert(reference.to_string());
        if build["status"].as_str() != Some("Running") {
            finished.insert(reference.to_string());
        }
    }
    let mut history = world.history.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let known = history.entry(volume.clone()).or_default();
    let lost: Vec<&String> = known.difference(&listed).collect();
    let broken = (!lost.is_empty() && listed.len() < HISTORY_CAP)
        .then(|| format!("finished builds {lost:?} left the history while volume {volume} lives"));
    known.extend(finished);
    broken
}

/// `info --format json` against what the engine says.
async fn info_disagrees(world: &World, running: Option<&str>, seen: &Seen) -> Option<String> {
    let run = world.cli(&["backend", "info", "--format", "json"]).await;
    if !run.ok() {
        return Some(format!("info failed: {}", run.describe()));
    }
    let info: serde_json::Value = match serde_json::from_str(&run.stdout) {
        Ok(info) => info,
        Err(err) => return Some(format!("info printed no JSON ({err}): {}", run.stdout)),
    };
    let state = info["state"].as_str().unwrap_or_default();
    match running {
        None if state == "stopped" => None,
        None => Some(format!("info says {state:?} but the engine runs no backend")),
        Some(id) => {
            let sidecars: BTreeSet<String> = info["sidecars"]
                .as_array()
                .map(|list| list.iter().filter_map(|s| s["name"].as_str().map(String::from)).collect())
                .unwrap_or_default();
            let engine: BTreeSet<String> = seen.sidecars.iter().map(|s| s.0.clone()).collect();
            let info_ports: Option<BTreeSet<u16>> = info["ports"]
                .as_array()
                .map(|list| list.iter().filter_map(|p| p.as_u64().and_then(|p| u16::try_from(p).ok())).collect());
            let live: Option<BTreeSet<u16>> =
                seen.backends.iter().find(|b| b.id == id).and_then(|b| b.ports.as_ref().ok()).cloned();
            if info["id"].as_str() != Some(id) || state != "running" {
                Some(format!("info says {} {state:?}, the engine runs {id}", info["id"]))
            } else if sidecars != engine {
                Some(format!("info lists sidecars {sidecars:?}, the engine has {engine:?}"))
            } else if info_ports != live {
                Some(format!("info lists ports {info_ports:?}, the port record says {live:?}"))
            } else {
                None
            }
        }
    }
}

/// Waits until every rule holds (the app's repair works on events, so faults take a moment to
/// heal), up to `deadline`; returns how long that took, or what was still broken.
pub async fn settle(world: &World, deadline: Duration) -> Result<Duration, Vec<String>> {
    let began = Instant::now();
    loop {
        let broken = broken(world).await;
        if broken.is_empty() {
            return Ok(began.elapsed());
        }
        if began.elapsed() >= deadline {
            return Err(broken);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
