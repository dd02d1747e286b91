//! `--progress rawjson`: each status message as buildx's `SolveStatus` JSON, BuildKit's own
//! fields untouched (nothing decoded: that is [`super::decode`]'s job).
use bollard_buildkit_proto::{google::protobuf::Timestamp, moby::buildkit::v1::StatusResponse};

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
