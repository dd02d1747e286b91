//! The backend's builds, from BuildKit's own history (`Control.ListenBuildHistory`): every build
//! any client ran here (buildx, buildctl, our CLI), finished or running, newest first. BuildKit
//! keeps the history in its state folder, so it lives as long as the cache volume does.
use std::collections::HashMap;

use bollard_buildkit_proto::{
    google::protobuf::Timestamp,
    moby::buildkit::v1::{
        BuildHistoryEventType, BuildHistoryRecord, BuildHistoryRequest, StatusRequest, StatusResponse,
    },
};
use futures_util::StreamExt;
use serde::Serialize;

use crate::buildkit::{status_error, BuildkitClient};
use crate::error::{Error, Result};

/// A build's outcome, in buildx's words (`docker buildx history ls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BuildStatus {
    /// Still running.
    Running,
    /// Finished without an error.
    Completed,
    /// Failed.
    Error,
    /// Cancelled by its client.
    Canceled,
}

impl BuildStatus {
    /// The word buildx prints.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Running => "Running",
            BuildStatus::Completed => "Completed",
            BuildStatus::Error => "Error",
            BuildStatus::Canceled => "Canceled",
        }
    }
}

/// One build, with the keys of `docker buildx history ls --format json` plus `error`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Build {
    /// BuildKit's build ref (the last part of buildx's `builder/node/ref`).
    #[serde(rename = "ref")]
    pub reference: String,
    /// The image names it exported, else its Dockerfile (and target).
    pub name: String,
    /// How it ended, or that it runs.
    pub status: BuildStatus,
    /// When it began (RFC 3339, UTC).
    pub created_at: Option<String>,
    /// When it ended.
    pub completed_at: Option<String>,
    /// Steps in the build.
    pub total_steps: i32,
    /// Steps done (run or cached).
    pub completed_steps: i32,
    /// Steps taken from the cache.
    pub cached_steps: i32,
    /// Why it failed.
    pub error: Option<String>,
    /// The image names it exported (tags), if any.
    #[serde(skip)]
    pub tags: Vec<String>,
    /// When it began, in seconds since the epoch: for sorting and durations.
    #[serde(skip)]
    pub created_seconds: f64,
    /// The end, in seconds since the epoch.
    #[serde(skip)]
    pub completed_seconds: Option<f64>,
}

impl Build {
    /// How long it took, in seconds; `None` while it runs.
    pub fn duration_seconds(&self) -> Option<f64> {
        self.completed_seconds.map(|end| end - self.created_seconds)
    }
}

/// A build as the Builds window shows it: every text made here, none in the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildRow {
    /// BuildKit's ref.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The name.
    pub name: String,
    /// `Running`, `Completed`, `Error` or `Canceled`.
    pub status: BuildStatus,
    /// The image names it exported.
    pub tags: Vec<String>,
    /// When it began (RFC 3339).
    pub created_at: Option<String>,
    /// "12s", or "" while it runs.
    pub duration: String,
    /// "6/7 steps", or "" while it runs (BuildKit counts them at its end).
    pub steps: String,
    /// "43% cached" (of its steps), or "" while it runs.
    pub cached: String,
    /// Why it failed.
    pub error: Option<String>,
}

impl Build {
    /// The row the Builds window shows.
    pub fn row(&self) -> BuildRow {
        let share = if self.total_steps > 0 { 100 * self.cached_steps / self.total_steps } else { 0 };
        BuildRow {
            reference: self.reference.clone(),
            name: self.name.clone(),
            status: self.status,
            tags: self.tags.clone(),
            created_at: self.created_at.clone(),
            // While it runs the status says so, and BuildKit counts its steps only at its end.
            duration: self.duration_seconds().map_or_else(String::new, seconds_text),
            steps: if self.total_steps > 0 {
                format!("{}/{} steps", self.completed_steps, self.total_steps)
            } else {
                String::new()
            },
            cached: if self.total_steps > 0 { format!("{share}% cached") } else { String::new() },
            error: self.error.clone(),
        }
    }
}

/// A step as the Builds window shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRow {
    /// `#N`.
    pub number: usize,
    /// What it did.
    pub name: String,
    /// Taken from the cache.
    pub cached: bool,
    /// "1.2s", "CACHED", or "" while it runs or when it never ran.
    pub duration: String,
    /// Why it failed: the step to highlight.
    pub error: Option<String>,
    /// Under way now: it began and has not ended.
    pub running: bool,
    /// Its output lines, each with its time since the step began (`0.077 text`), and its
    /// progress lines.
    pub lines: Vec<String>,
}

