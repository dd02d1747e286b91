//! Builds and steps as the Builds window (and `builds ls`) show them: every text made here, none
//! in the window.
use serde::Serialize;

use crate::buildkit::history::build::{Build, BuildStatus};
use crate::buildkit::progress::{plain, Step};
use crate::time::{self, seconds_text};

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
    /// When it began, as `builds` words it ("5 minutes ago"; "" when BuildKit did not say),
    /// worded when the row is made: the app sends the rows again as the minutes pass.
    pub when: String,
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
            when: if self.created_at.is_some() {
                time::ago(self.created_seconds as i64, time::now_seconds())
            } else {
                String::new()
            },
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
    /// The platform whose image it builds, in a build for several (see [`Step::platform`]).
    pub platform: Option<String>,
    /// Its lines as `--progress plain` prints them after `#N ` (`0.077 text`, `transferring
    /// context: 2.06kB done`, `WARN: …`); while the build runs, then its parts under way and its
    /// line still waiting for a newline.
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
        let mut lines: Vec<String> = self.lines().map(plain::line_text).collect();
        // What has no line yet (nothing, once the stream has ended and was finished).
        lines.extend(self.open_parts().map(plain::part_text));
        lines.extend(self.unfinished_line().map(|(offset, text)| plain::output_text(offset, &text)));
        StepRow {
            number: self.number,
            name: self.name.clone(),
            cached: self.cached,
            duration,
            error: self.error.clone(),
            running: build_running && self.is_running(),
            platform: self.platform.clone(),
            lines,
        }
    }
}

/// A build's steps for one platform, as the Builds window groups them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepGroup {
    /// The platform; `None` for the steps of every platform (the context, the export), or for all
    /// the steps of a build for one platform.
    pub platform: Option<String>,
    /// Its heading: `linux/arm64 · 5 steps`, `Every platform · 3 steps`; empty when the build has
    /// one group (a build for one platform: no heading).
    pub title: String,
    /// Its steps, in `#N` order.
    pub steps: Vec<StepRow>,
}

/// `rows` grouped by platform, each group where its first step is (the steps of every platform
/// first, as BuildKit begins with the build's definition and context); one group, untitled, when
/// no step names a platform.
pub fn grouped(rows: Vec<StepRow>) -> Vec<StepGroup> {
    let mut groups: Vec<StepGroup> = Vec::new();
    for row in rows {
        match groups.iter_mut().find(|g| g.platform == row.platform) {
            Some(group) => group.steps.push(row),
            None => groups.push(StepGroup { platform: row.platform.clone(), title: String::new(), steps: vec![row] }),
        }
    }
    if groups.len() > 1 || groups.iter().any(|g| g.platform.is_some()) {
        for group in &mut groups {
            let count =
                if group.steps.len() == 1 { "1 step".to_string() } else { format!("{} steps", group.steps.len()) };
            group.title = format!("{} · {count}", group.platform.as_deref().unwrap_or("Every platform"));
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use bollard_buildkit_proto::{
        google::protobuf::Timestamp,
        moby::buildkit::v1::{StatusResponse, Vertex, VertexLog, VertexStatus},
    };

    use crate::buildkit::progress::Decoder;

    fn run(error: &str) -> StatusResponse {
        StatusResponse {
            vertexes: vec![Vertex {
                digest: "run".into(),
                name: "[2/2] RUN make".into(),
                started: Some(Timestamp { seconds: 100, nanos: 0 }),
                error: error.into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn steps_are_grouped_by_the_platform_they_build_for() {
        use super::grouped;
        let named = |digest: &str, name: &str| Vertex {
            digest: digest.into(),
            name: name.into(),
            started: Some(Timestamp { seconds: 100, nanos: 0 }),
            ..Default::default()
        };
        let mut decoder = Decoder::new();
        decoder.apply(&StatusResponse {
            vertexes: vec![
                named("def", "[internal] load build definition from Dockerfile"),
                named("arm", "[linux/arm64 2/2] RUN uname -m"),
                named("amd", "[linux/amd64 2/2] RUN uname -m"),
                named("arm-copy", "[linux/arm64 1/2] COPY busybox /bin/busybox"),
                named("export", "exporting to image"),
            ],
            ..Default::default()
        });
        let groups = grouped(decoder.steps().iter().map(|s| s.row(false)).collect());
        let shown: Vec<(&str, Vec<usize>)> =
            groups.iter().map(|g| (g.title.as_str(), g.steps.iter().map(|s| s.number).collect())).collect();
        assert_eq!(
            shown,
            [
                ("Every platform · 2 steps", vec![1, 5]),
                ("linux/arm64 · 2 steps", vec![2, 4]),
                ("linux/amd64 · 1 step", vec![3])
            ]
        );

        let mut one = Decoder::new();
        one.apply(&run(""));
        let groups = grouped(one.steps().iter().map(|s| s.row(false)).collect());
        assert_eq!((groups.len(), groups[0].title.as_str(), groups[0].platform.as_deref()), (1, "", None));
    }

    #[test]
    fn a_step_is_under_way_only_while_its_build_runs() {
        let mut decoder = Decoder::new();
        decoder.apply(&run(""));
        let step = &decoder.steps()[0];
        let (live, after) = (step.row(true), step.row(false));
        assert_eq!((live.number, live.running, live.duration.as_str()), (1, true, "running"));
        assert_eq!((after.running, after.duration.as_str()), (false, ""));
        decoder.apply(&run("exit code: 2"));
        assert!(!decoder.steps()[0].row(true).running, "a failed step is not under way");
    }

    #[test]
    fn a_running_step_shows_what_has_no_line_yet() {
        let mut decoder = Decoder::new();
        decoder.apply(&run(""));
        decoder.apply(&StatusResponse {
            statuses: vec![VertexStatus {
                id: "transferring context:".into(),
                vertex: "run".into(),
                current: 1_200_000,
                ..Default::default()
            }],
            logs: vec![VertexLog {
                vertex: "run".into(),
                timestamp: Some(Timestamp { seconds: 101, nanos: 0 }),
                msg: b"done\nhal".to_vec(),
                stream: 1,
            }],
            ..Default::default()
        });
        assert_eq!(decoder.steps()[0].row(true).lines, ["1.000 done", "transferring context: 1.20MB", "1.000 hal"]);
        decoder.finish();
        assert_eq!(
            decoder.steps()[0].row(false).lines,
            ["1.000 done", "1.000 hal", "transferring context: 1.20MB"],
            "the end of the stream gives them their lines"
        );
    }
}
