//! buildx's `--progress plain` text, written once: the live printer (`assemble build`, the Build
//! window), the replay of a recorded build (`builds logs`), the failure box, and the texts of
//! a step's lines that the Builds window and the live view show. The rules are in the module
//! above (`progress`).
use crate::buildkit::progress::decode::{Change, Decoder, Part, Step, StepLine};
use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;

/// Lines a live printer keeps per step once printed: enough for the live view and the failure box.
const KEPT_LINES: usize = 200;

/// Output lines in the failure box (buildx's `logsBufferSize`).
const BOX_LINES: usize = 10;

/// Prints BuildKit's messages as `--progress plain` does, one message at a time.
#[derive(Debug)]
pub struct PlainPrinter {
    decoder: Decoder,
    /// The step the last line was about.
    current: Option<usize>,
    /// A line was printed already (a blank line goes before the next step's header).
    printed: bool,
}

impl Default for PlainPrinter {
    fn default() -> Self {
        Self::new()
    }
}

impl PlainPrinter {
    /// A printer for a live build: it keeps only each step's last lines, having printed the rest.
    pub fn new() -> Self {
        Self { decoder: Decoder::keeping_last(KEPT_LINES), current: None, printed: false }
    }

    /// The steps so far, in `#N` order (what the live view draws).
    pub fn steps(&self) -> &[Step] {
        self.decoder.steps()
    }

    /// Takes one message in; returns the lines it prints.
    pub fn apply(&mut self, status: &StatusResponse) -> Vec<String> {
        let changes = self.decoder.apply(status);
        self.print(changes)
    }

    /// The lines the end of the stream prints (ends held back, lines that waited for more).
    pub fn finish(&mut self) -> Vec<String> {
        let changes = self.decoder.finish();
        self.print(changes)
    }

    /// The box buildx prints after the progress for every step that failed.
    pub fn failure_report(&self) -> Option<String> {
        failure_report(self.decoder.steps())
    }

    fn print(&mut self, changes: Vec<Change>) -> Vec<String> {
        let mut lines = Vec::new();
        for change in changes {
            match change {
                Change::Began(index) => self.switch_to(index, &mut lines),
                Change::Line(index, line) => {
                    self.switch_to(index, &mut lines);
                    lines.push(format!("#{} {}", index + 1, line_text(&line)));
                }
                Change::Ended(index) => {
                    self.switch_to(index, &mut lines);
                    lines.push(format!("#{} {}", index + 1, end_text(&self.decoder.steps()[index])));
                    self.current = None;
                }
                Change::Warning(text) => lines.push(format!("WARNING: {text}")),
            }
        }
        lines
    }

    /// Before a line about step `index`: when another step printed last, `#M ...` for that one if
    /// it has not ended, a blank line, and this step's header.
    fn switch_to(&mut self, index: usize, lines: &mut Vec<String>) {
        if self.current == Some(index) {
            return;
        }
        if let Some(left) = self.current.filter(|left| !self.decoder.steps()[*left].has_ended()) {
            lines.push(format!("#{} ...", left + 1));
        }
        if self.printed {
            lines.push(String::new());
        }
        lines.push(format!("#{} {}", index + 1, self.decoder.steps()[index].name));
        self.printed = true;
        self.current = Some(index);
    }
}

