//! Assemble Backend's engine: a personal BuildKit backend on the local Docker Engine, with
//! host-port sidecars and a persistent cache. The CLI and the app only translate to and from it.
#![warn(missing_docs)]
pub mod backend;
pub mod buildkit;
pub mod cache;
pub mod engine;
pub mod error;
mod failure;
pub mod image;
pub mod info;
pub mod keeper;
pub mod labels;
pub mod lock;
pub mod logs;
pub mod names;
pub mod notice;
pub mod plugin;
pub mod ports;
pub mod privilege_memo;
pub mod progress;
pub mod proxy_image;
pub mod request;
mod rollback;
pub mod settings;
pub mod shutdown;
pub mod sidecars;
pub mod spec;
pub mod start;
pub mod status;
pub mod stop;
pub mod units;
pub mod watch;

pub use backend::{Backend, ContainerState, Presence, Sidecar};
pub use buildkit::{BuildkitClient, CacheRecord, CacheTotals, Worker};
pub use cache::CacheChoice;
pub use error::{Error, Leftover, Place, Result};
pub use info::BackendInfo;
pub use logs::{LineSplitter, LogChunk, LogOptions};
pub use names::Names;
pub use ports::{PortError, PortSet};
pub use progress::StartEvent;
pub use request::{Difference, StartFlags, StartRequest};
pub use settings::{CacheSetting, Settings};
pub use shutdown::{Shutdown, ShutdownTrigger};
pub use start::StartOutcome;
pub use status::{PortStatus, Snapshot, State};
pub use stop::StopOutcome;
