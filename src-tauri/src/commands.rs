//! The commands the windows call: thin wrappers over the core; errors arrive as
//! [`CommandError`]s (a sentence in the app's terms and the settings field it is about).
use assemble_core::{
    buildkit::{
        history::{self, Build, BuildRow, BuildStatus, StepGroup, Timing},
        prune::CacheFilter,
    },
    settings,
    time::{self, Uptime},
    CacheTotals, Settings, Snapshot,
};
use serde::Serialize;
use tauri::{ipc::Channel, AppHandle, Manager, Runtime, State};

use crate::{
    actions::{self, Action, Origin},
    errors::{CommandError, Reply},
    live,
    state::{BuildsFollows, Connection, Operations, Shown},
    windows,
};

#[tauri::command]
pub fn snapshot(shown: State<'_, Shown>) -> Snapshot {
    shown.latest()
}

/// Reads the state again now (cache figures change with builds, which are not Docker events).
#[tauri::command]
pub async fn refresh<R: Runtime>(app: AppHandle<R>) -> Snapshot {
    live::refresh(&app).await
}

#[tauri::command]
pub async fn start_backend<R: Runtime>(app: AppHandle<R>) -> Reply<()> {
    actions::run(&app, Action::Start, Origin::Window).await
}

#[tauri::command]
pub async fn stop_backend<R: Runtime>(app: AppHandle<R>) -> Reply<()> {
    actions::run(&app, Action::Stop, Origin::Window).await
}

#[tauri::command]
pub async fn restart_backend<R: Runtime>(app: AppHandle<R>) -> Reply<()> {
    actions::run(&app, Action::Restart, Origin::Window).await
}

/// "Apply now": the settings to the backend, live when only the ports differ, else a restart.
#[tauri::command]
pub async fn apply_settings<R: Runtime>(app: AppHandle<R>) -> Reply<()> {
    actions::run(&app, Action::Apply, Origin::Window).await
}

#[derive(Serialize)]
pub struct PurgePreview {
    entries: usize,
    reclaimable: i64,
    reclaimable_text: String,
}

#[tauri::command]
pub async fn purge_preview(connection: State<'_, Connection>) -> Reply<PurgePreview> {
    let records = connection.backend().await?.cache_usage(&CacheFilter::everything()).await?;
    let totals = CacheTotals::of(&records);
    Ok(PurgePreview {
        entries: totals.reclaimable_entries,
        reclaimable: totals.reclaimable,
        reclaimable_text: assemble_core::units::human_size(totals.reclaimable),
    })
}

#[derive(Serialize)]
pub struct PurgeResult {
    entries: usize,
    freed_text: String,
}

#[tauri::command]
pub async fn purge_cache<R: Runtime>(app: AppHandle<R>) -> Reply<PurgeResult> {
    let removed = app.state::<Connection>().backend().await?.cache_purge(&CacheFilter::everything()).await?;
    live::refresh(&app).await;
    Ok(PurgeResult {
        entries: removed.len(),
        freed_text: assemble_core::units::human_size(removed.iter().map(|r| r.size).sum()),
    })
}

#[derive(Serialize)]
pub struct SettingsView {
    settings: Settings,
    warning: Option<String>,
    default_volume: String,
    default_image: String,
    path: String,
}

#[tauri::command]
pub fn get_settings(connection: State<'_, Connection>) -> SettingsView {
    SettingsView {
        settings: connection.settings(),
        warning: connection.settings_warning(),
        default_volume: connection.names.default_cache_volume(),
        default_image: assemble_core::backend::request::effective_image(
            None,
            &Settings { image: None, ..Settings::default() },
        ),
        path: settings::path().display().to_string(),
    }
}

/// Save: the core saves the settings and applies what can change live (the ports of a running
/// backend); a failure comes with the field it is about.
#[tauri::command]
pub async fn save_settings<R: Runtime>(app: AppHandle<R>, settings: Settings) -> Reply<()> {
    let connection = app.state::<Connection>();
    let saved = settings::save_and_apply(&settings, async {
        // Saved: the windows, and an engine connected from now on, see the new settings.
        connection.set_settings(settings.clone());
        connection.backend().await
    })
    .await;
    live::refresh(&app).await;
    saved?;
    Ok(())
}

/// The last start, stop or restart that failed, for a panel opened after it.
#[tauri::command]
pub fn action_error(operations: State<'_, Operations>) -> Option<CommandError> {
    operations.action_error()
}

/// Docker's contexts and the one docker would use now, for the settings window's engine picker.
#[tauri::command]
pub fn list_contexts() -> assemble_core::engine::ContextPicker {
    assemble_core::engine::context_picker(&assemble_core::engine::Environment::from_process())
}

#[tauri::command]
pub fn add_port(ports: Vec<u16>, typed: String) -> Reply<Vec<u16>> {
    Ok(settings::add_port(&ports, &typed)?)
}

#[tauri::command]
pub async fn list_volumes(connection: State<'_, Connection>) -> Reply<Vec<String>> {
    Ok(connection.backend().await?.volume_names().await?)
}

/// One build and its steps, grouped by platform (one untitled group for a build for one), for
/// the Builds window's detail.
#[derive(Serialize)]
pub struct BuildDetail {
    build: BuildRow,
    groups: Vec<StepGroup>,
    /// Its steps on its time axis (the waterfall), the cached share and the critical path.
    timing: Timing,
}

