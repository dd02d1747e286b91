//! Live state: Docker events (through the core's keeper, which also repairs the sidecars after
//! each burst) become snapshots, which go to every window as the `snapshot` event and to the
//! tray. Bursts of events coalesce into one refresh. Everything here ends with Quit.
use assemble_core::{
    backend::builder,
    live::{keeper, status, watch::Signal},
    Backend, Snapshot, State,
};
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
                    state.logs_follow.end();
                }
                state.refresh_due.notify_one();
            }
            Signal::Changed => state.refresh_due.notify_one(),
            Signal::EngineLost { engine, error } => {
                state.set_engine(None);
                let reading = state.begin_reading();
                show_fresh(&keeper_app, reading, state.unavailable(engine, &error));
            }
        };
        let on_repair = |result: &assemble_core::Result<assemble_core::backend::sidecars::Repairs>| match result {
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

/// Registers the buildx builder for `backend` (idempotent; a builder that is not ours is left).
pub async fn register_builder(state: &AppState, backend: &Backend, make_current: bool) {
    let registration = builder::register(&backend.names().backend(), backend.engine().endpoint(), make_current).await;
    state.set_builder(registration);
}

/// Reads the state now and shows it everywhere.
pub async fn refresh<R: Runtime>(app: &AppHandle<R>) -> Snapshot {
    let state = app.state::<AppState>();
    let reading = state.begin_reading();
    let (snapshot, backend) = match state.backend().await {
        Ok(backend) => (status::snapshot(&backend, &state.settings()).await, Some(backend)),
        Err(err) => (state.unavailable(None, &err), None),
    };
    // Found running (started before the app, or by the CLI): say how buildx reaches it, aside,
    // then read again to show it.
    if let Some(backend) = backend.filter(|_| snapshot.state == State::Running) {
        if state.claim_builder_registration() {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let state = app.state::<AppState>();
                register_builder(&state, &backend, false).await;
                state.refresh_due.notify_one();
            });
        }
    }
    show_fresh(app, reading, snapshot)
}

/// Stores a fresh reading and shows it; a loss nobody asked for is also told as a notification
/// while no window is open.
fn show_fresh<R: Runtime>(app: &AppHandle<R>, reading: u64, snapshot: Snapshot) -> Snapshot {
    let state = app.state::<AppState>();
    let Some(shown) = state.store_reading(reading, snapshot) else {
        return state.latest(); // a newer reading is shown already
    };
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
