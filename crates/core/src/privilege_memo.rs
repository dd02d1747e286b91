//! Remembers that an engine refused a privileged container, so later starts go straight to the
//! capability mode instead of paying for a refused attempt each time (about 0.3 s here). Kept in
//! the runtime folder, so it is forgotten when the machine restarts, and keyed by the engine's
//! address.
use std::path::PathBuf;

/// The refusal remembered for the engine this process talks to, if any.
pub fn refusal() -> Option<String> {
    std::fs::read_to_string(path()).ok().map(|reason| reason.trim().to_string()).filter(|r| !r.is_empty())
}

/// Best effort: a memo that cannot be written only costs the next start one more attempt.
pub fn remember(reason: &str) {
    let _ = std::fs::write(path(), reason);
}

fn path() -> PathBuf {
    let endpoint = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
    let endpoint = endpoint.as_deref().unwrap_or(crate::engine::DEFAULT_ENDPOINT);
    crate::lock::runtime_dir().join(format!("assemble-backend-privileged-refused-{:016x}", fnv1a(endpoint)))
}

/// A stable hash (std's `DefaultHasher` may change between Rust releases).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_key_is_stable_and_tells_engines_apart() {
        assert_eq!(super::fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(super::fnv1a("unix:///var/run/docker.sock"), super::fnv1a("tcp://10.0.0.2:2375"));
    }
}
