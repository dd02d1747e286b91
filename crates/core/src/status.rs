//! The backend at a glance, for the tray and the windows: one state, what may be done in it, and
//! the details when it runs.
use serde::Serialize;

use crate::{
    backend::{Backend, ContainerState, Presence},
    engine::EngineView,
    error::Error,
    info::BackendInfo,
    request::{self, Settings},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Stopped,
    Starting,
    Running,
    Stopping,
    Error,
    DockerUnavailable,
}

impl State {
    pub fn can_start(self) -> bool {
        matches!(self, State::Stopped | State::Error)
    }

    pub fn can_stop(self) -> bool {
        matches!(self, State::Running | State::Error)
    }

    pub fn can_restart(self) -> bool {
        self == State::Running
    }

    pub fn label(self) -> &'static str {
        match self {
            State::Stopped => "Stopped",
            State::Starting => "Starting…",
            State::Running => "Running",
            State::Stopping => "Stopping…",
            State::Error => "Error",
            State::DockerUnavailable => "Docker unavailable",
        }
    }
}

/// A host port and its sidecar's state (`missing` when the sidecar is gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortStatus {
    /// The host port.
    pub port: u16,
    /// The sidecar's container name, when there is one.
    pub sidecar: Option<String>,
    /// The sidecar's state.
    pub state: ContainerState,
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub state: State,
    /// The state as the user reads it ("Docker unavailable").
    pub state_label: &'static str,
    /// "1 of 2 port(s) proxied" while it runs.
    pub ports_line: Option<String>,
    /// A sentence for the user when something is wrong or noteworthy.
    pub message: Option<String>,
    pub name: String,
    pub info: Option<BackendInfo>,
    pub ports: Vec<PortStatus>,
    pub can_start: bool,
    pub can_stop: bool,
    pub can_restart: bool,
    pub status_line: String,
    /// How the settings differ from the running backend ("Apply now (restart)" when not empty).
    pub differences: Vec<String>,
    /// The engine this is about, when one was resolved.
    pub engine: Option<EngineView>,
    /// The engine as the tray names it ("Engine: desktop-linux").
    pub engine_line: String,
}

impl Snapshot {
    pub fn new(state: State, name: String, message: Option<String>, info: Option<BackendInfo>) -> Self {
        let ports = info.as_ref().map(port_statuses).unwrap_or_default();
        let proxied = ports.iter().filter(|p| p.state == ContainerState::Running).count();
        let ports_line = (state == State::Running).then(|| format!("{proxied} of {} port(s) proxied", ports.len()));
        let status_line = match &ports_line {
            Some(line) => format!("Backend: {} · {line}", state.label()),
            None => format!("Backend: {}", state.label()),
        };
        Self {
            state,
            state_label: state.label(),
            ports_line,
            message,
            name,
            info,
            ports,
            can_start: state.can_start(),
            can_stop: state.can_stop(),
            can_restart: state.can_restart(),
            status_line,
            differences: Vec::new(),
            engine: None,
            engine_line: engine_line(None),
        }
    }

    /// The same snapshot, about `engine`.
    pub fn on_engine(mut self, engine: Option<EngineView>) -> Self {
        self.engine_line = engine_line(engine.as_ref());
        self.engine = engine;
        self
    }

    /// The same snapshot during an operation of ours (start, stop, restart).
    pub fn during(mut self, state: State) -> Self {
        let name = std::mem::take(&mut self.name);
        let mut during = Snapshot::new(state, name, self.message.take(), self.info.take());
        during.differences = self.differences;
        during.on_engine(self.engine)
    }
}

/// "Engine: desktop-linux"; the context's name is what users switch between (`docker context use`).
fn engine_line(engine: Option<&EngineView>) -> String {
    match engine {
        Some(engine) if engine.context == crate::engine::DEFAULT_CONTEXT => {
            format!("Engine: default ({})", engine.host)
        }
        Some(engine) => format!("Engine: {}", engine.context),
        None => "Engine: not resolved".to_string(),
    }
}

