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
//! - across them: [`error`], [`settings`] (the settings file), [`names`], [`ports`] (the
//!   `--allow-host-port` rule), [`reference`](mod@reference) (image names), [`units`] (sizes),
//!   [`time`] (every time we read or write), [`shutdown`], [`plugin`].
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
pub mod plugin;
pub mod ports;
pub mod reference;
pub mod settings;
pub mod shutdown;
pub mod time;
pub mod units;

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
pub use buildkit::{BuildkitClient, CacheRecord, CacheTotals, Worker};
pub use error::{Error, Leftover, Place, Result};
pub use live::status::{Snapshot, State};
pub use logs::stream::{LineSplitter, LogChunk, LogOptions};
pub use names::Names;
pub use ports::{PortError, PortSet};
pub use settings::{CacheSetting, Settings};
pub use shutdown::{Shutdown, ShutdownTrigger};
