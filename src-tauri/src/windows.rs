//! The windows, made on first use and shown again afterwards.
use serde::Deserialize;
use tauri::{AppHandle, Emitter, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Panel,
    Settings,
    Logs,
    Builds,
    Build,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Panel => "panel",
            Kind::Settings => "settings",
            Kind::Logs => "logs",
            Kind::Builds => "builds",
            Kind::Build => "build",
        }
    }

    fn page(self) -> &'static str {
        match self {
            Kind::Panel => "panel.html",
            Kind::Settings => "settings.html",
            Kind::Logs => "logs.html",
            Kind::Builds => "builds.html",
            Kind::Build => "build.html",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Panel => "Assemble Backend",
            Kind::Settings => "Assemble Backend Settings",
            Kind::Logs => "Assemble Backend Logs",
            Kind::Builds => "Assemble Backend Builds",
            Kind::Build => "Assemble Backend Build",
        }
    }

    fn size(self) -> (f64, f64) {
        match self {
            Kind::Panel => (760.0, 720.0),
            Kind::Settings => (700.0, 720.0),
            Kind::Logs => (980.0, 640.0),
            Kind::Builds => (1000.0, 700.0),
            Kind::Build => (760.0, 820.0),
        }
    }
}

pub fn show<R: Runtime>(app: &AppHandle<R>, kind: Kind) {
    show_at(app, kind, None);
}

/// Shows the Builds window on one build: an open window is told (`select-build`); a new one gets
/// the build in its address, as its page cannot hear an event before it has loaded.
pub fn show_build<R: Runtime>(app: &AppHandle<R>, reference: &str) {
    if app.get_webview_window(Kind::Builds.label()).is_some() {
        show(app, Kind::Builds);
        let _ = app.emit_to(Kind::Builds.label(), "select-build", reference);
    } else {
        show_at(app, Kind::Builds, Some(reference));
    }
}

fn show_at<R: Runtime>(app: &AppHandle<R>, kind: Kind, fragment: Option<&str>) {
    if let Some(window) = app.get_webview_window(kind.label()) {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
        return;
    }
    let (width, height) = kind.size();
    let page = match fragment {
        Some(fragment) => format!("{}#{fragment}", kind.page()),
        None => kind.page().to_string(),
    };
    let built = WebviewWindowBuilder::new(app, kind.label(), WebviewUrl::App(page.into()))
        .title(kind.title())
        .inner_size(width, height)
        .min_inner_size(480.0, 360.0)
        .build();
    match built {
        Ok(window) => {
            render_without_compositing(&window);
            if matches!(kind, Kind::Logs) {
                // The lines start coming while the page loads, and stop when the window goes
                // (also when its page never said so).
                crate::log_view::offer_feed(app);
                let app = app.clone();
                window.on_window_event(move |event| {
                    if matches!(event, tauri::WindowEvent::Destroyed) {
                        app.state::<crate::state::LogViewer>().end_feed();
                    }
                });
            }
        }
        Err(err) => eprintln!("assemble-backend: could not open the {} window: {err}", kind.label()),
    }
}

/// Our windows are text, tables and buttons: WebKit's accelerated compositing gains them nothing
/// and, with no GPU (software GL), costs each window's web process about 80 MiB and several times
/// the CPU per frame (docs/benchmarks.md §5–6), so it is off.
#[cfg(target_os = "linux")]
fn render_without_compositing<R: Runtime>(window: &tauri::WebviewWindow<R>) {
    let turned_off = window.with_webview(|webview| {
        use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
        if let Some(settings) = webview.inner().settings() {
            settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
        }
    });
    if let Err(err) = turned_off {
        eprintln!("assemble-backend: could not set the {} window's rendering: {err}", window.label());
    }
}

#[cfg(not(target_os = "linux"))]
fn render_without_compositing<R: Runtime>(_window: &tauri::WebviewWindow<R>) {}
