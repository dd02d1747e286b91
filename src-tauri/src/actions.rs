//! Start, stop and restart, shared by the tray and the windows: one at a time, the transient
//! state shown while they run, progress forwarded as `start-progress` events, and a failure shown
//! in every window (`action-error`) and, when no window asked, as a desktop notification.
use assemble_core::{nodes as core_nodes, Error, StartEvent, StartFlags, StartRequest, State};
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::{
    errors::CommandError,
    live, nodes, notify,
    state::{Connection, Operations, Shown},
};

#[derive(Clone, Copy, Debug)]
pub enum Action {
    Start,
    Stop,
    Restart,
    /// Apply the settings: live when only the ports differ, else a restart.
    Apply,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Apply => "apply the settings to",
        }
    }
}

/// Who asked: a window shows its own failure; the tray has no place for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Tray,
    Window,
}

/// Runs `action`. A Quit during a start makes it roll back before the app exits.
pub async fn run<R: Runtime>(app: &AppHandle<R>, action: Action, origin: Origin) -> Result<(), CommandError> {
    let (connection, shown, operations) = (app.state::<Connection>(), app.state::<Shown>(), app.state::<Operations>());
    let transient = match action {
        Action::Stop => State::Stopping,
        Action::Start | Action::Restart | Action::Apply => State::Starting,
    };
    let operation = operations.begin(transient, &shown.refresh_due)?;
    // A new attempt clears the last failure everywhere.
    operations.set_action_error(None);
    let _ = app.emit("action-error", None::<CommandError>);
    live::publish(app, shown.store(shown.latest(), &connection, &operations));
    let result = perform(app, &connection, &operations, action).await.map_err(CommandError::from);
    drop(operation);
    live::refresh(app).await;
    if let Err(error) = &result {
        operations.set_action_error(Some(error.clone()));
        let _ = app.emit("action-error", Some(error));
        if origin == Origin::Tray || !notify::any_window_visible(app) {
            notify::show(app, &format!("Could not {} the backend", action.verb()), &error.message);
        }
    }
    result
}

async fn perform<R: Runtime>(
    app: &AppHandle<R>,
    connection: &Connection,
    operations: &Operations,
    action: Action,
) -> Result<(), Error> {
    let backend = connection.backend().await?;
    let report = |event: StartEvent| {
        let _ = app.emit("start-progress", &event);
    };
    let request = || StartRequest::resolve(&StartFlags::default(), &connection.settings());
    let mut quit = operations.shutdown();
    let nodes_file = core_nodes::store::path();
    match action {
        Action::Start => backend.start_until(&request()?, &report, quit.recv()).await?,
        Action::Stop => {
            backend.stop().await?;
            // As `assemble backend stop`: every node too; one that does not answer holds none up.
            let reports = core_nodes::stop_all(&backend, &nodes_file).await?;
            let _ = nodes::refresh(app, nodes::problems(&reports)).await;
            return Ok(());
        }
        Action::Restart => backend.restart_until(&request()?, &report, quit.recv()).await?,
        Action::Apply => backend.apply_until(&request()?, &report, quit.recv()).await?,
    };
    // As `assemble backend start` does: the backend is also the buildx builder "assemble".
    live::register_builder(connection, &backend, connection.settings().use_builder).await;
    let problems = match action {
        Action::Start | Action::Restart => {
            nodes::problems(&core_nodes::start_all(&backend, &request()?, &nodes_file).await?)
        }
        Action::Stop | Action::Apply => Vec::new(),
    };
    let _ = nodes::refresh(app, problems).await;
    Ok(())
}
