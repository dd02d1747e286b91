//! A build's steps from its recorded progress (`Control.Status`): each vertex as a [`Step`],
//! numbered in the order the steps began, with its output lines and the last word on each of its
//! parts.
use std::collections::HashMap;

use bollard_buildkit_proto::{google::protobuf::Timestamp, moby::buildkit::v1::StatusResponse};
use serde::Serialize;

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

#[cfg(test)]
mod tests {
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
}
