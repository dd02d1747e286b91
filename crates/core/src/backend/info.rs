//! `info`: the backend as the original page describes it, read from the engine and BuildKit.
use serde::Serialize;

use crate::buildkit::{
    platform::{PlatformChoice, Platforms},
    CacheRecord, CacheTotals, Worker,
};
use crate::{
    backend::{error::BackendError, image, labels::SecurityMode, sidecars::Sidecar, Backend, Presence},
    engine::EngineView,
    ports::PortSet,
    Result,
};

/// The running backend as `info` shows it: its container, what `start` decided, its sidecars,
/// and BuildKit's workers and cache.
#[derive(Debug, Clone, Serialize)]
pub struct BackendInfo {
    /// The engine it runs on: its docker context and address.
    pub engine: EngineView,
    /// The container's ID.
    pub id: String,
    /// The container's name.
    pub name: String,
    /// The container's state.
    pub state: crate::backend::ContainerState,
    /// When it last started (RFC 3339).
    pub started_at: Option<String>,
    /// The image as requested at start.
    pub image: String,
    /// `repo@sha256:…` when the engine knows a registry digest, else `ref@<image id>`.
    pub image_digest: String,
    /// The host ports it was started with.
    pub ports: PortSet,
    /// The named cache volume; `None` for an anonymous one, lost on stop.
    pub cache_volume: Option<String>,
    /// The most its build cache may use (BuildKit's GC policy); `None`: BuildKit's default.
    pub cache_limit: Option<u64>,
    /// The limit as buildx prints it (`2GiB`), or "BuildKit's default".
    pub cache_limit_text: String,
    /// Whether builds may use `--network host` (BuildKit's `network.host` entitlement).
    pub network_host: bool,
    /// The same in words, with the way to change it.
    pub network_host_text: String,
    /// How it was granted its powers.
    pub security: SecurityMode,
    /// Why, in words; `None` on a backend made before reasons were kept.
    pub security_reason: Option<String>,
    /// The mode and why ("capabilities: the engine's runtime could not …").
    pub security_text: String,
    /// Whether builds take the engine's own images (backend/mirror).
    pub local_images: crate::backend::mirror::LocalImages,
    /// That in a sentence ("used: a FROM of an image the engine has …").
    pub local_images_text: String,
    /// The local-image mirror's containers (the front and the store), running or not.
    pub mirror: Vec<crate::backend::mirror::MirrorContainer>,
    /// Ports that only the backend's own port record names: never relayed (the host owns the set).
    pub unrelayed_ports: Vec<u16>,
    /// One sentence per such port ("port 7777 is named only inside the backend; not relayed").
    pub port_notices: Vec<String>,
    /// The version of Assemble Backend that created it.
    pub version: String,
    /// Every sidecar of ours, running or not, by port.
    pub sidecars: Vec<Sidecar>,
    /// BuildKit's workers, each with its native and its emulated platforms.
    pub workers: Vec<Worker>,
    /// The platforms it builds for: natively (the workers' lists) and through the emulators in its
    /// image (backend/platforms.rs).
    pub platforms: Platforms,
    /// The same, as a window offers them (native first, the emulated ones marked).
    pub platform_choices: Vec<PlatformChoice>,
    /// BuildKit's version, from the first worker that reports one.
    pub buildkit_version: Option<String>,
    /// Totals over the build cache.
    pub cache: CacheTotals,
    /// Bytes per cache record type.
    pub cache_by_type: std::collections::BTreeMap<String, i64>,
    /// The sizes above as people read them (`3.65GB`), so no window formats sizes itself.
    pub cache_text: std::collections::BTreeMap<String, String>,
}

/// Everything `info` shows. BuildKit is asked over the kept channel, both calls at once.
pub(super) async fn read(backend: &Backend) -> Result<BackendInfo> {
    let container = match backend.presence().await? {
        Presence::Ours(c) if c.running => *c,
        Presence::Foreign => return Err(BackendError::ForeignContainer { name: backend.names.backend() }.into()),
        _ => return Err(BackendError::NotRunning.into()),
    };
    let (buildkit, sidecars, digest, emulators, mirror) = tokio::join!(
        backend.with_buildkit(&container.id, |client| async move {
            tokio::try_join!(client.workers(), client.disk_usage())
        }),
        backend.sidecars(),
        image_digest(backend, &container.config.image, &container.image_id),
        super::platforms::emulators(backend, &container.id),
        crate::backend::mirror::list(backend)
    );
    let (workers, records): (Vec<Worker>, Vec<CacheRecord>) = buildkit?;
    let platforms = Platforms::of(&workers, &emulators);
    Ok(BackendInfo {
        engine: backend.engine.endpoint().view(),
        buildkit_version: workers.iter().find_map(|w| w.buildkit_version.clone()),
        id: container.id,
        name: container.name,
        state: container.state,
        started_at: container.started_at,
        image: container.config.image,
        image_digest: digest,
        ports: container.config.ports,
        cache_volume: container.config.cache_volume,
        cache_limit: container.config.cache_limit,
        cache_limit_text: crate::units::cache_limit_text(container.config.cache_limit),
        network_host: container.config.network_host,
        network_host_text: network_host_text(container.config.network_host),
        security: container.config.security,
        security_text: container.config.security.described(container.config.security_reason.as_deref()),
        security_reason: container.config.security_reason,
        local_images_text: container.config.local_images.describe(),
        local_images: container.config.local_images,
        mirror: mirror?,
        port_notices: crate::backend::sidecars::record::unrelayed_notices(&container.unrelayed),
        unrelayed_ports: container.unrelayed.iter().collect(),
        version: container.config.version,
        sidecars: sidecars?,
        workers: super::platforms::with_emulated(workers, &emulators),
        platform_choices: platforms.choices(),
        platforms,
        cache: CacheTotals::of(&records),
        cache_by_type: CacheTotals::by_type(&records),
        cache_text: cache_text(&records),
    })
}

/// What `info` says of the `network.host` grant.
pub fn network_host_text(granted: bool) -> String {
    if granted {
        "allowed: builds may use --network host".to_string()
    } else {
        "not allowed (start with --allow-network-host to let builds use --network host)".to_string()
    }
}

async fn image_digest(backend: &Backend, reference: &str, image_id: &str) -> String {
    let repository = image::split_reference(reference).0.split('@').next().unwrap_or(reference).to_string();
    let repo_digest = match backend.docker.inspect_image(image_id).await {
        Ok(image) => image
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .find(|d| d.starts_with(&format!("{repository}@")))
            .or(None),
        Err(_) => None,
    };
    repo_digest.unwrap_or_else(|| format!("{repository}@{image_id}"))
}

fn cache_text(records: &[CacheRecord]) -> std::collections::BTreeMap<String, String> {
    use crate::units::human_size;
    let totals = CacheTotals::of(records);
    let mut text: std::collections::BTreeMap<String, String> = CacheTotals::by_type(records)
        .into_iter()
        .map(|(kind, size)| (format!("type:{kind}"), human_size(size)))
        .collect();
    for (key, size) in [("total", totals.total), ("in_use", totals.in_use), ("reclaimable", totals.reclaimable)] {
        text.insert(key.to_string(), human_size(size));
    }
    text
}
