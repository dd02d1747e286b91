//! Live state: Docker events (through the core's keeper, which also repairs the sidecars after
//! each burst) become snapshots, which go to every window as the `snapshot` event and to the
//! tray. Bursts of events coalesce into one refresh. Everything here ends with Quit.
use assemble_core::{
    backend::builder,
    live::{keeper, status, watch::Signal},
    Backend, Snapshot, State,
};
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::{
    notify,
    state::{Connection, LogViewer, Operations, Shown},
};

pub fn spawn<R: Runtime>(app: AppHandle<R>) {
    let keeper_app = app.clone();
    let keeper = tauri::async_runtime::spawn(async move {
        let (connection, shown) = (keeper_app.state::<Connection>(), keeper_app.state::<Shown>());
        // The settings are read at each resolution, so a newly pinned context is followed too.
        let choice = || connection.settings().engine_choice();
        let on_signal = |signal: Signal| match signal {
            Signal::EngineUp(engine) => {
                if connection.set_engine(Some(engine)) {
                    // Another engine: a log follow of the old one ends, the viewer starts anew.
                    keeper_app.state::<LogViewer>().follow.end();
                }
                shown.refresh_due.notify_one();
            }
            Signal::Changed => shown.refresh_due.notify_one(),
            Signal::EngineLost { engine, error } => {
                connection.set_engine(None);
                let reading = shown.begin_reading();
                show_fresh(&keeper_app, reading, connection.unavailable(engine, &error));
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
        let quit = keeper_app.state::<Operations>().shutdown();
        keeper::keep(connection.names.clone(), choice, || connection.backend(), quit, on_signal, on_repair).await;
    });
    // Quit waits for the keeper, which ends between two repairs.
    app.state::<Operations>().track(keeper);
    tauri::async_runtime::spawn(async move {
        let shown = app.state::<Shown>();
        let mut quit = app.state::<Operations>().shutdown();
        loop {
            tokio::select! {
                () = shown.refresh_due.notified() => {}
                () = quit.recv() => return,
            }
            refresh(&app).await;
        }
    });
}

/// Registers the buildx builder for `backend` (idempotent; a builder that is not ours is left).
pub async fn register_builder(connection: &Connection, backend: &Backend, make_current: bool) {
    let registration = builder::register(&backend.names().backend(), backend.engine().endpoint(), make_current).await;
    connection.set_builder(registration);
}

/// Reads the state now and shows it everywhere.
pub async fn refresh<R: Runtime>(app: &AppHandle<R>) -> Snapshot {
    let (connection, shown) = (app.state::<Connection>(), app.state::<Shown>());
    let reading = shown.begin_reading();
    let (snapshot, backend) = match connection.backend().await {
        Ok(backend) => (status::snapshot(&backend, &connection.settings()).await, Some(backend)),
        Err(err) => (connection.unavailable(None, &err), None),
    };
    // Found running (started before the app, or by the CLI): say how buildx reaches it, aside,
    // then read again to show it.
    if let Some(backend) = backend.filter(|_| snapshot.state == State::Running) {
        if connection.claim_builder_registration() {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                register_builder(&app.state::<Connection>(), &backend, false).await;
                app.state::<Shown>().refresh_due.notify_one();
            });
        }
    }
    show_fresh(app, reading, snapshot)
}

/// Stores a fresh reading and shows it; a loss nobody asked for is also told as a notification
/// while no window is open.
fn show_fresh<R: Runtime>(app: &AppHandle<R>, reading: u64, snapshot: Snapshot) -> Snapshot {
    let (connection, operations, view) = (app.state::<Connection>(), app.state::<Operations>(), app.state::<Shown>());
    let Some(shown) = view.store_reading(reading, snapshot, &connection, &operations) else {
        return view.latest(); // a newer reading is shown already
    };
    if let Some(notice) = operations.loss(&shown) {
        if !operations.quitting() && !notify::any_window_visible(app) {
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
    app.state::<Shown>().show(snapshot);
}
