//! `start`: create the backend and its sidecars, or find them running. Idempotent, single-flight,
//! and all-or-nothing: a start that fails removes whatever it created.
use std::time::{Duration, Instant};

use bollard::{
    query_parameters::{CreateContainerOptionsBuilder, LogsOptionsBuilder, UploadToContainerOptionsBuilder},
    Docker,
};
use futures_util::StreamExt;
use serde::Serialize;

use crate::buildkit::BuildkitClient;
use crate::{
    backend::{
        cache::{self, CacheChoice},
        error::BackendError,
        image,
        labels::{self, BackendLabels, LocalImages, SecurityMode},
        lock::OperationLock,
        mirror, privilege_memo,
        progress::{Reporter, StartEvent},
        request::{self, Difference},
        rollback::Created,
        security::{self, Refusal, SecurityChoice},
        sidecars::{
            self,
            record::{self, PortChange, PortEdit},
            relay_image,
        },
        spec, Backend, OurContainer, Presence,
    },
    engine::is_conflict,
    failure::engine_message,
    ports::PortSet,
    Error, Result,
};

pub use crate::backend::request::{StartFlags, StartRequest, DEFAULT_IMAGE, DEFAULT_READY_TIMEOUT, IMAGE_ENV};

const READY_POLL: Duration = Duration::from_millis(50);
const LOG_LINES_ON_FAILURE: &str = "20";

/// How a start ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum StartOutcome {
    /// The backend was created and BuildKit answers.
    Started {
        /// The backend container's ID.
        id: String,
        /// Its name.
        name: String,
        /// The host ports proxied.
        ports: PortSet,
        /// Where the build cache is.
        cache: CacheChoice,
        /// How it was granted its powers.
        security: SecurityMode,
        /// Why, in words.
        security_reason: String,
        /// Whether its image had to be pulled.
        pulled: bool,
        /// Whether builds take the engine's own images.
        local_images: LocalImages,
    },
    /// It was running already; it was left as it is (missing sidecars are put back).
    AlreadyRunning {
        /// The backend container's ID.
        id: String,
        /// Its name.
        name: String,
        /// The host ports it proxies now.
        ports: PortSet,
        /// The ports asked for were applied live, when they differed.
        ports_change: Option<PortChange>,
        /// How the running backend differs from the request; a restart would apply them.
        differences: Vec<Difference>,
        /// The mode it runs in.
        security: SecurityMode,
        /// Why, in words (`None`: made before reasons were kept).
        security_reason: Option<String>,
        /// Whether builds take the engine's own images.
        local_images: LocalImages,
    },
}

/// [`Backend::start`], abandoned when `cancel` completes (Ctrl-C, Quit): what was created
/// so far is removed and [`BackendError::Cancelled`] returned. The cancel is heard between steps and
/// during the waits (pulls, BuildKit's readiness), never inside an engine call that creates
/// something, so everything created is also recorded and removed.
pub(super) async fn run(
    backend: &Backend,
    request: &StartRequest,
    report: Reporter<'_>,
    cancel: impl std::future::Future<Output = ()>,
) -> Result<StartOutcome> {
    request.validate()?;
    let _lock = OperationLock::acquire(&backend.names, backend.engine.endpoint()).await?;
    match backend.presence().await? {
        Presence::Foreign => return Err(BackendError::ForeignContainer { name: backend.names.backend() }.into()),
        Presence::Ours(running) if running.running => return keep_running(backend, *running, request).await,
        // Stopped, exited or dead: a leftover of ours. Its cache, if named, stays in its volume.
        Presence::Ours(stale) => {
            sidecars::remove_all(backend).await?;
            mirror::remove_all(backend).await?;
            backend.remove_container(&stale.id).await?;
            sidecars::record::HostRecord::of(backend.engine.endpoint(), &stale.id).remove();
        }
        Presence::Absent => {}
    }
    sidecars::check_names(backend, &request.ports).await?;
    mirror::check_names(backend).await?;

    let mut created = Created::new(&backend.docker);
    let (cancel_sender, cancelled) = tokio::sync::watch::channel(false);
    let result = {
        let creation = create_all(backend, request, report, &mut created, Cancel(cancelled));
        tokio::pin!(creation, cancel);
        let mut told = false;
        loop {
            tokio::select! {
                result = &mut creation => break result,
                () = &mut cancel, if !told => {
                    told = true;
                    cancel_sender.send_replace(true);
                }
            }
        }
    };
    created.settle(result).await
}

