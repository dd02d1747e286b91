//! `stop`: remove the backend, its sidecars and its local-image mirror. Named cache volumes always
//! stay.
use serde::Serialize;

use crate::{
    backend::{error::BackendError, lock::OperationLock, mirror, sidecars, Backend, Presence},
    Result,
};

/// How a stop ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum StopOutcome {
    /// The backend container and its sidecars were removed.
    Stopped {
        /// The backend container's ID.
        id: String,
        /// Its name.
        name: String,
        /// How many sidecars were removed.
        sidecars: usize,
        /// The named cache volume, which stays; `None` when the cache was anonymous and is gone.
        cache_volume: Option<String>,
    },
    /// Nothing was running: success, quietly.
    NotRunning {
        /// How many leftover sidecars were removed.
        removed_sidecars: usize,
    },
}

/// Removes the backend and every sidecar of ours; named cache volumes stay. Waits for any start
/// or stop in progress.
pub(super) async fn run(backend: &Backend) -> Result<StopOutcome> {
    let _lock = OperationLock::acquire(&backend.names, backend.engine.endpoint()).await?;
    match backend.presence().await? {
        Presence::Foreign => Err(BackendError::ForeignContainer { name: backend.names.backend() }.into()),
        Presence::Absent => {
            // Sidecars whose backend vanished (e.g. `docker rm -f` of the backend) are ours to clear.
            let removed = sidecars::remove_all(backend).await?;
            mirror::remove_all(backend).await?;
            Ok(StopOutcome::NotRunning { removed_sidecars: removed.len() })
        }
        Presence::Ours(container) => {
            let sidecars = sidecars::remove_all(backend).await?;
            mirror::remove_all(backend).await?;
            backend.remove_container(&container.id).await?;
            sidecars::record::HostRecord::of(backend.engine.endpoint(), &container.id).remove();
            Ok(StopOutcome::Stopped {
                id: container.id,
                name: container.name,
                sidecars: sidecars.len(),
                cache_volume: container.config.cache_volume,
            })
        }
    }
}
