//! `stop`: remove the backend and its sidecars. Named cache volumes always stay.
use serde::Serialize;

use crate::{
    backend::lock::OperationLock,
    backend::{Backend, Presence},
    error::{Error, Result},
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

impl Backend {
    /// Removes the backend and every sidecar of ours; named cache volumes stay. Waits for any start
    /// or stop in progress.
    pub async fn stop(&self) -> Result<StopOutcome> {
        let _lock = OperationLock::acquire(&self.names, self.engine.endpoint()).await?;
        match self.presence().await? {
            Presence::Foreign => Err(Error::ForeignContainer { name: self.names.backend() }),
            Presence::Absent => {
                // Sidecars whose backend vanished (e.g. `docker rm -f` of the backend) are ours to clear.
                let removed = self.remove_sidecars().await?;
                Ok(StopOutcome::NotRunning { removed_sidecars: removed.len() })
            }
            Presence::Ours(container) => {
                let sidecars = self.remove_sidecars().await?;
                self.remove_container(&container.id).await?;
                Ok(StopOutcome::Stopped {
                    id: container.id,
                    name: container.name,
                    sidecars: sidecars.len(),
                    cache_volume: container.config.cache_volume,
                })
            }
        }
    }
}

impl Backend {
    /// Applies `request` (the settings): a running backend that differs only in its ports takes
    /// them live, as a start on it does; any other difference, or a backend that is not running,
    /// is a restart (stop, then start).
    pub async fn apply_until(
        &self,
        request: &crate::backend::start::StartRequest,
        report: crate::backend::progress::Reporter<'_>,
        cancel: impl std::future::Future<Output = ()>,
    ) -> Result<crate::backend::start::StartOutcome> {
        let live = match self.presence().await? {
            crate::backend::Presence::Ours(backend) if backend.running => {
                let default_volume_exists = crate::backend::cache::default_volume_exists(self, &request.cache).await?;
                let wanted = request.wanted(&self.names, default_volume_exists);
                !crate::backend::request::needs_restart(&crate::backend::request::differences(&wanted, &backend.config))
            }
            _ => false,
        };
        if live {
            self.start_until(request, report, cancel).await
        } else {
            self.restart_until(request, report, cancel).await
        }
    }

    /// Stop, then start with `request`: how new settings are applied.
    pub async fn restart(
        &self,
        request: &crate::backend::start::StartRequest,
        report: crate::backend::progress::Reporter<'_>,
    ) -> Result<crate::backend::start::StartOutcome> {
        self.restart_until(request, report, std::future::pending()).await
    }

    /// [`Backend::restart`], whose start is abandoned (and rolled back) when `cancel` completes.
    pub async fn restart_until(
        &self,
        request: &crate::backend::start::StartRequest,
        report: crate::backend::progress::Reporter<'_>,
        cancel: impl std::future::Future<Output = ()>,
    ) -> Result<crate::backend::start::StartOutcome> {
        self.stop().await?;
        self.start_until(request, report, cancel).await
    }
}