async fn create_all(
    backend: &Backend,
    request: &StartRequest,
    report: Reporter<'_>,
    created: &mut Created,
    cancel: Cancel,
) -> Result<StartOutcome> {
    let pulled = cancel.during(image::ensure(&backend.docker, &request.image, report)).await?;
    let proxy_image = if request.ports.is_empty() {
        None
    } else {
        Some(cancel.during(relay_image::ensure(&backend.docker, report)).await?)
    };
    cancel.check()?;
    let cache = cache::resolve(backend, &request.cache).await?;
    if let CacheChoice::Named { name, created: true, .. } = &cache {
        created.volume(name);
        report(StartEvent::CacheVolumeCreated { name: name.clone() });
    }

    // The mode asked for; for `auto`, an engine whose runtime could not apply the capabilities of
    // --privileged before is not asked again (see privilege_memo), and still told.
    let remembered = match request.security {
        SecurityChoice::Auto => privilege_memo::refusal(backend.engine.endpoint())
            .filter(|reason| security::classify(reason) == Refusal::RuntimeCannotApplyCapabilities),
        SecurityChoice::Capabilities | SecurityChoice::Rootless => None,
    };
    let (mode, reason) = match (request.security, &remembered) {
        (SecurityChoice::Rootless, _) => (SecurityMode::Rootless, security::reason::ROOTLESS_ASKED.to_string()),
        (SecurityChoice::Capabilities, _) => {
            (SecurityMode::Capabilities, security::reason::CAPABILITIES_ASKED.to_string())
        }
        (SecurityChoice::Auto, Some(refusal)) => {
            report(StartEvent::PrivilegedRefused { reason: format!("{refusal}; remembered from an earlier start") });
            (SecurityMode::Capabilities, security::reason::runtime_refused(refusal, true))
        }
        (SecurityChoice::Auto, None) => (SecurityMode::Privileged, security::reason::PRIVILEGED.to_string()),
    };
    // The store first: BuildKit's config names the mirror only when the store serves.
    let local_images = mirror::prepare(backend, &request.local_images, report, created).await?;
    cancel.check()?;
    let mut config = BackendLabels {
        ports: request.ports.clone(),
        cache_volume: cache.volume_name().map(String::from),
        image: request.image.clone(),
        version: labels::OUR_VERSION.to_string(),
        security: mode,
        security_reason: Some(reason),
        cache_limit: request.cache_limit,
        network_host: request.allow_network_host,
        local_images,
    };
    cancel.check()?;
    let id = match create_and_run(backend, &config, created).await? {
        Ok(id) => id,
        Err(refusal) => match (config.security, security::classify(&refusal)) {
            // Only a runtime that cannot apply the capabilities is a reason to fall back.
            (SecurityMode::Privileged, Refusal::RuntimeCannotApplyCapabilities) => {
                report(StartEvent::PrivilegedRefused { reason: refusal.clone() });
                config.security = SecurityMode::Capabilities;
                config.security_reason = Some(security::reason::runtime_refused(&refusal, false));
                let id =
                    create_and_run(backend, &config, created).await?.map_err(|reason| start_failed(backend, reason))?;
                privilege_memo::remember(backend.engine.endpoint(), &refusal);
                id
            }
            (SecurityMode::Rootless, _) => {
                return Err(BackendError::RootlessRefused { name: backend.names.backend(), reason: refusal }.into())
            }
            // A policy's refusal is respected and told: never a way around it.
            (_, Refusal::Policy) => {
                return Err(
                    BackendError::PrivilegedRefusedByPolicy { name: backend.names.backend(), reason: refusal }.into()
                )
            }
            _ => return Err(start_failed(backend, refusal)),
        },
    };
    report(StartEvent::SecurityMode {
        mode: config.security,
        reason: config.security_reason.clone().unwrap_or_default(),
    });
    report(StartEvent::BackendCreated { id: id.clone() });
    report(StartEvent::WaitingForBuildkit);
    // The sidecars and the mirror's front join the backend's network namespace, which exists as
    // soon as it runs: they start while BuildKit gets ready. A readiness failure is the one to report.
    let used = matches!(config.local_images, LocalImages::Used { .. });
    let sidecars = async {
        if proxy_image.is_none() && !used {
            return Ok::<(), Error>(());
        }
        let container = backend.running().await?;
        if let Some(proxy_image) = &proxy_image {
            sidecars::start(backend, &container, &request.ports, proxy_image, report, created).await?;
        }
        if used {
            let front = mirror::start_front(backend, &container.id, created).await?;
            report(StartEvent::MirrorStarted { id: front });
        }
        Ok(())
    };
    let ready = cancel.during(wait_until_ready(backend, &id, request.ready_timeout));
    let (ready, sidecars) = tokio::join!(ready, sidecars);
    match ready {
        // A rootless backend that stops at once is an engine that cannot run it (no user namespace
        // in a container, say): its last lines say why.
        Err(Error::Backend(BackendError::Exited { logs, .. })) if config.security == SecurityMode::Rootless => {
            return Err(BackendError::RootlessRefused {
                name: backend.names.backend(),
                reason: format!("the backend stopped while starting; its last log lines:\n{logs}"),
            }
            .into())
        }
        other => other?,
    }
    sidecars?;
    Ok(StartOutcome::Started {
        id,
        name: backend.names.backend(),
        ports: request.ports.clone(),
        cache,
        security: config.security,
        security_reason: config.security_reason.clone().unwrap_or_default(),
        pulled,
        local_images: config.local_images,
    })
}

