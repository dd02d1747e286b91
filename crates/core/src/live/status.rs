//! The backend at a glance, for the tray and the windows: one state, what may be done in it, and
//! the details when it runs. Its messages are worded for the app ([`Place::App`]).
use std::ops::ControlFlow;

use serde::Serialize;

use crate::{
    backend::{
        cache,
        error::BackendError,
        info::BackendInfo,
        request::{self, Settings},
        sidecars::status::{port_statuses, PortStatus},
        Backend, ContainerState, OurContainer, Presence,
    },
    engine::EngineView,
    error::Place,
    time::UptimeWhenSent,
    Error, Result,
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

/// The backend at one moment, as the tray and the windows show it.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The state.
    pub state: State,
    /// The state as the user reads it ("Docker unavailable").
    pub state_label: &'static str,
    /// The buildx builder, while the backend runs and once the app registered it.
    pub builder: Option<crate::backend::builder::BuilderView>,
    /// How the running backend was granted its powers, and why, as the panel says it.
    pub security_label: Option<String>,
    /// Whether builds take the engine's own images, in a sentence ("used: …", "off …").
    pub local_images_label: Option<String>,
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
    /// How the settings differ from the running backend ("Apply now" when not empty).
    pub differences: Vec<String>,
    /// Applying them needs a restart: something other than the ports differs (ports apply live).
    pub apply_restarts: bool,
    /// The apply button's words: "Apply now", or "Apply now (restart)".
    pub apply_label: &'static str,
    /// The engine this is about, when one was resolved.
    pub engine: Option<EngineView>,
    /// The engine as the tray names it ("Engine: desktop-linux").
    pub engine_line: String,
    /// How long the backend has run ("3h 12m"), worded as the snapshot is sent; the panel asks
    /// for it again (the `uptime` command) when the words change.
    pub uptime: UptimeWhenSent,
}

impl Snapshot {
    /// A snapshot in `state`; the ports, the lines and the actions follow from `state` and `info`.
    pub fn new(state: State, name: String, message: Option<String>, info: Option<BackendInfo>) -> Self {
        let ports = info.as_ref().map(port_statuses_of).unwrap_or_default();
        let proxied = ports.iter().filter(|p| p.state == ContainerState::Running).count();
        let ports_line = (state == State::Running).then(|| format!("{proxied} of {} port(s) proxied", ports.len()));
        let status_line = match &ports_line {
            Some(line) => format!("Backend: {} · {line}", state.label()),
            None => format!("Backend: {}", state.label()),
        };
        Self {
            state,
            state_label: state.label(),
            security_label: info.as_ref().map(|i| i.security_text.clone()),
            local_images_label: info.as_ref().map(|i| i.local_images_text.clone()),
            builder: None,
            ports_line,
            message,
            name,
            ports,
            can_start: state.can_start(),
            can_stop: state.can_stop(),
            can_restart: state.can_restart(),
            status_line,
            differences: Vec::new(),
            apply_restarts: false,
            apply_label: apply_label(false),
            engine: None,
            engine_line: engine_line(None),
            uptime: UptimeWhenSent::since(info.as_ref().and_then(|i| i.started_at.as_deref())),
            info,
        }
    }

    /// The same snapshot, about `engine`.
    pub fn on_engine(mut self, engine: Option<EngineView>) -> Self {
        self.engine_line = engine_line(engine.as_ref());
        self.engine = engine;
        self
    }

    /// The snapshot with what was done about the buildx builder; shown only while it runs.
    pub fn with_builder(mut self, registration: Option<&crate::backend::builder::BuilderRegistration>) -> Self {
        self.builder = registration.filter(|_| self.state == State::Running).map(|r| r.view());
        self
    }

