//! Remembers that an engine's runtime could not apply the capabilities of a privileged container
//! (and only that: a policy's refusal is never remembered, it is told each time, see security.rs),
//! so later starts go straight to the capability mode instead of paying for a refused attempt each
//! time (about 0.3 s here). Kept in
//! the runtime folder, so it is forgotten when the machine restarts, and keyed by the resolved
//! engine endpoint, so one engine's refusal never changes how another is started.
use std::path::PathBuf;

use crate::engine::Endpoint;

/// The refusal remembered for `endpoint`'s engine, if any.
pub fn refusal(endpoint: &Endpoint) -> Option<String> {
    std::fs::read_to_string(path(endpoint)).ok().map(|reason| reason.trim().to_string()).filter(|r| !r.is_empty())
}

/// Best effort: a memo that cannot be written only costs the next start one more attempt.
pub fn remember(endpoint: &Endpoint, reason: &str) {
    let _ = std::fs::write(path(endpoint), reason);
}

fn path(endpoint: &Endpoint) -> PathBuf {
    crate::names::runtime_dir().join(format!("assemble-backend-privileged-refused-{}", endpoint.file_key()))
}