/// Creates and starts the backend container. The inner `Err` carries the engine's refusal to
/// create it (a policy: an authorization plugin answers 403) or to start it, after the container
/// has been removed again, so the caller may tell it or retry in another mode; the outer one is
/// any other failure.
async fn create_and_run(
    backend: &Backend,
    config: &BackendLabels,
    created: &mut Created,
) -> Result<std::result::Result<String, String>> {
    let name = backend.names.backend();
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    let response = match backend.docker.create_container(Some(options), spec::backend(&backend.names, config)).await {
        Ok(response) => response,
        // Someone outside our lock (another machine on the same engine) won the race.
        Err(err) if is_conflict(&err) => return Err(BackendError::ForeignContainer { name }.into()),
        Err(err) if is_refusal(&err) => return Ok(Err(engine_message(&err))),
        Err(err) => return Err(Error::docker(format!("creating container {name}"))(err)),
    };
    created.container(&response.id);
    // The host's record of the ports first: the authority the backend's own record only narrows.
    sidecars::record::HostRecord::of(backend.engine.endpoint(), &response.id).write(&config.ports)?;
    // Before it starts: the port record (the live set of ports begins as the labelled one)
    // and, with a cache limit, buildkitd's config.
    let record = record::record_text(&config.ports);
    let buildkitd = spec::buildkitd_config(config);
    let mut files = vec![(record::PORT_RECORD, record.as_str())];
    if let Some(text) = &buildkitd {
        files.push((spec::BUILDKITD_CONFIG, text.as_str()));
    }
    let tar = spec::files_tar(&files).map_err(Error::io("packing the backend's files"))?;
    let options = UploadToContainerOptionsBuilder::default().path("/").build();
    backend
        .docker
        .upload_to_container(&response.id, Some(options), bollard::body_full(tar.into()))
        .await
        .map_err(Error::docker(format!("putting the port record and config into {name}")))?;
    if let Err(err) = backend.docker.start_container(&response.id, None).await {
        backend.remove_container(&response.id).await?;
        created.forget_container(&response.id);
        return Ok(Err(engine_message(&err)));
    }
    Ok(Ok(response.id))
}

