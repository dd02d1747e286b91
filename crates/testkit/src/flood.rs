//! A connection flood from a `RUN` step, and what to watch on the host while it runs: the relay's
//! threads, its container's pids (from the cgroup the kernel enforces the limit with), and the
//! host's threads. Read from /proc and /sys, not through the core, which is what is under test.
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use bollard::Docker;

use crate::exec;

/// A `RUN` step (busybox, `FROM scratch`) that opens `count` connections to `localhost:port` and
/// holds them open (each `nc` reads a FIFO that never ends) for a few seconds, then ends them.
/// Run in `backend` with buildctl; returns the build's exit code and output (it may fail or
/// finish: either is allowed, the relay's behaviour is what counts).
pub async fn flood_from_a_run_step(docker: &Docker, backend: &str, port: u16, count: usize) -> (i64, String) {
    let run = format!(
        "b=/bin/busybox; $b mkfifo /hold; exec 3<>/hold; i=0; pids=''; \
         while [ $i -lt {count} ]; do $b nc 127.0.0.1 {port} </hold >/dev/null 2>&1 & pids=\"$pids $!\"; i=$((i+1)); done; \
         echo opened {count}; $b sleep 8; $b kill $pids 2>/dev/null; echo flooded"
    );
    let script = format!(
        "set -e; d=$(mktemp -d); cp /bin/busybox $d/; cat > $d/flood.sh <<'EOF_FLOOD'\n{run}\nEOF_FLOOD\n\
         printf 'FROM scratch\\nCOPY busybox /bin/busybox\\nCOPY flood.sh /flood.sh\\nRUN [\"/bin/busybox\", \"sh\", \"/flood.sh\"]\\n' > $d/Dockerfile; \
         set +e; buildctl build --no-cache --progress=plain --frontend dockerfile.v0 --local context=$d --local dockerfile=$d; \
         echo \"build exit $?\""
    );
    exec(docker, backend, &["sh", "-c", &script]).await
}

/// The PID on the host of a container's first process.
pub async fn host_pid(docker: &Docker, container: &str) -> i64 {
    let inspect =
        docker.inspect_container(container, None).await.unwrap_or_else(|e| panic!("inspecting {container}: {e}"));
    inspect.state.and_then(|s| s.pid).filter(|pid| *pid > 0).unwrap_or_else(|| panic!("{container} has no PID"))
}

/// A line of /proc/PID/status (`Uid`, `Threads`, `CapEff`, …), its value.
pub fn status_field(pid: i64, field: &str) -> String {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("/proc/{pid}/status has no {field}: {status}"))
}

/// How many threads the process has.
pub fn threads(pid: i64) -> usize {
    status_field(pid, "Threads").parse().expect("a thread count")
}

/// Every thread on the host (the kernel's count of scheduling entities, /proc/loadavg).
pub fn host_threads() -> usize {
    let loadavg = std::fs::read_to_string("/proc/loadavg").expect("/proc/loadavg");
    let field = loadavg.split_whitespace().nth(3).expect("running/total");
    field.split('/').nth(1).and_then(|t| t.parse().ok()).expect("a total")
}

/// The pids cgroup of process `pid` (v1: the `pids` hierarchy; v2: the unified one).
fn pids_cgroup(pid: i64) -> std::path::PathBuf {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("/proc/PID/cgroup");
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if controllers.split(',').any(|c| c == "pids") {
            return std::path::PathBuf::from(format!("/sys/fs/cgroup/pids{path}"));
        }
    }
    let unified = cgroups.lines().find_map(|l| l.strip_prefix("0::")).expect("a cgroup for the process");
    std::path::PathBuf::from(format!("/sys/fs/cgroup{unified}"))
}

/// The pids the kernel counts for the container of process `pid`, and its limit.
pub fn pids(pid: i64) -> (u64, String) {
    let dir = pids_cgroup(pid);
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
    };
    (read("pids.current").trim().parse().expect("pids.current"), read("pids.max").trim().to_string())
}

/// Samples a relay's threads and its container's pids every 50 ms until stopped; the highest seen.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(usize, u64)>,
}

impl Sampler {
    pub fn start(pid: i64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let (mut threads_max, mut pids_max) = (0, 0);
            while !flag.load(Ordering::SeqCst) {
                threads_max = threads_max.max(threads(pid));
                pids_max = pids_max.max(pids(pid).0);
                std::thread::sleep(Duration::from_millis(50));
            }
            (threads_max, pids_max)
        });
        Self { stop, handle }
    }

    /// The most threads the relay had, and the most pids its container had.
    pub fn finish(self) -> (usize, u64) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("the sampler")
    }
}
