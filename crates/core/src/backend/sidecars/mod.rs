//! The host-port sidecars: made at start, and kept true to the backend afterwards. Sidecars are
//! derived from the backend's labels: while it runs there is exactly one running sidecar per
//! labelled port, in the backend's *current* network namespace; while it does not run there are
//! none. Docker's restart policy brings both back after an engine restart; [`Backend::repair`]
//! mends what Docker cannot: a sidecar removed or killed, and sidecars left in the old namespace
//! when the backend restarted without them. Which sidecar stays is decided by [`plan`], a pure
//! function; this module gathers the facts and carries the plan out.
pub mod record;
pub mod relay_image;

use bollard::query_parameters::{CreateContainerOptionsBuilder, LogsOptionsBuilder};
use futures_util::StreamExt;
use serde::Serialize;

use crate::{
    backend::lock::OperationLock,
    backend::progress::{Reporter, StartEvent},
    backend::rollback::Created,
    backend::spec,
    backend::{Backend, ContainerState, OurContainer, Presence, Sidecar},
    engine::is_not_found,
    error::{Error, Result},
    ports::PortSet,
};

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
}

impl Repairs {
    /// Nothing was changed.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.started.is_empty()
    }
}

/// What the repair needs to know about one sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarFacts {
    /// Its container name.
    pub name: String,
    /// The port it relays, from its label (`None`: a label we cannot read).
    pub port: Option<u16>,
    /// Its container's state.
    pub state: ContainerState,
    /// The backend container it was made for.
    pub backend_id: String,
    /// When it last started (RFC 3339, as the engine writes it), when known.
    pub started_at: Option<String>,
}

impl SidecarFacts {
    /// What the engine's container list says of a sidecar; its start time needs an inspect.
    pub fn listed(sidecar: &Sidecar) -> Self {
        Self {
            name: sidecar.name.clone(),
            port: sidecar.port,
            state: sidecar.state,
            backend_id: sidecar.backend_id.clone(),
            started_at: None,
        }
    }
}

/// The running backend, as the repair sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendFacts {
    /// Its container ID.
    pub id: String,
    /// The ports its labels ask for.
    pub ports: PortSet,
    /// When it last started, when known.
    pub started_at: Option<String>,
}

/// What to do to make the sidecars match a running backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairPlan {
    /// Indexes (into the facts given to [`plan`]) of the sidecars to remove.
    pub remove: Vec<usize>,
    /// Ports that need a new sidecar.
    pub start: Vec<u16>,
}

/// Decides, for a running backend, which sidecars stay: the first running one per wanted port,
/// made for this backend and started after it (one started before sits in the namespace the
/// backend had then). Every other sidecar goes, and every wanted port left without one gets one.
pub fn plan(sidecars: &[SidecarFacts], backend: &BackendFacts) -> RepairPlan {
    let mut plan = RepairPlan::default();
    let mut healthy: Vec<u16> = Vec::new();
    for (index, sidecar) in sidecars.iter().enumerate() {
        let keep = match sidecar.port {
            Some(port) if backend.ports.contains(port) && !healthy.contains(&port) => is_attached(sidecar, backend),
            _ => false,
        };
        match (keep, sidecar.port) {
            (true, Some(port)) => healthy.push(port),
            _ => plan.remove.push(index),
        }
    }
    plan.start = backend.ports.iter().filter(|p| !healthy.contains(p)).collect();
    plan
}

fn is_attached(sidecar: &SidecarFacts, backend: &BackendFacts) -> bool {
    if sidecar.state != ContainerState::Running || sidecar.backend_id != backend.id {
        return false;
    }
    match (sidecar.started_at.as_deref(), backend.started_at.as_deref()) {
        (Some(sidecar), Some(backend)) => started_after(sidecar, backend),
        // The engine did not say: trust the running state rather than churn.
        _ => true,
    }
}

