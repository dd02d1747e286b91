//! The sidecar container: the relay in the backend's network namespace, allowed to enter the
//! engine's own, and nothing more, for no longer than that takes.
use bollard::models::{ContainerCreateBody, HostConfig};

use crate::{
    backend::{labels, sidecars::relay_image::RELAY_PATH, spec::restart_unless_stopped},
    names::Names,
};

/// The most connections one sidecar relays at once: a registry push opens a handful (BuildKit
/// pushes a few layers at a time), several builds pushing at once a few dozen; past it a
/// connection is closed at once and the refusal logged in the sidecar's log.
pub const MAX_CONNECTIONS: usize = 256;

/// The sidecar's pids limit: two relay threads per connection, its two listeners, the main thread,
/// and room for threads on their way back to the pool. A flood meets the connection cap first; this
/// is the kernel's backstop, which the relay survives (a connection without a thread is closed).
pub const PIDS_LIMIT: i64 = 2 * MAX_CONNECTIONS as i64 + 64;

/// The sidecar's memory limit. The relay moves bytes inside the kernel; a relay thread's stack is
/// 128 KiB, so even at the cap it needs far less.
pub const MEMORY_LIMIT: i64 = 256 * 1024 * 1024;

/// At most one CPU: the relay spends about 0.15 CPU-s per GiB (docs/benchmarks.md), so this never
/// slows a push, and a flood cannot take the machine.
pub const NANO_CPUS: i64 = 1_000_000_000;

/// What the namespace switch needs, and nothing else: SYS_PTRACE and SYS_ADMIN to open and enter
/// the shim's network namespace, SETGID and SETUID to become `nobody` afterwards. The relay spends
/// all four before it reads a client byte (crates/proxy/src/netns.rs).
pub const CAPABILITIES: [&str; 4] = ["SYS_ADMIN", "SYS_PTRACE", "SETGID", "SETUID"];

/// The sidecar for `port`: the relay listens on `localhost:port` in the backend's network
/// namespace, then moves into the engine's own (its parent's, the shim's, hence the host's PID
/// namespace; AppArmor's default profile would refuse reading the shim's namespace), becomes
/// `nobody` with no capability, and connects to `port` on the host's loopback. Nothing listens on
/// the host or on the bridge. Every capability but [`CAPABILITIES`] is dropped, none can be gained
/// (no-new-privileges), the root filesystem (the relay alone) is read-only, and pids, memory and
/// CPU are bounded.
pub fn sidecar(names: &Names, port: u16, backend_id: &str, image: &str) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec![RELAY_PATH.into()]),
        cmd: Some(vec![
            "--port".into(),
            port.to_string(),
            "--host-loopback".into(),
            "--max-connections".into(),
            MAX_CONNECTIONS.to_string(),
        ]),
        labels: Some(labels::for_proxy(names, port, backend_id)),
        // The relay holds no state; without this, `docker stop` and engine shutdown wait 10 s for
        // a PID 1 that ignores SIGTERM.
        stop_signal: Some("SIGKILL".into()),
        host_config: Some(HostConfig {
            network_mode: Some(format!("container:{backend_id}")),
            pid_mode: Some("host".into()),
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(CAPABILITIES.iter().map(|c| c.to_string()).collect()),
            security_opt: Some(vec!["apparmor=unconfined".into(), "no-new-privileges".into()]),
            readonly_rootfs: Some(true),
            pids_limit: Some(PIDS_LIMIT),
            memory: Some(MEMORY_LIMIT),
            nano_cpus: Some(NANO_CPUS),
            restart_policy: restart_unless_stopped(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::RestartPolicyNameEnum;

    use super::*;

    #[test]
    fn sidecar_joins_the_backend_and_may_only_enter_the_engines_namespace() {
        let body = sidecar(&Names::for_user("u"), 6000, "abc", "proxy:1");
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("container:abc"));
        assert_eq!(host.pid_mode.as_deref(), Some("host"));
        assert_eq!(host.cap_drop.unwrap(), ["ALL"]);
        assert_eq!(host.cap_add.unwrap(), ["SYS_ADMIN", "SYS_PTRACE", "SETGID", "SETUID"]);
        assert_eq!(host.privileged, None, "never privileged");
        assert!(host.security_opt.unwrap().contains(&"no-new-privileges".to_string()));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!((host.pids_limit, host.memory, host.nano_cpus), (Some(576), Some(268_435_456), Some(1_000_000_000)));
        assert_eq!(host.restart_policy.and_then(|p| p.name), Some(RestartPolicyNameEnum::UNLESS_STOPPED));
        assert_eq!(body.cmd.unwrap(), ["--port", "6000", "--host-loopback", "--max-connections", "256"]);
    }

    #[test]
    fn the_pids_limit_covers_two_threads_per_connection_at_the_cap() {
        assert!(PIDS_LIMIT >= 2 * MAX_CONNECTIONS as i64 + 3);
    }
}
