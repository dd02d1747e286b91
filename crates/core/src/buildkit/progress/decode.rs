//! BuildKit's progress messages as a build's [`Step`]s, by the rules written in the module above
//! (`progress`): the one reading of `Control.Status` that every face shows.
use std::collections::{HashMap, VecDeque};

use bollard_buildkit_proto::{
    google::protobuf::Timestamp,
    moby::buildkit::v1::{StatusResponse, Vertex, VertexLog, VertexStatus},
};

/// The error BuildKit gives a step its client stopped.
const CANCELED: &str = "context canceled";

fn seconds(timestamp: &Option<Timestamp>) -> Option<f64> {
    timestamp.as_ref().map(crate::time::timestamp_seconds)
}

/// A time a step ran, in seconds since the epoch; `stop` is `None` while it runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// When it began.
    pub start: f64,
    /// When it ended.
    pub stop: Option<f64>,
}

impl Interval {
    /// Its length, counting a run that has not ended until `now`.
    fn length(&self, now: f64) -> f64 {
        (self.stop.unwrap_or(now) - self.start).max(0.0)
    }
}

/// Overlapping runs as one, in order (buildx's `mergeIntervals`): a run that has not ended takes
/// in every later one.
fn merged(runs: &[Interval]) -> Vec<Interval> {
    let mut runs = runs.to_vec();
    runs.sort_by(|a, b| a.start.total_cmp(&b.start));
    let mut merged: Vec<Interval> = Vec::new();
    for run in runs {
        match merged.last_mut() {
            Some(last) if last.stop.is_none_or(|stop| stop >= run.start) => {
                last.stop = match (last.stop, run.stop) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            _ => merged.push(run),
        }
    }
    merged
}

/// A measured part of a step (`transferring context:`, `exporting layers`): BuildKit's
/// `VertexStatus`, the last word on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Part {
    /// Its ID, which is also its label.
    pub id: String,
    /// Done so far (bytes, for transfers).
    pub current: i64,
    /// The total, when known (else 0).
    pub total: i64,
    /// When it began, in seconds since the epoch.
    pub started: Option<f64>,
    /// When BuildKit measured it last.
    pub timestamp: Option<f64>,
    /// When it ended.
    pub completed: Option<f64>,
}

impl Part {
    fn update(&mut self, status: &VertexStatus) {
        self.current = status.current;
        self.total = status.total;
        self.started = seconds(&status.started).or(self.started);
        self.timestamp = seconds(&status.timestamp).or(self.timestamp);
        self.completed = seconds(&status.completed).or(self.completed);
    }
}

/// A line of a step, in the order it came.
#[derive(Debug, Clone, PartialEq)]
pub enum StepLine {
    /// A line of its output; `offset` is the seconds since the step's latest run began when the
    /// line's first piece came.
    Output {
        /// Seconds since the step began.
        offset: f64,
        /// The line, without its newline.
        text: String,
    },
    /// A part, as it ended (or as it was when the stream ended, if it never did).
    Part(Part),
    /// A warning BuildKit gave it (the Dockerfile's checks, for example).
    Warning(String),
}

/// Where a step is, as far as its faces were told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    /// Named by a status, log or warning, never begun.
    #[default]
    Unbegun,
    Running,
    /// Ended in a message that told nothing else: told with the next message, unless the step
    /// begins again in it.
    EndHeld,
    Ended,
}

