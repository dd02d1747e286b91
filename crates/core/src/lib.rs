//! Assemble Backend's engine: a personal BuildKit backend on the local Docker Engine, with
//! host-port sidecars and a persistent cache. The CLI and the app only translate to and from it.
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
pub mod units;

pub use backend::cache::CacheChoice;
pub use backend::info::BackendInfo;
pub use backend::progress::StartEvent;
pub use backend::request::{Difference, StartFlags, StartRequest};
pub use backend::sidecars::status::PortStatus;
pub use backend::start::StartOutcome;
pub use backend::stop::StopOutcome;
pub use backend::{sidecars::Sidecar, Backend, ContainerState, Presence};
pub use buildkit::{BuildkitClient, CacheRecord, CacheTotals, Worker};
pub use error::{Error, Leftover, Place, Result};
pub use live::status::{Snapshot, State};
pub use logs::stream::{LineSplitter, LogChunk, LogOptions};
pub use names::Names;
pub use ports::{PortError, PortSet};
pub use settings::{CacheSetting, Settings};
pub use shutdown::{Shutdown, ShutdownTrigger};
