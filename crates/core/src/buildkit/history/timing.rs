//! A build's timing as the Builds window draws it (as Docker Desktop's build timing view): its
//! steps as bars on one time axis from the build's start, the cached ones marked, the critical
//! path marked, and the share of steps served from the cache. Every figure and text is made here;
//! the window only places the bars at the percentages given.
use std::collections::HashMap;

use serde::Serialize;

use crate::buildkit::history::build::{Build, BuildStatus};
use crate::buildkit::progress::Step;
use crate::time::seconds_text;

/// BuildKit's times are in nanoseconds, but a step that waits for another begins a hair after it
/// ends, or a hair before when the two times come from different goroutines.
const SAME_MOMENT: f64 = 0.005;

/// Past this percent of the axis a bar's text goes before it, so as not to leave the picture.
const TEXT_AFTER_UP_TO: f64 = 80.0;

/// A build's timing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timing {
    /// The axis's length: "12s".
    pub total: String,
    /// The marks along the axis.
    pub ticks: Vec<Tick>,
    /// One bar per step, in `#N` order.
    pub bars: Vec<Bar>,
    /// Steps served from the cache.
    pub cached_steps: usize,
    /// Steps in the picture.
    pub steps: usize,
    /// "7 of 10 steps cached (70 %)"; "" without steps.
    pub cached: String,
    /// "Critical path: #1 → #4 → #6 (8.1s)"; "" without steps.
    pub critical: String,
}

/// A mark on the axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tick {
    /// Where, in percent of the axis.
    pub left: f64,
    /// "2s".
    pub text: String,
}

/// A step's bar: from its start to its end, relative to the build's start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    /// `#N`, as in the step list.
    pub number: usize,
    /// The step's name.
    pub name: String,
    /// Served from the cache.
    pub cached: bool,
    /// On the critical path.
    pub critical: bool,
    /// Under way now.
    pub running: bool,
    /// It failed.
    pub failed: bool,
    /// Seconds from the build's start to the step's start.
    pub offset: f64,
    /// Seconds from its start to its end (until now while it runs).
    pub seconds: f64,
    /// Where it begins, in percent of the axis.
    pub left: f64,
    /// Its length, in percent of the axis.
    pub width: f64,
    /// What the bar says: "1.2s", "CACHED", "running".
    pub text: String,
    /// The text goes before the bar (it ends too near the axis's end for the text after it).
    pub text_before: bool,
    /// Its tooltip: "#3 [2/3] RUN make: began at 0.4s, took 1.2s".
    pub title: String,
}

/// A step's span on the axis: seconds since the epoch.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: f64,
    end: f64,
}

