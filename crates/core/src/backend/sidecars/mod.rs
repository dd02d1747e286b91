//! The host-port sidecars: made at start, and kept true to the backend afterwards. Sidecars are
//! derived from the backend's labels: while it runs there is exactly one running sidecar per
//! labelled port, in the backend's *current* network namespace; while it does not run there are
//! none. Docker's restart policy brings both back after an engine restart; [`Backend::repair`]
//! mends what Docker cannot: a sidecar removed or killed, and sidecars left in the old namespace
//! when the backend restarted without them. Which sidecar stays is decided by [`plan::plan`], a pure
//! function; this module lists the sidecars, gathers the facts and carries the plan out. Its
//! neighbours hold the live set of ports ([`record`]), the sidecar's container ([`spec`]) and its
//! image ([`relay_image`]), and each port's state as the windows show it ([`status`]).
pub mod plan;
pub mod record;
pub mod relay_image;
pub mod spec;
pub mod status;

use std::collections::HashMap;

use bollard::query_parameters::{CreateContainerOptionsBuilder, ListContainersOptionsBuilder};
use serde::Serialize;

use crate::{
    backend::{
        error::BackendError,
        labels::{self, Role},
        lock::OperationLock,
        progress::{self, Reporter, StartEvent},
        readiness::{wait_for_line, Readiness},
        rollback::Created,
        Backend, ContainerState, OurContainer, Presence,
    },
    engine::is_not_found,
    ports::PortSet,
    Error, Result,
};
use plan::{plan, BackendFacts, SidecarFacts};

/// What the relay prints once it relays (crates/proxy/src/relay.rs).
const RELAYING: &str = "assemble-proxy: relaying localhost:";

/// How long a new sidecar may take to say so; it takes milliseconds.
const RELAY_READY: std::time::Duration = std::time::Duration::from_secs(10);

/// What a repair changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Repairs {
    /// Sidecars removed: stale, dead, duplicated, for a port no longer wanted, or without a backend.
    pub removed: Vec<String>,
    /// Ports whose sidecar was (re)created.
    pub started: Vec<u16>,
    /// The local-image mirror's containers (re)created (backend/mirror).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mirror: Vec<String>,
}

impl Repairs {
    /// Nothing was changed.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.started.is_empty() && self.mirror.is_empty()
    }
}

/// A sidecar of ours, found by its labels.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sidecar {
    /// The container's ID.
    pub id: String,
    /// Its name, without the leading `/`.
    pub name: String,
    /// The host port it proxies, from its label; `None` when the label is missing or damaged.
    pub port: Option<u16>,
    /// Its state, in the engine's words.
    pub state: ContainerState,
    /// The ID of the backend container it was made for (its label); empty when missing.
    pub backend_id: String,
}