fn port_statuses(info: &BackendInfo) -> Vec<PortStatus> {
    info.ports
        .iter()
        .map(|port| {
            let sidecar = info.sidecars.iter().find(|s| s.port == Some(port) && s.backend_id == info.id);
            PortStatus {
                port,
                sidecar: sidecar.map(|s| s.name.clone()),
                state: sidecar.map_or(ContainerState::Missing, |s| s.state),
            }
        })
        .collect()
}

impl Backend {
    /// Reads the state from the engine and BuildKit; never fails, the failure is the state.
    pub async fn snapshot(&self, settings: &Settings) -> Snapshot {
        let engine = Some(self.engine.endpoint().view());
        self.read_snapshot(settings).await.on_engine(engine)
    }

    async fn read_snapshot(&self, settings: &Settings) -> Snapshot {
        let name = self.names.backend();
        let presence = match self.presence().await {
            Ok(presence) => presence,
            Err(err) => return Snapshot::new(unavailable_or_error(&err), name, Some(err.to_string()), None),
        };
        match presence {
            Presence::Absent => Snapshot::new(State::Stopped, name, None, None),
            Presence::Foreign => {
                let err = Error::ForeignContainer { name: name.clone() };
                Snapshot::new(State::Error, name, Some(err.to_string()), None)
            }
            Presence::Ours(container) if !container.running => Snapshot::new(
                State::Stopped,
                name,
                Some(format!("The backend container is {} (it was stopped outside Assemble).", container.state)),
                None,
            ),
            Presence::Ours(container) => match self.info().await {
                Ok(info) => {
                    let mut snapshot = Snapshot::new(State::Running, name, None, Some(info));
                    match crate::cache::default_volume_exists(self, &settings.cache).await {
                        Ok(default_exists) => {
                            let wanted = settings.wanted(&self.names, default_exists);
                            snapshot.differences = request::differences(&wanted, &container.config)
                                .iter()
                                .map(|d| d.sentence("settings"))
                                .collect();
                        }
                        // Running, but what the settings would change is unknown: say so.
                        Err(err) => snapshot.message = Some(err.to_string()),
                    }
                    snapshot
                }
                Err(err) => Snapshot::new(State::Error, name, Some(err.to_string()), None),
            },
        }
    }
}

/// Snapshot of an engine that cannot be reached (or found), naming it when it is known.
pub fn unavailable(name: String, engine: Option<EngineView>, err: &Error) -> Snapshot {
    Snapshot::new(State::DockerUnavailable, name, Some(err.to_string()), None).on_engine(engine)
}