    /// The same snapshot during an operation of ours (start, stop, restart).
    pub fn during(mut self, state: State) -> Self {
        let name = std::mem::take(&mut self.name);
        let mut during = Snapshot::new(state, name, self.message.take(), self.info.take());
        during.differences = self.differences;
        during.apply_restarts = self.apply_restarts;
        during.apply_label = self.apply_label;
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

/// Each port of a running backend and its sidecar's state, by the repair's own rule (see
/// [`port_statuses`]).
fn port_statuses_of(info: &BackendInfo) -> Vec<PortStatus> {
    port_statuses(&info.id, &info.ports, &info.sidecars)
}

/// Reads the state of `backend` from the engine and BuildKit; never fails, the failure is the
/// state. `settings` are compared with the running backend (what "Apply now" would change).
pub async fn snapshot(backend: &Backend, settings: &Settings) -> Snapshot {
    let engine = Some(backend.engine().endpoint().view());
    read_snapshot(backend, settings).await.on_engine(engine)
}

async fn read_snapshot(backend: &Backend, settings: &Settings) -> Snapshot {
    let name = backend.names().backend();
    let container = match from_presence(name.clone(), backend.presence().await) {
        ControlFlow::Break(snapshot) => return snapshot,
        ControlFlow::Continue(container) => container,
    };
    let mut snapshot = from_info(name.clone(), backend.info().await);
    if snapshot.state == State::Error {
        // BuildKit failed: the backend may have stopped between the two readings (`docker
        // stop`), and then the engine's newer answer is the truth, not a passing error.
        if let ControlFlow::Break(now) = from_presence(name, backend.presence().await) {
            return now;
        }
    }
    if snapshot.state != State::Running {
        return snapshot;
    }
    match cache::default_volume_exists(backend, &settings.cache).await {
        Ok(default_exists) => {
            let wanted = settings.wanted(backend.names(), default_exists);
            let differences = request::differences(&wanted, &container.config);
            snapshot.apply_restarts = request::needs_restart(&differences);
            snapshot.apply_label = apply_label(snapshot.apply_restarts);
            snapshot.differences = differences.iter().map(|d| d.sentence("settings")).collect();
        }
        // Running, but what the settings would change is unknown: say so.
        Err(err) => snapshot.message = Some(err.sentence(Place::App)),
    }
    snapshot
}

/// The apply button's words.
fn apply_label(restarts: bool) -> &'static str {
    if restarts {
        "Apply now (restart)"
    } else {
        "Apply now"
    }
}

/// What the engine's answer about the backend's name decides on its own: the snapshot, or (to
/// `Continue`) our running container, which BuildKit must describe.
fn from_presence(name: String, presence: Result<Presence>) -> ControlFlow<Snapshot, Box<OurContainer>> {
    let presence = match presence {
        Ok(presence) => presence,
        Err(err) => {
            return ControlFlow::Break(Snapshot::new(
                unavailable_or_error(&err),
                name,
                Some(err.sentence(Place::App)),
                None,
            ))
        }
    };
    ControlFlow::Break(match presence {
        Presence::Absent => Snapshot::new(State::Stopped, name, None, None),
        Presence::Foreign => {
            let err = BackendError::ForeignContainer { name: name.clone() };
            Snapshot::new(State::Error, name, Some(err.sentence(Place::App)), None)
        }
        Presence::Ours(container) if !container.running => Snapshot::new(
            State::Stopped,
            name,
            Some(format!("The backend container is {} (it was stopped outside Assemble).", container.state)),
            None,
        ),
        Presence::Ours(container) => return ControlFlow::Continue(container),
    })
}

/// A running backend as BuildKit describes it, or the error when it cannot.
fn from_info(name: String, info: Result<BackendInfo>) -> Snapshot {
    match info {
        Ok(info) => Snapshot::new(State::Running, name, None, Some(info)),
        Err(err) => Snapshot::new(State::Error, name, Some(err.sentence(Place::App)), None),
    }
}

/// Snapshot of an engine that cannot be reached (or found), naming it when it is known.
pub fn unavailable(name: String, engine: Option<EngineView>, err: &Error) -> Snapshot {
    Snapshot::new(State::DockerUnavailable, name, Some(err.sentence(Place::App)), None).on_engine(engine)
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
    use crate::buildkit::error::BuildkitError;
    use crate::engine::error::{EngineError, Unreachable};
    use crate::{
        backend::labels::{BackendLabels, SecurityMode},
        backend::sidecars::Sidecar,
        ports::PortSet,
    };

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
            cache_limit: None,
            network_host: false,
            network_host_text: String::new(),
            cache_limit_text: "BuildKit's default".into(),
            security: SecurityMode::Capabilities,
            security_reason: None,
            security_text: "capabilities".into(),
            local_images: crate::backend::mirror::LocalImages::Off { reason: None },
            local_images_text: "off".into(),
            mirror: vec![],
            unrelayed_ports: vec![],
            port_notices: vec![],
            version: "0".into(),
            sidecars,
            workers: vec![],
            platforms: Default::default(),
            platform_choices: vec![],
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

    /// Our backend container as `presence` reports it, in the engine's `state`.
    fn ours(state: ContainerState, running: bool) -> Presence {
        Presence::Ours(Box::new(OurContainer {
            id: "b1".into(),
            name: NAME.into(),
            state,
            running,
            started_at: None,
            image_id: "sha256:1".into(),
            config: BackendLabels {
                ports: PortSet::from_ports([5000]),
                cache_volume: None,
                image: "img".into(),
                version: "0".into(),
                security: SecurityMode::Privileged,
                security_reason: None,
                cache_limit: None,
                network_host: false,
                local_images: crate::backend::mirror::LocalImages::Off { reason: None },
            },
            unrelayed: PortSet::none(),
        }))
    }

    /// The snapshot the engine's answer decides on its own.
    fn settled(presence: Result<Presence>) -> Snapshot {
        match from_presence(NAME.into(), presence) {
            ControlFlow::Break(snapshot) => snapshot,
            ControlFlow::Continue(container) => panic!("BuildKit should be asked about {container:?}"),
        }
    }

    #[test]
    fn no_container_is_stopped_without_a_word() {
        let snapshot = settled(Ok(Presence::Absent));
        assert_eq!(shown(&snapshot), (State::Stopped, "Stopped", true, false, false, "Backend: Stopped"));
        assert_eq!((snapshot.message, snapshot.name.as_str(), snapshot.ports_line), (None, NAME, None));
    }

    #[test]
    fn a_container_stopped_outside_assemble_is_stopped_and_named_so() {
        let cases = [
            (ContainerState::Exited, "The backend container is exited (it was stopped outside Assemble)."),
            (ContainerState::Dead, "The backend container is dead (it was stopped outside Assemble)."),
        ];
        for (state, message) in cases {
            let snapshot = settled(Ok(ours(state, false)));
            assert_eq!(shown(&snapshot), (State::Stopped, "Stopped", true, false, false, "Backend: Stopped"));
            assert_eq!(snapshot.message.as_deref(), Some(message));
            assert!(snapshot.info.is_none() && snapshot.ports.is_empty(), "{state:?}");
        }
    }

    #[test]
    fn a_running_container_is_described_by_buildkit() {
        let ControlFlow::Continue(container) = from_presence(NAME.into(), Ok(ours(ContainerState::Running, true)))
        else {
            panic!("a running backend of ours needs BuildKit's answer");
        };
        assert_eq!((container.id.as_str(), container.state), ("b1", ContainerState::Running));

        let info = backend_info(&[5000, 6000], vec![sidecar(5000, ContainerState::Running, "b1")]);
        let snapshot = from_info(NAME.into(), Ok(info));
        assert_eq!(
            shown(&snapshot),
            (State::Running, "Running", false, true, true, "Backend: Running · 1 of 2 port(s) proxied")
        );
        assert_eq!(snapshot.message, None);
        assert_eq!(snapshot.info.as_ref().map(|i| i.id.as_str()), Some("b1"));
    }

    #[test]
    fn a_running_container_whose_buildkit_does_not_answer_is_an_error() {
        let snapshot =
            from_info(NAME.into(), Err(BuildkitError::Unreachable("connection reset by peer".into()).into()));
        assert_eq!(shown(&snapshot), (State::Error, "Error", true, true, false, "Backend: Error"));
        assert_eq!(
            snapshot.message.as_deref(),
            Some("the backend is running but BuildKit does not answer: connection reset by peer")
        );
        assert!(snapshot.info.is_none());
    }

    #[test]
    fn a_foreign_container_with_our_name_is_an_error_that_says_what_to_do() {
        let snapshot = settled(Ok(Presence::Foreign));
        assert_eq!(shown(&snapshot), (State::Error, "Error", true, true, false, "Backend: Error"));
        assert_eq!(
            snapshot.message.as_deref(),
            Some(
                "a container named \"docker-assemble-backend-u\" exists but was not created by Assemble Backend, \
                 so it is left alone; remove or rename it yourself (docker rm -f docker-assemble-backend-u) and \
                 try again"
            )
        );
    }

    #[test]
    fn an_engine_that_cannot_be_reached_is_docker_unavailable() {
        let unreachable = EngineError::Unreachable {
            host: "unix:///var/run/docker.sock".into(),
            context: "the default context".into(),
            reason: Unreachable::NothingListens { elsewhere: vec![] },
        };
        let snapshot = settled(Err(unreachable.into()));
        let unavailable =
            (State::DockerUnavailable, "Docker unavailable", false, false, false, "Backend: Docker unavailable");
        assert_eq!(shown(&snapshot), unavailable);
        assert_eq!(
            snapshot.message.as_deref(),
            Some(
                "Cannot reach the Docker Engine at unix:///var/run/docker.sock (the default context): nothing is \
                 listening there. Start Docker (for example `sudo systemctl start docker`, or open Docker Desktop), \
                 or choose another engine (in Settings, or with `docker context use`), then try again."
            )
        );

        let no_socket = Error::Docker {
            action: "inspecting container docker-assemble-backend-u".into(),
            source: bollard::errors::Error::SocketNotFoundError("/var/run/docker.sock".into()),
        };
        let snapshot = settled(Err(no_socket));
        assert_eq!(shown(&snapshot), unavailable);
        assert_eq!(
            snapshot.message.as_deref(),
            Some("inspecting container docker-assemble-backend-u: Socket not found: /var/run/docker.sock")
        );
    }

    #[test]
    fn an_engine_that_answers_with_a_failure_is_an_error() {
        let refused = Error::Docker {
            action: "inspecting container docker-assemble-backend-u".into(),
            source: bollard::errors::Error::DockerResponseServerError { status_code: 500, message: "boom".into() },
        };
        let snapshot = settled(Err(refused));
        assert_eq!(shown(&snapshot), (State::Error, "Error", true, true, false, "Backend: Error"));
        assert_eq!(
            snapshot.message.as_deref(),
            Some("inspecting container docker-assemble-backend-u: Docker responded with status code 500: boom")
        );
    }

    #[test]
    fn an_unresolved_engine_is_docker_unavailable_on_that_engine() {
        let engine = EngineView { context: "desktop-linux".into(), host: "unix:///home/u/d.sock".into(), tls: false };
        let err = EngineError::UnknownContext { name: "gone".into(), known: vec!["default".into()] }.into();
        let snapshot = unavailable(NAME.into(), Some(engine), &err);
        assert_eq!(
            shown(&snapshot),
            (State::DockerUnavailable, "Docker unavailable", false, false, false, "Backend: Docker unavailable")
        );
        assert_eq!(snapshot.engine_line, "Engine: desktop-linux");
        assert!(snapshot.message.as_deref().unwrap().starts_with("there is no docker context named \"gone\""));
    }

    #[test]
    fn during_an_operation_nothing_more_can_be_started_or_stopped() {
        let stopped = settled(Ok(ours(ContainerState::Exited, false)));
        let starting = stopped.during(State::Starting);
        assert_eq!(shown(&starting), (State::Starting, "Starting…", false, false, false, "Backend: Starting…"));
        assert_eq!(starting.name, NAME);
        assert_eq!(
            starting.message.as_deref(),
            Some("The backend container is exited (it was stopped outside Assemble)."),
            "the message is kept"
        );

        let engine = EngineView { context: "desktop-linux".into(), host: "unix:///home/u/d.sock".into(), tls: false };
        let info = backend_info(&[5000, 6000], vec![sidecar(5000, ContainerState::Running, "b1")]);
        let mut running = from_info(NAME.into(), Ok(info)).on_engine(Some(engine));
        running.differences = vec!["host ports: running 5000,6000, settings 5000".into()];
        let stopping = running.during(State::Stopping);
        assert_eq!(shown(&stopping), (State::Stopping, "Stopping…", false, false, false, "Backend: Stopping…"));
        assert_eq!(stopping.ports_line, None, "ports are counted only while it runs");
        let ports: Vec<_> = stopping.ports.iter().map(|p| (p.port, p.state)).collect();
        assert_eq!(ports, vec![(5000, ContainerState::Running), (6000, ContainerState::Missing)]);
        assert_eq!(stopping.differences, vec!["host ports: running 5000,6000, settings 5000"]);
        assert_eq!(stopping.engine_line, "Engine: desktop-linux");
        assert_eq!(stopping.info.as_ref().map(|i| i.id.as_str()), Some("b1"));

        let error = settled(Ok(Presence::Foreign)).during(State::Stopping);
        assert_eq!(shown(&error), (State::Stopping, "Stopping…", false, false, false, "Backend: Stopping…"));
        assert!(error.message.as_deref().unwrap().contains("was not created by Assemble Backend"));
    }
}
