//! A build's progress as BuildKit streams it (`Control.Status`), kept as buildx's progress view keeps
//! it: steps numbered `#N` in the order they appear, their transfers and output, and what `plain`
//! prints for each update.
use std::collections::HashMap;

use bollard_buildkit_proto::google::protobuf::Timestamp;
/// BuildKit's progress message, which [`ProgressBoard::apply`] takes.
pub use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;
use serde::Serialize;

use crate::units;

/// Output lines kept per step for the live view and the failure report.
const KEPT_LINES: usize = 200;

/// One step of the build.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StepView {
    /// `#N`: its place in the order steps appeared.
    pub number: usize,
    /// BuildKit's name for it (`[2/3] RUN make`).
    pub name: String,
    /// Seconds since the epoch when it started.
    pub started: Option<f64>,
    /// Seconds since the epoch when it ended.
    pub completed: Option<f64>,
    /// Its result came from the cache.
    pub cached: bool,
    /// Its error, when it failed.
    pub error: String,
    /// Transfers and other measured parts (`transferring context: 2.1MB`).
    pub parts: Vec<PartView>,
    /// Its last output lines, oldest first.
    pub output: Vec<String>,
    /// An unfinished last line of output.
    #[serde(skip)]
    partial: String,
}

impl StepView {
    /// Running: started, not ended.
    pub fn running(&self) -> bool {
        self.started.is_some() && self.completed.is_none()
    }

    /// Seconds it took, or has taken until `now`.
    pub fn seconds(&self, now: f64) -> f64 {
        match (self.started, self.completed) {
            (Some(start), Some(end)) => (end - start).max(0.0),
            (Some(start), None) => (now - start).max(0.0),
            _ => 0.0,
        }
    }

    /// Internal steps (loading the Dockerfile, the context) that a view may show dimmed.
    pub fn internal(&self) -> bool {
        self.name.starts_with("[internal]")
    }
}

/// A measured part of a step.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PartView {
    /// Its ID, which is also its label (`transferring context:`).
    pub id: String,
    /// Done so far (bytes for transfers).
    pub current: i64,
    /// The total, when known.
    pub total: i64,
    /// Ended.
    pub done: bool,
}

impl PartView {
    /// `transferring context: 2.06kB done`, as buildx writes it.
    pub fn text(&self) -> String {
        let mut text = self.id.clone();
        // Parts that count nothing (`exporting layers`) show no size, as in buildx.
        if self.current != 0 || self.total != 0 {
            text.push_str(&format!(" {}", units::human_size(self.current)));
        }
        if self.total > 0 && self.total != self.current {
            text.push_str(&format!(" / {}", units::human_size(self.total)));
        }
        if self.done {
            text.push_str(" done");
        }
        text
    }
}

/// All steps of a build, updated from BuildKit's status messages.
#[derive(Debug, Default)]
pub struct ProgressBoard {
    steps: Vec<StepView>,
    by_digest: HashMap<String, usize>,
    /// The step the last plain line was about, to separate groups with a blank line.
    last_printed: Option<usize>,
    /// Warnings BuildKit sent (the Dockerfile's lint checks and others).
    pub warnings: Vec<String>,
    /// Steps that ended in the last message: BuildKit may start one again at once (it does with
    /// `load build definition`), so its end is printed only when the next message does not.
    ending: Vec<usize>,
}

fn seconds(timestamp: &Option<Timestamp>) -> Option<f64> {
    timestamp.as_ref().map(|t| t.seconds as f64 + f64::from(t.nanos) / 1e9)
}

impl ProgressBoard {
    /// The steps in `#N` order.
    pub fn steps(&self) -> &[StepView] {
        &self.steps
    }

    /// The step that failed, when one did (the first with an error that is not a cancellation).
    pub fn failed_step(&self) -> Option<&StepView> {
        self.steps.iter().find(|s| !s.error.is_empty() && !s.error.contains("context canceled"))
    }

    fn step_index(&mut self, digest: &str) -> usize {
        if let Some(index) = self.by_digest.get(digest) {
            return *index;
        }
        let index = self.steps.len();
        self.steps.push(StepView { number: index + 1, ..Default::default() });
        self.by_digest.insert(digest.to_string(), index);
        index
    }