fn unavailable_or_error(err: &Error) -> State {
    if err.is_engine_unavailable() {
        State::DockerUnavailable
    } else {
        State::Error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{backend::Sidecar, labels::SecurityMode, ports::PortSet};

    const NAME: &str = "docker-assemble-backend-u";

    /// A snapshot's state and what the tray shows for it.
    fn shown(snapshot: &Snapshot) -> (State, &'static str, bool, bool, bool, &str) {
        (
            snapshot.state,
            snapshot.state_label,
            snapshot.can_start,
            snapshot.can_stop,
            snapshot.can_restart,
            snapshot.status_line.as_str(),
        )
    }

    #[test]
    fn each_state_has_its_label_actions_and_status_line() {
        // (state, label, can start, can stop, can restart, status line, JSON name), written out.
        let table = [
            (State::Stopped, "Stopped", true, false, false, "Backend: Stopped", "stopped"),
            (State::Starting, "Starting…", false, false, false, "Backend: Starting…", "starting"),
            (State::Running, "Running", false, true, true, "Backend: Running · 0 of 0 port(s) proxied", "running"),
            (State::Stopping, "Stopping…", false, false, false, "Backend: Stopping…", "stopping"),
            (State::Error, "Error", true, true, false, "Backend: Error", "error"),
            (
                State::DockerUnavailable,
                "Docker unavailable",
                false,
                false,
                false,
                "Backend: Docker unavailable",
                "docker-unavailable",
            ),
        ];
        for (state, label, start, stop, restart, line, json) in table {
            assert_eq!(
                (state.label(), state.can_start(), state.can_stop(), state.can_restart()),
                (label, start, stop, restart)
            );
            let snapshot = Snapshot::new(state, "b".into(), None, None);
            assert_eq!(shown(&snapshot), (state, label, start, stop, restart, line));
            assert_eq!(serde_json::to_value(&snapshot).unwrap()["state"], json, "{state:?}");
        }
    }

    #[test]
    fn engine_line_names_the_context() {
        let view = |context: &str, host: &str| EngineView { context: context.into(), host: host.into(), tls: false };
        let stopped = || Snapshot::new(State::Stopped, "b".into(), None, None);
        assert_eq!(stopped().engine_line, "Engine: not resolved");
        let desktop = stopped().on_engine(Some(view("desktop-linux", "unix:///home/u/.docker/desktop/docker.sock")));
        assert_eq!(desktop.engine_line, "Engine: desktop-linux");
        assert_eq!(desktop.during(State::Starting).engine_line, "Engine: desktop-linux", "kept during an operation");
        let default = stopped().on_engine(Some(view("default", "unix:///var/run/docker.sock")));
        assert_eq!(default.engine_line, "Engine: default (unix:///var/run/docker.sock)");
    }

    #[test]
    fn status_line_names_the_state() {
        let snapshot = Snapshot::new(State::Stopped, "b".into(), None, None);
        assert_eq!(snapshot.status_line, "Backend: Stopped");
        assert_eq!(snapshot.ports_line, None);
        let starting = snapshot.during(State::Starting);
        assert_eq!((starting.status_line.as_str(), starting.state_label), ("Backend: Starting…", "Starting…"));
    }

    fn sidecar(port: u16, state: ContainerState, backend_id: &str) -> Sidecar {
        Sidecar {
            id: format!("s{port}"),
            name: format!("proxy-{port}"),
            port: Some(port),
            state,
            backend_id: backend_id.into(),
        }
    }

    fn backend_info(ports: &[u16], sidecars: Vec<Sidecar>) -> BackendInfo {
        BackendInfo {
            engine: EngineView { context: "default".into(), host: "unix:///var/run/docker.sock".into(), tls: false },
            id: "b1".into(),
            name: NAME.into(),
            state: ContainerState::Running,
            started_at: None,
            image: "img".into(),
            image_digest: "img@sha256:0".into(),
            ports: PortSet::from_ports(ports.iter().copied()),
            cache_volume: None,
            security: SecurityMode::Capabilities,
            version: "0".into(),
            sidecars,
            workers: vec![],
            cache: Default::default(),
            cache_by_type: Default::default(),
            cache_text: Default::default(),
            buildkit_version: None,
        }
    }

    #[test]
    fn a_port_is_proxied_only_by_a_running_sidecar_of_this_backend() {
        // 6000's sidecar belongs to an earlier backend; 7000's has exited; 8000 has none.
        let info = backend_info(
            &[5000, 6000, 7000, 8000],
            vec![
                sidecar(5000, ContainerState::Running, "b1"),
                sidecar(6000, ContainerState::Running, "b0"),
                sidecar(7000, ContainerState::Exited, "b1"),
            ],
        );
        let snapshot = Snapshot::new(State::Running, "b".into(), None, Some(info));
        let states: Vec<_> = snapshot.ports.iter().map(|p| (p.port, p.state)).collect();
        assert_eq!(
            states,
            vec![
                (5000, ContainerState::Running),
                (6000, ContainerState::Missing),
                (7000, ContainerState::Exited),
                (8000, ContainerState::Missing)
            ]
        );
        assert_eq!(snapshot.ports_line.as_deref(), Some("1 of 4 port(s) proxied"));
        assert_eq!(snapshot.status_line, "Backend: Running · 1 of 4 port(s) proxied");
        let json = serde_json::to_value(&snapshot).unwrap();
        assert_eq!((json["state"].as_str(), json["ports"][2]["state"].as_str()), (Some("running"), Some("exited")));
    }
}
