//! What a start reports while it works, for the CLI to print and the app to show.
use serde::Serialize;

/// One step of a start, reported as it happens.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum StartEvent {
    /// The image is already on the engine; nothing to pull.
    ImagePresent {
        /// The image reference.
        image: String,
    },
    /// Overall progress of a pull, summed over its layers.
    PullProgress {
        /// The image reference.
        image: String,
        /// Bytes downloaded so far.
        downloaded: u64,
        /// Bytes to download, as far as the layers seen so far say.
        total: u64,
        /// Layers extracted, or already on the engine.
        layers_done: usize,
        /// Layers seen so far.
        layers: usize,
    },
    /// The pull finished and the image is on the engine.
    PullDone {
        /// The image reference.
        image: String,
    },
    /// The sidecar image was made locally from the embedded relay.
    ProxyImageBuilt {
        /// The sidecar image's reference.
        image: String,
    },
    /// The local-image mirror's image was made locally from the embedded mirror.
    MirrorImageBuilt {
        /// The image's reference.
        image: String,
    },
    /// Whether builds take the engine's own images, in a sentence (backend/mirror).
    LocalImages {
        /// "used: …", "off …" or "unavailable: …".
        text: String,
    },
    /// A named cache volume was missing, so it was created.
    CacheVolumeCreated {
        /// The volume's name.
        name: String,
    },
    /// The engine's runtime could not apply the capabilities of `--privileged`; running with the
    /// explicit capability set instead.
    PrivilegedRefused {
        /// The engine's reason, or that it was remembered from an earlier start.
        reason: String,
    },
    /// The mode the backend runs in, and why.
    SecurityMode {
        /// The mode.
        mode: crate::backend::labels::SecurityMode,
        /// Why, in words.
        reason: String,
    },
    /// The backend container was created and started.
    BackendCreated {
        /// Its container ID.
        id: String,
    },
    /// Waiting for BuildKit to answer; the sidecars start meanwhile.
    WaitingForBuildkit,
    /// The local-image mirror's front was started in the backend's network namespace.
    MirrorStarted {
        /// Its container ID.
        id: String,
    },
    /// A sidecar was started.
    ProxyStarted {
        /// The host port it proxies.
        port: u16,
        /// Its container ID.
        id: String,
    },
}

/// Receives start events; the CLI prints them, the app forwards them to its windows.
pub type Reporter<'a> = &'a (dyn Fn(StartEvent) + Send + Sync);

/// A reporter that drops everything, for callers that do not show progress.
pub fn silent(_: StartEvent) {}
