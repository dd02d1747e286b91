//! Each proxied port and its sidecar's state, as `ports`, the panel and the tray show them.
use serde::Serialize;

use crate::{
    backend::{
        sidecars::{
            self,
            plan::{plan, BackendFacts, SidecarFacts},
            Sidecar,
        },
        Backend, ContainerState,
    },
    ports::PortSet,
    Result,
};

/// A host port and its sidecar's state (`missing` when the sidecar is gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortStatus {
    /// The host port.
    pub port: u16,
    /// The sidecar's container name, when there is one.
    pub sidecar: Option<String>,
    /// The sidecar's state.
    pub state: ContainerState,
    /// Set for a port that is not relayed on purpose: why ("port 7777 is named only inside the
    /// backend; not relayed").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Which sidecar serves each port of backend `backend_id`, which proxies `ports`, among our
/// `sidecars`: by the repair's own rule ([`plan`]). Start times are not read here, so a sidecar
/// left in an old namespace shows as running until the repair, which reads them, replaces it
/// (within about a second while the app runs).
pub fn port_statuses(backend_id: &str, ports: &PortSet, sidecars: &[Sidecar]) -> Vec<PortStatus> {
    let facts: Vec<SidecarFacts> = sidecars.iter().map(SidecarFacts::listed).collect();
    let backend = BackendFacts { id: backend_id.to_string(), ports: ports.clone(), started_at: None };
    let plan = plan(&facts, &backend);
    let serving =
        |port: u16| sidecars.iter().enumerate().find(|(index, s)| s.port == Some(port) && !plan.remove.contains(index));
    ports
        .iter()
        .map(|port| {
            // Else the one that should serve it, in whatever state it is in.
            let sidecar = serving(port)
                .map(|(_, s)| s)
                .or_else(|| sidecars.iter().find(|s| s.port == Some(port) && s.backend_id == backend_id));
            PortStatus {
                port,
                sidecar: sidecar.map(|s| s.name.clone()),
                state: sidecar.map_or(ContainerState::Missing, |s| s.state),
                note: None,
            }
        })
        .collect()
}

/// The ports the running backend proxies now, each with its sidecar's state; then the ports only
/// the backend's own record names, which are not relayed, each with why.
pub(in crate::backend) async fn read(backend: &Backend) -> Result<Vec<PortStatus>> {
    let container = backend.running().await?;
    let sidecars = sidecars::list(backend).await?;
    let mut statuses = port_statuses(&container.id, &container.config.ports, &sidecars);
    let notices = sidecars::record::unrelayed_notices(&container.unrelayed);
    statuses.extend(container.unrelayed.iter().zip(notices).map(|(port, note)| PortStatus {
        port,
        sidecar: None,
        state: ContainerState::Missing,
        note: Some(note),
    }));
    Ok(statuses)
}
