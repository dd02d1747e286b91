//! Our labels: what `start` decided, written on everything it creates, and read back by `info`,
//! `stop` and the app. A container without the owner label is not ours and is never touched.
use std::collections::HashMap;

pub use crate::backend::mirror::LocalImages;
use crate::{names::Names, ports::PortSet};

/// The prefix of all our labels.
pub const PREFIX: &str = "com.docker.assemble.backend";
/// The user a resource belongs to (their docker-safe name): what makes it ours.
pub const OWNER: &str = "com.docker.assemble.backend.owner";
/// What a resource is: a [`Role`] (the sidecar image says `proxy-image`).
pub const ROLE: &str = "com.docker.assemble.backend.role";
/// On the backend: the host ports it proxies, as `5000,6000`.
pub const PORTS: &str = "com.docker.assemble.backend.ports";
/// On a sidecar: the host port it proxies.
pub const PORT: &str = "com.docker.assemble.backend.port";
/// On the backend: its named cache volume; empty for an anonymous one.
pub const CACHE_VOLUME: &str = "com.docker.assemble.backend.cache-volume";
/// On the backend: the image as requested at start.
pub const IMAGE: &str = "com.docker.assemble.backend.image";
/// The version of Assemble Backend that created the resource.
pub const VERSION: &str = "com.docker.assemble.backend.version";
/// On the backend: its [`SecurityMode`].
pub const SECURITY: &str = "com.docker.assemble.backend.security";
/// On the backend: why it runs in its mode, in words (`info`, the panel).
pub const SECURITY_REASON: &str = "com.docker.assemble.backend.security-reason";
/// On the backend: its cache limit in bytes (BuildKit's GC keeps its cache below it); absent:
/// BuildKit's own default policy.
pub const CACHE_LIMIT: &str = "com.docker.assemble.backend.cache-limit";
/// `true` when BuildKit was started to allow `--network host` (the `network.host` entitlement).
pub const NETWORK_HOST: &str = "com.docker.assemble.backend.network-host";
/// On a sidecar and the local-image mirror's containers: the ID of the backend container they
/// were made for.
pub const BACKEND: &str = "com.docker.assemble.backend.backend";
/// On the backend: whether builds take the engine's own images (`used`, `off`, `unavailable`;
/// absent on a backend made before local images: off). See backend/mirror.
pub const LOCAL_IMAGES: &str = "com.docker.assemble.backend.local-images";
/// On the backend: the registries whose names are served from the engine, as `docker.io,localhost:5000`.
pub const LOCAL_IMAGE_REGISTRIES: &str = "com.docker.assemble.backend.local-image-registries";
/// On the backend: why local images are off or unavailable, in words.
pub const LOCAL_IMAGES_REASON: &str = "com.docker.assemble.backend.local-images-reason";

/// This build's version, recorded on every container it creates.
pub const OUR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What one of our resources is, as its role label says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The BuildKit container.
    Backend,
    /// A sidecar that proxies one host port.
    Proxy,
    /// A cache volume: a named one we created, or the backend's anonymous one.
    Cache,
    /// The local-image mirror's front, in the backend's network namespace.
    Mirror,
    /// The local-image mirror's back (the store), which holds the engine's API.
    MirrorStore,
    /// The volume that holds the store's socket, shared by the front and the back only.
    MirrorSocket,
    /// The store's anonymous volume of exported blobs.
    MirrorCache,
}

impl Role {
    /// The role label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Backend => "backend",
            Role::Proxy => "proxy",
            Role::Cache => "cache",
            Role::Mirror => "mirror",
            Role::MirrorStore => "mirror-store",
            Role::MirrorSocket => "mirror-socket",
            Role::MirrorCache => "mirror-cache",
        }
    }
}

/// How the backend container was granted its powers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecurityMode {
    /// `--privileged`, as `docker buildx` and the original run BuildKit.
    Privileged,
    /// All capabilities but SYS_RESOURCE, unconfined profiles, cgroups remounted rw: for engines
    /// whose runtime cannot apply the capabilities of `--privileged`, or when asked for.
    Capabilities,
    /// BuildKit's rootless mode: a rootless image (rootlesskit, a user namespace), no added
    /// capability, seccomp, AppArmor and the /proc masks unconfined.
    Rootless,
}

impl SecurityMode {
    /// The security label's value, and the mode's name where it is shown.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityMode::Privileged => "privileged",
            SecurityMode::Capabilities => "capabilities",
            SecurityMode::Rootless => "rootless",
        }
    }

    /// "capabilities: the engine's runtime could not …": the mode and why, as `info`, the panel
    /// and `start` say it. A backend made before reasons were recorded has the mode alone.
    pub fn described(self, reason: Option<&str>) -> String {
        match reason.filter(|r| !r.is_empty()) {
            Some(reason) => format!("{}: {reason}", self.as_str()),
            None => self.as_str().to_string(),
        }
    }
}

/// The running configuration of a backend, as its labels record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendLabels {
    /// The host ports to proxy.
    pub ports: PortSet,
    /// `None`: anonymous cache, lost on stop.
    pub cache_volume: Option<String>,
    /// The image as requested at start.
    pub image: String,
    /// The version of Assemble Backend that created it.
    pub version: String,
    /// How it was granted its powers.
    pub security: SecurityMode,
    /// Why it runs in that mode, in words; `None` on a backend made before reasons were kept.
    pub security_reason: Option<String>,
    /// The most bytes BuildKit's cache may use; `None`: BuildKit's default policy.
    pub cache_limit: Option<u64>,
    /// Whether BuildKit grants the `network.host` entitlement (builds may use `--network host`).
    pub network_host: bool,
    /// Whether builds take the engine's own images, and from which registries' names.
    pub local_images: LocalImages,
}