impl Step {
    /// The row the Builds window shows, for a step of a build that is `build_running` (a step
    /// of a finished build that never ended is not under way).
    pub fn row(&self, build_running: bool) -> StepRow {
        let duration = match (self.cached, self.duration()) {
            (true, _) => "CACHED".to_string(),
            (false, Some(seconds)) => seconds_text(seconds),
            (false, None) if build_running && self.is_running() => "running".to_string(),
            (false, None) => String::new(),
        };
        let mut lines = self.statuses.clone();
        lines.extend(self.logs.iter().map(|(offset, line)| format!("{offset:.3} {line}")));
        StepRow {
            number: self.number,
            name: self.name.clone(),
            cached: self.cached,
            duration,
            error: self.error.clone(),
            running: build_running && self.is_running(),
            lines,
        }
    }
}

/// "0.8s", "12s", "3m5s".
pub fn seconds_text(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{seconds:.1}s")
    } else if seconds < 60.0 {
        format!("{seconds:.0}s")
    } else {
        format!("{}m{}s", (seconds / 60.0).floor(), (seconds % 60.0).round())
    }
}

/// gRPC's code for a cancelled call, which BuildKit records for a build its client cancelled.
const CANCELLED: i32 = 1;

/// A history record as a [`Build`].
pub fn build_from_record(record: &BuildHistoryRecord) -> Build {
    let status = match (&record.error, &record.completed_at) {
        (Some(error), _) if error.code == CANCELLED => BuildStatus::Canceled,
        (Some(_), _) => BuildStatus::Error,
        (None, Some(_)) => BuildStatus::Completed,
        (None, None) => BuildStatus::Running,
    };
    let tags: Vec<String> = record
        .exporters
        .iter()
        .filter_map(|e| e.attrs.get("name"))
        .flat_map(|names| names.split(','))
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    let seconds = |t: &Timestamp| t.seconds as f64 + f64::from(t.nanos) / 1e9;
    let created = record.created_at.as_ref().map(seconds);
    let completed = record.completed_at.as_ref().map(seconds);
    Build {
        reference: record.r#ref.clone(),
        name: if tags.is_empty() { dockerfile_name(&record.frontend_attrs) } else { tags.join(", ") },
        status,
        created_at: record.created_at.as_ref().map(rfc3339),
        completed_at: record.completed_at.as_ref().map(rfc3339),
        total_steps: record.num_total_steps,
        completed_steps: record.num_completed_steps,
        cached_steps: record.num_cached_steps,
        error: record.error.as_ref().map(|e| e.message.clone()).filter(|m| !m.is_empty()),
        tags,
        created_seconds: created.unwrap_or_default(),
        completed_seconds: completed,
    }
}

/// "Dockerfile", "docker/app.Dockerfile (test)": what the frontend was asked to build.
fn dockerfile_name(attrs: &HashMap<String, String>) -> String {
    let file = attrs.get("filename").cloned().unwrap_or_else(|| "Dockerfile".to_string());
    let file = match attrs.get("vcs:localdir:dockerfile").filter(|d| !d.is_empty() && d.as_str() != ".") {
        Some(dir) => format!("{}/{file}", dir.trim_end_matches('/')),
        None => file,
    };
    match attrs.get("target").filter(|t| !t.is_empty()) {
        Some(target) => format!("{file} ({target})"),
        None => file,
    }
}

/// A protobuf timestamp as RFC 3339 in UTC (`2026-11-29T15:16:00.123456789Z`).
fn rfc3339(time: &Timestamp) -> String {
    let (days, rest) = (time.seconds.div_euclid(86_400), time.seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let fraction =
        if time.nanos > 0 { format!(".{:09}", time.nanos).trim_end_matches('0').to_string() } else { String::new() };
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z")
}

/// Days since 1970-01-01 as a (year, month, day) of the proleptic Gregorian calendar (Howard
/// Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// One step of a build (a vertex of its graph), as its recorded progress tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Its number, in the order the steps began (`#N` in buildx's plain progress).
    pub number: usize,
    /// What it did (`[build 2/3] RUN make`).
    pub name: String,
    /// Taken from the cache.
    pub cached: bool,
    /// When it began and ended, in seconds since the epoch.
    pub started: Option<f64>,
    /// When it ended.
    pub completed: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Its output, line by line, with seconds since the step began.
    pub logs: Vec<(f64, String)>,
    /// Progress of its parts (`transferring context: 2.1kB`), the last word on each.
    pub statuses: Vec<String>,
}

