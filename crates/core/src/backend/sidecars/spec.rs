//! The sidecar container: the relay in the backend's network namespace, allowed to enter the
//! engine's own, and nothing more.
use bollard::models::{ContainerCreateBody, HostConfig};

use crate::{
    backend::{labels, sidecars::relay_image::RELAY_PATH, spec::restart_unless_stopped},
    names::Names,
};

/// The sidecar for `port`: the relay listens on `localhost:port` in the backend's network
/// namespace, then moves into the engine's own (its parent's, the shim's, hence the host's PID
/// namespace and SYS_ADMIN + SYS_PTRACE, all dropped once there; AppArmor's default profile would
/// refuse reading the shim's namespace) and connects to `port` on the host's loopback. Nothing
/// listens on the host or on the bridge.
pub fn sidecar(names: &Names, port: u16, backend_id: &str, image: &str) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec![RELAY_PATH.into()]),
        cmd: Some(vec!["--port".into(), port.to_string(), "--host-loopback".into()]),
        labels: Some(labels::for_proxy(names, port, backend_id)),
        // The relay holds no state; without this, `docker stop` and engine shutdown wait 10 s for
        // a PID 1 that ignores SIGTERM.
        stop_signal: Some("SIGKILL".into()),
        host_config: Some(HostConfig {
            network_mode: Some(format!("container:{backend_id}")),
            pid_mode: Some("host".into()),
            cap_add: Some(vec!["SYS_ADMIN".into(), "SYS_PTRACE".into()]),
            security_opt: Some(vec!["apparmor=unconfined".into()]),
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
    fn sidecar_joins_the_backend_and_may_enter_the_engines_namespace() {
        let body = sidecar(&Names::for_user("u"), 6000, "abc", "proxy:1");
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("container:abc"));
        assert_eq!(host.pid_mode.as_deref(), Some("host"));
        assert_eq!(host.cap_add.unwrap(), ["SYS_ADMIN", "SYS_PTRACE"]);
        assert_eq!(host.privileged, None, "never privileged");
        assert_eq!(host.restart_policy.and_then(|p| p.name), Some(RestartPolicyNameEnum::UNLESS_STOPPED));
        assert_eq!(body.cmd.unwrap(), ["--port", "6000", "--host-loopback"]);
    }
}
