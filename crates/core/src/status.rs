//! The backend at a glance, for the tray and the windows: one state, what may be done in it, and
//! the details when it runs.
use serde::Serialize;

use crate::{
    backend::{Backend, Presence},
    engine::EngineView,
    error::Error,
    info::BackendInfo,
    settings::Settings,
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
    pub port: u16,
    pub sidecar: Option<String>,
    pub state: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub state: State,
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
        let proxied = ports.iter().filter(|p| p.state == "running").count();
        let status_line = match state {
            State::Running => format!("Backend: Running · {proxied} of {} port(s) proxied", ports.len()),
            other => format!("Backend: {}", other.label()),
        };
        Self {
            state,
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
                state: sidecar.map(|s| s.state.clone()).unwrap_or_else(|| "missing".into()),
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
                    let default_exists = self.docker.inspect_volume(&self.names.default_cache_volume()).await.is_ok();
                    let mut snapshot = Snapshot::new(State::Running, name, None, Some(info));
                    snapshot.differences = settings.differences(&container.config, &self.names, default_exists);
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
        assert_eq!(snapshot.during(State::Starting).status_line, "Backend: Starting…");
    }
}
