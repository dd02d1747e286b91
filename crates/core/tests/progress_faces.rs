//! One recorded status stream, read by every face that shows a build's progress, gives the same
//! steps: the same `#N`, names, sizes, lines and ends (issue 23).
//!
//! The fixtures are a real build on the test backend (`assemble-buildkit:v0.25-debian`): a
//! Dockerfile with a lint warning, two cached steps, a context transfer, a step with output
//! (an empty line among it) and a failing step whose output has a line split over two messages
//! and a last line without a newline; a final stage that never began.
//! - `failed-build.live.jsonl`: the stream as `assemble build --progress rawjson` printed it,
//!   message by message (the Dockerfile's definition and the `.dockerignore` each run twice,
//!   the second time in two messages);
//! - `failed-build.replay.jsonl`: the same build as BuildKit's history replays it to
//!   `Control.Status` on its finished ref (`builds logs`, the Builds window): one message.
use assemble_core::buildkit::{
    history::StepRow,
    progress::{plain, Decoder, PlainPrinter, StatusResponse, Step},
};
use base64::Engine as _;
use bollard_buildkit_proto::{
    google::protobuf::Timestamp,
    moby::buildkit::v1::{Vertex, VertexLog, VertexStatus, VertexWarning},
};
use serde_json::Value;

const LIVE: &str = include_str!("fixtures/progress/failed-build.live.jsonl");
const REPLAY: &str = include_str!("fixtures/progress/failed-build.replay.jsonl");
const BUILD_ERROR: &str = "process \"/bin/busybox sh -c echo compiling; printf 'half'; /bin/busybox sleep 1; printf ' a \
                           line\\\\n'; printf 'no newline at the end'; exit 3\" did not complete successfully: exit code: 3";

/// A step as a face shows it.
#[derive(Debug, Clone, PartialEq)]
struct FaceStep {
    number: usize,
    name: String,
    /// Its lines as plain prints them after `#N `.
    lines: Vec<String>,
    /// `DONE 0.1s`, `CACHED`, `ERROR: …`, `CANCELED`.
    end: String,
}

// ---- The recorded stream: `--progress rawjson` read back ----

/// `2026-12-03T03:16:40.757241587Z` (the form rawjson writes) as a protobuf timestamp.
fn timestamp(value: &Value) -> Option<Timestamp> {
    let text = value.as_str()?;
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let nanos = number(20..29)?;
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(Timestamp { seconds: days * 86_400 + hour * 3600 + minute * 60 + second, nanos: nanos as i32 })
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

fn bytes(value: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(value.as_str().unwrap_or_default()).expect("base64")
}

fn each<'a>(message: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    message[key].as_array().into_iter().flatten()
}

fn stream(jsonl: &str) -> Vec<StatusResponse> {
    jsonl
        .lines()
        .map(|line| {
            let message: Value = serde_json::from_str(line).expect("a rawjson line");
            StatusResponse {
                vertexes: each(&message, "vertexes")
                    .map(|v| Vertex {
                        digest: text(&v["digest"]),
                        inputs: each(v, "inputs").map(text).collect(),
                        name: text(&v["name"]),
                        cached: v["cached"].as_bool().unwrap_or_default(),
                        started: timestamp(&v["started"]),
                        completed: timestamp(&v["completed"]),
                        error: text(&v["error"]),
                        ..Default::default()
                    })
                    .collect(),
                statuses: each(&message, "statuses")
                    .map(|s| VertexStatus {
                        id: text(&s["id"]),
                        vertex: text(&s["vertex"]),
                        name: text(&s["name"]),
                        current: s["current"].as_i64().unwrap_or_default(),
                        total: s["total"].as_i64().unwrap_or_default(),
                        timestamp: timestamp(&s["timestamp"]),
                        started: timestamp(&s["started"]),
                        completed: timestamp(&s["completed"]),
                    })
                    .collect(),
                logs: each(&message, "logs")
                    .map(|l| VertexLog {
                        vertex: text(&l["vertex"]),
                        timestamp: timestamp(&l["timestamp"]),
                        stream: l["stream"].as_i64().unwrap_or_default(),
                        msg: bytes(&l["data"]),
                    })
                    .collect(),
                warnings: each(&message, "warnings")
                    .map(|w| VertexWarning {
                        vertex: text(&w["vertex"]),
                        level: w["level"].as_i64().unwrap_or_default(),
                        short: bytes(&w["short"]),
                        url: text(&w["url"]),
                        ..Default::default()
                    })
                    .collect(),
            }
        })
        .collect()
}