/// One step of a build (a vertex of its graph).
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// `#N`: its place in the order steps appeared.
    pub number: usize,
    /// BuildKit's name for it (`[2/3] RUN make`).
    pub name: String,
    /// Its result came from the cache.
    pub cached: bool,
    /// Why it failed (or `context canceled`).
    pub error: Option<String>,
    /// The platform whose image it builds, in a build for several: named in its name
    /// (`[linux/arm64 2/3] RUN …`), else its inputs' (see [`platform_in_name`]); `None` for a
    /// step of every platform (the context, the export) or of a build for one.
    pub platform: Option<String>,
    /// BuildKit's digest for it.
    pub digest: String,
    /// The digests of the vertexes it takes in: the steps it waits for (the timing's critical
    /// path follows them).
    pub inputs: Vec<String>,
    runs: Vec<Interval>,
    parts: Vec<Part>,
    /// Whether each of `parts` has its line yet.
    part_shown: Vec<bool>,
    lines: VecDeque<StepLine>,
    /// An output line still waiting for its newline: its offset and bytes so far.
    unfinished: Option<(f64, Vec<u8>)>,
    phase: Phase,
}

impl Step {
    fn from_vertex(number: usize, vertex: &Vertex) -> Self {
        let mut step = Step { number, digest: vertex.digest.clone(), ..Default::default() };
        step.update(vertex);
        step
    }

    fn update(&mut self, vertex: &Vertex) {
        // A vertex sent again unstarted after it began does not undo it (as buildx).
        if vertex.started.is_none() && !self.runs.is_empty() {
            return;
        }
        self.name.clone_from(&vertex.name);
        self.cached = vertex.cached;
        if !vertex.inputs.is_empty() {
            self.inputs.clone_from(&vertex.inputs);
        }
        self.error = (!vertex.error.is_empty()).then(|| vertex.error.clone());
        if let Some(start) = seconds(&vertex.started) {
            let stop = seconds(&vertex.completed);
            // Runs are told apart by their start, as buildx keys them.
            match self.runs.iter_mut().find(|run| run.start == start) {
                Some(run) => run.stop = stop,
                None => self.runs.push(Interval { start, stop }),
            }
        }
    }

    /// Its runs, overlapping ones merged, in order.
    pub fn runs(&self) -> Vec<Interval> {
        merged(&self.runs)
    }

    /// When its latest run began: its output's times count from there.
    pub fn started(&self) -> Option<f64> {
        self.runs().last().map(|run| run.start)
    }

    /// When it ended; `None` while it runs or if it never began.
    pub fn completed(&self) -> Option<f64> {
        self.runs().last().and_then(|run| run.stop)
    }

    /// It began and its latest run ended.
    pub fn has_ended(&self) -> bool {
        self.completed().is_some()
    }

    /// Under way: it began, has not ended, and has not failed.
    pub fn is_running(&self) -> bool {
        self.started().is_some() && !self.has_ended() && self.error.is_none()
    }

    /// Seconds it ran, all runs together, counting a run not ended until `now`.
    pub fn seconds(&self, now: f64) -> f64 {
        self.runs().iter().map(|run| run.length(now)).sum()
    }

    /// Seconds it ran, once it has ended.
    pub fn duration(&self) -> Option<f64> {
        self.has_ended().then(|| self.seconds(0.0))
    }

    /// It was stopped because its build was canceled.
    pub fn was_canceled(&self) -> bool {
        self.error.as_deref().is_some_and(|e| e.ends_with(CANCELED))
    }

    /// It failed (and was not merely canceled).
    pub fn failed(&self) -> bool {
        self.error.is_some() && !self.was_canceled()
    }

    /// Internal steps (loading the Dockerfile, the context) that a view may show dimmed.
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("[internal]")
    }

    /// Its lines so far, oldest first (a live printer keeps only the last ones: see
    /// [`Decoder::keeping_last`]).
    pub fn lines(&self) -> impl DoubleEndedIterator<Item = &StepLine> {
        self.lines.iter()
    }

    /// Its output lines so far, with their offsets, oldest first.
    pub fn output(&self) -> impl DoubleEndedIterator<Item = (f64, &str)> {
        self.lines.iter().filter_map(|line| match line {
            StepLine::Output { offset, text } => Some((*offset, text.as_str())),
            _ => None,
        })
    }

    /// Every part, with the last word on it.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Parts still under way, which have no line yet.
    pub fn open_parts(&self) -> impl Iterator<Item = &Part> {
        self.parts.iter().zip(&self.part_shown).filter(|(_, shown)| !**shown).map(|(part, _)| part)
    }

    /// The output line still waiting for its newline, with its offset.
    pub fn unfinished_line(&self) -> Option<(f64, String)> {
        self.unfinished.as_ref().map(|(offset, bytes)| (*offset, line_text(bytes)))
    }
}

