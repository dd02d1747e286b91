//! The mirror's two containers. The front joins the backend's network namespace, where builds run,
//! and holds nothing: nobody, no capability, a read-only root, and the store's socket. The store
//! holds the engine's API socket and has no network at all, so nothing but the front, through the
//! one narrow protocol, ever reaches it. Both are bounded in pids, memory and CPU.
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, MountVolumeOptions};

use crate::{
    backend::{
        labels::{self, Role},
        mirror::{config, MIRROR_PATH},
        spec::restart_unless_stopped,
    },
    names::Names,
};

/// `nobody`: the front's user, and the group the store lets connect to its socket.
pub const NOBODY: &str = "65534";
/// The most connections the front serves at once: BuildKit fetches a few blobs at a time per
/// image, several builds at once a few dozen.
pub const FRONT_CONNECTIONS: usize = 64;
/// One thread per connection, and room.
pub const FRONT_PIDS: i64 = FRONT_CONNECTIONS as i64 + 32;
/// A connection's thread holds a 256 KiB relay buffer.
pub const FRONT_MEMORY: i64 = 128 * 1024 * 1024;
/// The store: a thread per question (at most as many as the front asks at once, and room), its
/// event watcher and its sweeper.
pub const STORE_CONNECTIONS: usize = 128;
/// The store's pids limit.
pub const STORE_PIDS: i64 = STORE_CONNECTIONS as i64 + 32;
/// Exports stream through the store into its cache volume; the page cache it dirties counts here.
pub const STORE_MEMORY: i64 = 512 * 1024 * 1024;
/// The most the store keeps of exported layers (their configs and manifests stay); beyond it the
/// layers served least recently are dropped, to be exported again if asked for.
pub const STORE_MAX_LAYER_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// At most one CPU each.
pub const NANO_CPUS: i64 = 1_000_000_000;

/// Where the store sees the engine's socket.
pub const ENGINE_SOCKET: &str = "/run/docker.sock";
/// The store's cache folder (its own anonymous volume).
pub const CACHE_DIR: &str = "/cache";

fn socket_volume(names: &Names, read_only: bool) -> Mount {
    Mount {
        target: Some(config::SOCKET_DIR.into()),
        source: Some(names.mirror_socket_volume()),
        typ: Some(MountType::VOLUME),
        read_only: Some(read_only),
        ..Default::default()
    }
}

fn bounded(pids: i64, memory: i64) -> HostConfig {
    HostConfig {
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        readonly_rootfs: Some(true),
        pids_limit: Some(pids),
        memory: Some(memory),
        nano_cpus: Some(NANO_CPUS),
        restart_policy: restart_unless_stopped(),
        ..Default::default()
    }
}

/// The front, in the network namespace of the backend `backend_id`, on [`config::mirror_host`].
pub fn front(names: &Names, backend_id: &str, image: &str) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec![MIRROR_PATH.into()]),
        cmd: Some(vec![
            "front".into(),
            "--listen".into(),
            config::mirror_host(),
            "--socket".into(),
            config::socket_path(),
            "--max-connections".into(),
            FRONT_CONNECTIONS.to_string(),
        ]),
        user: Some(format!("{NOBODY}:{NOBODY}")),
        labels: Some(labels::for_mirror(names, Role::Mirror, backend_id)),
        stop_signal: Some("SIGKILL".into()),
        host_config: Some(HostConfig {
            network_mode: Some(format!("container:{backend_id}")),
            // The socket is all it reads; connecting to a socket needs no write to its filesystem.
            mounts: Some(vec![socket_volume(names, true)]),
            ..bounded(FRONT_PIDS, FRONT_MEMORY)
        }),
        ..Default::default()
    }
}

