//! The backend: `buildkitd` in a container of ours on the user's engine, with its sidecars and
//! its cache, from start to stop. [`Backend`] is the one handle for it, and the `impl Backend`
//! block in this file is its whole API: each method says what it does and hands the work to the
//! module that does it (`start`, `stop`, `apply`, `info`, `sidecars`, …). Nothing else adds
//! methods to it; the other folders (`buildkit`, `logs`, `live`, `build`) keep free functions and
//! types of their own, and the arrows point from here to `engine`, `buildkit` and `logs`, never
//! back.
mod apply;
pub mod builder;
pub mod cache;
mod channel;
pub mod error;
pub mod image;
pub mod info;
pub mod labels;
pub mod lock;
pub mod mirror;
mod platforms;
mod presence;
pub mod privilege_memo;
pub mod progress;
mod readiness;
pub mod request;
pub(crate) mod rollback;
pub mod security;
pub mod sidecars;
pub mod spec;
pub mod start;
pub mod stop;

use std::{
    future::Future,
    sync::{Arc, Mutex},
};

use bollard::{query_parameters::RemoveContainerOptionsBuilder, Docker};
use futures_util::Stream;

use crate::buildkit::{
    history::{self, Build},
    platform::Platforms,
    progress::{StatusResponse, Step},
    prune::CacheFilter,
    BuildkitClient, CacheRecord,
};
use crate::{
    backend::error::BackendError,
    engine::{is_conflict, is_not_found, Engine, EngineChoice},
    logs::{
        self,
        stream::{LogChunk, LogOptions},
    },
    names::Names,
    Error, Result,
};
use info::BackendInfo;
use labels::BackendLabels;
use progress::Reporter;
use request::StartRequest;
use sidecars::{
    record::{PortChange, PortEdit},
    status::PortStatus,
    Repairs, Sidecar,
};
use start::StartOutcome;
use stop::StopOutcome;

/// The handle every operation goes through: an engine connection and a user's names.
#[derive(Clone)]
pub struct Backend {
    engine: Engine,
    docker: Docker,
    names: Names,
    /// The BuildKit channel kept open across calls, with the container it reaches (channel.rs).
    channel: Arc<Mutex<Option<(String, BuildkitClient)>>>,
    /// The emulators found in a container's image, with the container (platforms.rs).
    emulators: Arc<Mutex<Option<KeptEmulators>>>,
}

/// A container's ID and the file names of the emulators in its image.
type KeptEmulators = (String, Vec<String>);

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
    /// What `start` decided, read back from its labels; its ports are the live set.
    pub config: BackendLabels,
    /// Ports only the backend's own port record names: never relayed (sidecars/record.rs).
    pub unrelayed: crate::ports::PortSet,
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

impl Backend {
    // ---- the handle ----

