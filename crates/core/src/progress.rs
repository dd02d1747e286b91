//! What a start reports while it works, for the CLI to print and the app to show.
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum StartEvent {
    /// The image is already on the engine; nothing to pull.
    ImagePresent {
        image: String,
    },
    /// Overall progress of a pull, summed over its layers.
    PullProgress {
        image: String,
        downloaded: u64,
        total: u64,
        layers_done: usize,
        layers: usize,
    },
    PullDone {
        image: String,
    },
    /// The sidecar image was made locally from the embedded relay.
    ProxyImageBuilt {
        image: String,
    },
    CacheVolumeCreated {
        name: String,
    },
    /// The engine refused `--privileged`; running with the explicit capability set instead.
    PrivilegedRefused {
        reason: String,
    },
    BackendCreated {
        id: String,
    },
    WaitingForBuildkit,
    ProxyStarted {
        port: u16,
        id: String,
    },
}

/// Receives start events; the CLI prints them, the app forwards them to its windows.
pub type Reporter<'a> = &'a (dyn Fn(StartEvent) + Send + Sync);

/// A reporter that drops everything, for callers that do not show progress.
pub fn silent(_: StartEvent) {}
