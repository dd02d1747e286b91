//! One user's backend on one engine: what exists, what is ours, and how to find its parts.
pub mod builder;
pub mod cache;
pub mod image;
pub mod info;
pub mod labels;
pub mod lock;
pub mod privilege_memo;
pub mod progress;
pub mod request;
pub(crate) mod rollback;
pub mod sidecars;
pub mod spec;
pub mod start;
pub mod stop;

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
};

use bollard::{
    models::ContainerInspectResponse,
    query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder},
    Docker,
};

use crate::{
    backend::labels::{BackendLabels, Role},
    buildkit::BuildkitClient,
    engine::{is_not_found, Engine, EngineChoice},
    error::{Error, Result},
    names::Names,
};

/// The handle every operation goes through: an engine connection and a user's names.
#[derive(Clone)]
pub struct Backend {
    pub(crate) engine: Engine,
    pub(crate) docker: Docker,
    pub(crate) names: Names,
    /// The BuildKit channel kept open across calls, with the container it reaches: opening one
    /// (an exec of `buildctl dial-stdio`) costs more than the calls that use it.
    channel: Arc<Mutex<Option<(String, BuildkitClient)>>>,
}

/// A container's state, in the engine's words (`docker ps`' STATUS column); `missing` when there is
/// no container where one belongs (a port without its sidecar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerState {
    /// Made, never started.
    Created,
    /// Running.
    Running,
    /// Paused (`docker pause`).
    Paused,
    /// Between two runs under a restart policy.
    Restarting,
    /// Being removed.
    Removing,
    /// Stopped.
    Exited,
    /// The engine failed to stop or remove it.
    Dead,
    /// There is no such container.
    Missing,
    /// A state this version does not know.
    Unknown,
}

impl ContainerState {
    /// The engine's word for a state (`running`, `exited`, …).
    pub fn from_engine(word: &str) -> Self {
        match word {
            "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "removing" => Self::Removing,
            "exited" => Self::Exited,
            "dead" => Self::Dead,
            _ => Self::Unknown,
        }
    }

    /// The word the engine and `docker ps` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
            Self::Missing => "missing",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend container of ours, as the engine reports it.
#[derive(Debug, Clone)]
pub struct OurContainer {
    /// The container's ID.
    pub id: String,
    /// Its name, without the leading `/`.
    pub name: String,
    /// Its state, in the engine's words.
    pub state: ContainerState,
    /// The engine's `Running` flag.
    pub running: bool,
    /// When it last started (RFC 3339, as the engine writes it).
    pub started_at: Option<String>,
    /// The ID of the image it runs.
    pub image_id: String,
    /// What `start` decided, read back from its labels.
    pub config: BackendLabels,
}

/// What holds the backend's name on the engine.
#[derive(Debug, Clone)]
pub enum Presence {
    /// No container has the name.
    Absent,
    /// A container with our name that we did not create.
    Foreign,
    /// Our backend container.
    Ours(Box<OurContainer>),
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

impl Backend {
    /// `names`' backend on `engine`.
    pub fn new(engine: Engine, names: Names) -> Self {
        Self { docker: engine.docker().clone(), engine, names, channel: Arc::default() }
    }

    /// Connects to the engine `choice` resolves to, for the current user (see
    /// [`Names::for_current_user`]).
    pub async fn connect(choice: &EngineChoice) -> Result<Self> {
        Ok(Self::new(Engine::connect(choice).await?, Names::for_current_user()))
    }

    /// The names of this user's containers and volumes.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The bollard client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The engine this backend lives on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// What holds the backend's name. A container labelled ours whose other labels are damaged counts
    /// as foreign, rather than guess what start decided.
    pub async fn presence(&self) -> Result<Presence> {
        let name = self.names.backend();
        let inspect = match self.docker.inspect_container(&name, None).await {
            Ok(inspect) => inspect,
            Err(err) if is_not_found(&err) => return Ok(Presence::Absent),
            Err(err) => return Err(Error::docker(format!("inspecting container {name}"))(err)),
        };
        let mut presence = presence_of(&inspect, &self.names);
        if let Presence::Ours(backend) = &mut presence {
            // The ports proxied now are the record's (port_record.rs); the label has the first set.
            if let Some(live) = self.read_port_record(&backend.id).await? {
                backend.config.ports = live;
            }
        }
        Ok(presence)
    }

