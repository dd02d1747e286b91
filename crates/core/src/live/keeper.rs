//! The wiring that keeps the host ports working while someone watches: Docker events about our
//! containers (and the engine coming, or coming back) lead to a repair of the sidecars (see
//! [`crate::backend::sidecars`]). The app runs it for as long as it is open, and the soak runs the very same
//! function to meet the faults a user with the app open would meet.
use std::{future::Future, time::Duration};

use tokio::sync::Notify;

use crate::{
    backend::sidecars::Repairs,
    backend::Backend,
    engine::EngineChoice,
    live::watch::{self, Signal},
    names::Names,
    shutdown::Shutdown,
    Result,
};

/// After a failed repair, wait this long before the next (doubling up to [`MAX_PAUSE`]): a repair
/// that fails makes events of its own and would otherwise loop.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// Follows the engine `choice` resolves to (asked again each time, so a changed setting is
/// followed) and repairs the sidecars after each burst of changes to our containers and whenever
/// the engine answers (again), until `shutdown` fires. `on_signal` sees every watcher signal, after
/// the repair it calls for is due; `on_repair` sees the outcome of every repair. `backend` gives the
/// handle to repair with, asked before each repair. A repair under way when `shutdown` fires is
/// finished first: one dropped half-way could leave a running backend without its sidecars.
pub async fn keep<B, Fut>(
    names: Names,
    choice: impl Fn() -> EngineChoice,
    backend: B,
    shutdown: Shutdown,
    mut on_signal: impl FnMut(Signal),
    on_repair: impl FnMut(&Result<Repairs>),
) where
    B: FnMut() -> Fut,
    Fut: Future<Output = Result<Backend>>,
{
    let due = Notify::new();
    let watching = watch::watch(names, choice, |signal| {
        if matches!(signal, Signal::EngineUp(_) | Signal::Changed) {
            due.notify_one();
        }
        on_signal(signal);
        true
    });
    // The watcher creates nothing, so it may be dropped anywhere; the repairs end between two.
    tokio::select! {
        () = watching => {}
        () = repair_whenever(&due, backend, on_repair, shutdown) => {}
    }
}

/// Repairs each time `due` is notified (bursts coalesce into one repair), until `shutdown` fires
/// between two repairs.
async fn repair_whenever<B, Fut>(
    due: &Notify,
    mut backend: B,
    mut on_repair: impl FnMut(&Result<Repairs>),
    mut shutdown: Shutdown,
) where
    B: FnMut() -> Fut,
    Fut: Future<Output = Result<Backend>>,
{
    let mut pause = FIRST_PAUSE;
    loop {
        tokio::select! {
            () = due.notified() => {}
            () = shutdown.recv() => return,
        }
        let result = match backend().await {
            Ok(backend) => backend.repair().await,
            Err(err) => Err(err),
        };
        on_repair(&result);
        if result.is_err() {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shutdown.recv() => return,
            }
            pause = (pause * 2).min(MAX_PAUSE);
        } else {
            pause = FIRST_PAUSE;
        }
    }
}
