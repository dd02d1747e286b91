//! Live state: Docker events (through the core's watcher) become snapshots, which go to every
//! window as the `snapshot` event and to the tray. Bursts of events coalesce into one refresh.
use std::sync::Arc;

use assemble_core::{watch, Snapshot};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::Notify;

use crate::{state::AppState, tray};

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
        loop {
            dirty.notified().await;
            refresh(&app).await;
        }
    });
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
