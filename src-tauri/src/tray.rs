//! The tray: an icon per state, a status line, and the actions that make sense now.
use assemble_core::{Snapshot, State};
use tauri::{
    image::Image,
    menu::{Menu, MenuItem, PredefinedMenuItem},
    tray::TrayIconBuilder,
    AppHandle, Manager, Runtime,
};

use crate::{
    actions::{self, Action, Origin},
    notify,
    state::{Operations, Shown},
    windows::{self, Kind},
};

const TRAY_ID: &str = "main";

/// The menu items we change as the state changes.
pub struct TrayItems<R: Runtime> {
    status: MenuItem<R>,
    engine: MenuItem<R>,
    start: MenuItem<R>,
    stop: MenuItem<R>,
    restart: MenuItem<R>,
}

pub fn create<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let status = MenuItem::with_id(app, "status", "Backend: …", false, None::<&str>)?;
    let engine = MenuItem::with_id(app, "engine", "Engine: …", false, None::<&str>)?;
    let nodes = MenuItem::with_id(app, "nodes", "Nodes: …", false, None::<&str>)?;
    let start = MenuItem::with_id(app, "start", "Start", false, None::<&str>)?;
    let stop = MenuItem::with_id(app, "stop", "Stop", false, None::<&str>)?;
    let restart = MenuItem::with_id(app, "restart", "Restart", false, None::<&str>)?;
    let panel = MenuItem::with_id(app, "panel", "Open panel", true, None::<&str>)?;
    let settings = MenuItem::with_id(app, "settings", "Settings…", true, None::<&str>)?;
    let logs = MenuItem::with_id(app, "logs", "Logs…", true, None::<&str>)?;
    let builds = MenuItem::with_id(app, "builds", "Builds…", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &status,
            &engine,
            &nodes,
            &PredefinedMenuItem::separator(app)?,
            &start,
            &stop,
            &restart,
            &PredefinedMenuItem::separator(app)?,
            &panel,
            &settings,
            &logs,
            &builds,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(State::Stopped)?)
        .tooltip("Assemble Backend")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| on_menu(app, event.id().as_ref()))
        .build(app)?;
    app.manage(TrayItems { status, engine, start, stop, restart });
    // The nodes line is written by the nodes module whenever it lists them.
    app.manage(crate::nodes::NodesItem(nodes));
    // The tray follows the snapshots the app shows, so that what publishes them needs no tray.
    let mut shown = app.state::<Shown>().follow_shown();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut quit = app.state::<Operations>().shutdown();
        loop {
            tokio::select! {
                changed = shown.changed() => if changed.is_err() { return },
                () = quit.recv() => return,
            }
            let snapshot = shown.borrow_and_update().clone();
            update(&app, &snapshot);
        }
    });
    Ok(())
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let action = match id {
        "start" => Action::Start,
        "stop" => Action::Stop,
        "restart" => Action::Restart,
        "panel" => return windows::show(app, Kind::Panel),
        "settings" => return windows::show(app, Kind::Settings),
        "logs" => return windows::show(app, Kind::Logs),
        "builds" => return windows::show(app, Kind::Builds),
        "quit" => return quit(app),
        _ => return,
    };
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        // A failure is shown as a notification, in the panel (`action-error`) and in the status line.
        let _ = actions::run(&app, action, Origin::Tray).await;
    });
}

/// How long Quit waits for a start under way to roll back and a repair to finish. A cancelled
/// start is heard at once in its waits, so this is only reached when the engine stops answering.
const QUIT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Ends the app once no operation and no repair is under way: a start is told to roll back, and
/// the process exits only after it did, so no half-made backend is left.
fn quit<R: Runtime>(app: &AppHandle<R>) {
    app.state::<Operations>().quit();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if app.state::<Operations>().wind_down(QUIT_WAIT).await {
            app.exit(0);
        } else {
            notify::show(
                &app,
                "Assemble Backend quit before its work ended",
                "A start or a repair did not end within a minute; run `assemble backend info` to see \
                 what is left, and `assemble backend stop` to remove it.",
            );
            app.exit(1);
        }
    });
}

fn update<R: Runtime>(app: &AppHandle<R>, snapshot: &Snapshot) {
    if let Some(items) = app.try_state::<TrayItems<R>>() {
        let _ = items.status.set_text(&snapshot.status_line);
        let _ = items.engine.set_text(&snapshot.engine_line);
        let _ = items.start.set_enabled(snapshot.can_start);
        let _ = items.stop.set_enabled(snapshot.can_stop);
        let _ = items.restart.set_enabled(snapshot.can_restart);
    }
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        if let Ok(image) = icon(snapshot.state) {
            let _ = tray.set_icon(Some(image));
        }
        let _ = tray.set_tooltip(Some(format!("{}\n{}", snapshot.status_line, snapshot.engine_line)));
    }
}

fn icon(state: State) -> tauri::Result<Image<'static>> {
    let bytes: &'static [u8] = match state {
        State::Stopped | State::Stopping => include_bytes!("../../icons/tray-stopped.png"),
        State::Starting => include_bytes!("../../icons/tray-starting.png"),
        State::Running => include_bytes!("../../icons/tray-running.png"),
        State::Error => include_bytes!("../../icons/tray-error.png"),
        State::DockerUnavailable => include_bytes!("../../icons/tray-unavailable.png"),
    };
    Image::from_bytes(bytes)
}
