//! The backend container's specification, in either security mode, and the files put into it
//! before it starts. The sidecar's is with the sidecars (`sidecars/spec.rs`).
use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, MountVolumeOptions, RestartPolicy, RestartPolicyNameEnum,
};

use crate::{
    backend::labels::{self, BackendLabels, LocalImages, SecurityMode},
    names::Names,
};

/// Where BuildKit keeps its state, and so the build cache.
pub const STATE_DIR: &str = "/var/lib/buildkit";

/// Where rootless BuildKit keeps it (moby/buildkit's rootless image: user 1000's data folder).
pub const ROOTLESS_STATE_DIR: &str = "/home/user/.local/share/buildkit";

/// Where BuildKit keeps its state in `mode`.
pub fn state_dir(mode: SecurityMode) -> &'static str {
    match mode {
        SecurityMode::Rootless => ROOTLESS_STATE_DIR,
        SecurityMode::Privileged | SecurityMode::Capabilities => STATE_DIR,
    }
}

/// Without `--privileged` the cgroup mounts are read-only, and runc cannot place `RUN` steps in
/// cgroups. With CAP_SYS_ADMIN we may remount them read-write, before buildkitd starts, on every
/// start of the container.
const REMOUNT_CGROUPS_THEN_EXEC: &str = r#"for m in $(awk '$3=="cgroup"||$3=="cgroup2"{print $2}' /proc/mounts); do mount -o remount,bind,rw "$m" 2>/dev/null || echo "assemble: could not remount $m read-write" >&2; done; exec buildkitd "$@""#;

/// Like buildx's docker-container driver: back after an engine restart or a crash, but not after
/// a `docker stop` or `docker kill`.
pub(in crate::backend) fn restart_unless_stopped() -> Option<RestartPolicy> {
    Some(RestartPolicy { name: Some(RestartPolicyNameEnum::UNLESS_STOPPED), maximum_retry_count: None })
}

/// Where the backend's buildkitd config is put (by [`files_tar`], before it starts).
pub const BUILDKITD_CONFIG: &str = "/etc/assemble-buildkitd.toml";

/// buildkitd's config: the `network.host` entitlement when asked for (so builds may use
/// `--network host`); for a cache limit, the OCI worker's `maxUsedSpace`, in bytes (no unit, so
/// no question of which "GB" is meant), from which BuildKit derives its GC rules; for local images,
/// the mirror that serves the engine's images (backend/mirror/config.rs). `None` when the backend
/// runs on BuildKit's defaults.
pub fn buildkitd_config(config: &BackendLabels) -> Option<String> {
    let mut text = String::new();
    // Top-level keys come before any table.
    if config.network_host {
        text.push_str("insecure-entitlements = [\"network.host\"]\n");
    }
    if let Some(limit) = config.cache_limit {
        text.push_str(&format!("[worker.oci]\n  maxUsedSpace = \"{limit}\"\n"));
    }
    if let LocalImages::Used { registries } = &config.local_images {
        text.push_str(&crate::backend::mirror::config::buildkitd_section(registries));
    }
    (!text.is_empty()).then(|| format!("# Made by Assemble Backend.\n{text}"))
}

/// Files for the engine's upload (extracted at `/`), each an absolute path and its text.
pub fn files_tar(files: &[(&str, &str)]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path.trim_start_matches('/'), text.as_bytes())?;
    }
    builder.into_inner()
}

