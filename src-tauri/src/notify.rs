//! Desktop notifications (org.freedesktop.Notifications on Linux), for what the user should know
//! while no window shows it.
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;

/// Shows a notification; a desktop without a notification service only loses the notice, which
/// the panel and the tray show too.
pub fn show<R: Runtime>(app: &AppHandle<R>, title: &str, body: &str) {
    if let Err(err) = app.notification().builder().title(title).body(body).show() {
        eprintln!("assemble-backend: could not show the notification {title:?}: {err}");
    }
}

/// Whether any of our windows is on screen.
pub fn any_window_visible<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.webview_windows().values().any(|window| window.is_visible().unwrap_or(false))
}