impl Backend {
    /// Makes the sidecars match the backend (see the module doc). Waits for any start or stop in
    /// progress, so it never works against one.
    pub async fn repair(&self) -> Result<Repairs> {
        let _lock = OperationLock::acquire(&self.names, self.engine.endpoint()).await?;
        match self.presence().await? {
            // Not ours: touch nothing, not even sidecars that name it.
            Presence::Foreign => Ok(Repairs::default()),
            Presence::Ours(backend) if backend.running => self.repair_sidecars(&backend).await,
            Presence::Absent | Presence::Ours(_) => {
                let removed = self.remove_sidecars().await?;
                Ok(Repairs { removed: removed.into_iter().map(|s| s.name).collect(), started: Vec::new() })
            }
        }
    }

    /// For a running backend, under the operation lock.
    pub(crate) async fn repair_sidecars(&self, backend: &OurContainer) -> Result<Repairs> {
        let sidecars = self.sidecars().await?;
        let mut facts = Vec::with_capacity(sidecars.len());
        for sidecar in &sidecars {
            facts.push(self.facts(sidecar, backend).await?);
        }
        let backend_facts = BackendFacts {
            id: backend.id.clone(),
            ports: backend.config.ports.clone(),
            started_at: backend.started_at.clone(),
        };
        let plan = plan(&facts, &backend_facts);
        let mut repairs = Repairs::default();
        for index in plan.remove {
            self.remove_container(&sidecars[index].id).await?;
            repairs.removed.push(sidecars[index].name.clone());
        }
        if plan.start.is_empty() {
            return Ok(repairs);
        }
        let image = relay_image::ensure(&self.docker, &crate::backend::progress::silent).await?;
        let ports = PortSet::from_ports(plan.start.iter().copied());
        let mut created = Created::new(&self.docker);
        let result =
            self.start_sidecars(backend, &ports, &image, &crate::backend::progress::silent, &mut created).await;
        created.settle(result).await?;
        repairs.started = plan.start;
        Ok(repairs)
    }

    /// The facts [`plan`] needs; only a running sidecar of this backend is inspected for its
    /// start time, as only there does it matter.
    async fn facts(&self, sidecar: &Sidecar, backend: &OurContainer) -> Result<SidecarFacts> {
        let mut facts = SidecarFacts::listed(sidecar);
        if sidecar.state != ContainerState::Running || sidecar.backend_id != backend.id {
            return Ok(facts);
        }
        match self.docker.inspect_container(&sidecar.id, None).await {
            Ok(inspect) => facts.started_at = inspect.state.and_then(|s| s.started_at),
            // Gone since the listing: it cannot be kept.
            Err(err) if is_not_found(&err) => facts.state = ContainerState::Missing,
            Err(err) => return Err(Error::docker(format!("inspecting sidecar {}", sidecar.name))(err)),
        }
        Ok(facts)
    }

    /// Creates and starts one sidecar per port in `backend`'s network namespace; each is recorded
    /// in `created` as soon as it exists.
    pub(crate) async fn start_sidecars(
        &self,
        backend: &OurContainer,
        ports: &PortSet,
        image: &str,
        report: Reporter<'_>,
        created: &mut Created,
    ) -> Result<()> {
        for port in ports.iter() {
            let name = self.names.proxy(port);
            let options = CreateContainerOptionsBuilder::default().name(&name).build();
            let body = spec::sidecar(&self.names, port, &backend.id, image);
            let response = self
                .docker
                .create_container(Some(options), body)
                .await
                .map_err(Error::docker(format!("creating sidecar {name}")))?;
            created.container(&response.id);
            self.docker
                .start_container(&response.id, None)
                .await
                .map_err(Error::docker(format!("starting sidecar {name}")))?;
            self.wait_relaying(&response.id, &name, port).await?;
            report(StartEvent::ProxyStarted { port, id: response.id });
        }
        Ok(())
    }