/// The timing of `build` from its `steps`, at `now` (seconds since 1970; a running step's bar
/// reaches it). Steps that never began have no bar (the decoder makes no step of them).
pub fn timing(build: &Build, steps: &[Step], now: f64) -> Timing {
    let running = build.status == BuildStatus::Running;
    let spans: Vec<Option<Span>> = steps
        .iter()
        .map(|step| {
            let start = step.runs().first()?.start;
            // A step that never ended in a finished build (stopped by its failure) ends where it began.
            let end = step.completed().unwrap_or(if running && step.is_running() { now } else { start });
            Some(Span { start, end: end.max(start) })
        })
        .collect();
    let shown: Vec<(usize, Span)> = spans.iter().enumerate().filter_map(|(i, s)| s.map(|s| (i, s))).collect();
    let first_start = shown.iter().map(|(_, s)| s.start).fold(f64::INFINITY, f64::min);
    // The build's own start, unless BuildKit did not tell it (or a clock put a step before it).
    let origin = if build.created_seconds > 0.0 { build.created_seconds.min(first_start) } else { first_start };
    let last_end = shown.iter().map(|(_, s)| s.end).fold(origin, f64::max);
    let end = match (running, build.completed_seconds) {
        (true, _) => last_end.max(now),
        (false, Some(completed)) => last_end.max(completed),
        (false, None) => last_end,
    };
    let total = if shown.is_empty() { 0.0 } else { (end - origin).max(0.0) };
    let percent = |seconds: f64| if total > 0.0 { (100.0 * seconds / total).clamp(0.0, 100.0) } else { 0.0 };

    let path = critical_path(steps, &spans);
    let bars: Vec<Bar> = shown
        .iter()
        .map(|&(i, span)| {
            let step = &steps[i];
            let offset = span.start - origin;
            let seconds = span.end - span.start;
            let is_running = running && step.is_running();
            let text = if step.cached {
                "CACHED".to_string()
            } else if is_running {
                "running".to_string()
            } else {
                seconds_text(seconds)
            };
            let took = if step.cached {
                "served from the cache".to_string()
            } else {
                format!("took {}", seconds_text(seconds))
            };
            Bar {
                number: step.number,
                name: step.name.clone(),
                cached: step.cached,
                critical: path.contains(&i),
                running: is_running,
                failed: step.error.is_some(),
                offset,
                seconds,
                left: percent(offset),
                width: percent(seconds),
                text_before: percent(span.end - origin) > TEXT_AFTER_UP_TO,
                title: format!("#{} {}: began at {}, {took}", step.number, step.name, seconds_text(offset)),
                text,
            }
        })
        .collect();

    let cached_steps = bars.iter().filter(|b| b.cached).count();
    let count = bars.len();
    let cached = match count {
        0 => String::new(),
        1 => format!("{cached_steps} of 1 step cached ({} %)", 100 * cached_steps),
        _ => format!(
            "{cached_steps} of {count} steps cached ({} %)",
            (100.0 * cached_steps as f64 / count as f64).round() as usize
        ),
    };
    let critical = match path.len() {
        0 => String::new(),
        _ => {
            let chain: Vec<String> = path.iter().rev().map(|i| format!("#{}", steps[*i].number)).collect();
            let seconds: f64 = path.iter().filter_map(|i| spans[*i]).map(|s| s.end - s.start).sum();
            format!("Critical path: {} ({})", chain.join(" → "), seconds_text(seconds))
        }
    };
    Timing {
        total: seconds_text(total),
        ticks: ticks(total, percent),
        bars,
        cached_steps,
        steps: count,
        cached,
        critical,
    }
}

/// The chain of steps that ends last, as indexes into `steps`, last step first: from the step that
/// ends last, back through the input (a step it waits for) that ended last; where a step takes in
/// no other step (the export, the context: BuildKit gives them no inputs), back through the step
/// that ended last before it began, as that is what it waited for in time.
fn critical_path(steps: &[Step], spans: &[Option<Span>]) -> Vec<usize> {
    let by_digest: HashMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.digest.as_str(), i)).collect();
    // The latest end; of equal ends the one that ran longer (a cached step takes no time, so it
    // is not what the next one waited for), then the later step (the export follows its image).
    let latest = |candidates: &mut dyn Iterator<Item = usize>| {
        candidates
            .filter_map(|i| spans[i].map(|s| (i, s)))
            .max_by(|(i, a), (j, b)| {
                a.end.total_cmp(&b.end).then((a.end - a.start).total_cmp(&(b.end - b.start))).then(i.cmp(j))
            })
            .map(|(i, _)| i)
    };
    let Some(mut current) = latest(&mut (0..steps.len())) else { return Vec::new() };
    let mut path = vec![current];
    while let Some(span) = spans[current] {
        let mut inputs = steps[current]
            .inputs
            .iter()
            .filter_map(|digest| by_digest.get(digest.as_str()).copied())
            .filter(|i| !path.contains(i))
            .peekable();
        let next = if inputs.peek().is_some() {
            latest(&mut inputs)
        } else {
            let mut before = (0..steps.len())
                .filter(|i| !path.contains(i) && spans[*i].is_some_and(|s| s.end <= span.start + SAME_MOMENT));
            latest(&mut before)
        };
        match next {
            Some(next) => {
                path.push(next);
                current = next;
            }
            None => break,
        }
    }
    path
}