/// A recorded build as `builds logs` prints it: its progress replayed as `--progress plain`
/// prints it, the failure box, and the build's error last (as buildx ends a failed build).
pub fn recorded_log(progress: &[StatusResponse], error: Option<&str>) -> String {
    let mut printer = PlainPrinter::new();
    let mut lines: Vec<String> = progress.iter().flat_map(|status| printer.apply(status)).collect();
    lines.extend(printer.finish());
    lines.extend(printer.failure_report());
    lines.extend(error.map(|error| format!("ERROR: {error}")));
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

/// The failure box for every step that failed (not one canceled), in `#N` order: its name and
/// its last output lines with their times.
pub fn failure_report(steps: &[Step]) -> Option<String> {
    let boxes: Vec<String> = steps
        .iter()
        .filter(|step| step.failed())
        .map(|step| {
            let mut text = format!("------\n > {}:\n", step.name);
            let output: Vec<(f64, &str)> = step.output().rev().take(BOX_LINES).collect();
            for (offset, line) in output.into_iter().rev() {
                text.push_str(&output_text(offset, line));
                text.push('\n');
            }
            text.push_str("------");
            text
        })
        .collect();
    (!boxes.is_empty()).then(|| boxes.join("\n"))
}

/// A step's line as plain prints it after `#N `.
pub fn line_text(line: &StepLine) -> String {
    match line {
        StepLine::Output { offset, text } => output_text(*offset, text),
        StepLine::Part(part) => part_text(part),
        StepLine::Warning(text) => format!("WARN: {text}"),
    }
}

/// `0.250 compiling`: an output line with its time, 3 decimals under 10 s, 2 under 100 s, else 1.
pub fn output_text(offset: f64, text: &str) -> String {
    let decimals = if offset < 10.0 {
        3
    } else if offset < 100.0 {
        2
    } else {
        1
    };
    format!("{offset:.decimals$} {text}")
}

/// `transferring context: 2.06kB 0.1s done`, `sha256:… 1.20MB / 27.14MB 0.5s`: a part's sizes, its
/// time when over 0.01 s, and `done` once it ended.
pub fn part_text(part: &Part) -> String {
    let mut text = part.id.clone();
    if part.total != 0 {
        text.push_str(&format!(" {} / {}", size(part.current), size(part.total)));
    } else if part.current != 0 {
        text.push_str(&format!(" {}", size(part.current)));
    }
    let end = part.completed.or(part.timestamp);
    if let Some(seconds) = part.started.zip(end).map(|(start, end)| end - start).filter(|s| *s > 0.01) {
        text.push_str(&format!(" {seconds:.1}s"));
    }
    if part.completed.is_some() {
        text.push_str(" done");
    }
    text
}

/// `DONE 1.2s`, `CACHED`, `CANCELED` or `ERROR: …`: how an ended step ended.
pub fn end_text(step: &Step) -> String {
    match &step.error {
        Some(_) if step.was_canceled() => "CANCELED".to_string(),
        Some(error) => format!("ERROR: {error}"),
        None if step.cached => "CACHED".to_string(),
        None => format!("DONE {:.1}s", step.duration().unwrap_or_default()),
    }
}

/// A size as buildx's progress writes it (`units.Bytes` with `%.2f`): decimal units with two
/// decimals, whole bytes under 1000 (`32B`, `2.06kB`, `27.14MB`).
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut unit = 0;
    let mut base: i64 = 1;
    while unit + 1 < UNITS.len() && bytes.unsigned_abs() >= base.unsigned_abs() * 1000 {
        base *= 1000;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes}B");
    }
    format!("{:.2}{}", bytes as f64 / base as f64, UNITS[unit])
}

#[cfg(test)]
mod tests {
    use bollard_buildkit_proto::{
        google::protobuf::Timestamp,
        moby::buildkit::v1::{Vertex, VertexLog, VertexStatus},
    };

    use super::*;