/// The backend container as `config` says: BuildKit with its state on the cache volume (anonymous
/// when none is named), in its security mode, restarted unless stopped.
pub fn backend(names: &Names, config: &BackendLabels) -> ContainerCreateBody {
    let cache_mount = Mount {
        target: Some(state_dir(config.security).into()),
        // No source: an anonymous volume, removed with the container.
        source: config.cache_volume.clone(),
        typ: Some(MountType::VOLUME),
        volume_options: config.cache_volume.is_none().then(|| MountVolumeOptions {
            labels: Some(labels::common(names, labels::Role::Cache)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut host_config = HostConfig {
        mounts: Some(vec![cache_mount]),
        restart_policy: restart_unless_stopped(),
        // Engines without IPv6 networks disable it even on loopback; the sidecars listen on ::1
        // too, because `localhost` may resolve there first.
        sysctls: Some(HashMap::from([("net.ipv6.conf.lo.disable_ipv6".to_string(), "0".to_string())])),
        ..Default::default()
    };
    let mut entrypoint = None;
    let mut cmd = None;
    match config.security {
        SecurityMode::Privileged => host_config.privileged = Some(true),
        SecurityMode::Capabilities => {
            host_config.cap_add = Some(vec!["ALL".into()]);
            host_config.cap_drop = Some(vec!["SYS_RESOURCE".into()]);
            host_config.security_opt = Some(vec!["seccomp=unconfined".into(), "apparmor=unconfined".into()]);
            // `--security-opt systempaths=unconfined` is a docker CLI option; the API form is
            // empty masked and read-only path lists.
            host_config.masked_paths = Some(vec![]);
            host_config.readonly_paths = Some(vec![]);
            entrypoint =
                Some(vec!["/bin/sh".into(), "-c".into(), REMOUNT_CGROUPS_THEN_EXEC.into(), "buildkitd".into()]);
            cmd = Some(vec![]);
        }
        SecurityMode::Rootless => {
            // As moby/buildkit's docs/rootless.md runs its rootless image: no added capability
            // (the image's user 1000 has none at all), seccomp and AppArmor unconfined so that
            // rootlesskit may make a user namespace and mount in it, and the /proc masks off so
            // that each RUN step gets a /proc of its own (safe for a non-root daemon, the docs say).
            // The image's entrypoint (`rootlesskit buildkitd`) stays.
            host_config.security_opt = Some(vec!["seccomp=unconfined".into(), "apparmor=unconfined".into()]);
            host_config.masked_paths = Some(vec![]);
            host_config.readonly_paths = Some(vec![]);
        }
    }
    if buildkitd_config(config).is_some() {
        // Arguments to buildkitd, in both modes (the capability mode's script passes them on).
        cmd = Some(vec!["--config".into(), BUILDKITD_CONFIG.into()]);
    }
    ContainerCreateBody {
        image: Some(config.image.clone()),
        hostname: Some(names.backend().chars().take(63).collect()),
        labels: Some(labels::for_backend(names, config)),
        entrypoint,
        cmd,
        host_config: Some(host_config),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortSet;

    fn config(security: SecurityMode, cache_volume: Option<&str>) -> BackendLabels {
        BackendLabels {
            cache_limit: None,
            ports: PortSet::from_ports([5000]),
            cache_volume: cache_volume.map(String::from),
            image: "img".into(),
            version: labels::OUR_VERSION.into(),
            security,
            security_reason: None,
            network_host: false,
            local_images: LocalImages::Off { reason: None },
        }
    }

    #[test]
    fn the_host_network_grant_and_the_cache_limit_go_in_buildkitd_s_config() {
        let mut wanted = config(SecurityMode::Privileged, None);
        assert_eq!(buildkitd_config(&wanted), None, "BuildKit's defaults: no config, no --config");
        wanted.network_host = true;
        let text = buildkitd_config(&wanted).unwrap();
        assert!(text.contains("insecure-entitlements = [\"network.host\"]"), "{text}");
        wanted.cache_limit = Some(1 << 30);
        let text = buildkitd_config(&wanted).unwrap();
        let (top, worker) = text.split_once("[worker.oci]").unwrap();
        assert!(top.contains("insecure-entitlements") && worker.contains("maxUsedSpace = \"1073741824\""), "{text}");
        assert_eq!(backend(&Names::for_user("u"), &wanted).cmd.unwrap(), ["--config", BUILDKITD_CONFIG]);
    }

    #[test]
    fn buildkitd_is_configured_for_the_cache_limit_and_local_images() {
        let mut labels = config(SecurityMode::Privileged, None);
        assert_eq!(buildkitd_config(&labels), None, "BuildKit's defaults");
        labels.cache_limit = Some(2_147_483_648);
        assert_eq!(
            buildkitd_config(&labels).unwrap(),
            "# Made by Assemble Backend.\n[worker.oci]\n  maxUsedSpace = \"2147483648\"\n"
        );
        labels.local_images = LocalImages::Used { registries: vec!["docker.io".into()] };
        let text = buildkitd_config(&labels).unwrap();
        assert!(
            text.contains("maxUsedSpace")
                && text.contains("[registry.\"docker.io\"]\n  mirrors = [\"127.0.0.2:49500\"]"),
            "{text}"
        );
        labels.cache_limit = None;
        let body = backend(&Names::for_user("u"), &labels);
        assert_eq!(body.cmd.unwrap(), ["--config", BUILDKITD_CONFIG], "local images alone need the config too");
    }

    #[test]
    fn privileged_backend_keeps_the_image_entrypoint() {
        let body = backend(&Names::for_user("u"), &config(SecurityMode::Privileged, Some("vol")));
        let host = body.host_config.unwrap();
        assert_eq!(host.privileged, Some(true));
        assert!(body.entrypoint.is_none());
        let mount = &host.mounts.unwrap()[0];
        assert_eq!(mount.source.as_deref(), Some("vol"));
        assert!(mount.volume_options.is_none());
    }

    #[test]
    fn a_rootless_backend_adds_no_capability_and_keeps_the_rootless_entrypoint() {
        let body = backend(&Names::for_user("u"), &config(SecurityMode::Rootless, Some("vol")));
        let host = body.host_config.unwrap();
        assert_eq!((host.privileged, host.cap_add, host.cap_drop), (None, None, None));
        assert_eq!(host.security_opt.unwrap(), ["seccomp=unconfined", "apparmor=unconfined"]);
        assert_eq!(host.masked_paths, Some(vec![]));
        assert!(body.entrypoint.is_none() && body.cmd.is_none(), "the image's `rootlesskit buildkitd` runs");
        assert_eq!(host.mounts.unwrap()[0].target.as_deref(), Some("/home/user/.local/share/buildkit"));
        assert_eq!(body.labels.unwrap()[labels::SECURITY], "rootless");
    }

    #[test]
    fn capability_backend_remounts_cgroups_and_labels_its_anonymous_cache() {
        let body = backend(&Names::for_user("u"), &config(SecurityMode::Capabilities, None));
        let host = body.host_config.unwrap();
        assert_eq!(host.privileged, None);
        assert_eq!(host.cap_drop, Some(vec!["SYS_RESOURCE".to_string()]));
        assert!(body.entrypoint.unwrap()[2].contains("remount,bind,rw"));
        let mount = &host.mounts.unwrap()[0];
        assert_eq!(mount.source, None);
        let volume_labels = mount.volume_options.as_ref().unwrap().labels.as_ref().unwrap();
        assert_eq!(volume_labels.get(labels::ROLE).map(String::as_str), Some("cache"));
    }
}
