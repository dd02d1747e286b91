//! Following the history live: the list of builds, and one build's progress, reported once per
//! burst of BuildKit's messages rather than once per message.
use bollard_buildkit_proto::moby::buildkit::v1::{BuildHistoryRequest, StatusRequest};
use futures_util::StreamExt;

use crate::buildkit::progress::{Decoder, Step};
use crate::buildkit::{
    history::build::{apply_event, Build, BuildStatus},
    status_error, BuildkitClient,
};
use crate::Result;

/// How long a build's record may lag behind the end of its progress.
const ENDING_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a stream must be quiet before what came is reported: BuildKit sends in bursts (a
/// replay, a step's progress), and one report per burst keeps a window from redrawing per message.
const QUIET: std::time::Duration = std::time::Duration::from_millis(50);

/// Feeds `stream`'s messages to `apply`, and calls `report` once at first (even on a quiet
/// stream), then after each burst, until `report` returns false (false) or the stream ends
/// (true). A report is due at the end too, and it is the caller's to make, with what it knows
/// then. Events, not polling: between bursts it waits for the next message without a timer.
async fn in_bursts<T, S>(
    mut stream: tonic::Streaming<T>,
    what: &'static str,
    state: &mut S,
    mut apply: impl FnMut(&mut S, T),
    mut report: impl FnMut(&S) -> bool,
) -> Result<bool> {
    let mut unreported = true;
    loop {
        let next = if unreported {
            match tokio::time::timeout(QUIET, stream.next()).await {
                Ok(next) => next,
                Err(_quiet) => {
                    if !report(state) {
                        return Ok(false);
                    }
                    unreported = false;
                    continue;
                }
            }
        } else {
            stream.next().await
        };
        match next {
            Some(message) => {
                apply(state, message.map_err(status_error(what))?);
                unreported = true;
            }
            None => return Ok(true),
        }
    }
}

/// Follows the builds of the BuildKit `client` reaches: calls `on_list` with the whole list at
/// once and again after every change BuildKit announces (a build started, finished or was
/// removed), until `on_list` returns false or the stream ends. Events, not polling.
pub async fn follow_builds(client: &BuildkitClient, mut on_list: impl FnMut(Vec<Build>) -> bool) -> Result<()> {
    // Each event carries its record: the list is kept from them, not read again.
    let request = BuildHistoryRequest { early_exit: false, ..Default::default() };
    let events =
        client.control().listen_build_history(request).await.map_err(status_error("follow its builds"))?.into_inner();
    let mut builds: Vec<Build> = Vec::new();
    in_bursts(
        events,
        "follow its builds",
        &mut builds,
        |builds, event| apply_event(builds, event.r#type, event.record.as_ref()),
        |builds| on_list(builds.clone()),
    )
    .await
    .map(|_| ())
}

/// Follows one build of the BuildKit `client` reaches: calls `on_detail` with the build and its
/// steps as far as they got, again after every burst of progress while it runs, and once more,
/// with its final record, when it ends; until `on_detail` returns false. A finished build is
/// replayed from its recorded progress and reported once it is all read. Refuses a ref BuildKit
/// does not know.
pub async fn follow_build(
    client: &BuildkitClient,
    reference: &str,
    mut on_detail: impl FnMut(&Build, &[Step]) -> bool,
) -> Result<()> {
    let build = client.find_build(reference).await?;
    let request = StatusRequest { r#ref: build.reference.clone() };
    let stream = client.control().status(request).await.map_err(status_error("follow the build"))?.into_inner();
    let mut decoder = Decoder::new();
    let running = build.status == BuildStatus::Running;
    let ended = in_bursts(
        stream,
        "follow the build",
        &mut decoder,
        |decoder, response| {
            decoder.apply(&response);
        },
        // A finished build's replay is shown whole, not in the bursts it happens to arrive in.
        |decoder| !running || on_detail(&build, decoder.steps()),
    )
    .await?;
    if ended {
        // How it ended (and how long it took), from its record; what waited for more is whole now.
        let last = client.ended(build, ENDING_PATIENCE).await;
        decoder.finish();
        on_detail(&last, decoder.steps());
    }
    Ok(())
}
