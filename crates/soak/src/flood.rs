//! The flood fault's tools: a shell in the backend, and a sidecar's pids as the kernel counts them
//! (its cgroup), sampled while held connections pile up. Read from the engine and /sys, not through
//! the core, which is what is under test.
use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;

use crate::world::World;

/// What the sampling saw.
pub struct Seen {
    pub max_pids: u64,
}

/// Runs `sh -c script` in `container` as its default user (root in the backend); its output, or
/// why it failed.
pub async fn exec(world: &World, container: &str, script: &str) -> Result<String, String> {
    exec_env(world, container, script, Vec::new()).await
}

/// [`exec`] with environment variables (`NAME=VALUE`): a value the script reads from its
/// environment is not on its command line.
pub async fn exec_env(world: &World, container: &str, script: &str, env: Vec<String>) -> Result<String, String> {
    let options = CreateExecOptions {
        cmd: Some(vec!["sh".to_string(), "-c".to_string(), script.to_string()]),
        env: Some(env),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let created = world.docker.create_exec(container, options).await.map_err(|e| e.to_string())?;
    let mut output = String::new();
    if let StartExecResults::Attached { output: mut stream, .. } =
        world.docker.start_exec(&created.id, None).await.map_err(|e| e.to_string())?
    {
        while let Some(Ok(chunk)) = stream.next().await {
            output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
    }
    let code = world.docker.inspect_exec(&created.id).await.map_err(|e| e.to_string())?.exit_code.unwrap_or(-1);
    if code == 0 {
        Ok(output)
    } else {
        Err(format!("exit {code}: {}", output.trim()))
    }
}

/// Opens `count` connections to `localhost:port` in the backend, holds them a few seconds, ends
/// them, and samples the port's sidecar's pids all along.
pub async fn flood(world: &World, port: u16, count: usize) -> Result<Seen, String> {
    let sidecar = world.user.names.proxy(port);
    let inspect = world.docker.inspect_container(&sidecar, None).await.map_err(|e| format!("{sidecar}: {e}"))?;
    let pid = inspect.state.and_then(|s| s.pid).filter(|p| *p > 0).ok_or(format!("{sidecar} does not run"))?;
    let pids_file = pids_current(pid)?;
    let (stop, max) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let sampler = {
        let (stop, max) = (stop.clone(), max.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Some(now) = std::fs::read_to_string(&pids_file).ok().and_then(|t| t.trim().parse::<u64>().ok()) {
                    max.fetch_max(now, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let script = format!(
        "f=$(mktemp -u); mkfifo $f; exec 3<>$f; i=0; pids=''; \
         while [ $i -lt {count} ]; do nc 127.0.0.1 {port} <$f >/dev/null 2>&1 & pids=\"$pids $!\"; i=$((i+1)); done; \
         sleep 4; kill $pids 2>/dev/null; rm -f $f; echo flooded"
    );
    let result = exec(world, &world.user.names.backend(), &script).await;
    stop.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    result.map(|_| Seen { max_pids: max.load(Ordering::SeqCst) })
}

/// The `pids.current` file of process `pid`'s cgroup (v1's pids hierarchy, or v2's unified one).
fn pids_current(pid: i64) -> Result<std::path::PathBuf, String> {
    let cgroups =
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| format!("/proc/{pid}/cgroup: {e}"))?;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if controllers.split(',').any(|c| c == "pids") {
            return Ok(format!("/sys/fs/cgroup/pids{path}/pids.current").into());
        }
    }
    let unified = cgroups.lines().find_map(|l| l.strip_prefix("0::")).ok_or("no cgroup for the sidecar")?;
    Ok(format!("/sys/fs/cgroup{unified}/pids.current").into())
}