    /// Takes one status message in; returns the lines `--progress plain` prints for it.
    pub fn apply(&mut self, status: &StatusResponse) -> Vec<String> {
        let mut lines = Vec::new();
        let restarted: Vec<usize> = status
            .vertexes
            .iter()
            .filter(|v| v.completed.is_none())
            .filter_map(|v| self.by_digest.get(&v.digest).copied())
            .collect();
        for index in std::mem::take(&mut self.ending) {
            if !restarted.contains(&index) {
                self.end_line(&mut lines, index);
            }
        }
        for vertex in &status.vertexes {
            let index = self.step_index(&vertex.digest);
            let step = &mut self.steps[index];
            let was_started = step.started.is_some();
            let was_completed = step.completed.is_some();
            step.name.clone_from(&vertex.name);
            step.cached = vertex.cached;
            step.started = seconds(&vertex.started).or(step.started);
            step.completed = seconds(&vertex.completed);
            step.error.clone_from(&vertex.error);
            let name = step.name.clone();
            let (starts_now, ends_now) =
                (step.started.is_some() && !was_started, step.completed.is_some() && !was_completed);
            if starts_now {
                self.header(&mut lines, index, &name);
            }
            if ends_now && !self.ending.contains(&index) {
                self.ending.push(index);
            }
        }
        for part in &status.statuses {
            let index = self.step_index(&part.vertex);
            let step = &mut self.steps[index];
            let position = step.parts.iter().position(|p| p.id == part.id);
            let position = position.unwrap_or_else(|| {
                step.parts.push(PartView { id: part.id.clone(), ..Default::default() });
                step.parts.len() - 1
            });
            let view = &mut step.parts[position];
            let ended_now = part.completed.is_some() && !view.done;
            view.current = part.current;
            view.total = part.total;
            view.done = part.completed.is_some();
            // `plain` prints a part once, when it ends: the running byte counts are for the live view.
            if ended_now {
                let (number, text, name) = (step.number, view.text(), step.name.clone());
                self.switch_to(&mut lines, index, &name);
                lines.push(format!("#{number} {text}"));
            }
        }
        for log in &status.logs {
            let index = self.step_index(&log.vertex);
            let step = &mut self.steps[index];
            let since = seconds(&log.timestamp).zip(step.started).map_or(0.0, |(at, start)| (at - start).max(0.0));
            let mut text = std::mem::take(&mut step.partial);
            text.push_str(&String::from_utf8_lossy(&log.msg));
            let mut complete: Vec<String> = text.split('\n').map(|l| l.trim_end_matches('\r').to_string()).collect();
            step.partial = complete.pop().unwrap_or_default();
            step.output.extend(complete.iter().cloned());
            let excess = step.output.len().saturating_sub(KEPT_LINES);
            step.output.drain(..excess);
            let (number, name) = (step.number, step.name.clone());
            if !complete.is_empty() {
                self.switch_to(&mut lines, index, &name);
            }
            for line in complete {
                lines.push(format!("#{number} {since:.3} {line}"));
            }
        }
        for warning in &status.warnings {
            let text = String::from_utf8_lossy(&warning.short).trim().to_string();
            if !text.is_empty() {
                lines.push(format!("WARNING: {text}"));
                self.warnings.push(text);
            }
        }
        lines
    }

    /// The lines still held back (steps that ended last): for the end of the build.
    pub fn finish(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        for index in std::mem::take(&mut self.ending) {
            self.end_line(&mut lines, index);
        }
        lines
    }

    /// `#N DONE 0.3s`, `#N CACHED` or `#N ERROR: …`.
    fn end_line(&mut self, lines: &mut Vec<String>, index: usize) {
        let step = &self.steps[index];
        if step.completed.is_none() {
            return;
        }
        let (number, name) = (step.number, step.name.clone());
        let line = if !step.error.is_empty() {
            format!("#{number} ERROR: {}", step.error)
        } else if step.cached {
            format!("#{number} CACHED")
        } else {
            format!("#{number} DONE {:.1}s", step.seconds(0.0))
        };
        self.switch_to(lines, index, &name);
        lines.push(line);
    }

    /// A step's first line; a blank line before it when another step printed last.
    fn header(&mut self, lines: &mut Vec<String>, index: usize, name: &str) {
        if self.last_printed.is_some() {
            lines.push(String::new());
        }
        lines.push(format!("#{} {name}", index + 1));
        self.last_printed = Some(index);
    }

    /// Before a line about step `index`: repeat its header when other steps printed in between.
    fn switch_to(&mut self, lines: &mut Vec<String>, index: usize, name: &str) {
        if self.last_printed != Some(index) {
            self.header(lines, index, name);
        }
    }

    /// The box buildx prints for a failed step: its name and its last output lines.
    pub fn failure_report(&self) -> Option<String> {
        let step = self.failed_step()?;
        let mut text = String::from("------\n");
        text.push_str(&format!(" > {}:\n", step.name));
        let start = step.output.len().saturating_sub(10);
        for line in &step.output[start..] {
            text.push_str(line);
            text.push('\n');
        }
        if !step.partial.is_empty() {
            text.push_str(&step.partial);
            text.push('\n');
        }
        text.push_str("------");
        Some(text)
    }
}

