//! Live state: Docker events (through the core's keeper, which also repairs the sidecars after
//! each burst) become snapshots, which go to every window as the `snapshot` event and to the
//! tray. Bursts of events coalesce into one refresh. Everything here ends with Quit.
use assemble_core::{keeper, watch::Signal, Snapshot};
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::{notify, state::AppState};

pub fn spawn<R: Runtime>(app: AppHandle<R>) {
    let keeper_app = app.clone();
    let keeper = tauri::async_runtime::spawn(async move {
        let state = keeper_app.state::<AppState>();
        // The settings are read at each resolution, so a newly pinned context is followed too.
        let choice = || state.settings().engine_choice();
        let on_signal = |signal: Signal| match signal {
            Signal::EngineUp(engine) => {
                if state.set_engine(Some(engine)) {
                    // Another engine: a log follow of the old one ends, the viewer starts anew.
                    state.logs_generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                state.refresh_due.notify_one();
            }
            Signal::Changed => state.refresh_due.notify_one(),
            Signal::EngineLost { engine, error } => {
                state.set_engine(None);
                show_fresh(&keeper_app, state.unavailable(engine, &error));
            }
        };
        let on_repair = |result: &assemble_core::Result<assemble_core::sidecars::Repairs>| match result {
            Ok(repairs) if !repairs.is_empty() => eprintln!(
                "assemble: repaired the sidecars: removed {:?}, started {:?}",
                repairs.removed, repairs.started
            ),
            Ok(_) => {}
            // The refresh shows the engine's state; this is for whoever reads the log.
            Err(err) => eprintln!("assemble: could not repair the sidecars: {err}"),
        };
        keeper::keep(state.names.clone(), choice, || state.backend(), state.shutdown(), on_signal, on_repair).await;
    });
    // Quit waits for the keeper, which ends between two repairs.
    app.state::<AppState>().track(keeper);
    tauri::async_runtime::spawn(async move {
        let state = app.state::<AppState>();
        let mut quit = state.shutdown();
        loop {
            tokio::select! {
                () = state.refresh_due.notified() => {}
                () = quit.recv() => return,
            }
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
    show_fresh(app, snapshot)
}

/// Stores a fresh reading and shows it; a loss nobody asked for is also told as a notification
/// while no window is open.
fn show_fresh<R: Runtime>(app: &AppHandle<R>, snapshot: Snapshot) -> Snapshot {
    let state = app.state::<AppState>();
    let shown = state.store(snapshot);
    if let Some(notice) = state.loss(&shown) {
        if !state.quitting() && !notify::any_window_visible(app) {
            notify::show(app, &notice.title, &notice.body);
        }
    }
    publish(app, shown.clone());
    shown
}

/// Shows `snapshot` in every window (the `snapshot` event) and to the tray, which follows the
/// state's channel.
pub fn publish<R: Runtime>(app: &AppHandle<R>, snapshot: Snapshot) {
    let _ = app.emit("snapshot", &snapshot);
    app.state::<AppState>().show(snapshot);
}
