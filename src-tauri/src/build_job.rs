//! "Build…": the Build window's commands. One build at a time, planned and run by the core
//! (`build::plan`, `build::run`); its `#N` lines stream to the window, and the Builds window is told
//! which build to follow, so it shows the steps live.
use std::sync::Mutex;

use assemble_core::{
    build::{
        plan::{self as build_plan, BuildInput, BuildPlan},
        run as build_run,
        split::{self, NodeRun},
        window::{self as build_window, WindowEntries},
    },
    buildkit::progress::{PlainPrinter, StatusResponse},
    engine::Environment,
    nodes::{self, choice::Share},
    Backend,
};
use serde::{Deserialize, Serialize};
use tauri::{ipc::Channel, AppHandle, Emitter, Manager, Runtime};

use crate::{
    actions::{self, Action, Origin},
    errors::{CommandError, Reply},
    state::{BuildJob, Connection, Operations},
    windows,
};

/// What the Build window's form holds.
#[derive(Debug, Deserialize)]
pub struct BuildForm {
    folder: String,
    /// Image names, separated by commas or spaces.
    names: String,
    push: bool,
    load: bool,
    /// The platforms ticked (none: the backend's own).
    #[serde(default)]
    platforms: Vec<String>,
    /// Secrets, ssh forwarding, the registry caches and the output folder.
    #[serde(default)]
    entries: WindowEntries,
}

/// What the Build window hears while a build runs.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BuildNews {
    /// The backend was not running and was started first.
    BackendStarted,
    /// The build began under this reference.
    Started { reference: String },
    /// Lines as `--progress plain` prints them.
    Lines { lines: Vec<String> },
    /// The failing step's name and last output lines, before the error.
    Failed { report: String },
}

/// The end of a successful build: what it gave, one sentence a line.
#[derive(Debug, Serialize)]
pub struct BuildResult {
    sentences: Vec<String>,
}

/// Plans and runs a build of the form's folder. Checks come first, so a bad entry (a name, the
/// folder, a secret's file, no ssh agent, a cache ref, the output folder) is refused, each beside
/// its field, before anything starts; a stopped backend is started as Start would. A secret's file
/// is read by the core when BuildKit asks for it: its value never comes to the window.
#[tauri::command]
pub async fn run_build<R: Runtime>(
    app: AppHandle<R>,
    form: BuildForm,
    channel: Channel<BuildNews>,
) -> Reply<BuildResult> {
    let (connection, job) = (app.state::<Connection>(), app.state::<BuildJob>());
    let settings = connection.settings();
    let input = BuildInput {
        context: form.folder.trim().into(),
        tags: build_plan::names_from_text(&form.names),
        push: form.push,
        load: form.load,
        platform: (!form.platforms.is_empty()).then(|| form.platforms.join(",")),
        base_images: settings.base_images.clone(),
        ..Default::default()
    };
    // The app's own environment: SSH_AUTH_SOCK for ssh forwarding.
    let plan = build_window::plan(&input, &form.entries, |name| std::env::var(name).ok())
        .map_err(CommandError::in_build_fields)?;
    let Some(_running) = job.begin() else {
        return Err(CommandError::plain("A build is under way; wait for it to end, or cancel it"));
    };
    // Claimed before the backend may start, so a Cancel pressed during the start is not lost:
    // the build then ends as soon as it begins.
    let mut cancel = job.cancelled();
    let backend = connection.backend().await?;
    if backend.running().await.is_err_and(|err| err.is_not_running()) {
        actions::run(&app, Action::Start, Origin::Window).await?;
        let _ = channel.send(BuildNews::BackendStarted);
    }
    let container = backend.running().await?;
    let config_dir = Environment::from_process().config_dir(None).path().to_path_buf();
    let mut quit = app.state::<Operations>().shutdown();
    let canceled = async move {
        tokio::select! {
            () = cancel.wait() => {},
            () = quit.recv() => {},
        }
    };
    let nodes_file = nodes::store::path();
    if let Some(split) = split::shares_for(&backend, &plan, &nodes_file).await.map_err(CommandError::in_build_form)? {
        let runs = split::node_runs(&backend, &container, split).await.map_err(CommandError::in_build_form)?;
        return run_split_build(&app, &backend, runs, &plan, &config_dir, &channel, canceled).await;
    }
    let reference = build_run::new_reference();
    let _ = channel.send(BuildNews::Started { reference: reference.clone() });

    // The same printer as `--progress plain`: the window shows the lines the terminal would.
    let mut printer = PlainPrinter::new();
    let mut announced = false;
    let on_status = |status: &_| {
        let lines = printer.apply(status);
        if !announced {
            // BuildKit has the build in its history now: the Builds window can follow it.
            announced = true;
            windows::show_build(&app, &reference);
        }
        if !lines.is_empty() {
            let _ = channel.send(BuildNews::Lines { lines });
        }
    };
    let result = build_run::run(&backend, &container, &plan, &config_dir, &reference, on_status, canceled).await;
    let lines = printer.finish();
    if !lines.is_empty() {
        let _ = channel.send(BuildNews::Lines { lines });
    }
    // A Build window opened again during the build did not start it: it hears the end here.
    let _ = app.emit_to(windows::Kind::Build.label(), "build-ended", ());
    match result {
        Ok(outcome) => {
            let mut sentences = outcome.sentences(plan.output);
            sentences.push(outcome.transfer_sentence());
            Ok(BuildResult { sentences })
        }
        Err(err) => {
            if let Some(report) = printer.failure_report() {
                let _ = channel.send(BuildNews::Failed { report });
            }
            Err(CommandError::in_build_form(err))
        }
    }
}

