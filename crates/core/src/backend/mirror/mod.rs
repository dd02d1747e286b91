//! Local images in builds: a `FROM` (or `COPY --from`, or a `docker-image://` build context) of an
//! image the engine has takes the engine's image, as `docker build` does, for `assemble build` and
//! `docker buildx build --builder assemble` alike.
//!
//! The design (README, "Local images"): a read-only registry that serves the engine's own images,
//! named in buildkitd.toml as the first mirror of docker.io and of the registries the settings
//! list, so BuildKit asks it first and goes on to the real registry when it says "not found". It is
//! our static binary `crates/mirror` in two containers that share only a unix socket in a volume:
//! - the **front** ([`spec::front`]) listens on [`config::mirror_host`] inside the backend's
//!   network namespace, where build steps run too, and holds nothing: nobody, no capability, no
//!   engine. It answers `GET`/`HEAD` of a manifest or a blob asked for by name, and refuses the rest;
//! - the **store** ([`spec::store`]) holds the engine's API socket, in a container without a
//!   network; it exports an image once, keeps its blobs by digest, and drops them when the engine
//!   no longer has the image.
//!
//! So nothing new listens on the host, on the bridge or on the backend's address, and no build step
//! can reach the engine's API but through the front's few checked questions. This module starts the
//! store before the backend (its config names the mirror only when the store can serve), the front
//! once the backend's namespace exists, repairs both, and removes them with the backend. [`config`]
//! holds the rules without I/O.
pub mod config;
pub mod spec;

use std::{collections::HashMap, time::Duration};

use bollard::{
    models::VolumeCreateRequest,
    query_parameters::{CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveVolumeOptions},
};
use serde::Serialize;

use crate::{
    backend::error::BackendError,
    backend::readiness::{wait_for_line, Readiness},
    backend::{
        labels::{self, Role},
        progress::{Reporter, StartEvent},
        rollback::Created,
        sidecars::{plan::started_after, relay_image::OneFileImage},
        Backend, ContainerState, OurContainer,
    },
    engine::{is_conflict, is_not_found},
    failure::engine_message,
    Error, Result,
};

/// The mirror, compiled static by build.rs from `crates/mirror`.
static MIRROR_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/assemble-mirror"));
/// Where the mirror sits in its image.
pub const MIRROR_PATH: &str = "/assemble-mirror";
const REPOSITORY: &str = "docker-assemble-backend-mirror";

/// What the front prints once it listens, and the store once it answers (crates/mirror).
const FRONT_READY: &str = "assemble-mirror: front listening on";
const STORE_READY: &str = "assemble-mirror: store ready";
const FAILED: &str = "assemble-mirror: error:";
/// How long either may take to say so; it takes milliseconds.
const READY_WAIT: Duration = Duration::from_secs(15);

fn image() -> OneFileImage {
    OneFileImage { repository: REPOSITORY, binary: MIRROR_BINARY, path: MIRROR_PATH, role: "mirror-image" }
}

/// Whether builds on a backend take the engine's own images, as its labels record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum LocalImages {
    /// Used: names of these registries (Docker Hub first) are looked for in the engine first.
    Used {
        /// The registries served.
        registries: Vec<String>,
    },
    /// Turned off.
    Off {
        /// By what (`None` on a backend made before local images).
        reason: Option<String>,
    },
    /// Asked for, but the store could not be given the engine's API: builds use registries only.
    Unavailable {
        /// Why, in words.
        reason: String,
    },
}

impl LocalImages {
    /// The label values that record it on the backend.
    pub fn labels(&self) -> HashMap<String, String> {
        let (word, registries, reason) = match self {
            LocalImages::Used { registries } => ("used", registries.join(","), None),
            LocalImages::Off { reason } => ("off", String::new(), reason.clone()),
            LocalImages::Unavailable { reason } => ("unavailable", String::new(), Some(reason.clone())),
        };
        let mut out = HashMap::from([(labels::LOCAL_IMAGES.to_string(), word.to_string())]);
        if !registries.is_empty() {
            out.insert(labels::LOCAL_IMAGE_REGISTRIES.to_string(), registries);
        }
        if let Some(reason) = reason {
            out.insert(labels::LOCAL_IMAGES_REASON.to_string(), reason);
        }
        out
    }

