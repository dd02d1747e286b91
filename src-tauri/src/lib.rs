//! The Tauri shell: tray, windows and commands over `assemble-core`. No Docker call and no rule
//! lives here; this crate only translates between the core and the UI.
mod actions;
mod commands;
mod errors;
mod live;
mod notify;
mod state;
mod tray;
mod windows;

use tauri::{Manager, RunEvent, Runtime};

pub use state::AppState;

pub fn run() {
    let builder = tauri::Builder::default()
        // A second launch shows the panel of the first instead of starting another app.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| windows::show(app, windows::Kind::Panel)));
    run_app(builder)
}

pub fn run_app<R: Runtime>(builder: tauri::Builder<R>) {
    let app = builder
        .plugin(tauri_plugin_shell::init())
        .plugin(tauri_plugin_notification::init())
        // Off until the user turns it on in Settings; a login start shows only the tray.
        // (~/.config/autostart/assemble-backend.desktop on Linux, as the .deb's desktop entry is named)
        .plugin(tauri_plugin_autostart::Builder::new().app_name("assemble-backend").arg("--hidden").build())
        .manage(AppState::load())
        .invoke_handler(tauri::generate_handler![
            commands::snapshot,
            commands::refresh,
            commands::start_backend,
            commands::stop_backend,
            commands::restart_backend,
            commands::purge_preview,
            commands::purge_cache,
            commands::get_settings,
            commands::save_settings,
            commands::action_error,
            commands::autostart,
            commands::set_autostart,
            commands::add_port,
            commands::list_contexts,
            commands::list_volumes,
            commands::follow_logs,
            commands::stop_logs,
            commands::save_text,
            commands::open_window,
        ])
        .setup(|app| {
            tray::create(app.handle())?;
            live::spawn(app.handle().clone());
            // Launched by a person: show the panel, as Docker Desktop shows its dashboard.
            // `--hidden` (autostart) keeps only the tray.
            if !std::env::args().any(|a| a == "--hidden") {
                windows::show(app.handle(), windows::Kind::Panel);
            }
            Ok(())
        })
        .build(tauri::generate_context!())
        .expect("the Tauri application could not be built");
    app.run(|app, event| {
        // Closing every window keeps the tray app running; only Quit ends it.
        if let RunEvent::ExitRequested { api, code: None, .. } = event {
            if !app.state::<AppState>().quitting() {
                api.prevent_exit();
            }
        }
    });
}
