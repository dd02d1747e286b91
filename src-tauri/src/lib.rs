//! The Tauri shell: tray, windows and commands over `assemble-core`. No Docker call and no rule
//! lives here; this crate only translates between the core and the UI.
mod actions;
mod build_job;
mod commands;
mod errors;
mod live;
mod log_view;
mod nodes;
mod notify;
mod state;
mod tray;
mod windows;

use state::{AppStates, Operations};
use tauri::{Manager, RunEvent, Runtime};

pub fn run() {
    let builder = tauri::Builder::default()
        // A second launch shows the panel of the first instead of starting another app.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| windows::show(app, windows::Kind::Panel)));
    run_app(builder)
}

pub fn run_app<R: Runtime>(builder: tauri::Builder<R>) {
    let app = build_app(builder, tauri::generate_context!(), AppStates::load())
        .expect("the Tauri application could not be built");
    app.run(|app, event| {
        // Closing every window keeps the tray app running; only Quit ends it.
        if let RunEvent::ExitRequested { api, code: None, .. } = event {
            if !app.state::<Operations>().quitting() {
                api.prevent_exit();
            }
        }
    });
}

/// The app with its plugins, state, commands, tray, live state and (unless `--hidden`) panel.
fn build_app<R: Runtime>(
    builder: tauri::Builder<R>,
    context: tauri::Context<R>,
    states: AppStates,
) -> tauri::Result<tauri::App<R>> {
    let builder = builder
        .plugin(tauri_plugin_shell::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_dialog::init())
        // Off until the user turns it on in Settings; a login start shows only the tray.
        // (~/.config/autostart/assemble-backend.desktop on Linux, as the .deb's desktop entry is named)
        .plugin(tauri_plugin_autostart::Builder::new().app_name("assemble-backend").arg("--hidden").build());
    // Each part of the state is managed on its own, so a command asks only for what it uses.
    states
        .manage(builder)
        .invoke_handler(tauri::generate_handler![
            commands::snapshot,
            commands::uptime,
            commands::refresh,
            commands::start_backend,
            commands::stop_backend,
            commands::restart_backend,
            commands::apply_settings,
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
            log_view::follow_logs,
            log_view::stop_logs,
            log_view::log_rows,
            log_view::log_search,
            log_view::log_match,
            log_view::log_text,
            log_view::clear_logs,
            log_view::save_logs,
            commands::follow_build,
            commands::follow_builds,
            commands::open_window,
            nodes::list_nodes,
            nodes::add_node,
            nodes::remove_node,
            build_job::run_build,
            build_job::cancel_build,
            build_job::build_under_way,
            build_job::choose_path,
        ])
        .setup(|app| {
            tray::create(app.handle())?;
            live::spawn(app.handle().clone());
            // The tray's nodes line, before any window asks for the nodes.
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let _ = nodes::refresh(&handle, Vec::new()).await;
            });
            // Launched by a person: show the panel, as Docker Desktop shows its dashboard.
            // `--hidden` (autostart) keeps only the tray.
            if !std::env::args().any(|a| a == "--hidden") {
                windows::show(app.handle(), windows::Kind::Panel);
            }
            Ok(())
        })
        .build(context)
}

#[cfg(test)]
mod tests {
    use tauri::{
        ipc::{CallbackFn, InvokeBody},
        test::{get_ipc_response, mock_builder, mock_context, noop_assets, INVOKE_KEY},
        webview::InvokeRequest,
        Manager,
    };

    use super::*;

    /// tauri.conf.json names no version, so the app's is the crate's: the workspace's Cargo.toml is
    /// its one source.
    #[test]
    fn the_app_takes_its_version_from_cargo_toml() {
        let context: tauri::Context<tauri::Wry> = tauri::generate_context!();
        assert_eq!(context.package_info().version.to_string(), env!("CARGO_PKG_VERSION"));
    }

    /// The whole app on Tauri's mock runtime: plugins, state, commands, tray and panel.
    #[test]
    fn the_app_builds_with_its_state_commands_tray_and_panel() {
        gtk::init().expect("GTK needs a display: run the tests under xvfb-run, as scripts/test.sh does");
        let state = crate::state::tests::test_state();
        let mut app = build_app(mock_builder(), mock_context(noop_assets()), state).expect("the app builds");
        // Setup runs with the event loop's first turn.
        #[allow(deprecated)]
        app.run_iteration(|_, _| {});
        // The mock runtime keeps no tray icon; the menu items the tray updates are there.
        assert!(app.try_state::<tray::TrayItems<tauri::test::MockRuntime>>().is_some(), "the tray's menu exists");
        let panel = app.get_webview_window("panel").expect("a launch by a person shows the panel");
        let request = InvokeRequest {
            cmd: "snapshot".into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().expect("url"),
            body: InvokeBody::Json(serde_json::json!({})),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        let snapshot = get_ipc_response(&panel, request).expect("the panel may read the snapshot");
        let snapshot = snapshot.deserialize::<serde_json::Value>().expect("json");
        assert_eq!(snapshot["name"], app.state::<state::Connection>().names.backend());
        assert!(snapshot["state_label"].is_string(), "{snapshot}");
        let operations = app.state::<Operations>();
        operations.quit();
        assert!(
            matches!(
                operations.begin(assemble_core::State::Starting, &app.state::<state::Shown>().refresh_due),
                Err(assemble_core::Error::Backend(assemble_core::BackendError::Quitting))
            ),
            "nothing starts once Quit was asked"
        );
    }
}