/// The labels on everything we create: owner, role and our version.
pub fn common(names: &Names, role: Role) -> HashMap<String, String> {
    HashMap::from([
        (OWNER.to_string(), names.user().to_string()),
        (ROLE.to_string(), role.as_str().to_string()),
        (VERSION.to_string(), OUR_VERSION.to_string()),
    ])
}

/// The backend container's labels: the common ones and what `config` records.
pub fn for_backend(names: &Names, config: &BackendLabels) -> HashMap<String, String> {
    let mut labels = common(names, Role::Backend);
    labels.insert(PORTS.into(), config.ports.to_label());
    labels.insert(CACHE_VOLUME.into(), config.cache_volume.clone().unwrap_or_default());
    labels.insert(IMAGE.into(), config.image.clone());
    labels.insert(SECURITY.into(), config.security.as_str().into());
    if let Some(reason) = &config.security_reason {
        labels.insert(SECURITY_REASON.into(), reason.clone());
    }
    if let Some(limit) = config.cache_limit {
        labels.insert(CACHE_LIMIT.into(), limit.to_string());
    }
    if config.network_host {
        labels.insert(NETWORK_HOST.into(), "true".into());
    }
    labels.extend(config.local_images.labels());
    labels
}

/// The labels of a container of the local-image mirror (the front or the store), made for the
/// backend `backend_id`.
pub fn for_mirror(names: &Names, role: Role, backend_id: &str) -> HashMap<String, String> {
    let mut labels = common(names, role);
    labels.insert(BACKEND.into(), backend_id.to_string());
    labels
}

/// A sidecar's labels: the common ones, its port and its backend's ID.
pub fn for_proxy(names: &Names, port: u16, backend_id: &str) -> HashMap<String, String> {
    let mut labels = common(names, Role::Proxy);
    labels.insert(PORT.into(), port.to_string());
    labels.insert(BACKEND.into(), backend_id.to_string());
    labels
}

/// True when `labels` mark a resource of `names`' user in `role`.
pub fn is_ours(labels: Option<&HashMap<String, String>>, names: &Names, role: Role) -> bool {
    labels.is_some_and(|l| {
        l.get(OWNER).map(String::as_str) == Some(names.user()) && l.get(ROLE).map(String::as_str) == Some(role.as_str())
    })
}

/// Reads a backend's labels back; `None` when they are missing or damaged.
pub fn read_backend(labels: &HashMap<String, String>) -> Option<BackendLabels> {
    Some(BackendLabels {
        ports: PortSet::from_label(labels.get(PORTS)?)?,
        cache_volume: labels.get(CACHE_VOLUME).filter(|v| !v.is_empty()).cloned(),
        image: labels.get(IMAGE)?.clone(),
        version: labels.get(VERSION).cloned().unwrap_or_default(),
        security: match labels.get(SECURITY).map(String::as_str) {
            Some("capabilities") => SecurityMode::Capabilities,
            Some("rootless") => SecurityMode::Rootless,
            _ => SecurityMode::Privileged,
        },
        security_reason: labels.get(SECURITY_REASON).cloned(),
        cache_limit: labels.get(CACHE_LIMIT).and_then(|l| l.parse().ok()),
        network_host: labels.get(NETWORK_HOST).is_some_and(|v| v == "true"),
        local_images: LocalImages::from_labels(labels),
    })
}

/// Docker filter values selecting one user's resources of one role.
pub fn filter(names: &Names, role: Role) -> Vec<String> {
    vec![format!("{OWNER}={}", names.user()), format!("{ROLE}={}", role.as_str())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_labels_round_trip() {
        let names = Names::for_user("u");
        let config = BackendLabels {
            ports: PortSet::from_ports([5000, 6000]),
            cache_volume: Some("vol".into()),
            image: "moby/buildkit:v0.25.1".into(),
            version: OUR_VERSION.into(),
            security: SecurityMode::Capabilities,
            security_reason: Some("asked for".into()),
            cache_limit: Some(2 * 1024 * 1024 * 1024),
            network_host: true,
            local_images: LocalImages::Used { registries: vec!["docker.io".into(), "localhost:5000".into()] },
        };
        let labels = for_backend(&names, &config);
        assert!(is_ours(Some(&labels), &names, Role::Backend));
        assert!(!is_ours(Some(&labels), &Names::for_user("other"), Role::Backend));
        assert!(!is_ours(Some(&labels), &names, Role::Proxy));
        assert!(!is_ours(None, &names, Role::Backend));
        assert_eq!(read_backend(&labels), Some(config));
    }

    #[test]
    fn anonymous_cache_reads_back_as_none() {
        let names = Names::for_user("u");
        let config = BackendLabels {
            ports: PortSet::none(),
            cache_volume: None,
            image: "img".into(),
            version: OUR_VERSION.into(),
            security: SecurityMode::Rootless,
            security_reason: None,
            cache_limit: None,
            network_host: false,
            local_images: LocalImages::Unavailable { reason: "the engine's socket is elsewhere".into() },
        };
        assert_eq!(read_backend(&for_backend(&names, &config)), Some(config.clone()));
        let mut older = for_backend(&names, &config);
        older.retain(|key, _| !key.contains("local-image"));
        assert_eq!(
            read_backend(&older).unwrap().local_images,
            LocalImages::Off { reason: None },
            "made before local images"
        );
    }
}
