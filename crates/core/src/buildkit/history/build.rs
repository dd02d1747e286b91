//! Builds from BuildKit's history records: a record (`BuildHistoryRecord`) as a [`Build`] in
//! buildx's words (`docker buildx history ls`), and the list kept up to date from the history's
//! events.
use std::collections::HashMap;

use bollard_buildkit_proto::{
    google::protobuf::Timestamp,
    moby::buildkit::v1::{BuildHistoryEventType, BuildHistoryRecord},
};
use serde::Serialize;

use crate::time;

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
    /// When it began (RFC 3339, UTC, as buildx's JSON: [`time::rfc3339_nano`]).
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

    /// Seconds from `now` (seconds since 1970) until the words of its row's `when` ("5 minutes
    /// ago") change; `None` when it has no time.
    pub fn when_changes_in(&self, now: i64) -> Option<i64> {
        self.created_at.as_ref().map(|_| time::ago_changes_in(self.created_seconds as i64, now))
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
    let created = record.created_at.as_ref().map(time::timestamp_seconds);
    let completed = record.completed_at.as_ref().map(time::timestamp_seconds);
    // buildx's JSON keys carry Go's RFC3339Nano.
    let rfc3339 = |t: &Timestamp| time::rfc3339_nano(time::timestamp_nanos(t));
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

/// Applies one history event (started, completed, deleted) to `builds`, kept newest first.
pub fn apply_event(builds: &mut Vec<Build>, kind: i32, record: Option<&BuildHistoryRecord>) {
    let Some(record) = record else { return };
    builds.retain(|b| b.reference != record.r#ref);
    if kind != BuildHistoryEventType::Deleted as i32 {
        builds.push(build_from_record(record));
    }
    builds.sort_by(|a, b| b.created_seconds.total_cmp(&a.created_seconds).then_with(|| b.reference.cmp(&a.reference)));
}

#[cfg(test)]
mod tests {
    use bollard_buildkit_proto::{google::rpc::Status, moby::buildkit::v1::Exporter};

    use super::*;

    fn at(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp { seconds, nanos }
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
}