/// A line's bytes as text: invalid UTF-8 replaced, a `\r` before the newline dropped.
fn line_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes.strip_suffix(b"\r").unwrap_or(bytes)).into_owned()
}

/// What one message (or the end of the stream) changed, in the order a printer tells it: grouped
/// by step in `#N` order, each step's changes in the order they came, its end last.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Step `#(index + 1)` began and runs (again, after its end was told); a step that begins and
    /// ends in one message is told only by its [`Change::Ended`].
    Began(usize),
    /// The step at this index has a new line.
    Line(usize, StepLine),
    /// The step at this index ended: [`Step::error`], [`Step::cached`] and [`Step::duration`]
    /// say how.
    Ended(usize),
    /// A warning for no step we know.
    Warning(String),
}

impl Change {
    /// The index of the step it is about.
    fn step(&self) -> Option<usize> {
        match self {
            Change::Began(index) | Change::Line(index, _) | Change::Ended(index) => Some(*index),
            Change::Warning(_) => None,
        }
    }
}

/// The platform a step's name gives, as the Dockerfile frontend writes it in a build for several
/// platforms (dockerfile2llb `prefixCommand`): `[linux/arm64 2/3] RUN …`, `[linux/arm64 internal]
/// load metadata for …`, or `[linux/amd64->arm64 build 3/5] RUN …` for a step that runs on amd64
/// for the arm64 image (its group is the image's: `linux/arm64`).
pub fn platform_in_name(name: &str) -> Option<String> {
    use crate::buildkit::platform::Platform;
    let inside = name.strip_prefix('[')?.split(']').next()?;
    let token = inside.split(' ').next()?;
    let (runs_on, target) = match token.split_once("->") {
        Some((runs_on, target)) => (runs_on, Some(target)),
        None => (token, None),
    };
    // `os/arch[/variant]` with a real OS: `[2/3]` is a count, not a platform.
    if runs_on.split('/').count() < 2 {
        return None;
    }
    let base = Platform::parse(runs_on).filter(|p| crate::buildkit::platform::is_os(&p.os))?;
    let platform = match target {
        None => base,
        Some(target) if target.split('/').next().is_some_and(crate::buildkit::platform::is_os) => {
            Platform::parse(target)?
        }
        Some(arch) => Platform::parse(&format!("{}/{arch}", base.os))?,
    };
    Some(platform.to_string())
}

/// Reads BuildKit's progress messages into steps, one message at a time.
#[derive(Debug, Default)]
pub struct Decoder {
    steps: Vec<Step>,
    by_digest: HashMap<String, usize>,
    /// Each vertex's platform (see [`Step::platform`]), begun or not: a step without one in its
    /// name takes its inputs'.
    platforms: HashMap<String, Option<String>>,
    /// Vertexes sent before they began (BuildKit sends the whole graph first): not steps yet.
    unbegun: HashMap<String, Vertex>,
    /// At most this many lines kept per step, when set.
    line_limit: Option<usize>,
}

impl Decoder {
    /// A decoder that keeps every line (the Builds window shows them all).
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that keeps only each step's last `lines` lines: for a printer that has already
    /// printed the rest and needs only the tail (the live view, the failure box).
    pub fn keeping_last(lines: usize) -> Self {
        Self { line_limit: Some(lines), ..Self::default() }
    }