    /// `names`' backend on `engine`.
    pub fn new(engine: Engine, names: Names) -> Self {
        Self { docker: engine.docker().clone(), engine, names, channel: Arc::default(), emulators: Arc::default() }
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

    // ---- what is there ----

    /// What holds the backend's name. A container labelled ours whose other labels are damaged
    /// counts as foreign, rather than guess what start decided.
    pub async fn presence(&self) -> Result<Presence> {
        presence::read(self).await
    }

    /// The running backend, or the reason there is none.
    pub async fn running(&self) -> Result<OurContainer> {
        presence::running(self).await
    }

    /// Every sidecar of ours, running or not, sorted by port.
    pub async fn sidecars(&self) -> Result<Vec<Sidecar>> {
        sidecars::list(self).await
    }

    /// The ports the running backend proxies now, each with its sidecar's state (`ports`).
    pub async fn port_statuses(&self) -> Result<Vec<PortStatus>> {
        sidecars::status::read(self).await
    }

    /// Names of every volume on the engine, for choosing a cache volume.
    pub async fn volume_names(&self) -> Result<Vec<String>> {
        cache::volume_names(self).await
    }

    // ---- the lifecycle ----

    /// Starts the backend as `request` says, or finds it running: idempotent, single-flight and
    /// all-or-nothing (see [`start`]).
    pub async fn start(&self, request: &StartRequest, report: Reporter<'_>) -> Result<StartOutcome> {
        self.start_until(request, report, std::future::pending()).await
    }

    /// [`Backend::start`], abandoned when `cancel` completes (Ctrl-C, Quit): what was created
    /// so far is removed and [`BackendError::Cancelled`] returned. The cancel is heard between steps and
    /// during the waits (pulls, BuildKit's readiness), never inside an engine call that creates
    /// something, so everything created is also recorded and removed.
    pub async fn start_until(
        &self,
        request: &StartRequest,
        report: Reporter<'_>,
        cancel: impl Future<Output = ()>,
    ) -> Result<StartOutcome> {
        start::run(self, request, report, cancel).await
    }

    /// Removes the backend and every sidecar of ours; named cache volumes stay. Waits for any start
    /// or stop in progress.
    pub async fn stop(&self) -> Result<StopOutcome> {
        stop::run(self).await
    }

    /// Stop, then start with `request`: how new settings are applied.
    pub async fn restart(&self, request: &StartRequest, report: Reporter<'_>) -> Result<StartOutcome> {
        self.restart_until(request, report, std::future::pending()).await
    }

    /// [`Backend::restart`], whose start is abandoned (and rolled back) when `cancel` completes.
    pub async fn restart_until(
        &self,
        request: &StartRequest,
        report: Reporter<'_>,
        cancel: impl Future<Output = ()>,
    ) -> Result<StartOutcome> {
        self.stop().await?;
        self.start_until(request, report, cancel).await
    }

    /// Applies `request` (the settings): a running backend that differs only in its ports takes
    /// them live, as a start on it does; any other difference, or a backend that is not running,
    /// is a restart (stop, then start).
    pub async fn apply_until(
        &self,
        request: &StartRequest,
        report: Reporter<'_>,
        cancel: impl Future<Output = ()>,
    ) -> Result<StartOutcome> {
        apply::run(self, request, report, cancel).await
    }

    // ---- the ports, live ----

    /// Changes the ports the running backend proxies, live: the same container and cache, no
    /// BuildKit restart. Under the operation lock, and the edit applies to the set read under it,
    /// so two changes (or a change and a stop) never interleave or lose one another. A port to
    /// remove that is not proxied, or a sidecar name held by a container that is not ours, refuses
    /// the change before anything is touched; a change that fails half way is put back.
    pub async fn change_ports(&self, edit: &PortEdit) -> Result<PortChange> {
        sidecars::record::change(self, edit).await
    }

    /// Makes the sidecars match the backend (see [`sidecars`]). Waits for any start or stop in
    /// progress, so it never works against one.
    pub async fn repair(&self) -> Result<Repairs> {
        sidecars::repair(self).await
    }

    // ---- what it holds and does ----

    /// Everything `info` shows. BuildKit is asked over the kept channel, both calls at once.
    pub async fn info(&self) -> Result<BackendInfo> {
        info::read(self).await
    }

    /// The platforms the running container `container_id` builds for: natively (BuildKit's
    /// workers) and through the emulators in its image (looked for once per container).
    pub async fn platforms(&self, container_id: &str) -> Result<Platforms> {
        platforms::read(self, container_id).await
    }

    /// The cache records `filter` selects, for `cache usage`.
    pub async fn cache_usage(&self, filter: &CacheFilter) -> Result<Vec<CacheRecord>> {
        let container = self.running().await?;
        let now = crate::time::now_seconds();
        self.with_buildkit(&container.id, |client| async move { client.disk_usage_matching(filter, now).await }).await
    }

    /// Removes the cache records not in use that `filter` selects; returns what was removed.
    pub async fn cache_purge(&self, filter: &CacheFilter) -> Result<Vec<CacheRecord>> {
        let container = self.running().await?;
        self.with_buildkit(&container.id, |client| async move { client.prune(filter).await }).await
    }

    /// The backend's logs. Works on a stopped-but-present backend too, like `docker logs`.
    pub async fn logs(&self, options: &LogOptions) -> Result<impl Stream<Item = Result<LogChunk>> + use<>> {
        let id = match self.presence().await? {
            Presence::Ours(container) => container.id,
            Presence::Foreign => return Err(BackendError::ForeignContainer { name: self.names.backend() }.into()),
            Presence::Absent => return Err(BackendError::NotRunning.into()),
        };
        Ok(logs::stream::read(&self.docker, &id, &self.names.backend(), options))
    }

    /// The builds of the running backend, newest first.
    pub async fn builds(&self) -> Result<Vec<Build>> {
        let container = self.running().await?;
        self.with_buildkit(&container.id, |client| async move { client.builds().await }).await
    }

    /// One build of the running backend and its recorded progress (a running build's to its
    /// end), for [`crate::buildkit::progress`] to read; refuses a ref BuildKit does not know.
    pub async fn build_with_progress(&self, reference: &str) -> Result<(Build, Vec<StatusResponse>)> {
        let container = self.running().await?;
        // Both questions over one channel: the build by its ref (ours, or buildx's
        // `builder/node/ref`), then its recorded progress.
        self.with_buildkit(&container.id, |client| async move {
            let build = client.find_build(reference).await?;
            let progress = client.recorded_progress(&build.reference).await?;
            Ok((build, progress))
        })
        .await
    }

    /// Follows the running backend's builds: calls `on_list` with the whole list at once and again
    /// after every change BuildKit announces (a build started, finished or was removed), until
    /// `on_list` returns false or the backend goes away. Events, not polling.
    pub async fn follow_builds(&self, on_list: impl FnMut(Vec<Build>) -> bool) -> Result<()> {
        let container = self.running().await?;
        let client = BuildkitClient::connect(&self.docker, &container.id).await?;
        history::follow_builds(&client, on_list).await
    }

    /// Follows one build of the running backend: calls `on_detail` with the build and its steps
    /// as far as they got, again after every burst of progress while it runs, and once more, with
    /// its final record, when it ends; until `on_detail` returns false. A finished build is
    /// replayed from its recorded progress and reported once it is all read. Refuses a ref
    /// BuildKit does not know.
    pub async fn follow_build(&self, reference: &str, on_detail: impl FnMut(&Build, &[Step]) -> bool) -> Result<()> {
        let container = self.running().await?;
        let client = BuildkitClient::connect(&self.docker, &container.id).await?;
        history::follow_build(&client, reference, on_detail).await
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
        channel::with_buildkit(self, container_id, call).await
    }

    // ---- for the modules here ----

    /// Force-removes a container we own, with its anonymous volumes (never named ones).
    pub(crate) async fn remove_container(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // Already gone (another client, or removal in progress): the goal is reached.
            Err(err) if is_not_found(&err) || is_conflict(&err) => Ok(()),
            Err(err) => Err(Error::docker(format!("removing container {id}"))(err)),
        }
    }
}
