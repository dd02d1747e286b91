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

/// The backend's one state, as the tray and the windows show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Not running: no container, or a stopped one.
    Stopped,
    /// A start of ours is under way.
    Starting,
    /// Running, and BuildKit answers.
    Running,
    /// A stop of ours is under way.
    Stopping,
    /// Something is wrong: a foreign container holds the name, or the engine or BuildKit failed a request.
    Error,
    /// The engine cannot be found or reached.
    DockerUnavailable,
}

impl State {
    /// Whether Start is offered in this state.
    pub fn can_start(self) -> bool {
        matches!(self, State::Stopped | State::Error)
    }

    /// Whether Stop is offered in this state.
    pub fn can_stop(self) -> bool {
        matches!(self, State::Running | State::Error)
    }

    /// Whether Restart is offered in this state.
    pub fn can_restart(self) -> bool {
        self == State::Running
    }

    /// The state as the user reads it.
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

/// The backend at one moment, as the tray and the windows show it.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The state.
    pub state: State,
    /// The state as the user reads it ("Docker unavailable").
    pub state_label: &'static str,
    /// "1 of 2 port(s) proxied" while it runs.
    pub ports_line: Option<String>,
    /// A sentence for the user when something is wrong or noteworthy.
    pub message: Option<String>,
    /// The backend container's name.
    pub name: String,
    /// The running backend's details, when they were read.
    pub info: Option<BackendInfo>,
    /// Each host port and its sidecar's state, from `info`.
    pub ports: Vec<PortStatus>,
    /// Whether Start is offered.
    pub can_start: bool,
    /// Whether Stop is offered.
    pub can_stop: bool,
    /// Whether Restart is offered.
    pub can_restart: bool,
    /// The tray's status line ("Backend: Running · 1 of 2 port(s) proxied").
    pub status_line: String,
    /// How the settings differ from the running backend ("Apply now (restart)" when not empty).
    pub differences: Vec<String>,
    /// The engine this is about, when one was resolved.
    pub engine: Option<EngineView>,
    /// The engine as the tray names it ("Engine: desktop-linux").
    pub engine_line: String,
}

impl Snapshot {
    /// A snapshot in `state`; the ports, the lines and the actions follow from `state` and `info`.
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

    #[test]
    fn actions_follow_the_state() {
        assert!(State::Stopped.can_start() && !State::Stopped.can_stop() && !State::Stopped.can_restart());
        assert!(!State::Running.can_start() && State::Running.can_stop() && State::Running.can_restart());
        assert!(!State::Starting.can_start() && !State::Starting.can_stop());
        assert!(!State::DockerUnavailable.can_start() && !State::DockerUnavailable.can_stop());
        assert!(State::Error.can_start() && State::Error.can_stop());
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

    fn sidecar(port: u16, state: ContainerState, backend_id: &str) -> crate::backend::Sidecar {
        crate::backend::Sidecar {
            id: format!("s{port}"),
            name: format!("proxy-{port}"),
            port: Some(port),
            state,
            backend_id: backend_id.into(),
        }
    }

    #[test]
    fn a_port_is_proxied_only_by_a_running_sidecar_of_this_backend() {
        let info = BackendInfo {
            engine: EngineView { context: "default".into(), host: "unix:///var/run/docker.sock".into(), tls: false },
            id: "b1".into(),
            name: "b".into(),
            state: ContainerState::Running,
            started_at: None,
            image: "img".into(),
            image_digest: "img@sha256:0".into(),
            ports: crate::ports::PortSet::from_ports([5000, 6000, 7000, 8000]),
            cache_volume: None,
            security: crate::labels::SecurityMode::Capabilities,
            version: "0".into(),
            // 6000's sidecar belongs to an earlier backend; 7000's has exited; 8000 has none.
            sidecars: vec![
                sidecar(5000, ContainerState::Running, "b1"),
                sidecar(6000, ContainerState::Running, "b0"),
                sidecar(7000, ContainerState::Exited, "b1"),
            ],
            workers: vec![],
            cache: Default::default(),
            cache_by_type: Default::default(),
            cache_text: Default::default(),
            buildkit_version: None,
        };
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