    /// Waits until the new sidecar says it relays: it listens in the backend's namespace and has
    /// entered the engine's. One that exits first (the engine refused its namespace) fails the
    /// start with what it printed.
    async fn wait_relaying(&self, id: &str, name: &str, port: u16) -> Result<()> {
        let options = LogsOptionsBuilder::default().follow(true).stdout(true).stderr(true).build();
        let mut logs = self.docker.logs(id, Some(options));
        let mut printed = String::new();
        let relaying = tokio::time::timeout(RELAY_READY, async {
            while let Some(Ok(chunk)) = logs.next().await {
                printed.push_str(&chunk.to_string());
                if printed.contains(RELAYING) {
                    return true;
                }
            }
            false
        })
        .await;
        match relaying {
            Ok(true) => Ok(()),
            _ => Err(Error::SidecarNotReady { name: name.to_string(), port, logs: printed.trim().to_string() }),
        }
    }

    /// Refuses before anything is created if a sidecar name is held by someone else; clears
    /// leftovers of ours.
    pub(crate) async fn check_sidecar_names(&self, ports: &PortSet) -> Result<()> {
        for sidecar in self.sidecars().await? {
            self.remove_container(&sidecar.id).await?;
        }
        for port in ports.iter() {
            let name = self.names.proxy(port);
            match self.docker.inspect_container(&name, None).await {
                Ok(_) => return Err(Error::ForeignContainer { name }),
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(Error::docker(format!("inspecting container {name}"))(err)),
            }
        }
        Ok(())
    }
}

impl Backend {
    /// Refuses, before anything is touched, a port whose sidecar name a container that is not ours
    /// holds; a leftover of ours is the repair's to clear.
    pub(crate) async fn check_new_sidecar_names(&self, ports: &PortSet) -> Result<()> {
        for port in ports.iter() {
            let name = self.names.proxy(port);
            match self.docker.inspect_container(&name, None).await {
                Ok(inspect)
                    if crate::backend::labels::is_ours(
                        inspect.config.as_ref().and_then(|c| c.labels.as_ref()),
                        &self.names,
                        crate::backend::labels::Role::Proxy,
                    ) => {}
                Ok(_) => return Err(Error::ForeignContainer { name }),
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(Error::docker(format!("inspecting container {name}"))(err)),
            }
        }
        Ok(())
    }
}

/// `a` is not earlier than `b`, both RFC 3339 times as the engine writes them (UTC, `Z`, up to nine
/// fraction digits with trailing zeros dropped, so plain string order would be wrong).
pub fn started_after(a: &str, b: &str) -> bool {
    match (sortable(a), sortable(b)) {
        (Some(a), Some(b)) => a >= b,
        _ => true,
    }
}

