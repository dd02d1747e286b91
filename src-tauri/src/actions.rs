//! Start, stop and restart, shared by the tray and the windows: one at a time, the transient
//! state shown while they run, progress forwarded as `start-progress` events.
use assemble_core::{Error, StartEvent, StartFlags, StartRequest, State};
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::{live, state::AppState};

#[derive(Clone, Copy, Debug)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

/// Runs `action`; the error is the sentence to show.
pub async fn run<R: Runtime>(app: &AppHandle<R>, action: Action) -> Result<(), String> {
    let state = app.state::<AppState>();
    let transient = match action {
        Action::Stop => State::Stopping,
        Action::Start | Action::Restart => State::Starting,
    };
    if !state.begin(transient) {
        return Err("Another start or stop is under way; wait for it to finish.".into());
    }
    live::publish(app, state.store(state.latest()));
    let result = perform(app, &state, action).await;
    state.end();
    live::refresh(app).await;
    if let Err(message) = &result {
        // The failure also shows in every window, not only in the one that asked.
        let _ = app.emit("action-error", message);
    }
    result
}

async fn perform<R: Runtime>(app: &AppHandle<R>, state: &AppState, action: Action) -> Result<(), String> {
    let backend = state.backend().await.map_err(|e| e.to_string())?;
    let report = |event: StartEvent| {
        let _ = app.emit("start-progress", &event);
    };
    let request = || StartRequest::resolve(&StartFlags::default(), &state.settings());
    let outcome: Result<(), Error> = match action {
        Action::Start => match request() {
            Ok(request) => backend.start(&request, &report).await.map(|_| ()),
            Err(err) => Err(err),
        },
        Action::Stop => backend.stop().await.map(|_| ()),
        Action::Restart => match request() {
            Ok(request) => backend.restart(&request, &report).await.map(|_| ()),
            Err(err) => Err(err),
        },
    };
    outcome.map_err(|e| e.to_string())
}
