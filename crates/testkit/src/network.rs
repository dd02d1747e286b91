//! What a container can reach, asked so that every answer means one thing: a probe that could not
//! run, or that timed out, is a failure of the test, never "not reachable".
use std::process::Command;

use bollard::Docker;

/// What a probe from a container found at an address and port.
#[derive(Debug, PartialEq, Eq)]
pub enum Reach {
    /// A registry answered `GET /v2/`.
    Registry,
    /// The address answered, but nothing listens on the port: the kernel refused the connection.
    Refused,
}

/// The host as containers on the backend's network see it: the gateway of the backend's own
/// network (Docker fills it in for every container on a bridge, whatever the network's IPAM
/// config holds), else the address of the bridge interface itself.
pub async fn backend_gateway(docker: &Docker, container: &str) -> String {
    let inspect = docker
        .inspect_container(container, None)
        .await
        .unwrap_or_else(|e| panic!("inspecting {container} for its gateway: {e}"));
    let networks = inspect.network_settings.and_then(|n| n.networks).unwrap_or_default();
    if let Some(gateway) = networks.values().find_map(|n| n.gateway.clone().filter(|g| !g.is_empty())) {
        return gateway;
    }
    for name in networks.keys() {
        let network = docker
            .inspect_network(name, None::<bollard::query_parameters::InspectNetworkOptions>)
            .await
            .unwrap_or_else(|e| panic!("inspecting network {name}: {e}"));
        let bridge = network.options.and_then(|o| o.get("com.docker.network.bridge.name").cloned());
        if let Some(address) = bridge.as_deref().and_then(interface_address) {
            return address;
        }
    }
    panic!(
        "{container} has no gateway: none in its network settings ({:?}) and no bridge interface with an IPv4 \
         address; the test cannot tell what the host looks like from a container",
        networks.keys().collect::<Vec<_>>()
    )
}

/// The first IPv4 address of a network interface (`ip -4 -o addr show dev NAME`).
fn interface_address(name: &str) -> Option<String> {
    let output = Command::new("ip").args(["-4", "-o", "addr", "show", "dev", name]).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let cidr = text.split_whitespace().skip_while(|word| *word != "inet").nth(1)?;
    cidr.split('/').next().map(str::to_string)
}

/// The first IPv4 address of `container` on any of its networks.
pub async fn container_address(docker: &Docker, container: &str) -> String {
    let inspect = docker
        .inspect_container(container, None)
        .await
        .unwrap_or_else(|e| panic!("inspecting {container} for its address: {e}"));
    inspect
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|networks| networks.into_values().find_map(|n| n.ip_address.filter(|ip| !ip.is_empty())))
        .unwrap_or_else(|| panic!("{container} has no IPv4 address on any network"))
}

/// What a plain container on the default bridge of the engine at `host` (another user's, say)
/// finds at `address:port`. Panics, naming what it saw, when the probe could not run or got
/// neither a registry's answer nor a refusal (a timeout, say): such a probe proves nothing.
pub fn probe_from_bridge(host: &str, image: &str, address: &str, port: u16) -> Reach {
    // busybox wget: the body on success, "Connection refused" when nothing listens. Its own `-T`
    // crashes the static busybox of our image, so `timeout` bounds it.
    let script =
        format!("timeout 10 wget -q -O - http://{address}:{port}/v2/ 2>&1 && echo probe:answered || echo probe:failed");
    let mut command = Command::new("docker");
    crate::machine::clear_engine_environment(&mut command);
    let output = command
        .args(["-H", host, "run", "--rm", "--network", "bridge", "--entrypoint", "sh", image, "-c", &script])
        .output()
        .unwrap_or_else(|e| panic!("running the docker CLI for a probe: {e}"));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the probe container did not run on {host}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    if text.contains("probe:answered") && text.contains("{}") {
        Reach::Registry
    } else if text.contains("probe:failed") && text.contains("Connection refused") {
        Reach::Refused
    } else {
        panic!("the probe of {address}:{port} neither reached a registry nor was refused: {}", text.trim())
    }
}

/// Whether a failed push's output says the connection was refused: the failure a push through a
/// port that nothing relays must have, not any failure.
pub fn push_was_refused(output: &str) -> bool {
    output.contains("connect: connection refused")
}
