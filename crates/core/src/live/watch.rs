//! Live state: Docker events about our containers, the engine going away and coming back, and the
//! engine changing under us (Docker Desktop makes its context current when it starts, and undoes
//! that when it stops). Events, not polling: only the engine's resolution is read again on a timer
//! (two small local files), and a lost engine is retried on one.
use std::{collections::HashMap, time::Duration};

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;

use crate::{
    backend::labels,
    engine::{error::EngineError, resolve, Engine, EngineChoice, EngineView, Environment},
    names::Names,
    Error,
};

/// How often a lost engine is tried again.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);
/// How often the engine is resolved again, to follow `docker context use` and the like.
const RESOLVE_EVERY: Duration = Duration::from_secs(1);

const LIFECYCLE: [&str; 10] =
    ["create", "start", "restart", "die", "stop", "kill", "destroy", "pause", "unpause", "oom"];

/// What the watcher reports.
#[derive(Debug)]
pub enum Signal {
    /// The engine answers: at first, after it was lost, and after a switch to another engine.
    EngineUp(Engine),
    /// Something happened to one of our containers.
    Changed,
    /// The engine cannot be reached, or not even found; `engine` says which, when known.
    EngineLost {
        /// The engine that was tried, when resolution got that far.
        engine: Option<EngineView>,
        /// Why it is lost.
        error: Error,
    },
}

/// Runs until `on` returns false. Calls it with every signal, in order. `choice` is asked for the
/// user's engine options each time the engine is resolved, so a changed setting is followed too.
pub async fn watch(names: Names, choice: impl Fn() -> EngineChoice, mut on: impl FnMut(Signal) -> bool) {
    let filters = HashMap::from([
        ("type".to_string(), vec!["container".to_string()]),
        // Lifecycle only: exec events (ours, to reach BuildKit) would make every refresh trigger the next.
        ("event".to_string(), LIFECYCLE.iter().map(|e| e.to_string()).collect()),
        ("label".to_string(), vec![format!("{}={}", labels::OWNER, names.user())]),
    ]);
    loop {
        let endpoint = match resolve(&choice(), &Environment::from_process()) {
            Ok(endpoint) => endpoint,
            Err(error) => {
                if !on(Signal::EngineLost { engine: None, error }) {
                    return;
                }
                tokio::time::sleep(RECONNECT_EVERY).await;
                continue;
            }
        };
        let view = endpoint.view();
        let engine = match Engine::connect_to(endpoint.clone()).await {
            Ok(engine) => engine,
            Err(error) => {
                if !on(Signal::EngineLost { engine: Some(view), error }) {
                    return;
                }
                tokio::time::sleep(RECONNECT_EVERY).await;
                continue;
            }
        };
        let mut events = engine.docker().events(Some(EventsOptionsBuilder::default().filters(&filters).build()));
        if !on(Signal::EngineUp(engine)) {
            return;
        }
        let mut recheck = tokio::time::interval(RESOLVE_EVERY);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        recheck.tick().await;
        let lost = loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(_)) => {
                        if !on(Signal::Changed) {
                            return;
                        }
                    }
                    Some(Err(err)) => break Some(Error::docker("following Docker events")(err)),
                    None => break Some(EngineError::EventStreamClosed.into()),
                },
                _ = recheck.tick() => {
                    let now = resolve(&choice(), &Environment::from_process());
                    if !now.is_ok_and(|now| now.same_target(&endpoint)) {
                        // Another engine (or none) now: connect to it at once.
                        break None;
                    }
                }
            }
        };
        if let Some(error) = lost {
            if !on(Signal::EngineLost { engine: Some(view), error }) {
                return;
            }
            tokio::time::sleep(RECONNECT_EVERY).await;
        }
    }
}