// ---- The faces ----

/// `#N …` lines, as a terminal or a window shows them, read back into steps. The failure box and
/// the build's error, which follow the steps, are returned apart.
fn steps_from_plain(lines: &[String]) -> (Vec<FaceStep>, Vec<String>) {
    let mut steps: Vec<FaceStep> = Vec::new();
    let mut after = Vec::new();
    for line in lines {
        if !after.is_empty() || line.starts_with("------") {
            after.push(line.clone());
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let (number, rest) = line
            .strip_prefix('#')
            .and_then(|l| l.split_once(' '))
            .unwrap_or_else(|| panic!("not a step's line: {line:?}"));
        let number: usize = number.parse().expect("#N");
        match steps.iter_mut().find(|s| s.number == number) {
            None => {
                assert_eq!(number, steps.len() + 1, "numbers rise as steps appear: {line:?}");
                steps.push(FaceStep { number, name: rest.to_string(), lines: Vec::new(), end: String::new() });
            }
            Some(step) if rest == step.name || rest == "..." => {}
            Some(step)
                if rest.starts_with("DONE ")
                    || rest.starts_with("ERROR: ")
                    || ["CACHED", "CANCELED"].contains(&rest) =>
            {
                step.end = rest.to_string()
            }
            Some(step) => step.lines.push(rest.to_string()),
        }
    }
    (steps, after)
}

/// `assemble build --progress plain`, and the Build window's lines (`build_job.rs` sends what the
/// same printer returns, message by message).
fn live_plain(stream: &[StatusResponse]) -> (Vec<String>, PlainPrinter) {
    let mut printer = PlainPrinter::new();
    let mut lines: Vec<String> = stream.iter().flat_map(|status| printer.apply(status)).collect();
    lines.extend(printer.finish());
    (lines, printer)
}

/// The steps as the live view (`--progress tty`) draws them from the printer.
fn live_view(printer: &PlainPrinter) -> Vec<FaceStep> {
    printer.steps().iter().map(face_of_step).collect()
}

fn face_of_step(step: &Step) -> FaceStep {
    FaceStep {
        number: step.number,
        name: step.name.clone(),
        lines: step.lines().map(plain::line_text).collect(),
        end: plain::end_text(step),
    }
}

/// The rows the Builds window receives for the finished build (`follow_build` reads the stream
/// with a decoder, finishes it at its end, and `commands.rs` sends `row(false)` of each step).
fn builds_window(stream: &[StatusResponse]) -> Vec<StepRow> {
    let mut decoder = Decoder::new();
    for status in stream {
        decoder.apply(status);
    }
    decoder.finish();
    decoder.steps().iter().map(|step| step.row(false)).collect()
}

fn face_of_row(row: &StepRow) -> FaceStep {
    let end = match (&row.error, row.duration.as_str()) {
        (Some(error), _) if error.ends_with("context canceled") => "CANCELED".to_string(),
        (Some(error), _) => format!("ERROR: {error}"),
        (None, "CACHED") => "CACHED".to_string(),
        // The window words a duration as `seconds_text`, which is plain's `0.1s` under 10 s.
        (None, duration) => format!("DONE {duration}"),
    };
    FaceStep { number: row.number, name: row.name.clone(), lines: row.lines.clone(), end }
}

fn lines(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

/// What every face must show for the recorded build: the rules of `buildkit::progress` applied.
fn expected() -> Vec<FaceStep> {
    let step = |number, name: &str, lines: Vec<String>, end: &str| FaceStep {
        number,
        name: name.to_string(),
        lines,
        end: end.to_string(),
    };
    vec![
        step(
            1,
            "[internal] load build definition from Dockerfile",
            lines(&[
                "transferring dockerfile: 468B 0.0s done",
                "WARN: FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)",
            ]),
            "DONE 0.0s",
        ),
        step(2, "[internal] load .dockerignore", lines(&["transferring context: 2B done"]), "DONE 0.1s"),
        step(3, "[internal] load build context", lines(&["transferring context: 1.98MB 0.1s done"]), "DONE 0.1s"),
        step(4, "[tools 1/5] COPY busybox /bin/busybox", vec![], "CACHED"),
        step(5, "[tools 2/5] RUN [\"/bin/busybox\", \"mkdir\", \"-p\", \"/out\"]", vec![], "CACHED"),
        step(6, "[tools 3/5] COPY message.txt /message.txt", vec![], "DONE 0.1s"),
        step(
            7,
            "[tools 4/5] RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox cat /message.txt; echo second line; echo; \
             echo after an empty line\"]",
            lines(&["0.146 the message, v1", "0.147 second line", "0.147 ", "0.148 after an empty line"]),
            "DONE 0.2s",
        ),
        step(
            8,
            "[tools 5/5] RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo compiling; printf 'half'; /bin/busybox sleep 1; \
             printf ' a line\\n'; printf 'no newline at the end'; exit 3\"]",
            // The line split over two messages is one, timed by its first piece; the last line
            // without a newline is whole at the step's end.
            lines(&["0.139 compiling", "0.140 half a line", "1.143 no newline at the end"]),
            &format!("ERROR: {BUILD_ERROR}"),
        ),
    ]
}

#[test]
fn one_recorded_stream_gives_the_same_steps_on_every_face() {
    let stream = stream(LIVE);
    assert!(stream.len() > 30, "the live stream is message by message");

    let (printed, printer) = live_plain(&stream);
    let (plain_steps, plain_after) = steps_from_plain(&printed);
    let (logs_steps, logs_after) = steps_from_plain(&lines_of(&plain::recorded_log(&stream, Some(BUILD_ERROR))));
    let view_steps = live_view(&printer);
    let window_steps: Vec<FaceStep> = builds_window(&stream).iter().map(face_of_row).collect();

    let expected = expected();
    assert_eq!(plain_steps, expected, "--progress plain and the Build window:\n{}", printed.join("\n"));
    assert_eq!(logs_steps, expected, "builds logs");
    assert_eq!(view_steps, expected, "the live view (--progress tty)");
    assert_eq!(window_steps, expected, "the Builds window's rows");

    // The failure box: the same in the terminal, the Build window and `builds logs`, which then
    // ends with the build's error.
    let report = printer.failure_report().expect("a failed step");
    assert_eq!(plain_after, Vec::<String>::new(), "the live printer leaves the box to its caller");
    assert_eq!(logs_after, [lines_of(&report), vec![format!("ERROR: {BUILD_ERROR}")]].concat());
    assert_eq!(
        lines_of(&report)[2..5],
        ["0.139 compiling", "0.140 half a line", "1.143 no newline at the end"],
        "the box's lines are the step's lines"
    );
}

#[test]
fn the_builds_window_shows_a_running_build_as_it_goes_and_ends_where_the_others_end() {
    // The window is told after each burst while the build runs; each report is where the
    // stream got to, and the last (after the end) is the finished build's.
    let stream = stream(LIVE);
    let mut decoder = Decoder::new();
    let mut seen_running = false;
    for status in &stream {
        decoder.apply(status);
        let rows: Vec<StepRow> = decoder.steps().iter().map(|step| step.row(true)).collect();
        for (index, row) in rows.iter().enumerate() {
            assert_eq!(row.number, index + 1);
        }
        seen_running |= rows.iter().any(|row| row.running && row.duration == "running");
        // The half line shows while it waits for the rest.
        if rows.len() == 8 && rows[7].lines.last().is_some_and(|l| l == "0.140 half") {
            assert!(rows[7].running);
        }
    }
    assert!(seen_running, "a step under way is marked");
    decoder.finish();
    let rows: Vec<FaceStep> = decoder.steps().iter().map(|step| face_of_row(&step.row(false))).collect();
    assert_eq!(rows, expected());
}

#[test]
fn the_history_replays_the_build_with_the_steps_it_had_live() {
    // BuildKit replays a finished build as one message; read by the same decoder, it numbers,
    // names and sizes the steps as the live stream did.
    let replay = stream(REPLAY);
    assert_eq!(replay.len(), 1, "BuildKit sends the record as one message");
    let (replayed, _) = steps_from_plain(&lines_of(&plain::recorded_log(&replay, Some(BUILD_ERROR))));
    let mut expected = expected();
    // BuildKit did not record the `.dockerignore` transfer's status (the live stream has it):
    // a fact of its history, not of our reading.
    expected[1].lines.clear();
    assert_eq!(replayed, expected);
    let window: Vec<FaceStep> = builds_window(&replay).iter().map(face_of_row).collect();
    assert_eq!(window, expected);
}

fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}