/// Polls BuildKit's API until a worker answers, the container dies, or time runs out.
async fn wait_until_ready(backend: &Backend, id: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(client) = BuildkitClient::connect(&backend.docker, id).await {
            if client.workers().await.is_ok_and(|w| !w.is_empty()) {
                return Ok(());
            }
        }
        let inspect =
            backend.docker.inspect_container(id, None).await.map_err(Error::docker(format!("inspecting {id}")))?;
        // With the restart policy a backend that exits comes straight back: an exit during the
        // start shows as a restart, not as a stopped container.
        let restarted = inspect.restart_count.unwrap_or(0) > 0;
        let state = inspect.state.unwrap_or_default();
        if restarted || state.restarting.unwrap_or(false) || !state.running.unwrap_or(false) {
            return Err(BackendError::Exited {
                name: backend.names.backend(),
                logs: last_log_lines(&backend.docker, id).await,
            }
            .into());
        }
        if Instant::now() >= deadline {
            return Err(BackendError::NotReady {
                seconds: timeout.as_secs(),
                logs: last_log_lines(&backend.docker, id).await,
            }
            .into());
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// Start on a running backend: keep it, make it proxy the ports asked for, live (which also
/// repairs its sidecars: missing, dead, or left in the namespace of an earlier run), and name
/// what else differs, which only a restart applies.
async fn keep_running(backend: &Backend, mut container: OurContainer, request: &StartRequest) -> Result<StartOutcome> {
    let ports_change = if container.config.ports == request.ports {
        sidecars::repair_running(backend, &container).await?;
        None
    } else {
        let change = record::change_locked(backend, container.clone(), &PortEdit::Set(request.ports.clone())).await?;
        container.config.ports = change.ports.clone();
        Some(change)
    };
    let default_volume_exists = cache::default_volume_exists(backend, &request.cache).await?;
    let differences = request::differences(&request.wanted(&backend.names, default_volume_exists), &container.config);
    Ok(StartOutcome::AlreadyRunning {
        id: container.id,
        name: container.name,
        ports: container.config.ports,
        ports_change,
        differences,
        security: container.config.security,
        security_reason: container.config.security_reason,
        local_images: container.config.local_images,
    })
}

/// The cancel as the creating steps hear it: checked between steps, and ending the waits.
struct Cancel(tokio::sync::watch::Receiver<bool>);

impl Cancel {
    fn check(&self) -> Result<()> {
        if *self.0.borrow() {
            Err(BackendError::Cancelled.into())
        } else {
            Ok(())
        }
    }

    /// Runs `work`, which creates nothing (a wait, a pull), unless the cancel comes first.
    async fn during<T>(&self, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let mut cancelled = self.0.clone();
        tokio::select! {
            result = work => result,
            _ = cancelled.wait_for(|cancelled| *cancelled) => Err(BackendError::Cancelled.into()),
        }
    }
}

/// A create that the engine refused (403, or words of a policy), as opposed to one that failed.
fn is_refusal(err: &bollard::errors::Error) -> bool {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code, message } => {
            *status_code == 403 || security::classify(message) == Refusal::Policy
        }
        _ => false,
    }
}

fn start_failed(backend: &Backend, reason: String) -> Error {
    BackendError::StartRefused { name: backend.names.backend(), reason }.into()
}

/// The last lines a container logged, for error messages.
pub(crate) async fn last_log_lines(docker: &Docker, id: &str) -> String {
    let options = LogsOptionsBuilder::default().stdout(true).stderr(true).tail(LOG_LINES_ON_FAILURE).build();
    let mut stream = docker.logs(id, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    if text.trim().is_empty() {
        "(no log output)".to_string()
    } else {
        text.trim_end().lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
    }
}