    /// Reads the labels back; a backend without them predates local images: off.
    pub fn from_labels(labels: &HashMap<String, String>) -> Self {
        let reason = labels.get(labels::LOCAL_IMAGES_REASON).cloned();
        match labels.get(labels::LOCAL_IMAGES).map(String::as_str) {
            Some("used") => LocalImages::Used {
                registries: labels
                    .get(labels::LOCAL_IMAGE_REGISTRIES)
                    .map(|r| r.split(',').filter(|r| !r.is_empty()).map(String::from).collect())
                    .unwrap_or_else(|| vec![config::DOCKER_HUB.to_string()]),
            },
            Some("unavailable") => LocalImages::Unavailable { reason: reason.unwrap_or_default() },
            _ => LocalImages::Off { reason },
        }
    }

    /// The registries whose names the engine serves; none unless used.
    pub fn registries(&self) -> &[String] {
        match self {
            LocalImages::Used { registries } => registries,
            _ => &[],
        }
    }

    /// `used`, `off` or `unavailable`.
    pub fn word(&self) -> &'static str {
        match self {
            LocalImages::Used { .. } => "used",
            LocalImages::Off { .. } => "off",
            LocalImages::Unavailable { .. } => "unavailable",
        }
    }

    /// The sentence `info`, `start` and the panel show.
    pub fn describe(&self) -> String {
        match self {
            LocalImages::Used { registries } => format!(
                "used: a FROM of an image the engine has takes the engine's image, for {} (an image it does not \
                 have comes from its registry; `assemble build --pull` skips local images)",
                registries.join(", ")
            ),
            LocalImages::Off { reason: Some(reason) } => {
                format!("off ({reason}): every base image comes from its registry")
            }
            LocalImages::Off { reason: None } => "off: every base image comes from its registry".to_string(),
            LocalImages::Unavailable { reason } => {
                format!("unavailable: {reason}; every base image comes from its registry")
            }
        }
    }
}

/// What a start asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalImagesWish {
    /// Serve the engine's images for these registries (Docker Hub first).
    On(Vec<String>),
    /// Off, and by what (`--no-local-images`, the settings).
    Off(String),
}

/// As the settings' defaults ask: on, for Docker Hub.
impl Default for LocalImagesWish {
    fn default() -> Self {
        LocalImagesWish::On(vec![config::DOCKER_HUB.to_string()])
    }
}

impl LocalImagesWish {
    /// The registries asked for, `None` when off.
    pub fn registries(&self) -> Option<&[String]> {
        match self {
            LocalImagesWish::On(registries) => Some(registries),
            LocalImagesWish::Off(_) => None,
        }
    }
}

/// One of the mirror's containers, found by its labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorContainer {
    /// The container's ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `mirror` (the front) or `mirror-store`.
    pub role: String,
    /// Its state.
    pub state: ContainerState,
    /// The backend it was made for (the front's label; empty for the store).
    pub backend_id: String,
}