    fn at(seconds: i64, nanos: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos })
    }

    #[test]
    fn sizes_are_buildx_units() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(999), "999B");
        assert_eq!(size(1000), "1.00kB");
        assert_eq!(size(2060), "2.06kB");
        assert_eq!(size(1_891_000), "1.89MB");
        assert_eq!(size(27_140_000), "27.14MB");
        assert_eq!(size(3_650_000_000), "3.65GB");
    }

    #[test]
    fn output_times_have_fewer_decimals_as_they_grow() {
        assert_eq!(output_text(0.25, "a"), "0.250 a");
        assert_eq!(output_text(12.345, "b"), "12.35 b");
        assert_eq!(output_text(123.45, "c"), "123.5 c");
    }

    #[test]
    fn plain_lines_follow_buildx() {
        let mut printer = PlainPrinter::new();
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
        let mut lines = printer.apply(&StatusResponse { vertexes: vec![context.clone()], ..Default::default() });
        lines.extend(printer.apply(&StatusResponse {
            vertexes: vec![Vertex { completed: at(100, 300_000_000), ..context }],
            statuses: vec![VertexStatus {
                id: "transferring context:".into(),
                vertex: "sha256:ctx".into(),
                current: 2060,
                started: at(100, 0),
                completed: at(100, 200_000_000),
                ..Default::default()
            }],
            ..Default::default()
        }));
        lines
            .extend(printer.apply(&StatusResponse { vertexes: vec![run(at(101, 0), None, "")], ..Default::default() }));
        lines.extend(printer.apply(&StatusResponse {
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
        lines.extend(printer.apply(&StatusResponse {
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
                "#1 transferring context: 2.06kB 0.2s done",
                "#1 DONE 0.3s",
                "",
                "#2 [2/2] RUN make",
                "#2 0.250 compiling",
                "#2 0.250 half a line",
            ]
        );
        assert_eq!(
            printer.finish(),
            ["#2 ERROR: process \"/bin/sh -c make\" did not complete successfully: exit code: 2"],
            "an end alone in its message waits for the next one, or the end of the stream"
        );
        assert_eq!(
            printer.failure_report().expect("a failed step"),
            "------\n > [2/2] RUN make:\n0.250 compiling\n0.250 half a line\n------"
        );
        assert_eq!(printer.steps().len(), 2);
        assert!(!printer.steps()[1].is_running());
    }

    #[test]
    fn a_step_left_unfinished_says_so_when_another_prints() {
        let mut printer = PlainPrinter::new();
        let step = |digest: &str, name: &str| Vertex {
            digest: digest.into(),
            name: name.into(),
            started: at(1, 0),
            ..Default::default()
        };
        let log = |digest: &str, msg: &[u8]| VertexLog {
            vertex: digest.into(),
            timestamp: at(2, 0),
            msg: msg.to_vec(),
            stream: 1,
        };
        let mut lines = printer.apply(&StatusResponse { vertexes: vec![step("a", "A")], ..Default::default() });
        lines.extend(printer.apply(&StatusResponse { vertexes: vec![step("b", "B")], ..Default::default() }));
        lines.extend(printer.apply(&StatusResponse { logs: vec![log("a", b"from a\n")], ..Default::default() }));
        assert_eq!(lines, ["#1 A", "#1 ...", "", "#2 B", "#2 ...", "", "#1 A", "#1 1.000 from a"]);
    }

    #[test]
    fn a_step_started_again_at_once_ends_once() {
        let mut printer = PlainPrinter::new();
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
        let mut lines = printer.apply(&load(at(1, 0), at(1, 100_000_000)));
        lines.extend(printer.apply(&load(at(1, 200_000_000), None)));
        lines.extend(printer.apply(&load(at(1, 200_000_000), at(1, 400_000_000))));
        lines.extend(printer.finish());
        // Both runs count, as buildx sums a vertex's intervals.
        assert_eq!(lines, ["#1 [internal] load build definition from Dockerfile", "#1 DONE 0.3s"]);
    }

    #[test]
    fn a_warning_after_the_end_prints_in_its_step_without_dots() {
        let mut printer = PlainPrinter::new();
        let step = |digest: &str, name: &str, completed| Vertex {
            digest: digest.into(),
            name: name.into(),
            started: at(1, 0),
            completed,
            ..Default::default()
        };
        let mut lines = printer.apply(&StatusResponse {
            vertexes: vec![step("a", "A", at(1, 0)), step("b", "B", None)],
            ..Default::default()
        });
        lines.extend(printer.apply(&StatusResponse {
            warnings: vec![bollard_buildkit_proto::moby::buildkit::v1::VertexWarning {
                vertex: "a".into(),
                short: b"FromAsCasing".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        }));
        lines.extend(printer.apply(&StatusResponse { vertexes: vec![step("c", "C", None)], ..Default::default() }));
        assert_eq!(
            lines,
            ["#1 A", "#1 DONE 0.0s", "", "#2 B", "#2 ...", "", "#1 A", "#1 WARN: FromAsCasing", "", "#3 C"]
        );
    }

    #[test]
    fn a_cached_step_says_cached_and_a_canceled_one_canceled() {
        let mut printer = PlainPrinter::new();
        let mut lines = printer.apply(&StatusResponse {
            vertexes: vec![
                Vertex {
                    digest: "d".into(),
                    name: "[1/2] FROM base".into(),
                    cached: true,
                    started: at(5, 0),
                    completed: at(5, 0),
                    ..Default::default()
                },
                Vertex {
                    digest: "e".into(),
                    name: "[2/2] RUN sleep 100".into(),
                    started: at(5, 0),
                    completed: at(6, 0),
                    error: "failed: context canceled".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        lines.extend(printer.finish());
        assert_eq!(lines, ["#1 [1/2] FROM base", "#1 CACHED", "", "#2 [2/2] RUN sleep 100", "#2 CANCELED"]);
        assert_eq!(printer.failure_report(), None, "a canceled step is no failure");
    }

    #[test]
    fn a_recorded_build_ends_with_its_box_and_error() {
        let failing = Vertex {
            digest: "r".into(),
            name: "[1/1] RUN exit 3".into(),
            started: at(1, 0),
            completed: at(1, 500_000_000),
            error: "exit code: 3".into(),
            ..Default::default()
        };
        let progress = [
            StatusResponse {
                vertexes: vec![Vertex { completed: None, error: String::new(), ..failing.clone() }],
                ..Default::default()
            },
            StatusResponse {
                logs: vec![VertexLog {
                    vertex: "r".into(),
                    timestamp: at(1, 100_000_000),
                    msg: b"why".to_vec(),
                    stream: 2,
                }],
                ..Default::default()
            },
            StatusResponse { vertexes: vec![failing], ..Default::default() },
        ];
        assert_eq!(
            recorded_log(&progress, Some("process did not complete: exit code: 3")),
            "#1 [1/1] RUN exit 3\n#1 0.100 why\n#1 ERROR: exit code: 3\n------\n > [1/1] RUN exit 3:\n0.100 why\n------\n\
             ERROR: process did not complete: exit code: 3\n"
        );
        assert_eq!(recorded_log(&[], None), "");
    }
}
