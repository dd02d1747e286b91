//! The real binaries of this build (`assemble`, the tests' buildx) and a runner that bounds a
//! command in time and keeps what it printed.
use std::{
    io::Read,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// How long a command run with [`run_bounded`] may take before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(240);

/// The `assemble` binary of this build: beside the running program (the soak, a benchmark: in
/// `target/<profile>/`), or one folder up from a test binary (in `target/<profile>/deps/`).
pub fn find_assemble_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot tell where this program is: {e}"))?;
    let beside = exe.parent().ok_or_else(|| format!("{} has no folder", exe.display()))?;
    let profile_dir = if beside.ends_with("deps") { beside.parent().unwrap_or(beside) } else { beside };
    let binary = profile_dir.join("assemble");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!("{} is missing: run `cargo build --workspace --bins` first", binary.display()))
    }
}

/// [`find_assemble_binary`], or a panic that says how to make it (for tests).
pub fn assemble_binary() -> PathBuf {
    find_assemble_binary().unwrap_or_else(|reason| panic!("{reason}"))
}

/// The real buildx the tests use: scripts/fetch-buildx.sh puts it in the repository's
/// `target/buildx`. It may be absent; [`crate::TestUser`] links it only when it is there.
pub fn buildx_plugin() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/buildx/docker-buildx")
}

/// The end of one command run.
#[derive(Debug)]
pub struct Run {
    /// What ran, for messages (`assemble backend start …`).
    pub command: String,
    /// Its exit code; `None` when it did not end in time (or died of a signal); `Some(-1)` when it
    /// could not be started or waited for (then `stderr` says why).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    #[track_caller]
    pub fn expect_ok(self) -> Self {
        assert!(self.ok(), "command failed: {self:#?}");
        self
    }

    /// A Rust panic (exit code 101 or its message), or a run that never ended.
    pub fn panicked(&self) -> bool {
        self.code == Some(101) || self.code.is_none() || self.stderr.contains("panicked at")
    }

    /// One line: what ran, how it ended, after how long, and what it said on stderr.
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited {:?} after {:.1}s: {}",
            self.command,
            self.code,
            self.took.as_secs_f64(),
            self.stderr.trim()
        )
    }

    fn not_started(command: String, reason: String, began: Instant) -> Self {
        Self { command, code: Some(-1), stdout: String::new(), stderr: reason, took: began.elapsed() }
    }
}

/// `program arg…` as one line, for messages.
fn command_line(command: &Command) -> String {
    let program = std::path::Path::new(command.get_program());
    let name = program.file_name().unwrap_or(program.as_os_str()).to_string_lossy();
    std::iter::once(name).chain(command.get_args().map(|arg| arg.to_string_lossy())).collect::<Vec<_>>().join(" ")
}

/// Runs a command to its end with its output piped, killing it if it outlives
/// [`COMMAND_TIMEOUT`]. Blocks the calling thread; async callers use [`run_bounded_async`].
pub fn run_bounded(mut command: Command) -> Run {
    let began = Instant::now();
    let line = command_line(&command);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            let reason = format!("cannot start {line}: {err}");
            return Run::not_started(line, reason, began);
        }
    };
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let readers =
        (std::thread::spawn(move || read_all(out.as_mut())), std::thread::spawn(move || read_all(err.as_mut())));
    let deadline = began + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() <= deadline => std::thread::sleep(Duration::from_millis(20)),
            // Past its time, or it cannot be waited for: either way it is ended here.
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Run {
        command: line,
        code: status.and_then(|s| s.code()),
        stdout: readers.0.join().unwrap_or_default(),
        stderr: readers.1.join().unwrap_or_default(),
        took: began.elapsed(),
    }
}

fn read_all(stream: Option<&mut impl Read>) -> String {
    let mut text = String::new();
    if let Some(stream) = stream {
        let _ = stream.read_to_string(&mut text);
    }
    text
}

/// [`run_bounded`] for async callers, with the time limit given: other tasks go on while it runs
/// (two clients at once really run at once), and a run dropped half way kills its process.
pub async fn run_bounded_async(command: Command, limit: Duration) -> Run {
    let began = Instant::now();
    let line = command_line(&command);
    let mut command = tokio::process::Command::from(command);
    command.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            let reason = format!("cannot start {line}: {err}");
            return Run::not_started(line, reason, began);
        }
    };
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(output)) => Run {
            command: line,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into(),
            stderr: String::from_utf8_lossy(&output.stderr).into(),
            took: began.elapsed(),
        },
        Ok(Err(err)) => Run::not_started(line, format!("waiting for it: {err}"), began),
        // The child future is dropped here, which kills the process (kill_on_drop).
        Err(_) => Run {
            command: line,
            code: None,
            stdout: String::new(),
            stderr: format!("no answer within {limit:?}"),
            took: began.elapsed(),
        },
    }
}

/// A successful run's stdout as JSON (`--format json`).
#[track_caller]
pub fn json(run: Run) -> serde_json::Value {
    let stdout = run.expect_ok().stdout;
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// A refusal: exit code 1 and one sentence on stderr holding each of `expected`; the sentence.
#[track_caller]
pub fn refused(run: Run, expected: &[&str]) -> String {
    assert_eq!(run.code, Some(1), "{run:#?}");
    let message = run.stderr.trim_end().to_string();
    assert_eq!(message.lines().count(), 1, "one sentence: {run:#?}");
    for part in expected {
        assert!(message.contains(part), "expected {part:?} in {message:?}");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_keeps_what_it_printed_and_how_it_ended() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo out; echo err >&2; exit 3"]);
        let run = run_bounded(command);
        assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (Some(3), "out\n", "err\n"));
        assert_eq!(run.command, "sh -c echo out; echo err >&2; exit 3");
        assert!(!run.ok() && !run.panicked());
    }

    #[test]
    fn a_program_that_cannot_start_is_a_run_that_says_so() {
        let run = run_bounded(Command::new("/nonexistent/assemble-testkit-program"));
        assert_eq!(run.code, Some(-1));
        assert!(run.stderr.contains("cannot start"), "{}", run.stderr);
    }

    #[tokio::test]
    async fn an_async_run_past_its_limit_is_killed_and_counts_as_hung() {
        let mut command = Command::new("sleep");
        command.arg("30");
        let run = run_bounded_async(command, Duration::from_millis(200)).await;
        assert_eq!(run.code, None);
        assert!(run.panicked() && run.took < Duration::from_secs(10), "{run:?}");
    }
}