impl Step {
    /// It began and has not ended (nor failed).
    pub fn is_running(&self) -> bool {
        self.started.is_some() && self.completed.is_none() && self.error.is_none()
    }

    /// Seconds it took, once it ended.
    pub fn duration(&self) -> Option<f64> {
        Some(self.completed? - self.started?)
    }
}

/// The steps of a build from its recorded progress (`Control.Status`), in order.
pub fn steps_from_progress(responses: &[StatusResponse]) -> Vec<Step> {
    let seconds = |t: &Timestamp| t.seconds as f64 + f64::from(t.nanos) / 1e9;
    let mut order: Vec<String> = Vec::new();
    let mut steps: HashMap<String, Step> = HashMap::new();
    let mut status_order: HashMap<String, Vec<String>> = HashMap::new();
    let mut status_text: HashMap<(String, String), String> = HashMap::new();
    for response in responses {
        for vertex in &response.vertexes {
            let step = steps.entry(vertex.digest.clone()).or_insert_with(|| {
                order.push(vertex.digest.clone());
                Step {
                    number: order.len(),
                    name: String::new(),
                    cached: false,
                    started: None,
                    completed: None,
                    error: None,
                    logs: Vec::new(),
                    statuses: Vec::new(),
                }
            });
            step.name = vertex.name.clone();
            step.cached |= vertex.cached;
            step.started = vertex.started.as_ref().map(seconds).or(step.started);
            step.completed = vertex.completed.as_ref().map(seconds).or(step.completed);
            if !vertex.error.is_empty() {
                step.error = Some(vertex.error.clone());
            }
        }
        for status in &response.statuses {
            let ids = status_order.entry(status.vertex.clone()).or_default();
            if !ids.contains(&status.id) {
                ids.push(status.id.clone());
            }
            let done = if status.completed.is_some() { " done" } else { "" };
            let amount = match (status.current, status.total) {
                (0, 0) => String::new(),
                (current, 0) => format!(" {}", crate::units::human_size(current)),
                (current, total) => format!(" {current}/{total}"),
            };
            status_text.insert((status.vertex.clone(), status.id.clone()), format!("{}{amount}{done}", status.id));
        }
        for log in &response.logs {
            let Some(step) = steps.get_mut(&log.vertex) else { continue };
            let at = log.timestamp.as_ref().map(seconds).unwrap_or_default();
            let offset = step.started.map_or(0.0, |start| (at - start).max(0.0));
            let text = String::from_utf8_lossy(&log.msg);
            for line in text.lines().filter(|l| !l.is_empty()) {
                step.logs.push((offset, line.to_string()));
            }
        }
    }
    for (vertex, ids) in status_order {
        if let Some(step) = steps.get_mut(&vertex) {
            step.statuses =
                ids.iter().filter_map(|id| status_text.get(&(vertex.clone(), id.clone())).cloned()).collect();
        }
    }
    // In the order they began, as buildx numbers them; a step that never began comes last.
    let mut steps: Vec<Step> = order.iter().filter_map(|digest| steps.remove(digest)).collect();
    steps.sort_by(|a, b| match (a.started, b.started) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    for (index, step) in steps.iter_mut().enumerate() {
        step.number = index + 1;
    }
    steps
}

/// Applies one history event (started, completed, deleted) to `builds`, kept newest first.
pub fn apply_event(builds: &mut Vec<Build>, kind: i32, record: Option<&BuildHistoryRecord>) {
    let Some(record) = record else { return };
    builds.retain(|b| b.reference != record.r#ref);
    if kind != BuildHistoryEventType::Deleted as i32 {
        builds.push(build_from_record(record));
    }
    builds.sort_by(|a, b| b.created_seconds.total_cmp(&a.created_seconds).then_with(|| b.reference.cmp(&a.reference)));
}

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

impl BuildkitClient {
    /// The recorded progress of build `reference` (finished or running), as steps.
    pub async fn build_steps(&self, reference: &str) -> Result<Vec<Step>> {
        let request = StatusRequest { r#ref: reference.to_string() };
        let mut stream = self.control().status(request).await.map_err(status_error("replay the build"))?.into_inner();
        let mut responses = Vec::new();
        while let Some(response) = stream.next().await {
            responses.push(response.map_err(status_error("replay the build"))?);
        }
        Ok(steps_from_progress(&responses))
    }

    /// `build` as its record says once it has ended. BuildKit closes a build's progress a moment
    /// before it records the end, so a running build's record is awaited, for at most `patience`;
    /// after that (or for a finished build) it is returned as it is.
    pub async fn ended(&self, build: Build, patience: std::time::Duration) -> Build {
        if build.status != BuildStatus::Running {
            return build;
        }
        let request = BuildHistoryRequest { r#ref: build.reference.clone(), early_exit: false, ..Default::default() };
        let ending = async {
            let mut events = self.control().listen_build_history(request).await.ok()?.into_inner();
            while let Some(Ok(event)) = events.next().await {
                let ended = event.record.as_ref().map(build_from_record).filter(|b| b.status != BuildStatus::Running);
                if ended.is_some() {
                    return ended;
                }
            }
            None
        };
        tokio::time::timeout(patience, ending).await.ok().flatten().unwrap_or(build)
    }

    /// The build `reference` names: BuildKit's ref, or buildx's `builder/node/ref`.
    pub async fn find_build(&self, reference: &str) -> Result<Build> {
        let wanted = reference.rsplit('/').next().unwrap_or(reference);
        self.builds()
            .await?
            .into_iter()
            .find(|b| b.reference == wanted)
            .ok_or_else(|| Error::UnknownBuild(reference.to_string()))
    }

    /// Every build BuildKit remembers, finished and running, newest first.
    pub async fn builds(&self) -> Result<Vec<Build>> {
        let request = BuildHistoryRequest { early_exit: true, ..Default::default() };
        let mut stream =
            self.control().listen_build_history(request).await.map_err(status_error("list its builds"))?.into_inner();
        let mut builds: Vec<Build> = Vec::new();
        while let Some(event) = stream.next().await {
            let event = event.map_err(status_error("list its builds"))?;
            if let Some(record) = event.record {
                let build = build_from_record(&record);
                // A record can come twice (started, then completed): the later one is the truth.
                builds.retain(|b| b.reference != build.reference);
                builds.push(build);
            }
        }
        builds.sort_by(|a, b| {
            b.created_seconds.total_cmp(&a.created_seconds).then_with(|| b.reference.cmp(&a.reference))
        });
        Ok(builds)
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
    mut on_detail: impl FnMut(&Build, Vec<Step>) -> bool,
) -> Result<()> {
    let build = client.find_build(reference).await?;
    let request = StatusRequest { r#ref: build.reference.clone() };
    let stream = client.control().status(request).await.map_err(status_error("follow the build"))?.into_inner();
    let mut responses = Vec::new();
    let running = build.status == BuildStatus::Running;
    let ended = in_bursts(
        stream,
        "follow the build",
        &mut responses,
        |responses, response| responses.push(response),
        // A finished build's replay is shown whole, not in the bursts it happens to arrive in.
        |responses| !running || on_detail(&build, steps_from_progress(responses)),
    )
    .await?;
    if ended {
        // How it ended (and how long it took), from its record.
        let last = client.ended(build, ENDING_PATIENCE).await;
        on_detail(&last, steps_from_progress(&responses));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bollard_buildkit_proto::{google::rpc::Status, moby::buildkit::v1::Exporter};

    use super::*;

    fn at(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    #[test]
    fn recorded_progress_becomes_steps_in_the_order_they_began() {
        use bollard_buildkit_proto::moby::buildkit::v1::{Vertex, VertexLog, VertexStatus};
        let vertex = |digest: &str, name: &str, started: Option<i64>, completed: Option<i64>| Vertex {
            digest: digest.into(),
            name: name.into(),
            started: started.map(|s| at(s, 0)),
            completed: completed.map(|s| at(s, 0)),
            ..Default::default()
        };
        let mut run = vertex("sha:run", "[2/2] RUN make", Some(105), Some(107));
        run.error = "exit code: 2".into();
        let mut copy = vertex("sha:copy", "[1/2] COPY . /src", Some(100), Some(100));
        copy.cached = true;
        let never = vertex("sha:never", "[stage-1 1/1] COPY --from=build /out /", None, None);
        let responses = [
            StatusResponse { vertexes: vec![run.clone(), never], ..Default::default() },
            StatusResponse {
                vertexes: vec![copy],
                statuses: vec![
                    VertexStatus {
                        id: "transferring context".into(),
                        vertex: "sha:copy".into(),
                        current: 2100,
                        ..Default::default()
                    },
                    VertexStatus {
                        id: "transferring context".into(),
                        vertex: "sha:copy".into(),
                        current: 4200,
                        completed: Some(at(100, 0)),
                        ..Default::default()
                    },
                ],
                logs: vec![VertexLog {
                    vertex: "sha:run".into(),
                    timestamp: Some(at(106, 500_000_000)),
                    msg: b"cc -o app main.c\nmain.c:1: error\n".to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        ];
        let steps = steps_from_progress(&responses);
        let names: Vec<(usize, &str)> = steps.iter().map(|s| (s.number, s.name.as_str())).collect();
        assert_eq!(
            names,
            vec![(1, "[1/2] COPY . /src"), (2, "[2/2] RUN make"), (3, "[stage-1 1/1] COPY --from=build /out /")]
        );
        assert!(steps[0].cached);
        assert_eq!(steps[0].statuses, vec!["transferring context 4.2kB done".to_string()]);
        assert_eq!(steps[1].logs, vec![(1.5, "cc -o app main.c".to_string()), (1.5, "main.c:1: error".to_string())]);
        assert_eq!(steps[1].error.as_deref(), Some("exit code: 2"));
        assert_eq!(steps[1].duration(), Some(2.0));
        assert_eq!(steps[2].duration(), None);
    }

    #[test]
    fn timestamps_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(&at(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(&at(1_795_964_739, 586_000_000)), "2026-11-29T15:05:39.586Z");
        assert_eq!(rfc3339(&at(951_782_400, 1)), "2000-02-29T00:00:00.000000001Z");
    }

    #[test]
    fn a_record_becomes_a_build_with_buildx_words() {
        let mut record = BuildHistoryRecord {
            r#ref: "qz7v2".into(),
            created_at: Some(at(1_795_964_700, 0)),
            completed_at: Some(at(1_795_964_712, 0)),
            num_total_steps: 7,
            num_completed_steps: 7,
            num_cached_steps: 3,
            ..Default::default()
        };
        record.frontend_attrs.insert("filename".into(), "app.Dockerfile".into());
        record.frontend_attrs.insert("target".into(), "test".into());
        let build = build_from_record(&record);
        assert_eq!(build.name, "app.Dockerfile (test)");
        assert_eq!(build.status, BuildStatus::Completed);
        assert_eq!(build.duration_seconds(), Some(12.0));
        assert_eq!(
            serde_json::to_value(&build).expect("json"),
            serde_json::json!({"ref": "qz7v2", "name": "app.Dockerfile (test)", "status": "Completed",
                "created_at": "2026-11-29T15:05:00Z", "completed_at": "2026-11-29T15:05:12Z",
                "total_steps": 7, "completed_steps": 7, "cached_steps": 3, "error": null})
        );

        record.exporters.push(Exporter {
            r#type: "image".into(),
            attrs: HashMap::from([("name".into(), "localhost:5000/app:1,localhost:5000/app:latest".into())]),
        });
        record.error =
            Some(Status { code: 2, message: "process \"/bin/sh -c exit 3\" did not complete".into(), details: vec![] });
        let failed = build_from_record(&record);
        assert_eq!(failed.name, "localhost:5000/app:1, localhost:5000/app:latest");
        assert_eq!(failed.status, BuildStatus::Error);
        assert_eq!(failed.error.as_deref(), Some("process \"/bin/sh -c exit 3\" did not complete"));

        record.error = Some(Status { code: CANCELLED, message: "context canceled".into(), details: vec![] });
        assert_eq!(build_from_record(&record).status, BuildStatus::Canceled);
        record.error = None;
        record.completed_at = None;
        record.num_total_steps = 0;
        record.num_completed_steps = 0;
        record.num_cached_steps = 0;
        let running = build_from_record(&record);
        assert_eq!((running.status, running.duration_seconds()), (BuildStatus::Running, None));
        let row = running.row();
        assert_eq!((row.duration.as_str(), row.steps.as_str(), row.cached.as_str()), ("", "", ""));
    }

    #[test]
    fn a_step_is_under_way_only_while_its_build_runs() {
        let step = Step {
            number: 5,
            name: "[2/2] RUN make".into(),
            cached: false,
            started: Some(100.0),
            completed: None,
            error: None,
            logs: vec![],
            statuses: vec![],
        };
        let (live, after) = (step.row(true), step.row(false));
        assert_eq!((live.running, live.duration.as_str()), (true, "running"));
        assert_eq!((after.running, after.duration.as_str()), (false, ""));
        let failed = Step { error: Some("exit code: 2".into()), ..step };
        assert!(!failed.row(true).running, "a failed step is not under way");
    }
}
