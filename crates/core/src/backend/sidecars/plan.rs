//! Which sidecar stays, decided with no I/O: from the facts about each sidecar and the running
//! backend, the sidecars to remove and the ports that need a new one. The repair (`mod.rs`)
//! carries the plan out, and the port states (`status.rs`) show each port by the same rule.
use crate::{
    backend::{sidecars::Sidecar, ContainerState},
    ports::PortSet,
    time,
};

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

/// `a` is not earlier than `b`, both RFC 3339 times as the engine writes them (read by
/// [`time::parse_rfc3339`]: the fraction's trailing zeros are dropped, so string order would be
/// wrong). A time that cannot be read does not decide: `true`.
pub fn started_after(a: &str, b: &str) -> bool {
    match (time::parse_rfc3339(a), time::parse_rfc3339(b)) {
        (Some(a), Some(b)) => a >= b,
        _ => true,
    }
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
