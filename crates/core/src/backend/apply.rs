//! Applying the settings to the backend: live when only the ports differ, else a restart.
use crate::{
    backend::{
        cache,
        progress::Reporter,
        request::{self, StartRequest},
        start::StartOutcome,
        Backend, Presence,
    },
    Result,
};

/// Applies `request` (the settings): a running backend that differs only in its ports takes them
/// live, as a start on it does; any other difference, or a backend that is not running, is a
/// restart (stop, then start). The start is abandoned (and rolled back) when `cancel` completes.
pub(super) async fn run(
    backend: &Backend,
    request: &StartRequest,
    report: Reporter<'_>,
    cancel: impl std::future::Future<Output = ()>,
) -> Result<StartOutcome> {
    let live = match backend.presence().await? {
        Presence::Ours(container) if container.running => {
            let default_volume_exists = cache::default_volume_exists(backend, &request.cache).await?;
            let wanted = request.wanted(&backend.names, default_volume_exists);
            !request::needs_restart(&request::differences(&wanted, &container.config))
        }
        _ => false,
    };
    if live {
        backend.start_until(request, report, cancel).await
    } else {
        backend.restart_until(request, report, cancel).await
    }
}