/// Every sidecar of ours, running or not, sorted by port.
pub(in crate::backend) async fn list(backend: &Backend) -> Result<Vec<Sidecar>> {
    let filters = HashMap::from([("label".to_string(), labels::filter(&backend.names, Role::Proxy))]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let list =
        backend.docker.list_containers(Some(options)).await.map_err(Error::docker("listing the sidecar containers"))?;
    let mut sidecars: Vec<Sidecar> = list
        .into_iter()
        .map(|c| {
            let labels = c.labels.unwrap_or_default();
            Sidecar {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
                port: labels.get(labels::PORT).and_then(|p| p.parse().ok()),
                state: c.state.map_or(ContainerState::Unknown, |s| ContainerState::from_engine(s.as_ref())),
                backend_id: labels.get(labels::BACKEND).cloned().unwrap_or_default(),
            }
        })
        .collect();
    sidecars.sort_by_key(|s| s.port);
    Ok(sidecars)
}

/// Removes every sidecar of ours (of any backend of this user).
pub(in crate::backend) async fn remove_all(backend: &Backend) -> Result<Vec<Sidecar>> {
    let sidecars = list(backend).await?;
    for sidecar in &sidecars {
        backend.remove_container(&sidecar.id).await?;
    }
    Ok(sidecars)
}

/// Makes the sidecars match the backend (see the module doc). Waits for any start or stop in
/// progress, so it never works against one.
pub(in crate::backend) async fn repair(backend: &Backend) -> Result<Repairs> {
    let _lock = OperationLock::acquire(&backend.names, backend.engine.endpoint()).await?;
    match backend.presence().await? {
        // Not ours: touch nothing, not even sidecars that name it.
        Presence::Foreign => Ok(Repairs::default()),
        Presence::Ours(container) if container.running => repair_running(backend, &container).await,
        Presence::Absent | Presence::Ours(_) => {
            let mut removed: Vec<String> = remove_all(backend).await?.into_iter().map(|s| s.name).collect();
            removed.extend(crate::backend::mirror::remove_all(backend).await?);
            Ok(Repairs { removed, ..Repairs::default() })
        }
    }
}

/// [`repair`] for the running backend `container`, under the operation lock: its sidecars, then
/// its local-image mirror (backend/mirror), which follows the same rules.
pub(in crate::backend) async fn repair_running(backend: &Backend, container: &OurContainer) -> Result<Repairs> {
    let mut repairs = repair_sidecars(backend, container).await?;
    let (removed, started) = crate::backend::mirror::repair_running(backend, container).await?;
    repairs.removed.extend(removed);
    repairs.mirror = started;
    Ok(repairs)
}

async fn repair_sidecars(backend: &Backend, container: &OurContainer) -> Result<Repairs> {
    let sidecars = list(backend).await?;
    let mut facts = Vec::with_capacity(sidecars.len());
    for sidecar in &sidecars {
        facts.push(facts_of(backend, sidecar, container).await?);
    }
    let backend_facts = BackendFacts {
        id: container.id.clone(),
        ports: container.config.ports.clone(),
        started_at: container.started_at.clone(),
    };
    let plan = plan(&facts, &backend_facts);
    let mut repairs = Repairs::default();
    for index in plan.remove {
        backend.remove_container(&sidecars[index].id).await?;
        repairs.removed.push(sidecars[index].name.clone());
    }
    if plan.start.is_empty() {
        return Ok(repairs);
    }
    let image = relay_image::ensure(&backend.docker, &progress::silent).await?;
    let ports = PortSet::from_ports(plan.start.iter().copied());
    let mut created = Created::new(&backend.docker);
    let result = start(backend, container, &ports, &image, &progress::silent, &mut created).await;
    created.settle(result).await?;
    repairs.started = plan.start;
    Ok(repairs)
}

/// The facts [`plan`] needs; only a running sidecar of this backend is inspected for its
/// start time, as only there does it matter.
async fn facts_of(backend: &Backend, sidecar: &Sidecar, container: &OurContainer) -> Result<SidecarFacts> {
    let mut facts = SidecarFacts::listed(sidecar);
    if sidecar.state != ContainerState::Running || sidecar.backend_id != container.id {
        return Ok(facts);
    }
    match backend.docker.inspect_container(&sidecar.id, None).await {
        Ok(inspect) => facts.started_at = inspect.state.and_then(|s| s.started_at),
        // Gone since the listing: it cannot be kept.
        Err(err) if is_not_found(&err) => facts.state = ContainerState::Missing,
        Err(err) => return Err(Error::docker(format!("inspecting sidecar {}", sidecar.name))(err)),
    }
    Ok(facts)
}

/// Creates and starts one sidecar per port in `container`'s network namespace; each is recorded
/// in `created` as soon as it exists.
pub(in crate::backend) async fn start(
    backend: &Backend,
    container: &OurContainer,
    ports: &PortSet,
    image: &str,
    report: Reporter<'_>,
    created: &mut Created,
) -> Result<()> {
    for port in ports.iter() {
        let name = backend.names.proxy(port);
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let body = spec::sidecar(&backend.names, port, &container.id, image);
        let response = backend
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(Error::docker(format!("creating sidecar {name}")))?;
        created.container(&response.id);
        backend
            .docker
            .start_container(&response.id, None)
            .await
            .map_err(Error::docker(format!("starting sidecar {name}")))?;
        wait_relaying(backend, &response.id, &name, port).await?;
        report(StartEvent::ProxyStarted { port, id: response.id });
    }
    Ok(())
}

/// Waits until the new sidecar says it relays: it listens in the backend's namespace and has
/// entered the engine's. One that exits first (the engine refused its namespace) fails the
/// start with what it printed.
async fn wait_relaying(backend: &Backend, id: &str, name: &str, port: u16) -> Result<()> {
    match wait_for_line(backend, id, RELAYING, None, RELAY_READY).await {
        Readiness::Ready => Ok(()),
        Readiness::Stopped { printed } | Readiness::TimedOut { printed } => {
            Err(BackendError::SidecarNotReady { name: name.to_string(), port, logs: printed.trim().to_string() }.into())
        }
    }
}

/// Refuses before anything is created if a sidecar name is held by someone else; clears
/// leftovers of ours.
pub(in crate::backend) async fn check_names(backend: &Backend, ports: &PortSet) -> Result<()> {
    for sidecar in list(backend).await? {
        backend.remove_container(&sidecar.id).await?;
    }
    for port in ports.iter() {
        let name = backend.names.proxy(port);
        match backend.docker.inspect_container(&name, None).await {
            Ok(_) => return Err(BackendError::ForeignContainer { name }.into()),
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(Error::docker(format!("inspecting container {name}"))(err)),
        }
    }
    Ok(())
}

/// Refuses, before anything is touched, a port whose sidecar name a container that is not ours
/// holds; a leftover of ours is the repair's to clear.
pub(in crate::backend) async fn check_new_names(backend: &Backend, ports: &PortSet) -> Result<()> {
    for port in ports.iter() {
        let name = backend.names.proxy(port);
        match backend.docker.inspect_container(&name, None).await {
            Ok(inspect)
                if labels::is_ours(
                    inspect.config.as_ref().and_then(|c| c.labels.as_ref()),
                    &backend.names,
                    Role::Proxy,
                ) => {}
            Ok(_) => return Err(BackendError::ForeignContainer { name }.into()),
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(Error::docker(format!("inspecting container {name}"))(err)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_is_the_one_the_relay_prints() {
        let relay = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../proxy/src/relay.rs"));
        assert!(relay.contains("\"assemble-proxy: relaying {} to {} (at most {} connections at once)\""), "{RELAYING}");
        assert!(relay.contains("Listen::Loopback(port) => format!(\"localhost:{port}\")"));
        assert!(RELAYING.starts_with("assemble-proxy: relaying localhost:"));
    }
}