/// Marks at a round spacing giving four to eight of them along `total` seconds.
fn ticks(total: f64, percent: impl Fn(f64) -> f64) -> Vec<Tick> {
    if total <= 0.0 {
        return Vec::new();
    }
    const SPACINGS: [f64; 17] =
        [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0];
    let spacing = SPACINGS.iter().copied().find(|s| total / s <= 8.0).unwrap_or(3600.0);
    let mut ticks = Vec::new();
    let mut at = 0.0;
    while at <= total + 1e-9 {
        let text = if spacing < 0.1 {
            format!("{at:.2}s")
        } else if spacing < 1.0 {
            format!("{at:.1}s")
        } else if at < 60.0 {
            format!("{at:.0}s")
        } else {
            seconds_text(at)
        };
        ticks.push(Tick { left: percent(at), text });
        at += spacing;
    }
    ticks
}

#[cfg(test)]
mod tests {
    use bollard_buildkit_proto::{
        google::protobuf::Timestamp,
        moby::buildkit::v1::{BuildHistoryRecord, StatusResponse, Vertex},
    };

    use super::*;
    use crate::buildkit::history::build::build_from_record;
    use crate::buildkit::progress::Decoder;

    const T0: i64 = 1_795_964_700;

    fn at(seconds: f64) -> Option<Timestamp> {
        let whole = seconds.floor();
        Some(Timestamp { seconds: T0 + whole as i64, nanos: ((seconds - whole) * 1e9).round() as i32 })
    }

    fn vertex(digest: &str, name: &str, inputs: &[&str], span: (f64, f64), cached: bool) -> Vertex {
        Vertex {
            digest: digest.into(),
            name: name.into(),
            inputs: inputs.iter().map(|i| i.to_string()).collect(),
            started: at(span.0),
            completed: at(span.1),
            cached,
            ..Default::default()
        }
    }

    fn build(seconds: Option<f64>) -> Build {
        build_from_record(&BuildHistoryRecord {
            r#ref: "qz7v2".into(),
            created_at: at(0.0),
            completed_at: seconds.and_then(at),
            ..Default::default()
        })
    }