/// A build split across the builder's nodes, as `assemble build` splits it: each node's lines
/// come prefixed with its platforms and name, the Builds window follows this engine's part, and
/// the end says which node built what and the index pushed.
async fn run_split_build<R: Runtime>(
    app: &AppHandle<R>,
    local: &Backend,
    runs: Vec<NodeRun>,
    plan: &BuildPlan,
    config_dir: &std::path::Path,
    channel: &Channel<BuildNews>,
    canceled: impl std::future::Future<Output = ()>,
) -> Reply<BuildResult> {
    let local_name = local.engine().endpoint().context.clone();
    let local_part = runs.iter().find(|run| run.share.node == local_name).map(|run| run.reference.clone());
    let first = local_part.clone().or_else(|| runs.first().map(|run| run.reference.clone())).unwrap_or_default();
    let _ = channel.send(BuildNews::Started { reference: first });
    let lines = runs.iter().map(NodeRun::announcement).collect();
    let _ = channel.send(BuildNews::Lines { lines });
    // One printer per node; the Builds window is shown once this engine's part has begun.
    let printers: Mutex<(Vec<(Share, PlainPrinter)>, bool)> =
        Mutex::new((runs.iter().map(|run| (run.share.clone(), PlainPrinter::new())).collect(), false));
    let on_status = |share: &Share, status: &StatusResponse| {
        let Ok(mut guard) = printers.lock() else { return };
        let (printers, announced) = &mut *guard;
        if !*announced && share.node == local_name {
            if let Some(reference) = &local_part {
                *announced = true;
                windows::show_build(app, reference);
            }
        }
        let Some((_, printer)) = printers.iter_mut().find(|(s, _)| s == share) else { return };
        let lines = prefixed(share, printer.apply(status));
        if !lines.is_empty() {
            let _ = channel.send(BuildNews::Lines { lines });
        }
    };
    let result = split::run_split(runs, plan, config_dir, &on_status, canceled).await;
    let _ = app.emit_to(windows::Kind::Build.label(), "build-ended", ());
    // A printer poisoned by a panic loses its last lines, not the build's result.
    let mut guard = printers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (printers, _) = &mut *guard;
    let finished: Vec<String> =
        printers.iter_mut().flat_map(|(share, printer)| prefixed(share, printer.finish())).collect();
    if !finished.is_empty() {
        let _ = channel.send(BuildNews::Lines { lines: finished });
    }
    match result {
        Ok(outcome) => Ok(BuildResult { sentences: outcome.sentences() }),
        Err(err) => {
            let report: Vec<String> = printers
                .iter()
                .filter_map(|(share, printer)| printer.failure_report().map(|r| (share, r)))
                .flat_map(|(share, report)| prefixed(share, report.lines().map(str::to_string).collect()))
                .collect();
            if !report.is_empty() {
                let _ = channel.send(BuildNews::Failed { report: report.join("\n") });
            }
            Err(CommandError::in_build_form(err))
        }
    }
}

/// `lines` of one node's part, each led by whose it is (a blank line stays blank).
fn prefixed(share: &Share, lines: Vec<String>) -> Vec<String> {
    let prefix = split::prefix(share);
    lines.into_iter().map(|line| if line.is_empty() { line } else { format!("{prefix} {line}") }).collect()
}

/// Whether a build of the app runs now (a Build window opened during one offers its Cancel).
#[tauri::command]
pub fn build_under_way(job: tauri::State<'_, BuildJob>) -> bool {
    job.under_way()
}

/// Cancels the build under way, if any; BuildKit stops it.
#[tauri::command]
pub fn cancel_build(job: tauri::State<'_, BuildJob>) {
    job.cancel();
}

/// What a picker of the Build window chooses.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pick {
    /// The folder to build.
    Context,
    /// A folder for the result's files.
    Output,
    /// A secret's file.
    SecretFile,
}

/// The system's file chooser, opened from Rust (the window's capability holds no dialog
/// permission); `None` when the user closed it. Only the path comes back: a secret's file is
/// never read here.
#[tauri::command]
pub async fn choose_path<R: Runtime>(app: AppHandle<R>, pick: Option<Pick>) -> Option<String> {
    use tauri_plugin_dialog::DialogExt;
    let (send, receive) = tokio::sync::oneshot::channel();
    let answer = move |path: Option<tauri_plugin_dialog::FilePath>| {
        let _ = send.send(path.and_then(|f| f.into_path().ok()).map(|p| p.display().to_string()));
    };
    let mut dialog = app.dialog().file();
    // GTK opens on its Recent list otherwise, where a typed folder path cannot be entered.
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        dialog = dialog.set_directory(home);
    }
    match pick.unwrap_or(Pick::Context) {
        Pick::Context => dialog.set_title("Choose the folder to build").pick_folder(answer),
        Pick::Output => dialog.set_title("Choose the folder for the result's files").pick_folder(answer),
        Pick::SecretFile => dialog.set_title("Choose the secret's file").pick_file(answer),
    }
    receive.await.ok().flatten()
}