    /// The steps in `#N` order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Takes one message in; returns what it changed. The message is read whole before its
    /// changes are told: a step that ends and begins again within it (BuildKit does this when it
    /// loads the Dockerfile's definition) has not ended. A step that ends in a message that tells
    /// nothing else is told with the next message, unless that one begins it again (BuildKit
    /// sometimes sends the two runs of the definition apart).
    pub fn apply(&mut self, status: &StatusResponse) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut touched: Vec<usize> = Vec::new();
        for vertex in &status.vertexes {
            if let Some(index) = self.take_vertex(vertex) {
                if !touched.contains(&index) {
                    touched.push(index);
                }
            }
        }
        let held: Vec<usize> = (0..self.steps.len()).filter(|i| self.steps[*i].phase == Phase::EndHeld).collect();
        let mut due = Vec::new();
        for index in held {
            if self.steps[index].has_ended() {
                due.push(index);
            } else {
                // Begun again at once: its end was not told, and it runs on.
                self.steps[index].phase = Phase::Running;
                changes.push(Change::Began(index));
            }
        }
        let mut ended = Vec::new();
        for index in touched {
            let step = &mut self.steps[index];
            match (step.phase, step.started().is_some(), step.has_ended()) {
                (Phase::Unbegun | Phase::Ended, true, false) => {
                    step.phase = Phase::Running;
                    changes.push(Change::Began(index));
                }
                // Its end comes after this message's lines; one that began and ended in this
                // message (a cached step) has its header printed with its end.
                (Phase::Unbegun | Phase::Running, true, true) => ended.push(index),
                _ => {}
            }
        }
        for part in &status.statuses {
            self.take_status(part, &mut changes);
        }
        for log in &status.logs {
            self.take_log(log, &mut changes);
        }
        for warning in &status.warnings {
            let text = String::from_utf8_lossy(&warning.short).trim().to_string();
            if text.is_empty() {
                continue;
            }
            match self.step_of(&warning.vertex) {
                Some(index) => self.push_line(index, StepLine::Warning(text), &mut changes),
                None => changes.push(Change::Warning(text)),
            }
        }
        for index in due {
            self.end(index, &mut changes);
        }
        let alone = matches!(ended[..], [only] if changes.iter().all(|change| change.step() == Some(only)));
        for index in ended {
            if alone {
                self.steps[index].phase = Phase::EndHeld;
            } else {
                self.end(index, &mut changes);
            }
        }
        // One group per step, in `#N` order (a stable sort keeps each step's order): BuildKit
        // sends a recorded build as one message, kind by kind, which would otherwise print every
        // step twice.
        changes.sort_by_key(|change| change.step().unwrap_or(usize::MAX));
        changes
    }

    /// The end of the stream: ends held back are told, and what waited for more becomes a line
    /// (a last line without its newline, a part that never ended).
    pub fn finish(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        for index in 0..self.steps.len() {
            if self.steps[index].phase == Phase::EndHeld {
                self.end(index, &mut changes);
            }
            self.finish_line(index, &mut changes);
            let step = &self.steps[index];
            let open: Vec<usize> = (0..step.parts.len()).filter(|p| !step.part_shown[*p]).collect();
            for position in open {
                self.steps[index].part_shown[position] = true;
                let part = self.steps[index].parts[position].clone();
                self.push_line(index, StepLine::Part(part), &mut changes);
            }
        }
        changes
    }

    /// The index of the step for `digest`; a vertex seen unbegun becomes a step now. `None` for a
    /// digest BuildKit never named (buildx drops those too).
    fn step_of(&mut self, digest: &str) -> Option<usize> {
        if let Some(index) = self.by_digest.get(digest) {
            return Some(*index);
        }
        let vertex = self.unbegun.remove(digest)?;
        Some(self.add_step(&vertex))
    }

    /// The platform of `vertex`: its name's, else that of the first of its inputs that has one.
    fn note_platform(&mut self, vertex: &Vertex) {
        if self.platforms.get(&vertex.digest).is_some_and(Option::is_some) {
            return;
        }
        let platform = platform_in_name(&vertex.name)
            .or_else(|| vertex.inputs.iter().find_map(|input| self.platforms.get(input).cloned().flatten()));
        self.platforms.insert(vertex.digest.clone(), platform.clone());
        if let Some(index) = self.by_digest.get(&vertex.digest) {
            self.steps[*index].platform = platform;
        }
    }

    fn add_step(&mut self, vertex: &Vertex) -> usize {
        let index = self.steps.len();
        let mut step = Step::from_vertex(index + 1, vertex);
        step.platform = self.platforms.get(&vertex.digest).cloned().flatten();
        self.steps.push(step);
        self.by_digest.insert(vertex.digest.clone(), index);
        index
    }

    /// Takes a vertex's news in; returns the index of its step, if it is one.
    fn take_vertex(&mut self, vertex: &Vertex) -> Option<usize> {
        self.note_platform(vertex);
        match self.by_digest.get(&vertex.digest) {
            Some(index) => {
                self.steps[*index].update(vertex);
                Some(*index)
            }
            None if vertex.started.is_none() => {
                self.unbegun.insert(vertex.digest.clone(), vertex.clone());
                None
            }
            None => {
                self.unbegun.remove(&vertex.digest);
                Some(self.add_step(vertex))
            }
        }
    }

    fn take_status(&mut self, status: &VertexStatus, changes: &mut Vec<Change>) {
        let Some(index) = self.step_of(&status.vertex) else { return };
        let step = &mut self.steps[index];
        let position = match step.parts.iter().position(|p| p.id == status.id) {
            Some(position) => position,
            None => {
                step.parts.push(Part { id: status.id.clone(), ..Default::default() });
                step.part_shown.push(false);
                step.parts.len() - 1
            }
        };
        step.parts[position].update(status);
        if step.parts[position].completed.is_some() && !step.part_shown[position] {
            step.part_shown[position] = true;
            let part = step.parts[position].clone();
            self.push_line(index, StepLine::Part(part), changes);
        }
    }

    fn take_log(&mut self, log: &VertexLog, changes: &mut Vec<Change>) {
        let Some(index) = self.step_of(&log.vertex) else { return };
        let step = &mut self.steps[index];
        let offset = seconds(&log.timestamp).zip(step.started()).map_or(0.0, |(at, start)| (at - start).max(0.0));
        let mut rest = log.msg.as_slice();
        let mut whole = Vec::new();
        while let Some(newline) = rest.iter().position(|b| *b == b'\n') {
            let (first_offset, mut bytes) = step.unfinished.take().unwrap_or((offset, Vec::new()));
            bytes.extend_from_slice(&rest[..newline]);
            whole.push(StepLine::Output { offset: first_offset, text: line_text(&bytes) });
            rest = &rest[newline + 1..];
        }
        if !rest.is_empty() {
            step.unfinished.get_or_insert_with(|| (offset, Vec::new())).1.extend_from_slice(rest);
        }
        for line in whole {
            self.push_line(index, line, changes);
        }
    }

    /// Tells the end of a step, after the line that waited for its newline.
    fn end(&mut self, index: usize, changes: &mut Vec<Change>) {
        self.finish_line(index, changes);
        self.steps[index].phase = Phase::Ended;
        changes.push(Change::Ended(index));
    }

    fn finish_line(&mut self, index: usize, changes: &mut Vec<Change>) {
        if let Some((offset, bytes)) = self.steps[index].unfinished.take() {
            self.push_line(index, StepLine::Output { offset, text: line_text(&bytes) }, changes);
        }
    }

    fn push_line(&mut self, index: usize, line: StepLine, changes: &mut Vec<Change>) {
        let lines = &mut self.steps[index].lines;
        lines.push_back(line.clone());
        if let Some(limit) = self.line_limit {
            while lines.len() > limit {
                lines.pop_front();
            }
        }
        changes.push(Change::Line(index, line));
    }
}