/// Streams one build's detail to `channel`: a running build's steps as they progress, then its
/// end; a finished build's steps once. Ends when another build is chosen, the window goes away,
/// or the app quits.
#[tauri::command]
pub async fn follow_build(
    follows: State<'_, BuildsFollows>,
    connection: State<'_, Connection>,
    operations: State<'_, Operations>,
    reference: String,
    channel: Channel<BuildDetail>,
) -> Reply<()> {
    let mut superseded = follows.detail.take();
    let backend = connection.backend().await?;
    let mut quit = operations.shutdown();
    let following = backend.follow_build(&reference, |build, steps| {
        let running = build.status == BuildStatus::Running;
        let detail = BuildDetail {
            build: build.row(),
            groups: history::grouped(steps.iter().map(|s| s.row(running)).collect()),
            timing: history::timing(build, steps, time::now_nanos() as f64 / 1e9),
        };
        channel.send(detail).is_ok()
    });
    tokio::select! {
        result = following => Ok(result?),
        () = superseded.wait() => Ok(()),
        () = quit.recv() => Ok(()),
    }
}

/// Streams the backend's builds to `channel`: the list now, then again after every change
/// BuildKit announces, until the window goes away, another follow starts (the window follows
/// again when the backend or its engine changes), or the app quits.
#[tauri::command]
pub async fn follow_builds(
    follows: State<'_, BuildsFollows>,
    connection: State<'_, Connection>,
    operations: State<'_, Operations>,
    channel: Channel<Vec<BuildRow>>,
) -> Reply<()> {
    let mut superseded = follows.list.take();
    let backend = connection.backend().await?;
    let mut quit = operations.shutdown();
    let send = |builds: &[Build]| channel.send(builds.iter().map(Build::row).collect()).is_ok();
    let latest = std::sync::Mutex::new(Vec::<Build>::new());
    let following = backend.follow_builds(|builds| {
        let sent = send(&builds);
        *latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = builds;
        sent
    });
    // A row's "5 minutes ago" is worded when the row is made: the rows go again when the words
    // of one of them change (no sooner, so an idle window is not redrawn for nothing).
    let rewording = async {
        loop {
            let now = assemble_core::time::now_seconds();
            let wait = latest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .filter_map(|b| b.when_changes_in(now))
                .min()
                .unwrap_or(60);
            tokio::time::sleep(std::time::Duration::from_secs(wait.clamp(1, 3600) as u64)).await;
            let builds = latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            if !builds.is_empty() && !send(&builds) {
                return; // the window is gone
            }
        }
    };
    tokio::select! {
        result = following => Ok(result?),
        () = rewording => Ok(()),
        () = superseded.wait() => Ok(()),
        () = quit.recv() => Ok(()),
    }
}

/// How long the backend shown has run, worded now: the panel asks when the words change.
#[tauri::command]
pub fn uptime(shown: State<'_, Shown>) -> Option<Uptime> {
    shown.latest().uptime.at(assemble_core::time::now_nanos())
}

/// Whether the app starts (to the tray) when the user logs in.
#[tauri::command]
pub fn autostart<R: Runtime>(app: AppHandle<R>) -> Reply<bool> {
    use tauri_plugin_autostart::ManagerExt;
    app.autolaunch().is_enabled().map_err(login_item_error)
}

/// Turns starting at login on or off; the app then starts with `--hidden`, to the tray only.
#[tauri::command]
pub fn set_autostart<R: Runtime>(app: AppHandle<R>, enabled: bool) -> Reply<bool> {
    use tauri_plugin_autostart::ManagerExt;
    let launcher = app.autolaunch();
    if enabled { launcher.enable() } else { launcher.disable() }.map_err(login_item_error)?;
    launcher.is_enabled().map_err(login_item_error)
}

fn login_item_error(error: tauri_plugin_autostart::Error) -> CommandError {
    CommandError::plain(format!(
        "Could not change the login item (~/.config/autostart/assemble-backend.desktop): {error}; check that the \
         folder is writable, then try again"
    ))
}

#[tauri::command]
pub fn open_window<R: Runtime>(app: AppHandle<R>, kind: windows::Kind) {
    windows::show(&app, kind);
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tauri::{
        ipc::{CallbackFn, InvokeBody},
        test::{get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY},
        webview::InvokeRequest,
        WebviewWindow, WebviewWindowBuilder,
    };

    fn window() -> (tauri::App<MockRuntime>, WebviewWindow<MockRuntime>) {
        let app = mock_builder()
            .invoke_handler(tauri::generate_handler![super::add_port])
            .build(mock_context(noop_assets()))
            .expect("mock app");
        let window = WebviewWindowBuilder::new(&app, "settings", Default::default()).build().expect("mock window");
        (app, window)
    }

    fn invoke(
        window: &WebviewWindow<MockRuntime>,
        cmd: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, serde_json::Value> {
        let request = InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().expect("url"),
            body: InvokeBody::Json(body),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        get_ipc_response(window, request).map(|r| r.deserialize::<serde_json::Value>().expect("json reply"))
    }

    /// The argument names are the ones the settings window sends, and errors arrive as sentences.
    #[test]
    fn add_port_speaks_the_settings_window_language() {
        let (_app, window) = window();
        assert_eq!(
            invoke(&window, "add_port", json!({"ports": [5000], "typed": "7000,6000"})),
            Ok(json!([5000, 6000, 7000]))
        );
        let refused =
            invoke(&window, "add_port", json!({"ports": [5000], "typed": "abc"})).expect_err("abc is refused");
        assert_eq!(
            refused,
            json!({"message": "\"abc\" is not a port number; type a number from 1 to 65535", "field": "ports"})
        );
        // The window has a list, not a flag: the way out names the list.
        let zero = invoke(&window, "add_port", json!({"ports": [5000], "typed": "0"})).expect_err("0 is refused");
        assert_eq!(zero["message"], "0 is not a port; to proxy no host ports, remove every port from the list");
    }
}