fn sortable(time: &str) -> Option<(String, String)> {
    let time = time.strip_suffix('Z')?;
    let (seconds, fraction) = time.split_once('.').unwrap_or((time, ""));
    if seconds.len() != 19 || !fraction.chars().all(|c| c.is_ascii_digit()) || fraction.len() > 9 {
        return None;
    }
    Some((seconds.to_string(), format!("{fraction:0<9}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKEND_START: &str = "2026-11-22T06:55:29.1Z";

    fn backend(ports: &[u16]) -> BackendFacts {
        BackendFacts {
            id: "b1".into(),
            ports: PortSet::from_ports(ports.iter().copied()),
            started_at: Some(BACKEND_START.into()),
        }
    }

    fn sidecar(port: u16, state: ContainerState, backend_id: &str, started_at: &str) -> SidecarFacts {
        SidecarFacts {
            name: format!("proxy-{port}"),
            port: Some(port),
            state,
            backend_id: backend_id.into(),
            started_at: Some(started_at.into()),
        }
    }

    const AFTER: &str = "2026-11-22T06:55:30Z";

    #[test]
    fn healthy_sidecars_are_left_alone() {
        let sidecars = [sidecar(5000, ContainerState::Running, "b1", AFTER)];
        assert_eq!(plan(&sidecars, &backend(&[5000])), RepairPlan { remove: vec![], start: vec![] });
    }

    #[test]
    fn a_missing_sidecar_is_started() {
        let sidecars = [sidecar(5000, ContainerState::Running, "b1", AFTER)];
        assert_eq!(plan(&sidecars, &backend(&[5000, 6000])), RepairPlan { remove: vec![], start: vec![6000] });
        assert_eq!(plan(&[], &backend(&[5000])), RepairPlan { remove: vec![], start: vec![5000] });
    }

    #[test]
    fn a_dead_or_exited_sidecar_is_replaced() {
        for state in [ContainerState::Dead, ContainerState::Exited, ContainerState::Created, ContainerState::Missing] {
            let sidecars = [sidecar(5000, state, "b1", AFTER)];
            assert_eq!(
                plan(&sidecars, &backend(&[5000])),
                RepairPlan { remove: vec![0], start: vec![5000] },
                "{state:?}"
            );
        }
    }

    #[test]
    fn a_duplicate_goes_and_the_first_healthy_one_stays() {
        let sidecars = [
            sidecar(5000, ContainerState::Exited, "b1", AFTER),
            sidecar(5000, ContainerState::Running, "b1", AFTER),
            sidecar(5000, ContainerState::Running, "b1", AFTER),
        ];
        assert_eq!(plan(&sidecars, &backend(&[5000])), RepairPlan { remove: vec![0, 2], start: vec![] });
    }

    #[test]
    fn a_sidecar_in_the_backends_old_namespace_is_replaced() {
        // Started before the backend's last start: it sits in the namespace the backend had then.
        let sidecars = [sidecar(5000, ContainerState::Running, "b1", "2026-11-22T06:55:29.05Z")];
        assert_eq!(plan(&sidecars, &backend(&[5000])), RepairPlan { remove: vec![0], start: vec![5000] });
    }

    #[test]
    fn sidecars_of_another_backend_or_of_unwanted_ports_go() {
        let mut unlabelled = sidecar(7000, ContainerState::Running, "b1", AFTER);
        unlabelled.port = None;
        let sidecars = [
            sidecar(5000, ContainerState::Running, "an-older-backend", AFTER),
            sidecar(6000, ContainerState::Running, "b1", AFTER),
            unlabelled,
        ];
        assert_eq!(plan(&sidecars, &backend(&[5000])), RepairPlan { remove: vec![0, 1, 2], start: vec![5000] });
    }

    #[test]
    fn unknown_start_times_do_not_churn() {
        let mut quiet = sidecar(5000, ContainerState::Running, "b1", AFTER);
        quiet.started_at = None;
        assert_eq!(plan(&[quiet], &backend(&[5000])), RepairPlan { remove: vec![], start: vec![] });
    }

    #[test]
    fn the_ready_line_is_the_one_the_relay_prints() {
        let relay = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../proxy/src/relay.rs"));
        assert!(relay.contains(r#"println!("assemble-proxy: relaying localhost:{} to {}""#), "{RELAYING}");
        assert!(RELAYING.starts_with("assemble-proxy: relaying localhost:"));
    }

    #[test]
    fn start_times_compare_by_value_not_by_text() {
        assert!(started_after("2026-11-22T06:55:29.15Z", "2026-11-22T06:55:29.1Z"));
        assert!(!started_after("2026-11-22T06:55:29.1Z", "2026-11-22T06:55:29.15Z"));
        assert!(started_after("2026-11-22T06:55:30Z", "2026-11-22T06:55:29.999999999Z"));
        assert!(started_after("2026-11-22T06:55:29.5Z", "2026-11-22T06:55:29.5Z"));
        assert!(!started_after("2026-11-22T06:55:29Z", "2026-11-22T06:55:29.000000001Z"));
        // Unreadable times never make us churn sidecars.
        assert!(started_after("yesterday", "2026-11-22T06:55:29Z"));
    }
}