    /// The running backend, or the reason there is none.
    pub async fn running(&self) -> Result<OurContainer> {
        match self.presence().await? {
            Presence::Ours(container) if container.running => Ok(*container),
            Presence::Foreign => Err(Error::ForeignContainer { name: self.names.backend() }),
            _ => Err(Error::NotRunning),
        }
    }

    /// Runs `call` against the running backend's BuildKit, over the kept channel when it still
    /// reaches this container. A kept channel that broke (BuildKit restarted under it) is
    /// replaced by a new one, once; an answer from BuildKit, even a refusal, is final, so that a
    /// call with effects (a purge) never runs twice.
    pub async fn with_buildkit<T, F, Fut>(&self, container_id: &str, call: F) -> Result<T>
    where
        F: Fn(BuildkitClient) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let kept = self.kept_channel().filter(|(id, _)| id == container_id).map(|(_, client)| client);
        if let Some(client) = kept {
            match call(client).await {
                Err(err) if err.is_buildkit_transport() => self.keep_channel(None),
                other => return other,
            }
        }
        let client = BuildkitClient::connect(&self.docker, container_id).await?;
        let result = call(client.clone()).await;
        if result.is_ok() {
            self.keep_channel(Some((container_id.to_string(), client)));
        }
        result
    }

    fn kept_channel(&self) -> Option<(String, BuildkitClient)> {
        self.channel.lock().ok().and_then(|kept| kept.clone())
    }

    fn keep_channel(&self, channel: Option<(String, BuildkitClient)>) {
        if let Ok(mut kept) = self.channel.lock() {
            *kept = channel;
        }
    }

    /// Every sidecar of ours, running or not, sorted by port.
    pub async fn sidecars(&self) -> Result<Vec<Sidecar>> {
        let filters = HashMap::from([("label".to_string(), labels::filter(&self.names, Role::Proxy))]);
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(Error::docker("listing the sidecar containers"))?;
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

    /// Names of every volume on the engine, for choosing a cache volume.
    pub async fn volume_names(&self) -> Result<Vec<String>> {
        let list = self
            .docker
            .list_volumes(None::<bollard::query_parameters::ListVolumesOptions>)
            .await
            .map_err(Error::docker("listing volumes"))?;
        let mut names: Vec<String> = list.volumes.unwrap_or_default().into_iter().map(|v| v.name).collect();
        names.sort();
        Ok(names)
    }

    /// Force-removes a container we own, with its anonymous volumes (never named ones).
    pub(crate) async fn remove_container(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // Already gone (another client, or removal in progress): the goal is reached.
            Err(err) if is_not_found(&err) || crate::engine::is_conflict(&err) => Ok(()),
            Err(err) => Err(Error::docker(format!("removing container {id}"))(err)),
        }
    }