/// The store, for the backend about to start (`backend_id` is empty until it exists, and the
/// store serves whichever backend's front connects), given the engine's socket `engine_socket`
/// (on the engine's host), the engine's name as the user knows it, and the registries served.
pub fn store(
    names: &Names,
    image: &str,
    engine_socket: &str,
    engine_label: &str,
    registries: &[String],
) -> ContainerCreateBody {
    let mut cmd: Vec<String> = vec![
        "back".into(),
        "--engine".into(),
        ENGINE_SOCKET.into(),
        "--socket".into(),
        config::socket_path(),
        "--socket-group".into(),
        NOBODY.into(),
        "--cache".into(),
        CACHE_DIR.into(),
        "--name".into(),
        names.mirror_store(),
        "--engine-label".into(),
        engine_label.into(),
        "--max-layer-bytes".into(),
        STORE_MAX_LAYER_BYTES.to_string(),
        "--max-connections".into(),
        STORE_CONNECTIONS.to_string(),
    ];
    for registry in registries {
        cmd.extend(["--registry".to_string(), registry.clone()]);
    }
    let cache = Mount {
        target: Some(CACHE_DIR.into()),
        typ: Some(MountType::VOLUME),
        // No source: an anonymous volume, removed with the container.
        volume_options: Some(MountVolumeOptions {
            labels: Some(labels::common(names, Role::MirrorCache)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let engine = Mount {
        target: Some(ENGINE_SOCKET.into()),
        source: Some(engine_socket.into()),
        typ: Some(MountType::BIND),
        // Connecting needs no write to the file system the socket is on.
        read_only: Some(true),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec![MIRROR_PATH.into()]),
        cmd: Some(cmd),
        // Root without a single capability: the engine's socket is root's (mode 660), its own
        // volumes are root's; the group lets it hand its socket to nobody's group alone.
        user: Some("0:0".into()),
        labels: Some(labels::common(names, Role::MirrorStore)),
        stop_signal: Some("SIGKILL".into()),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            group_add: Some(vec![NOBODY.into()]),
            mounts: Some(vec![engine, socket_volume(names, false), cache]),
            ..bounded(STORE_PIDS, STORE_MEMORY)
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_is_nobody_in_the_backends_namespace_with_the_socket_alone() {
        let body = front(&Names::for_user("u"), "b1", "mirror:1");
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("container:b1"));
        assert_eq!(body.user.as_deref(), Some("65534:65534"));
        assert_eq!(host.cap_drop.unwrap(), ["ALL"]);
        assert_eq!((host.cap_add, host.privileged, host.pid_mode), (None, None, None));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert!(host.security_opt.unwrap().contains(&"no-new-privileges".to_string()));
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!(
            (mounts[0].source.as_deref(), mounts[0].read_only),
            (Some("docker-assemble-backend-u-mirror-socket"), Some(true))
        );
        assert_eq!((host.pids_limit, host.memory), (Some(96), Some(134_217_728)));
        assert_eq!(body.cmd.unwrap()[..3], ["front", "--listen", "127.0.0.2:49500"]);
        assert_eq!(body.labels.unwrap()[labels::BACKEND], "b1");
    }

    #[test]
    fn the_store_holds_the_engines_socket_without_a_network() {
        let registries = ["docker.io".to_string(), "localhost:5000".to_string()];
        let body = store(
            &Names::for_user("u"),
            "mirror:1",
            "/var/run/docker.sock",
            "default (unix:///var/run/docker.sock)",
            &registries,
        );
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.cap_drop.unwrap(), ["ALL"]);
        assert_eq!((host.cap_add, host.privileged), (None, None));
        assert_eq!(host.group_add.unwrap(), ["65534"]);
        let mounts = host.mounts.unwrap();
        let engine = &mounts[0];
        assert_eq!(
            (engine.source.as_deref(), engine.target.as_deref()),
            (Some("/var/run/docker.sock"), Some("/run/docker.sock"))
        );
        assert_eq!((engine.typ, engine.read_only), (Some(MountType::BIND), Some(true)));
        assert_eq!(mounts[2].source, None, "its cache is an anonymous volume, gone with it");
        let cmd = body.cmd.unwrap();
        let joined = cmd.join(" ");
        assert!(joined.contains("--registry docker.io --registry localhost:5000"), "{joined}");
        assert!(joined.contains("--name docker-assemble-backend-u-mirror-store"), "{joined}");
        assert_eq!(body.labels.unwrap()[labels::ROLE], "mirror-store");
    }
}
