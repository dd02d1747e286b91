//! Live state: Docker events (through the core's watcher) become snapshots, which go to every
//! window as the `snapshot` event and to the tray. Bursts of events coalesce into one refresh.
//! Before each refresh the core repairs the sidecars (killed, removed, or left behind by a backend
//! that restarted), so the app keeps the host ports working while it runs.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use assemble_core::{watch, Snapshot};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::Notify;

use crate::{state::AppState, tray};

const REPAIR_PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(10);

pub fn spawn<R: Runtime>(app: AppHandle<R>) {
    let dirty = Arc::new(Notify::new());
    let (watcher_app, watcher_dirty) = (app.clone(), dirty.clone());
    tauri::async_runtime::spawn(async move {
        let names = watcher_app.state::<AppState>().names.clone();
        watch::watch(names, |signal| {
            let state = watcher_app.state::<AppState>();
            match signal {
                watch::Signal::EngineUp(docker) => {
                    state.set_engine(Some(docker));
                    watcher_dirty.notify_one();
                }
                watch::Signal::Changed => watcher_dirty.notify_one(),
                watch::Signal::EngineLost(err) => {
                    state.set_engine(None);
                    publish(&watcher_app, state.store(state.unavailable(&err)));
                }
            }
            !state.quitting()
        })
        .await;
    });
    tauri::async_runtime::spawn(async move {
        let mut failed_at: Option<Instant> = None;
        loop {
            dirty.notified().await;
            // A repair that fails makes events of its own; without a pause it would loop.
            if failed_at.is_none_or(|at| at.elapsed() >= REPAIR_PAUSE_AFTER_FAILURE) {
                failed_at = (!repair(&app).await).then(Instant::now);
            }
            refresh(&app).await;
        }
    });
}

/// Whether the repair succeeded (or there was no engine to repair on).
async fn repair<R: Runtime>(app: &AppHandle<R>) -> bool {
    let state = app.state::<AppState>();
    let Ok(backend) = state.backend().await else { return true };
    match backend.repair().await {
        Ok(repairs) => {
            if !repairs.is_empty() {
                eprintln!(
                    "assemble: repaired the sidecars: removed {:?}, started {:?}",
                    repairs.removed, repairs.started
                );
            }
            true
        }
        // The refresh that follows shows the engine's state; nothing more to say here.
        Err(err) => {
            eprintln!("assemble: could not repair the sidecars: {err}");
            false
        }
    }
}

/// Reads the state now and shows it everywhere.
pub async fn refresh<R: Runtime>(app: &AppHandle<R>) -> Snapshot {
    let state = app.state::<AppState>();
    let snapshot = match state.backend().await {
        Ok(backend) => backend.snapshot(&state.settings()).await,
        Err(err) => state.unavailable(&err),
    };
    let shown = state.store(snapshot);
    publish(app, shown.clone());
    shown
}

pub fn publish<R: Runtime>(app: &AppHandle<R>, snapshot: Snapshot) {
    tray::update(app, &snapshot);
    let _ = app.emit("snapshot", &snapshot);
}
