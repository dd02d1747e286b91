//! Reading a build's `--progress plain` output (buildx's `#N` lines), as the tests check it.

/// Whether the plain progress shows the step whose name contains `needle` as `CACHED`.
pub fn step_cached(stderr: &str, needle: &str) -> bool {
    let Some(number) = stderr.lines().find_map(|line| {
        let (number, rest) = line.split_once(' ')?;
        (number.starts_with('#') && rest.starts_with('[') && rest.contains(needle)).then_some(number)
    }) else {
        return false;
    };
    stderr.lines().any(|line| line == format!("{number} CACHED"))
}

/// Whether a step printed `word` (its output, not its command line).
pub fn step_said(stderr: &str, word: &str) -> bool {
    stderr.lines().any(|line| line.ends_with(word) && !line.contains("RUN ["))
}
