//! Assemble Backend's engine: a personal BuildKit backend on the local Docker Engine, with
//! host-port sidecars and a persistent cache. The CLI and the app only translate to and from it.
//!
//! Where things are, by what they serve (the arrows point down this list, never up):
//! - [`live`]: the backend seen live (the snapshot the tray and windows show, Docker's events,
//!   the keeper that repairs sidecars, notifications);
//! - [`build`]: `assemble build`: what a folder builds, the Dockerfiles we write, the plan, the run;
//! - [`backend`]: the lifecycle: [`Backend`], whose whole API is listed in `backend/mod.rs`
//!   (start, stop, restart, apply, info, cache, logs, builds, ports), with what it needs: names
//!   on containers (labels), the start request and its rules, the lock, the rollback, the
//!   container specs, and the host-port sidecars (`backend/sidecars/`: the repair, the live port
//!   record, the relay image, the port states);
//! - [`buildkit`]: BuildKit as a client reaches it (the control API, the session, FileSync, the
//!   history, progress, prune); [`logs`]: the log stream and the viewer's store;
//! - [`engine`]: how the Docker Engine is found and reached, as the docker CLI does;
//! - across them: [`settings`] (the settings file), [`names`], [`ports`] (the `--allow-host-port`
//!   rule), [`reference`](mod@reference) (image names), [`units`] (sizes), [`time`] (every time we
//!   read or write), [`shutdown`], [`plugin`].
//!
//! Each area words its own errors (`engine/error.rs`, `backend/error.rs`, `buildkit/error.rs`,
//! `build/error.rs`, `logs/error.rs`, and the rules' [`PortError`], [`ReferenceError`],
//! [`SizeError`], [`PluginError`]); [`Error`], below, gathers them; [`error`] holds what they share:
//! the [`Place`] a sentence is shown in and the [`Remedy`] it names, each worded once per place.
#![warn(missing_docs)]
pub mod backend;
pub mod build;
pub mod buildkit;
pub mod engine;
pub mod error;
mod failure;
pub mod live;
pub mod logs;
pub mod names;
pub mod nodes;
pub mod plugin;
pub mod ports;
pub mod reference;
pub mod settings;
pub mod shutdown;
pub mod time;
pub mod units;

pub use backend::error::{BackendError, Leftover};
pub use backend::{
    cache::CacheChoice,
    info::BackendInfo,
    progress::StartEvent,
    request::{Difference, StartFlags, StartRequest},
    security::SecurityChoice,
    sidecars::{status::PortStatus, Sidecar},
    start::StartOutcome,
    stop::StopOutcome,
    Backend, ContainerState, Presence,
};
pub use build::error::BuildError;
pub use buildkit::error::BuildkitError;
pub use buildkit::{BuildkitClient, CacheRecord, CacheTotals, Worker};
pub use engine::error::EngineError;
pub use error::{Input, Place, Remedy};
pub use live::status::{Snapshot, State};
pub use logs::error::LogsError;
pub use logs::stream::{LineSplitter, LogChunk, LogOptions};
pub use names::Names;
pub use plugin::PluginError;
pub use ports::{PortError, PortSet};
pub use reference::ReferenceError;
pub use settings::{CacheSetting, Settings};
pub use shutdown::{Shutdown, ShutdownTrigger};
pub use units::SizeError;

/// The result of every fallible call in the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core: one variant per area's error, and the engine and
/// file requests that any area makes. Its `Display` is the command line's sentence;
/// [`Error::sentence`] words it for a place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine cannot be found or reached.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The backend's lifecycle, its settings and its live ports.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// BuildKit, and what we send it.
    #[error(transparent)]
    Buildkit(#[from] BuildkitError),
    /// `assemble build` and the Build window.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The backend's logs.
    #[error(transparent)]
    Logs(#[from] LogsError),
    /// Host ports that break the `--allow-host-port` rule.
    #[error(transparent)]
    InvalidPorts(#[from] PortError),
    /// An image name Docker would refuse (a base image's).
    #[error(transparent)]
    InvalidImageName(#[from] ReferenceError),
    /// A size that does not parse.
    #[error(transparent)]
    InvalidSize(#[from] SizeError),
    /// The Docker CLI plugin cannot be installed.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Nodes: the backend on other engines, in the one builder.
    #[error(transparent)]
    Node(#[from] nodes::error::NodeError),

    /// A request to the engine failed.
    #[error("{action}: {source}")]
    Docker {
        /// What we were doing ("creating container …").
        action: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },

    /// A local file or process operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What we were doing ("writing …").
        action: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The sentence for `place`: the same facts everywhere, and the way out in that place's terms
    /// (a flag on the command line; a button or a setting in the app). `Display` is
    /// [`Place::CommandLine`]'s.
    pub fn sentence(&self, place: Place) -> String {
        match self {
            Error::Engine(error) => error.sentence(place),
            Error::Backend(error) => error.sentence(place),
            Error::Buildkit(error) => error.sentence(place),
            Error::Build(error) => error.sentence(place),
            Error::InvalidPorts(error) => match place {
                Place::CommandLine => error.to_string(),
                Place::App => error.in_settings(),
            },
            other => other.to_string(),
        }
    }

    /// The settings field an error is about, so a form can show it next to that field.
    pub fn settings_field(&self) -> Option<&'static str> {
        match self {
            Error::InvalidPorts(_) => Some("ports"),
            Error::InvalidSize(_) => Some("cache_limit"),
            Error::Engine(error) => error.settings_field(),
            Error::Backend(error) => error.settings_field(),
            _ => None,
        }
    }

    /// The Build window's field an error is about (`folder`, `names`).
    pub fn build_field(&self) -> Option<&'static str> {
        match self {
            Error::Build(error) => error.form_field(),
            Error::Buildkit(BuildkitError::UnsupportedPlatform { .. }) => Some("platforms"),
            _ => None,
        }
    }

    /// The engine could not be found or reached (as opposed to refusing a request).
    pub fn is_engine_unavailable(&self) -> bool {
        match self {
            Error::Engine(error) => error.is_unavailable(),
            Error::Docker { source, .. } => failure::is_connection_failure(source),
            _ => false,
        }
    }

    /// A failure in reaching BuildKit, where trying again over a new connection may succeed; a
    /// refusal by BuildKit itself is final (retrying a failed purge would run it twice).
    pub fn is_buildkit_transport(&self) -> bool {
        matches!(self, Error::Buildkit(error) if error.is_transport())
    }

    /// The backend is not running (what a start would fix).
    pub fn is_not_running(&self) -> bool {
        matches!(self, Error::Backend(BackendError::NotRunning))
    }

    pub(crate) fn docker(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Error {
        let action = action.into();
        move |source| Error::Docker { action, source }
    }

    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let action = action.into();
        move |source| Error::Io { action, source }
    }
}