/// The mirror's containers of ours, fronts first.
pub(in crate::backend) async fn list(backend: &Backend) -> Result<Vec<MirrorContainer>> {
    let filters = HashMap::from([("label".to_string(), vec![format!("{}={}", labels::OWNER, backend.names.user())])]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let listed = backend
        .docker
        .list_containers(Some(options))
        .await
        .map_err(Error::docker("listing the mirror's containers"))?;
    let mut out: Vec<MirrorContainer> = listed
        .into_iter()
        .filter_map(|c| {
            let labels = c.labels.unwrap_or_default();
            let role = labels
                .get(labels::ROLE)
                .filter(|r| *r == Role::Mirror.as_str() || *r == Role::MirrorStore.as_str())?
                .clone();
            Some(MirrorContainer {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
                role,
                state: c.state.map_or(ContainerState::Unknown, |s| ContainerState::from_engine(s.as_ref())),
                backend_id: labels.get(labels::BACKEND).cloned().unwrap_or_default(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.role.cmp(&b.role).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// Removes the mirror's containers and the socket's volume (ours only). Returns the names removed.
pub(in crate::backend) async fn remove_all(backend: &Backend) -> Result<Vec<String>> {
    let containers = list(backend).await?;
    for container in &containers {
        backend.remove_container(&container.id).await?;
    }
    remove_socket_volume(backend).await?;
    Ok(containers.into_iter().map(|c| c.name).collect())
}

async fn remove_socket_volume(backend: &Backend) -> Result<()> {
    let name = backend.names.mirror_socket_volume();
    match backend.docker.inspect_volume(&name).await {
        Ok(volume) if labels::is_ours(Some(&volume.labels), &backend.names, Role::MirrorSocket) => {}
        // Not ours: never touched (check_names refuses to start over it).
        Ok(_) => return Ok(()),
        Err(err) if is_not_found(&err) => return Ok(()),
        Err(err) => return Err(Error::docker(format!("inspecting volume {name}"))(err)),
    }
    match backend.docker.remove_volume(&name, None::<RemoveVolumeOptions>).await {
        Ok(()) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(Error::docker(format!("removing volume {name}"))(err)),
    }
}

/// Refuses, before anything is created, a mirror name (container or volume) that someone else
/// holds; leftovers of ours are removed.
pub(in crate::backend) async fn check_names(backend: &Backend) -> Result<()> {
    remove_all(backend).await?;
    for (name, role) in [(backend.names.mirror(), Role::Mirror), (backend.names.mirror_store(), Role::MirrorStore)] {
        match backend.docker.inspect_container(&name, None).await {
            Ok(inspect)
                if labels::is_ours(inspect.config.as_ref().and_then(|c| c.labels.as_ref()), &backend.names, role) =>
            {
                backend.remove_container(&name).await?
            }
            Ok(_) => return Err(BackendError::ForeignContainer { name }.into()),
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(Error::docker(format!("inspecting container {name}"))(err)),
        }
    }
    let volume = backend.names.mirror_socket_volume();
    match backend.docker.inspect_volume(&volume).await {
        Ok(_) => Err(BackendError::ForeignContainer { name: format!("volume {volume}") }.into()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(Error::docker(format!("inspecting volume {volume}"))(err)),
    }
}

/// Starts the store for a backend about to start, as `wish` asks. Local images are used when it
/// answers; when the engine cannot give it its API (no socket where we look, another engine's
/// socket there, a policy that refuses), they are unavailable, with the reason, and nothing of the
/// attempt is left. What it made is recorded in `created`.
pub(in crate::backend) async fn prepare(
    backend: &Backend,
    wish: &LocalImagesWish,
    report: Reporter<'_>,
    created: &mut Created,
) -> Result<LocalImages> {
    let registries = match wish {
        LocalImagesWish::Off(reason) => return Ok(LocalImages::Off { reason: Some(reason.clone()) }),
        LocalImagesWish::On(registries) => registries.clone(),
    };
    let outcome = match start_store(backend, &registries, report, created).await? {
        Ok(()) => LocalImages::Used { registries },
        Err(reason) => LocalImages::Unavailable { reason },
    };
    report(StartEvent::LocalImages { text: outcome.describe() });
    Ok(outcome)
}

/// Makes the socket's volume and the store, and waits until the store answers. The inner `Err` is
/// why the engine's images cannot be served, after what was made for them is removed again.
async fn start_store(
    backend: &Backend,
    registries: &[String],
    report: Reporter<'_>,
    created: &mut Created,
) -> Result<std::result::Result<(), String>> {
    let (reference, built) = match image().ensure(&backend.docker).await {
        Ok(made) => made,
        Err(why) => return Ok(Err(format!("its image could not be made ({why})"))),
    };
    if built {
        report(StartEvent::MirrorImageBuilt { image: reference.clone() });
    }
    let info = backend.docker.info().await.map_err(Error::docker("asking the engine what it is"))?;
    let socket =
        config::engine_socket(&backend.engine.endpoint().address, info.operating_system.as_deref().unwrap_or_default());
    let view = backend.engine.endpoint().view();
    let engine_label = format!("{} ({})", view.context, view.host);

    let volume = backend.names.mirror_socket_volume();
    let request = VolumeCreateRequest {
        name: Some(volume.clone()),
        labels: Some(labels::common(&backend.names, Role::MirrorSocket)),
        ..Default::default()
    };
    backend.docker.create_volume(request).await.map_err(Error::docker(format!("creating volume {volume}")))?;
    created.volume(&volume);

    let name = backend.names.mirror_store();
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    let body = spec::store(&backend.names, &reference, &socket, &engine_label, registries);
    let refused = match backend.docker.create_container(Some(options), body).await {
        Ok(response) => {
            created.container(&response.id);
            match backend.docker.start_container(&response.id, None).await {
                Ok(()) => match wait_for(backend, &response.id, STORE_READY).await {
                    Ok(()) => return Ok(Ok(())),
                    Err(said) => format!("the store could not use the engine's API socket {socket} ({said})"),
                },
                Err(err) => format!(
                    "the engine could not start the store with its API socket {socket} ({})",
                    engine_message(&err)
                ),
            }
        }
        Err(err) if is_conflict(&err) => return Err(BackendError::ForeignContainer { name }.into()),
        Err(err) => format!("the engine refused a container with its API socket {socket} ({})", engine_message(&err)),
    };
    // Nothing half-made: what this attempt created goes now, and the start goes on without it.
    let reason = format!("{} cannot give the store its API: {refused}", engine_words(backend));
    // Recorded in the order they were made, so that the undo (newest first) removes the store
    // before the volume it holds.
    let mut leftovers = Created::new(&backend.docker);
    created.forget_volume(&volume);
    leftovers.volume(&volume);
    if let Ok(store) = backend.docker.inspect_container(&name, None).await {
        if let Some(id) = store.id {
            created.forget_container(&id);
            leftovers.container(&id);
        }
    }
    leftovers.undo(BackendError::LocalImagesUnavailable(reason.clone()).into()).await?;
    Ok(Err(reason))
}

/// The engine whose images the mirror serves, for sentences.
pub(crate) fn engine_words(backend: &Backend) -> String {
    let view = backend.engine.endpoint().view();
    format!("the Docker Engine {} ({})", view.context, view.host)
}

/// Starts the front in the network namespace of the running backend `backend_id`.
pub(in crate::backend) async fn start_front(
    backend: &Backend,
    backend_id: &str,
    created: &mut Created,
) -> Result<String> {
    let (reference, _) = image().ensure(&backend.docker).await.map_err(BackendError::MirrorImage)?;
    let name = backend.names.mirror();
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    let response = backend
        .docker
        .create_container(Some(options), spec::front(&backend.names, backend_id, &reference))
        .await
        .map_err(Error::docker(format!("creating the local-image mirror {name}")))?;
    created.container(&response.id);
    backend.docker.start_container(&response.id, None).await.map_err(Error::docker(format!("starting {name}")))?;
    wait_for(backend, &response.id, FRONT_READY).await.map_err(|logs| BackendError::MirrorNotReady { name, logs })?;
    Ok(response.id)
}

/// Waits until container `id` prints `ready`; its last words when it fails or exits first.
async fn wait_for(backend: &Backend, id: &str, ready: &str) -> std::result::Result<(), String> {
    match wait_for_line(backend, id, ready, Some(FAILED), READY_WAIT).await {
        Readiness::Ready => Ok(()),
        Readiness::Stopped { printed } => Err(said(&printed)),
        Readiness::TimedOut { .. } => Err(format!("it did not answer within {}s", READY_WAIT.as_secs())),
    }
}

/// What the mirror said when it failed: its error line, without the usage that follows.
fn said(printed: &str) -> String {
    printed
        .lines()
        .find_map(|l| l.strip_prefix(FAILED))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| printed.trim().lines().last().unwrap_or("it stopped without a word").to_string())
}

/// Makes the mirror match the running backend `container`: when local images are used, one running
/// store and one running front made for this backend in its current namespace (started after it);
/// otherwise none. Returns the names removed and the names started.
pub(in crate::backend) async fn repair_running(
    backend: &Backend,
    container: &OurContainer,
) -> Result<(Vec<String>, Vec<String>)> {
    let found = list(backend).await?;
    let (mut removed, mut started) = (Vec::new(), Vec::new());
    let LocalImages::Used { registries } = &container.config.local_images else {
        if !found.is_empty() {
            removed = remove_all(backend).await?;
        }
        return Ok((removed, started));
    };
    let mut store_kept = false;
    let mut front_kept = false;
    for candidate in &found {
        let keep = match candidate.role.as_str() {
            "mirror-store" if !store_kept && candidate.state == ContainerState::Running => {
                store_kept = true;
                true
            }
            "mirror"
                if !front_kept
                    && candidate.state == ContainerState::Running
                    && candidate.backend_id == container.id =>
            {
                let started_at = backend
                    .docker
                    .inspect_container(&candidate.id, None)
                    .await
                    .ok()
                    .and_then(|i| i.state)
                    .and_then(|s| s.started_at);
                let attached = match (started_at.as_deref(), container.started_at.as_deref()) {
                    (Some(front), Some(backend)) => started_after(front, backend),
                    _ => true,
                };
                front_kept = attached;
                attached
            }
            _ => false,
        };
        if !keep {
            backend.remove_container(&candidate.id).await?;
            removed.push(candidate.name.clone());
        }
    }
    let mut created = Created::new(&backend.docker);
    let result = async {
        if !store_kept {
            remove_socket_volume(backend).await?;
            if let Err(reason) =
                start_store(backend, registries, &crate::backend::progress::silent, &mut created).await?
            {
                return Err(BackendError::LocalImagesUnavailable(reason).into());
            }
            started.push(backend.names.mirror_store());
        }
        if !front_kept {
            start_front(backend, &container.id, &mut created).await?;
            started.push(backend.names.mirror());
        }
        Ok(())
    }
    .await;
    created.settle(result).await?;
    Ok((removed, started))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_labels_read_back() {
        for state in [
            LocalImages::Used { registries: vec!["docker.io".into(), "localhost:5000".into()] },
            LocalImages::Off { reason: Some("turned off in the settings".into()) },
            LocalImages::Unavailable { reason: "no socket".into() },
        ] {
            assert_eq!(LocalImages::from_labels(&state.labels()), state);
        }
        assert_eq!(LocalImages::from_labels(&HashMap::new()), LocalImages::Off { reason: None });
    }

    #[test]
    fn each_state_is_a_sentence() {
        let used = LocalImages::Used { registries: vec!["docker.io".into()] }.describe();
        assert!(
            used.starts_with("used: a FROM of an image the engine has takes the engine's image, for docker.io"),
            "{used}"
        );
        assert!(used.contains("--pull` skips local images"), "{used}");
        assert_eq!(
            LocalImages::Off { reason: Some("--no-local-images".into()) }.describe(),
            "off (--no-local-images): every base image comes from its registry"
        );
        assert!(LocalImages::Unavailable { reason: "why".into() }.describe().starts_with("unavailable: why;"));
    }

    #[test]
    fn a_failure_is_its_error_line() {
        assert_eq!(
            said("assemble-mirror: error: the socket belongs to another engine\nusage: …\n"),
            "the socket belongs to another engine"
        );
        assert_eq!(said("something\nlast words\n"), "last words");
        assert_eq!(said(""), "it stopped without a word");
    }
}
