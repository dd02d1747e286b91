//! Keeping the sidecars true to the backend. Sidecars are derived from the backend's labels: while
//! it runs there is exactly one running sidecar per labelled port, in the backend's *current*
//! network namespace; while it does not run there are none. Docker's restart policy brings both
//! back after an engine restart; this repairs what Docker cannot: a sidecar removed or killed, and
//! sidecars left in the old namespace when the backend restarted without them.
use std::{future::Future, time::Duration};

use serde::Serialize;
use tokio::sync::Notify;

use crate::{
    backend::{Backend, ContainerState, OurContainer, Presence, Sidecar},
    engine::is_not_found,
    error::{Error, Result},
    lock::OperationLock,
    ports::PortSet,
    proxy_image,
    start::Created,
};

/// What a repair changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Repairs {
    /// Sidecars removed: stale, dead, duplicated, for a port no longer wanted, or without a backend.
    pub removed: Vec<String>,
    /// Ports whose sidecar was (re)created.
    pub started: Vec<u16>,
}

impl Repairs {
    /// True when the repair changed nothing.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.started.is_empty()
    }
}

impl Backend {
    /// Makes the sidecars match the backend (see the module doc). Waits for any start or stop in
    /// progress, so it never works against one.
    pub async fn repair(&self) -> Result<Repairs> {
        let _lock = OperationLock::acquire(&self.names, self.engine.endpoint()).await?;
        match self.presence().await? {
            // Not ours: touch nothing, not even sidecars that name it.
            Presence::Foreign => Ok(Repairs::default()),
            Presence::Ours(backend) if backend.running => self.repair_sidecars(&backend).await,
            Presence::Absent | Presence::Ours(_) => {
                let removed = self.remove_sidecars().await?;
                Ok(Repairs { removed: removed.into_iter().map(|s| s.name).collect(), started: Vec::new() })
            }
        }
    }

    /// For a running backend, under the operation lock.
    pub(crate) async fn repair_sidecars(&self, backend: &OurContainer) -> Result<Repairs> {
        let mut repairs = Repairs::default();
        let mut healthy = Vec::new();
        for sidecar in self.sidecars().await? {
            let keep = match sidecar.port {
                Some(port) if backend.config.ports.contains(port) && !healthy.contains(&port) => {
                    self.is_attached(&sidecar, backend).await?
                }
                _ => false,
            };
            if keep {
                healthy.extend(sidecar.port);
            } else {
                self.remove_container(&sidecar.id).await?;
                repairs.removed.push(sidecar.name);
            }
        }
        let missing: Vec<u16> = backend.config.ports.iter().filter(|p| !healthy.contains(p)).collect();
        if missing.is_empty() {
            return Ok(repairs);
        }
        let image = proxy_image::ensure(&self.docker, &crate::progress::silent).await?;
        let mut created = Created::default();
        let ports = PortSet::from_ports(missing.iter().copied());
        let result = self.start_sidecars(backend, &ports, &image, &crate::progress::silent, &mut created).await;
        if let Err(err) = result {
            created.undo(self).await;
            return Err(err);
        }
        repairs.started = missing;
        Ok(repairs)
    }

    /// Running, made for this backend, and started after it: a sidecar started before the
    /// backend's last start still sits in the namespace the backend had then.
    async fn is_attached(&self, sidecar: &Sidecar, backend: &OurContainer) -> Result<bool> {
        if sidecar.state != ContainerState::Running || sidecar.backend_id != backend.id {
            return Ok(false);
        }
        let inspect = match self.docker.inspect_container(&sidecar.id, None).await {
            Ok(inspect) => inspect,
            Err(err) if is_not_found(&err) => return Ok(false),
            Err(err) => return Err(Error::docker(format!("inspecting sidecar {}", sidecar.name))(err)),
        };
        let sidecar_started = inspect.state.and_then(|s| s.started_at);
        Ok(match (sidecar_started.as_deref(), backend.started_at.as_deref()) {
            (Some(sidecar), Some(backend)) => started_after(sidecar, backend),
            // The engine did not say: trust the running state rather than churn.
            _ => true,
        })
    }
}

/// After a failed repair, wait this long before the next (doubling up to [`MAX_PAUSE`]): a repair
/// that fails makes events of its own and would otherwise loop.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// Repairs each time `changed` is notified (bursts coalesce), for as long as `report` returns
/// true. This is what keeps the host ports working while the app runs.
pub async fn repair_whenever<F, Fut>(changed: &Notify, mut backend: F, mut report: impl FnMut(&Result<Repairs>) -> bool)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Backend>>,
{
    let mut pause = FIRST_PAUSE;
    loop {
        changed.notified().await;
        let result = match backend().await {
            Ok(backend) => backend.repair().await,
            Err(err) => Err(err),
        };
        let failed = result.is_err();
        if !report(&result) {
            return;
        }
        if failed {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        } else {
            pause = FIRST_PAUSE;
        }
    }
}

/// `a` is not earlier than `b`, both RFC 3339 times as the engine writes them (UTC, `Z`, up to nine
/// fraction digits with trailing zeros dropped, so plain string order would be wrong).
pub fn started_after(a: &str, b: &str) -> bool {
    match (sortable(a), sortable(b)) {
        (Some(a), Some(b)) => a >= b,
        _ => true,
    }
}

fn sortable(time: &str) -> Option<(String, String)> {
    let time = time.strip_suffix('Z')?;
    let (seconds, fraction) = time.split_once('.').unwrap_or((time, ""));
    if seconds.len() != 19 || !fraction.chars().all(|c| c.is_ascii_digit()) || fraction.len() > 9 {
        return None;
    }
    Some((seconds.to_string(), format!("{fraction:0<9}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_compare_by_value_not_by_text() {
        assert!(started_after("2026-11-22T06:55:29.15Z", "2026-11-22T06:55:29.1Z"));
        assert!(!started_after("2026-11-22T06:55:29.1Z", "2026-11-22T06:55:29.15Z"));
        assert!(started_after("2026-11-22T06:55:30Z", "2026-11-22T06:55:29.999999999Z"));
        assert!(started_after("2026-11-22T06:55:29.5Z", "2026-11-22T06:55:29.5Z"));
        assert!(!started_after("2026-11-22T06:55:29Z", "2026-11-22T06:55:29.000000001Z"));
        // Unreadable times never make us churn sidecars.
        assert!(started_after("yesterday", "2026-11-22T06:55:29Z"));
    }
}
