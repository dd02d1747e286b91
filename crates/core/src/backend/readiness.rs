//! Waiting for a container of ours (a sidecar, the local-image mirror's front) to print the line
//! that says it is ready, by following its logs: one loop for every such container.
use std::time::Duration;

use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;

use crate::backend::Backend;

/// How the wait ended; everything the container printed comes with a failure.
pub(in crate::backend) enum Readiness {
    /// It printed the ready line.
    Ready,
    /// It printed the failure line, or its logs ended (it exited) first.
    Stopped { printed: String },
    /// Neither within the time allowed.
    TimedOut { printed: String },
}

/// Follows container `id`'s logs until it prints `ready` (ready), or `failed` when given, or exits.
pub(in crate::backend) async fn wait_for_line(
    backend: &Backend,
    id: &str,
    ready: &str,
    failed: Option<&str>,
    limit: Duration,
) -> Readiness {
    let options = LogsOptionsBuilder::default().follow(true).stdout(true).stderr(true).build();
    let mut logs = backend.docker.logs(id, Some(options));
    let mut printed = String::new();
    let outcome = tokio::time::timeout(limit, async {
        while let Some(Ok(chunk)) = logs.next().await {
            printed.push_str(&chunk.to_string());
            if printed.contains(ready) {
                return true;
            }
            if failed.is_some_and(|line| printed.contains(line)) {
                return false;
            }
        }
        false
    })
    .await;
    match outcome {
        Ok(true) => Readiness::Ready,
        Ok(false) => Readiness::Stopped { printed },
        Err(_) => Readiness::TimedOut { printed },
    }
}
