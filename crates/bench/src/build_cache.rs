//! A registry cache import on a cold backend, side by side on the same backend: (A) `assemble
//! build --cache-from REF` and (B) `docker buildx build --builder assemble --cache-from REF`, and
//! (C) the same build with no import, what the import saves. The cache is exported once (by our
//! CLI, `mode=max`) to a real registry reached through the port sidecar; before each timed build
//! the backend is stopped and started again with no cache volume, so nothing comes from its own
//! cache. Each import must show the heavy step `CACHED`, or the run fails.
use std::{
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use assemble_testkit::{copy_busybox_into, Registry};

use crate::common::{self, Flags, OurCli};

const TOOLS: [&str; 3] = [
    "A. assemble build --cache-from",
    "B. docker buildx build --builder assemble --cache-from",
    "C. assemble build, no import (cold)",
];

/// A slow step with a big result, and one on top of it: what a registry cache is for.
fn dockerfile(seconds: u32, mib: u32) -> String {
    format!(
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox echo heavy; /bin/busybox sleep {seconds}; /bin/busybox head -c {} /dev/urandom > /heavy.bin\"]\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox wc -c /heavy.bin > /size\"]\n",
        u64::from(mib) << 20
    )
}

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["--rounds", "--seconds", "--mib", "--image"])?;
    let rounds: usize = flags.number("--rounds", 3)?;
    let seconds: u32 = flags.number("--seconds", 5)?;
    let mib: u32 = flags.number("--mib", 64)?;
    let image = flags.image();
    common::require_image(&image)?;
    let cli = OurCli::new("build-cache")?;
    if !cli.buildx_plugin().is_file() {
        return Err(format!("{} is missing: run scripts/fetch-buildx.sh", cli.buildx_plugin().display()));
    }
    let registry = Registry::start();
    let port = registry.port.to_string();
    let work = std::env::temp_dir().join(format!("assemble-bench-build-cache-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("making {}: {e}", work.display()))?;
    std::fs::write(work.join("Dockerfile"), dockerfile(seconds, mib)).map_err(|e| format!("the Dockerfile: {e}"))?;
    copy_busybox_into(&work);
    let start = || -> Result<(), String> {
        let mut command = cli.command(&["backend", "start", "--allow-host-port", &port, "--image", &image]);
        common::on_default_context(&mut command);
        let output = command.output().map_err(|e| format!("assemble backend start: {e}"))?;
        if !output.status.success() {
            return Err(format!("assemble backend start: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
        Ok(())
    };
    let stop = || cli.run(&["backend", "stop"]).map(|_| ());
    let result = start().and_then(|()| measure(&cli, &work, &port, rounds, &start, &stop, seconds, mib));
    let stopped = stop();
    let _ = std::fs::remove_dir_all(&work);
    result.and(stopped)
}

#[allow(clippy::too_many_arguments)]
fn measure(
    cli: &OurCli,
    work: &Path,
    port: &str,
    rounds: usize,
    start: &dyn Fn() -> Result<(), String>,
    stop: &dyn Fn() -> Result<(), String>,
    seconds: u32,
    mib: u32,
) -> Result<(), String> {
    let reference = format!("localhost:{port}/bench/cache:max");
    let path = work.to_string_lossy().to_string();
    let exported = cli.command(&[
        "build",
        &path,
        "--progress",
        "plain",
        "--cache-to",
        &format!("type=registry,ref={reference},mode=max"),
    ]);
    check(0, exported, false)?;
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..rounds {
        for tool in common::order(round, 3) {
            stop()?;
            start()?;
            let command = match tool {
                0 => cli.command(&["build", &path, "--progress", "plain", "--cache-from", &reference]),
                1 => {
                    let mut command = Command::new("docker");
                    command.arg("--config").arg(cli.docker_config()).args([
                        "buildx",
                        "build",
                        "--builder",
                        "assemble",
                        "--progress",
                        "plain",
                        "--cache-from",
                        &reference,
                        &path,
                    ]);
                    command
                }
                _ => cli.command(&["build", &path, "--progress", "plain"]),
            };
            let seconds = check(tool, command, tool != 2)?;
            times[tool].push(seconds);
            eprintln!("round {round}: {} {seconds:.2}s", TOOLS[tool]);
        }
    }
    println!(
        "\nbuild-cache: a registry cache import on a cold backend (a {seconds} s step writing {mib} MiB, and one \
         more; cache exported once with mode=max to a local registry through the sidecar), {rounds} rounds (seconds)"
    );
    common::table("s", 1.0, 2, &[(TOOLS[0], &times[0]), (TOOLS[1], &times[1]), (TOOLS[2], &times[2])]);
    println!("ratio A/B (median): {:.2}×", common::ratio(&times[0], &times[1]));
    println!("ratio A/C (median): {:.2}× (the import against building cold)", common::ratio(&times[0], &times[2]));
    Ok(())
}

/// Runs one build to its end; its seconds. With `imported`, the heavy step must be `CACHED`.
fn check(tool: usize, mut command: Command, imported: bool) -> Result<f64, String> {
    common::on_default_context(&mut command);
    let began = Instant::now();
    let output = command.stdin(Stdio::null()).output().map_err(|e| format!("{}: {e}", TOOLS[tool]))?;
    let seconds = began.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("{} failed: {}", TOOLS[tool], stderr.trim()));
    }
    let ran = stderr.lines().any(|line| line.ends_with(" heavy") && !line.contains("RUN ["));
    if imported && ran {
        return Err(format!("{}: the heavy step ran, the import did not serve it:\n{stderr}", TOOLS[tool]));
    }
    if !imported && !ran {
        return Err(format!("{}: the heavy step did not run on a cold backend:\n{stderr}", TOOLS[tool]));
    }
    Ok(seconds)
}