#[cfg(test)]
mod tests {
    use bollard_buildkit_proto::moby::buildkit::v1::VertexWarning;

    use super::*;

    fn at(seconds: i64, nanos: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos })
    }

    fn vertex(digest: &str, name: &str, started: Option<Timestamp>, completed: Option<Timestamp>) -> Vertex {
        Vertex { digest: digest.into(), name: name.into(), started, completed, ..Default::default() }
    }

    fn log(digest: &str, timestamp: Option<Timestamp>, msg: &[u8]) -> VertexLog {
        VertexLog { vertex: digest.into(), timestamp, msg: msg.to_vec(), stream: 1 }
    }

    #[test]
    fn steps_are_numbered_as_they_first_appear_begun_not_by_start_time() {
        let mut decoder = Decoder::new();
        // The whole graph first, unbegun; then `run` is reported before `copy`, which began earlier.
        decoder.apply(&StatusResponse {
            vertexes: vec![
                vertex("copy", "[1/2] COPY . /src", None, None),
                vertex("run", "[2/2] RUN make", None, None),
                vertex("never", "[stage-1 1/1] COPY --from=build /out /", None, None),
            ],
            ..Default::default()
        });
        assert!(decoder.steps().is_empty(), "an unbegun vertex is no step");
        decoder.apply(&StatusResponse {
            vertexes: vec![vertex("run", "[2/2] RUN make", at(105, 0), None)],
            ..Default::default()
        });
        decoder.apply(&StatusResponse {
            vertexes: vec![vertex("copy", "[1/2] COPY . /src", at(100, 0), at(101, 0))],
            ..Default::default()
        });
        let numbered: Vec<(usize, &str)> = decoder.steps().iter().map(|s| (s.number, s.name.as_str())).collect();
        assert_eq!(numbered, [(1, "[2/2] RUN make"), (2, "[1/2] COPY . /src")]);
    }

    #[test]
    fn a_line_split_over_messages_is_one_line_timed_by_its_first_piece() {
        let mut decoder = Decoder::new();
        decoder.apply(&StatusResponse { vertexes: vec![vertex("run", "RUN", at(10, 0), None)], ..Default::default() });
        let changes = decoder.apply(&StatusResponse {
            logs: vec![log("run", at(10, 250_000_000), b"one\nha"), log("run", at(10, 500_000_000), b"lf\r\n\n")],
            ..Default::default()
        });
        let line = |offset, text: &str| Change::Line(0, StepLine::Output { offset, text: text.into() });
        assert_eq!(changes, [line(0.25, "one"), line(0.25, "half"), line(0.5, "")]);
        decoder.apply(&StatusResponse { logs: vec![log("run", at(11, 0), b"no newline")], ..Default::default() });
        assert_eq!(decoder.steps()[0].unfinished_line(), Some((1.0, "no newline".to_string())));
        let end = decoder.apply(&StatusResponse {
            vertexes: vec![vertex("run", "RUN", at(10, 0), at(12, 0))],
            ..Default::default()
        });
        assert_eq!(end, [], "an end alone in its message waits for the next");
        assert_eq!(
            decoder.finish(),
            [line(1.0, "no newline"), Change::Ended(0)],
            "the end makes the waiting line whole first"
        );
    }

    #[test]
    fn a_step_run_twice_in_one_message_ends_once_and_counts_both_runs() {
        // As BuildKit sends the Dockerfile's definition: listed unbegun, run, and run again at once.
        let name = "[internal] load build definition from Dockerfile";
        let mut decoder = Decoder::new();
        let mut changes = decoder.apply(&StatusResponse {
            vertexes: vec![
                vertex("d", name, None, None),
                vertex("d", name, at(1, 0), at(1, 100_000_000)),
                vertex("d", name, at(1, 200_000_000), None),
            ],
            ..Default::default()
        });
        changes.extend(decoder.apply(&StatusResponse {
            vertexes: vec![vertex("d", name, at(1, 200_000_000), at(1, 400_000_000))],
            ..Default::default()
        }));
        changes.extend(decoder.finish());
        assert_eq!(changes, [Change::Began(0), Change::Ended(0)]);
        let duration = decoder.steps()[0].duration().expect("ended");
        assert!((duration - 0.3).abs() < 1e-9, "{duration}");
        // Begun again after its end was told, it is told again.
        let again =
            decoder.apply(&StatusResponse { vertexes: vec![vertex("d", name, at(2, 0), None)], ..Default::default() });
        assert_eq!(again, [Change::Began(0)]);
    }

    #[test]
    fn a_step_begun_again_in_the_next_message_ends_once() {
        // BuildKit sometimes sends the definition's second run apart from the first.
        let name = "[internal] load build definition from Dockerfile";
        let load = |started, completed| StatusResponse {
            vertexes: vec![vertex("d", name, started, completed)],
            ..Default::default()
        };
        let mut decoder = Decoder::new();
        let mut changes = decoder.apply(&load(at(1, 0), at(1, 100_000_000)));
        changes.extend(decoder.apply(&load(at(1, 200_000_000), None)));
        changes.extend(decoder.apply(&load(at(1, 200_000_000), at(1, 400_000_000))));
        // The next step's news tells the held end first.
        changes.extend(
            decoder
                .apply(&StatusResponse { vertexes: vec![vertex("n", "next", at(2, 0), None)], ..Default::default() }),
        );
        assert_eq!(changes, [Change::Began(0), Change::Ended(0), Change::Began(1)]);
    }

    #[test]
    fn one_message_is_told_step_by_step_in_number_order() {
        // A recorded build comes back as one message: vertexes, then statuses, logs, warnings.
        let mut decoder = Decoder::new();
        let changes = decoder.apply(&StatusResponse {
            vertexes: vec![vertex("a", "A", at(1, 0), at(2, 0)), vertex("b", "B", at(2, 0), at(3, 0))],
            logs: vec![log("b", at(2, 0), b"from b\n"), log("a", at(1, 0), b"from a\n")],
            ..Default::default()
        });
        let line = |index, text: &str| Change::Line(index, StepLine::Output { offset: 0.0, text: text.into() });
        assert_eq!(changes, [line(0, "from a"), Change::Ended(0), line(1, "from b"), Change::Ended(1)]);
    }

    #[test]
    fn a_part_has_its_line_when_it_ends_or_when_the_stream_does() {
        let mut decoder = Decoder::new();
        decoder.apply(&StatusResponse { vertexes: vec![vertex("ctx", "ctx", at(1, 0), None)], ..Default::default() });
        let status = |id: &str, current, completed| VertexStatus {
            id: id.into(),
            vertex: "ctx".into(),
            current,
            completed,
            ..Default::default()
        };
        let running = decoder.apply(&StatusResponse { statuses: vec![status("a", 10, None)], ..Default::default() });
        assert!(running.is_empty(), "{running:?}");
        assert_eq!(decoder.steps()[0].open_parts().count(), 1);
        let ended = decoder.apply(&StatusResponse {
            statuses: vec![status("a", 20, at(2, 0)), status("b", 5, None)],
            ..Default::default()
        });
        assert!(matches!(&ended[..], [Change::Line(0, StepLine::Part(p))] if p.id == "a" && p.current == 20));
        let rest = decoder.finish();
        assert!(matches!(&rest[..], [Change::Line(0, StepLine::Part(p))] if p.id == "b" && p.completed.is_none()));
        assert_eq!(decoder.steps()[0].open_parts().count(), 0);
    }

    #[test]
    fn warnings_belong_to_their_step_and_unknown_digests_are_dropped() {
        let mut decoder = Decoder::new();
        decoder.apply(&StatusResponse {
            vertexes: vec![vertex("def", "[internal] load build definition from Dockerfile", None, None)],
            ..Default::default()
        });
        let warning = |vertex: &str, short: &str| VertexWarning {
            vertex: vertex.into(),
            short: short.as_bytes().to_vec(),
            ..Default::default()
        };
        let changes = decoder.apply(&StatusResponse {
            warnings: vec![
                warning("def", "FromAsCasing: 'as' and 'FROM' keywords' casing do not match"),
                warning("", "loose"),
            ],
            logs: vec![log("nobody", None, b"lost\n")],
            ..Default::default()
        });
        assert_eq!(
            changes,
            [
                Change::Line(
                    0,
                    StepLine::Warning("FromAsCasing: 'as' and 'FROM' keywords' casing do not match".into())
                ),
                Change::Warning("loose".into())
            ]
        );
        assert_eq!(decoder.steps()[0].number, 1, "a warning makes its vertex a step");
    }

    #[test]
    fn a_live_decoder_keeps_only_the_last_lines() {
        let mut decoder = Decoder::keeping_last(2);
        decoder.apply(&StatusResponse { vertexes: vec![vertex("run", "RUN", at(1, 0), None)], ..Default::default() });
        let changes =
            decoder.apply(&StatusResponse { logs: vec![log("run", at(1, 0), b"a\nb\nc\n")], ..Default::default() });
        assert_eq!(changes.len(), 3, "every line is told");
        let kept: Vec<&str> = decoder.steps()[0].output().map(|(_, text)| text).collect();
        assert_eq!(kept, ["b", "c"]);
    }

    #[test]
    fn a_step_s_platform_is_in_its_name_or_its_inputs() {
        assert_eq!(platform_in_name("[linux/arm64 2/3] RUN uname -m").as_deref(), Some("linux/arm64"));
        assert_eq!(platform_in_name("[linux/arm/v7 build 1/2] COPY . /").as_deref(), Some("linux/arm/v7"));
        assert_eq!(platform_in_name("[linux/arm64 internal] load metadata for x").as_deref(), Some("linux/arm64"));
        assert_eq!(platform_in_name("[linux/amd64->arm64 build 3/5] RUN go build").as_deref(), Some("linux/arm64"));
        assert_eq!(platform_in_name("[linux/amd64->arm/v7 build 3/5] RUN x").as_deref(), Some("linux/arm/v7"));
        assert_eq!(platform_in_name("[linux/amd64->windows/amd64 b 1/1] RUN x").as_deref(), Some("windows/amd64"));
        for none in [
            "[2/3] RUN make",
            "[ 2/16] RUN x",
            "[internal] load build context",
            "[stage-1 1/1] COPY",
            "exporting to image",
        ] {
            assert_eq!(platform_in_name(none), None, "{none}");
        }

        // `FROM scratch` names only its COPY with the platform: the RUN after it takes its input's.
        let mut decoder = Decoder::new();
        let with_inputs = |digest: &str, name: &str, inputs: &[&str]| Vertex {
            digest: digest.into(),
            name: name.into(),
            inputs: inputs.iter().map(|i| i.to_string()).collect(),
            started: at(100, 0),
            ..Default::default()
        };
        decoder.apply(&StatusResponse {
            vertexes: vec![
                with_inputs("ctx", "[internal] load build context", &[]),
                with_inputs("copy-arm", "[linux/arm64 1/2] COPY busybox /bin/busybox", &["ctx"]),
                with_inputs("copy-amd", "[linux/amd64 1/2] COPY busybox /bin/busybox", &["ctx"]),
                with_inputs("run-arm", "[2/2] RUN uname -m", &["copy-arm"]),
                with_inputs("run-amd", "[2/2] RUN uname -m", &["copy-amd"]),
                with_inputs("export", "exporting to image", &[]),
            ],
            ..Default::default()
        });
        let platforms: Vec<Option<&str>> = decoder.steps().iter().map(|s| s.platform.as_deref()).collect();
        assert_eq!(
            platforms,
            [None, Some("linux/arm64"), Some("linux/amd64"), Some("linux/arm64"), Some("linux/amd64"), None]
        );
    }
}
