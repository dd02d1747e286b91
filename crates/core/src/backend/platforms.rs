//! The platforms the running backend builds for: natively, those BuildKit's workers list; through
//! emulation, those of the `buildkit-qemu-*` files in buildkitd's PATH (BuildKit does not list
//! them: see [`crate::buildkit::platform`]). The emulators come with the image, so they are looked
//! for once per container, by an exec of a shell in it, and remembered; an image without a shell
//! (or whose listing fails) counts as having none.
use crate::buildkit::{
    platform::{self, Platforms},
    Worker,
};
use crate::{backend::Backend, Result};

/// The running container `container_id`'s platforms, native and emulated.
pub(super) async fn read(backend: &Backend, container_id: &str) -> Result<Platforms> {
    // Two round trips into the container (BuildKit's channel, a shell): at once, not one after the other.
    let (workers, emulators) = futures_util::future::join(
        backend.with_buildkit(container_id, |client| async move { client.workers().await }),
        emulators(backend, container_id),
    )
    .await;
    Ok(Platforms::of(&workers?, &emulators))
}

/// The emulators' file names in container `container_id`, looked for once.
pub(super) async fn emulators(backend: &Backend, container_id: &str) -> Vec<String> {
    let remembered = backend.emulators.lock().ok().and_then(|kept| kept.clone());
    if let Some((_, names)) = remembered.filter(|(id, _)| id == container_id) {
        return names;
    }
    let names = platform::emulators(&backend.docker, container_id).await.unwrap_or_default();
    if let Ok(mut kept) = backend.emulators.lock() {
        *kept = Some((container_id.to_string(), names.clone()));
    }
    names
}

/// `workers` with the platforms only the emulators run, each worker its own (what it lists
/// natively is not emulated for it).
pub(super) fn with_emulated(workers: Vec<Worker>, emulators: &[String]) -> Vec<Worker> {
    workers
        .into_iter()
        .map(|mut worker| {
            worker.emulated_platforms = Platforms::of(std::slice::from_ref(&worker), emulators).emulated;
            worker
        })
        .collect()
}
