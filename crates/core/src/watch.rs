//! Live state: Docker events about our containers, and the engine going away and coming back.
//! Events, not polling; only reconnecting to a lost engine retries on a timer.
use std::{collections::HashMap, time::Duration};

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;

use crate::{error::Error, labels, names::Names};

/// How often a lost engine is tried again.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

const LIFECYCLE: [&str; 10] =
    ["create", "start", "restart", "die", "stop", "kill", "destroy", "pause", "unpause", "oom"];

#[derive(Debug)]
pub enum Signal {
    /// The engine answers (at first, and after it was lost).
    EngineUp(bollard::Docker),
    /// Something happened to one of our containers.
    Changed,
    EngineLost(Error),
}

/// Runs until `on` returns false. Calls it with every signal, in order.
pub async fn watch(names: Names, mut on: impl FnMut(Signal) -> bool) {
    let filters = HashMap::from([
        ("type".to_string(), vec!["container".to_string()]),
        // Lifecycle only: exec events (ours, to reach BuildKit) would make every refresh trigger the next.
        ("event".to_string(), LIFECYCLE.iter().map(|e| e.to_string()).collect()),
        ("label".to_string(), vec![format!("{}={}", labels::OWNER, names.user())]),
    ]);
    loop {
        let docker = match crate::engine::connect().await {
            Ok(docker) => docker,
            Err(err) => {
                if !on(Signal::EngineLost(err)) {
                    return;
                }
                tokio::time::sleep(RECONNECT_EVERY).await;
                continue;
            }
        };
        let mut events = docker.events(Some(EventsOptionsBuilder::default().filters(&filters).build()));
        if !on(Signal::EngineUp(docker.clone())) {
            return;
        }
        let lost = loop {
            match events.next().await {
                Some(Ok(_)) => {
                    if !on(Signal::Changed) {
                        return;
                    }
                }
                Some(Err(err)) => break Error::docker("following Docker events")(err),
                None => break Error::DockerUnavailable("The Docker Engine closed the event stream.".into()),
            }
        };
        if !on(Signal::EngineLost(lost)) {
            return;
        }
        tokio::time::sleep(RECONNECT_EVERY).await;
    }
}