/// One status message as `--progress rawjson` prints it (buildx's `SolveStatus` JSON): times in
/// RFC 3339, output bytes in base64.
pub fn raw_json(status: &StatusResponse) -> serde_json::Value {
    use base64::Engine as _;
    use serde_json::json;
    let time =
        |t: &Option<Timestamp>| t.as_ref().map(|t| crate::time::rfc3339_nano_fixed(crate::time::timestamp_nanos(t)));
    let vertexes: Vec<_> = status
        .vertexes
        .iter()
        .map(|v| {
            json!({"digest": v.digest, "inputs": v.inputs, "name": v.name, "cached": v.cached,
                   "started": time(&v.started), "completed": time(&v.completed),
                   "error": (!v.error.is_empty()).then_some(&v.error)})
        })
        .collect();
    let statuses: Vec<_> = status
        .statuses
        .iter()
        .map(|s| {
            json!({"id": s.id, "vertex": s.vertex, "name": s.name, "current": s.current, "total": s.total,
                   "timestamp": time(&s.timestamp), "started": time(&s.started), "completed": time(&s.completed)})
        })
        .collect();
    let logs: Vec<_> = status
        .logs
        .iter()
        .map(|l| {
            json!({"vertex": l.vertex, "stream": l.stream, "timestamp": time(&l.timestamp),
                   "data": base64::engine::general_purpose::STANDARD.encode(&l.msg)})
        })
        .collect();
    let warnings: Vec<_> = status
        .warnings
        .iter()
        .map(|w| json!({"vertex": w.vertex, "level": w.level, "short": base64::engine::general_purpose::STANDARD.encode(&w.short), "url": w.url}))
        .collect();
    json!({"vertexes": vertexes, "statuses": statuses, "logs": logs, "warnings": warnings})
}

#[cfg(test)]
mod tests {
    use bollard_buildkit_proto::moby::buildkit::v1::{Vertex, VertexLog, VertexStatus};

    use super::*;

    fn at(seconds: i64, nanos: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos })
    }

    #[test]
    fn plain_lines_follow_buildx() {
        let mut board = ProgressBoard::default();
        let run = |started, completed, error: &str| Vertex {
            digest: "sha256:run".into(),
            name: "[2/2] RUN make".into(),
            started,
            completed,
            error: error.into(),
            ..Default::default()
        };
        let context = Vertex {
            digest: "sha256:ctx".into(),
            name: "[internal] load build context".into(),
            started: at(100, 0),
            ..Default::default()
        };
        let mut lines = board.apply(&StatusResponse { vertexes: vec![context.clone()], ..Default::default() });
        lines.extend(board.apply(&StatusResponse {
            vertexes: vec![Vertex { completed: at(100, 300_000_000), ..context }],
            statuses: vec![VertexStatus {
                id: "transferring context:".into(),
                vertex: "sha256:ctx".into(),
                current: 2060,
                completed: at(100, 200_000_000),
                ..Default::default()
            }],
            ..Default::default()
        }));
        lines.extend(board.apply(&StatusResponse { vertexes: vec![run(at(101, 0), None, "")], ..Default::default() }));
        lines.extend(board.apply(&StatusResponse {
            logs: vec![
                VertexLog {
                    vertex: "sha256:run".into(),
                    timestamp: at(101, 250_000_000),
                    msg: b"compiling\nhalf".to_vec(),
                    stream: 1,
                },
                VertexLog {
                    vertex: "sha256:run".into(),
                    timestamp: at(101, 500_000_000),
                    msg: b" a line\n".to_vec(),
                    stream: 1,
                },
            ],
            ..Default::default()
        }));
        lines.extend(board.apply(&StatusResponse {
            vertexes: vec![run(
                at(101, 0),
                at(102, 0),
                "process \"/bin/sh -c make\" did not complete successfully: exit code: 2",
            )],
            ..Default::default()
        }));
        assert_eq!(
            lines,
            [
                "#1 [internal] load build context",
                "#1 transferring context: 2.06kB done",
                "#1 DONE 0.3s",
                "",
                "#2 [2/2] RUN make",
                "#2 0.250 compiling",
                "#2 0.500 half a line",
            ]
        );
        assert_eq!(
            board.finish(),
            ["#2 ERROR: process \"/bin/sh -c make\" did not complete successfully: exit code: 2"]
        );
        assert_eq!(board.failure_report().unwrap(), "------\n > [2/2] RUN make:\ncompiling\nhalf a line\n------");
        assert_eq!(board.steps().len(), 2);
        assert!(!board.steps()[1].running());
    }

    #[test]
    fn a_step_started_again_at_once_ends_once() {
        let mut board = ProgressBoard::default();
        let load = |started, completed| StatusResponse {
            vertexes: vec![Vertex {
                digest: "d".into(),
                name: "[internal] load build definition from Dockerfile".into(),
                started,
                completed,
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut lines = board.apply(&load(at(1, 0), at(1, 100_000_000)));
        lines.extend(board.apply(&load(at(1, 200_000_000), None)));
        lines.extend(board.apply(&load(at(1, 200_000_000), at(1, 400_000_000))));
        lines.extend(board.finish());
        assert_eq!(lines, ["#1 [internal] load build definition from Dockerfile", "#1 DONE 0.2s"]);
    }

    #[test]
    fn a_cached_step_says_cached() {
        let mut board = ProgressBoard::default();
        let lines = board.apply(&StatusResponse {
            vertexes: vec![Vertex {
                digest: "d".into(),
                name: "[1/2] FROM base".into(),
                cached: true,
                started: at(5, 0),
                completed: at(5, 0),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(lines, ["#1 [1/2] FROM base"]);
        assert_eq!(board.finish(), ["#1 CACHED"]);
    }
}