    /// Removes every sidecar of ours (of any backend of this user).
    pub(crate) async fn remove_sidecars(&self) -> Result<Vec<Sidecar>> {
        let sidecars = self.sidecars().await?;
        for sidecar in &sidecars {
            self.remove_container(&sidecar.id).await?;
        }
        Ok(sidecars)
    }
}

/// What the container that holds `names`' backend name is to us.
fn presence_of(inspect: &ContainerInspectResponse, names: &Names) -> Presence {
    let container_labels = inspect.config.as_ref().and_then(|c| c.labels.as_ref());
    if !labels::is_ours(container_labels, names, Role::Backend) {
        return Presence::Foreign;
    }
    match our_container(inspect) {
        Some(container) => Presence::Ours(Box::new(container)),
        // Ours by owner and role, but the rest of the record is damaged: treat it as foreign
        // rather than guess what start decided.
        None => Presence::Foreign,
    }
}

fn our_container(inspect: &ContainerInspectResponse) -> Option<OurContainer> {
    let config = labels::read_backend(inspect.config.as_ref()?.labels.as_ref()?)?;
    let state = inspect.state.as_ref();
    Some(OurContainer {
        id: inspect.id.clone()?,
        name: inspect.name.clone().unwrap_or_default().trim_start_matches('/').to_string(),
        state: state
            .and_then(|s| s.status)
            .map_or(ContainerState::Unknown, |s| ContainerState::from_engine(s.as_ref())),
        running: state.and_then(|s| s.running).unwrap_or(false),
        started_at: state.and_then(|s| s.started_at.clone()),
        image_id: inspect.image.clone().unwrap_or_default(),
        config,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{backend::labels::SecurityMode, ports::PortSet};

    /// An inspect response as the engine sends it, for a container labelled `labels`.
    fn inspect(state: serde_json::Value, labels: serde_json::Value) -> ContainerInspectResponse {
        serde_json::from_value(json!({
            "Id": "b1",
            "Name": "/docker-assemble-backend-u",
            "Image": "sha256:1",
            "State": state,
            "Config": { "Labels": labels },
            "NetworkSettings": { "Networks": { "bridge": { "Gateway": "172.17.0.1" } } },
        }))
        .unwrap()
    }

    fn our_labels() -> serde_json::Value {
        json!({
            "com.docker.assemble.backend.owner": "u",
            "com.docker.assemble.backend.role": "backend",
            "com.docker.assemble.backend.version": "0.1.0",
            "com.docker.assemble.backend.ports": "5000,6000",
            "com.docker.assemble.backend.cache-volume": "",
            "com.docker.assemble.backend.image": "moby/buildkit:v0.25.1",
            "com.docker.assemble.backend.security": "capabilities",
        })
    }

    fn presence(state: serde_json::Value, labels: serde_json::Value) -> Presence {
        presence_of(&inspect(state, labels), &Names::for_user("u"))
    }

    /// The container, when the inspect response reads as ours.
    fn ours(state: serde_json::Value) -> OurContainer {
        match presence(state, our_labels()) {
            Presence::Ours(container) => *container,
            other => panic!("expected ours, got {other:?}"),
        }
    }

    #[test]
    fn a_running_container_of_ours_reads_back_with_what_start_decided() {
        let container = ours(json!({ "Status": "running", "Running": true, "StartedAt": "2025-01-02T03:04:05Z" }));
        assert_eq!(
            (container.id.as_str(), container.name.as_str(), container.image_id.as_str()),
            ("b1", "docker-assemble-backend-u", "sha256:1")
        );
        assert_eq!((container.state, container.running), (ContainerState::Running, true));
        assert_eq!(container.started_at.as_deref(), Some("2025-01-02T03:04:05Z"));
        assert_eq!(
            container.config,
            BackendLabels {
                ports: PortSet::from_ports([5000, 6000]),
                cache_volume: None,
                image: "moby/buildkit:v0.25.1".into(),
                version: "0.1.0".into(),
                security: SecurityMode::Capabilities,
                cache_limit: None,
            }
        );
    }

    #[test]
    fn a_stopped_container_of_ours_is_not_running_and_keeps_the_engines_word() {
        let exited = ours(json!({ "Status": "exited", "Running": false, "ExitCode": 1 }));
        assert_eq!((exited.state, exited.running), (ContainerState::Exited, false));
        let dead = ours(json!({ "Status": "dead", "Running": false, "Dead": true }));
        assert_eq!((dead.state, dead.running), (ContainerState::Dead, false));
        let created = ours(json!({ "Status": "created", "Running": false }));
        assert_eq!((created.state, created.running), (ContainerState::Created, false));
        let silent = ours(json!({}));
        assert_eq!((silent.state, silent.running), (ContainerState::Unknown, false), "no state: unknown, not running");
    }

    #[test]
    fn a_container_without_our_owner_and_role_is_foreign() {
        let running = json!({ "Status": "running", "Running": true });
        let mut other_user = our_labels();
        other_user["com.docker.assemble.backend.owner"] = json!("someone-else");
        let mut sidecar = our_labels();
        sidecar["com.docker.assemble.backend.role"] = json!("proxy");
        for labels in [json!({}), json!(null), other_user, sidecar] {
            assert!(matches!(presence(running.clone(), labels.clone()), Presence::Foreign), "{labels}");
        }
    }

    #[test]
    fn a_container_of_ours_with_damaged_labels_is_treated_as_foreign() {
        let running = json!({ "Status": "running", "Running": true });
        let mut no_image = our_labels();
        no_image.as_object_mut().unwrap().remove("com.docker.assemble.backend.image");
        let mut bad_ports = our_labels();
        bad_ports["com.docker.assemble.backend.ports"] = json!("5000,x");
        for labels in [no_image, bad_ports] {
            assert!(matches!(presence(running.clone(), labels.clone()), Presence::Foreign), "{labels}");
        }
    }
}