    /// A small build as BuildKit recorded it: the definition, the context, a stage of two steps
    /// (the first cached) and a second stage's long step side by side, joined by a COPY, then the
    /// export (which BuildKit gives no inputs).
    fn recorded(with_inputs: bool) -> Vec<Step> {
        let inputs = |i: &'static [&'static str]| if with_inputs { i } else { &[] };
        let mut decoder = Decoder::new();
        decoder.apply(&StatusResponse {
            vertexes: vec![
                vertex("def", "[internal] load build definition from Dockerfile", &[], (0.0, 0.5), false),
                vertex("ctx", "[internal] load build context", &[], (0.5, 1.0), false),
                vertex("a1", "[tools 1/2] COPY busybox /bin/busybox", inputs(&["ctx"]), (1.0, 1.0), true),
                vertex("a2", "[tools 2/2] RUN make", inputs(&["a1"]), (1.0, 3.0), false),
                vertex("b1", "[gen 1/1] RUN generate", inputs(&["ctx"]), (1.0, 6.0), false),
                vertex("c1", "[stage-2 1/1] COPY --from=tools --from=gen", inputs(&["a2", "b1"]), (6.0, 6.5), false),
                vertex("exp", "exporting to image", &[], (6.5, 8.0), false),
            ],
            ..Default::default()
        });
        decoder.steps().to_vec()
    }

    fn critical(timing: &Timing) -> Vec<usize> {
        timing.bars.iter().filter(|b| b.critical).map(|b| b.number).collect()
    }

    #[test]
    fn bars_sit_where_their_steps_ran_from_the_build_s_start() {
        let timing = timing(&build(Some(10.0)), &recorded(true), 0.0);
        let placed: Vec<(usize, f64, f64, &str)> =
            timing.bars.iter().map(|b| (b.number, b.offset, b.seconds, b.text.as_str())).collect();
        assert_eq!(
            placed,
            [
                (1, 0.0, 0.5, "0.5s"),
                (2, 0.5, 0.5, "0.5s"),
                (3, 1.0, 0.0, "CACHED"),
                (4, 1.0, 2.0, "2.0s"),
                (5, 1.0, 5.0, "5.0s"),
                (6, 6.0, 0.5, "0.5s"),
                (7, 6.5, 1.5, "1.5s"),
            ]
        );
        // The axis is the build's whole time (10s, past its last step): percents of it.
        assert_eq!(timing.total, "10s");
        let bar = &timing.bars[4];
        assert_eq!((bar.left, bar.width, bar.text_before), (10.0, 50.0, false));
        assert!(!timing.bars[6].text_before, "the export ends at 80 %, not past it: its text still goes after it");
        assert_eq!(bar.title, "#5 [gen 1/1] RUN generate: began at 1.0s, took 5.0s");
        assert_eq!(
            timing.bars[2].title,
            "#3 [tools 1/2] COPY busybox /bin/busybox: began at 1.0s, served from the cache"
        );
        let ticks: Vec<(f64, &str)> = timing.ticks.iter().map(|t| (t.left, t.text.as_str())).collect();
        assert_eq!(ticks, [(0.0, "0s"), (20.0, "2s"), (40.0, "4s"), (60.0, "6s"), (80.0, "8s"), (100.0, "10s")]);
    }

    #[test]
    fn the_cached_share_counts_the_steps_served_from_the_cache() {
        let timing = timing(&build(Some(8.0)), &recorded(true), 0.0);
        assert_eq!((timing.cached_steps, timing.steps), (1, 7));
        assert_eq!(timing.cached, "1 of 7 steps cached (14 %)");
        assert!(timing.bars[2].cached && !timing.bars[3].cached);

        let empty = super::timing(&build(None), &[], 0.0);
        assert_eq!((empty.cached.as_str(), empty.critical.as_str(), empty.bars.len()), ("", "", 0));
        assert!(empty.ticks.is_empty());
    }

    #[test]
    fn a_quick_build_s_axis_has_fine_marks() {
        let marks: Vec<String> = ticks(0.06, |s| s).into_iter().map(|t| t.text).collect();
        assert_eq!(marks, ["0.00s", "0.01s", "0.02s", "0.03s", "0.04s", "0.05s", "0.06s"]);
    }

    #[test]
    fn the_critical_path_follows_the_inputs_that_ended_last() {
        let timing = timing(&build(Some(8.0)), &recorded(true), 0.0);
        // The export waits for the COPY, which waits for the long generate (not make), which
        // waits for the context, which came after the definition.
        assert_eq!(critical(&timing), [1, 2, 5, 6, 7]);
        assert_eq!(timing.critical, "Critical path: #1 → #2 → #5 → #6 → #7 (8.0s)");
    }

    #[test]
    fn without_inputs_the_critical_path_is_the_steps_that_ended_last_before_each_began() {
        let timing = timing(&build(Some(8.0)), &recorded(false), 0.0);
        assert_eq!(critical(&timing), [1, 2, 5, 6, 7]);
    }

    #[test]
    fn a_running_step_reaches_now() {
        let mut decoder = Decoder::new();
        decoder.apply(&StatusResponse {
            vertexes: vec![
                vertex("def", "[internal] load build definition from Dockerfile", &[], (0.0, 1.0), false),
                Vertex { completed: None, ..vertex("run", "[1/1] RUN sleep 9", &["def"], (1.0, 1.0), false) },
            ],
            ..Default::default()
        });
        let timing = timing(&build(None), decoder.steps(), (T0 + 4) as f64);
        let last = &timing.bars[1];
        assert_eq!((last.running, last.seconds, last.text.as_str(), last.width), (true, 3.0, "running", 75.0));
        assert_eq!(critical(&timing), [1, 2]);
    }
}
