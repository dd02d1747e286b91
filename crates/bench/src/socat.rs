//! The classic host-port sidecar: socat in the backend's network namespace, forwarding to the
//! gateway. Used by the relay benchmarks (as the alternative path) and by the start benchmark (as
//! the sidecar of the buildx-style bootstrap).
use std::collections::HashMap;

use bollard::{
    models::{ContainerCreateBody, HostConfig},
    query_parameters::CreateContainerOptionsBuilder,
    Docker,
};

/// Marks every container a benchmark creates, so a leftover is easy to tell apart.
pub const BENCH_LABEL: &str = "com.docker.assemble.backend.bench";

/// Creates and starts `socat <listen> <connect>` in `backend_id`'s network namespace; its ID.
pub async fn sidecar(
    docker: &Docker,
    name: &str,
    backend_id: &str,
    listen: String,
    connect: String,
    image: &str,
) -> Result<String, String> {
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec![listen, connect]),
        labels: Some(HashMap::from([(BENCH_LABEL.to_string(), "socat".to_string())])),
        host_config: Some(HostConfig { network_mode: Some(format!("container:{backend_id}")), ..Default::default() }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    let id = docker.create_container(Some(options), body).await.map_err(|e| format!("{name}: {e}"))?.id;
    docker.start_container(&id, None).await.map_err(|e| format!("{name}: {e}"))?;
    Ok(id)
}

/// The gateway of the container's network (the first network by name that has one): the host.
pub async fn gateway(docker: &Docker, id: &str) -> Result<String, String> {
    let inspect = docker.inspect_container(id, None).await.map_err(|e| format!("inspecting {id}: {e}"))?;
    let networks = inspect.network_settings.and_then(|n| n.networks).unwrap_or_default();
    let mut names: Vec<_> = networks.keys().collect();
    names.sort();
    names
        .into_iter()
        .find_map(|n| networks[n].gateway.clone().filter(|g| !g.is_empty()))
        .ok_or_else(|| format!("container {id} has no network gateway"))
}
