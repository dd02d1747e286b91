//! Live state: Docker events (through the core's watcher) become snapshots, which go to every
//! window as the `snapshot` event and to the tray. Bursts of events coalesce into one refresh.
//! Each burst also has the core repair the sidecars (killed, removed, or left behind by a backend
//! that restarted), so the host ports keep working while the app runs.
use std::sync::Arc;

use assemble_core::{keeper, watch, Snapshot};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::Notify;

use crate::state::AppState;

pub fn spawn<R: Runtime>(app: AppHandle<R>) {
    let dirty = Arc::new(Notify::new());
    let repair_due = Arc::new(Notify::new());
    let (watcher_app, watcher_dirty, watcher_repair) = (app.clone(), dirty.clone(), repair_due.clone());
    tauri::async_runtime::spawn(async move {
        let names = watcher_app.state::<AppState>().names.clone();
        // The settings are read at each resolution, so a newly pinned context is followed too.
        let choice_app = watcher_app.clone();
        let choice = move || choice_app.state::<AppState>().settings().engine_choice();
        watch::watch(names, choice, |signal| {
            let state = watcher_app.state::<AppState>();
            match signal {
                watch::Signal::EngineUp(engine) => {
                    if state.set_engine(Some(engine)) {
                        // Another engine: a log follow of the old one ends, the viewer starts anew.
                        state.logs_generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    watcher_dirty.notify_one();
                    watcher_repair.notify_one();
                }
                watch::Signal::Changed => {
                    watcher_dirty.notify_one();
                    watcher_repair.notify_one();
                }
                watch::Signal::EngineLost { engine, error } => {
                    state.set_engine(None);
                    publish(&watcher_app, state.store(state.unavailable(engine, &error)));
                }
            }
            !state.quitting()
        })
        .await;
    });
    let repair_app = app.clone();
    tauri::async_runtime::spawn(async move {
        let state = repair_app.state::<AppState>();
        keeper::repair_whenever(
            &repair_due,
            || state.backend(),
            |result| {
                match result {
                    Ok(repairs) if !repairs.is_empty() => eprintln!(
                        "assemble: repaired the sidecars: removed {:?}, started {:?}",
                        repairs.removed, repairs.started
                    ),
                    Ok(_) => {}
                    // The refresh shows the engine's state; this is for whoever reads the log.
                    Err(err) => eprintln!("assemble: could not repair the sidecars: {err}"),
                }
                !state.quitting()
            },
        )
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
        Err(err) => state.unavailable(None, &err),
    };
    let shown = state.store(snapshot);
    publish(app, shown.clone());
    shown
}

/// Shows `snapshot` in every window (the `snapshot` event) and to the tray, which follows the
/// state's channel.
pub fn publish<R: Runtime>(app: &AppHandle<R>, snapshot: Snapshot) {
    let _ = app.emit("snapshot", &snapshot);
    app.state::<AppState>().show(snapshot);
}
