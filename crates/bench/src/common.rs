//! What the start, info and logs benchmarks share: flags, the default engine, the docker CLI and
//! our own CLI as child processes, draining a child's output, and the table they print.
use std::{
    collections::HashMap,
    fmt::Display,
    io::Read,
    path::PathBuf,
    process::{Child, Command, Stdio},
    str::FromStr,
    thread,
    time::Instant,
};

use assemble_testkit::{cli::find_assemble_binary, TestUser, MACHINE_ENGINE};

use crate::stats;

/// The local BuildKit test image (`scripts/setup.sh --test-images`).
pub const DEFAULT_IMAGE: &str = "assemble-buildkit:v0.25-debian-qemu";
/// Only the default engine: other engines on this machine are not ours to load.
pub const DOCKER_HOST: &str = MACHINE_ENGINE;

/// Points this process and every child (docker CLI, our CLI, bollard) at the default socket, so
/// neither `$DOCKER_HOST` nor a docker context can send the benchmarks elsewhere. Call it before
/// any thread starts.
pub fn use_default_engine() {
    std::env::set_var("DOCKER_HOST", DOCKER_HOST);
}

/// `--flag value` pairs, checked against the flags a subcommand knows.
pub struct Flags(HashMap<String, String>);

impl Flags {
    pub fn parse(args: &[String], known: &[&str]) -> Result<Self, String> {
        let mut values = HashMap::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if !known.contains(&flag.as_str()) {
                return Err(format!("unknown option {flag} (known: {})", known.join(", ")));
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            values.insert(flag.clone(), value.clone());
        }
        Ok(Self(values))
    }

    pub fn number<T: FromStr>(&self, flag: &str, default: T) -> Result<T, String>
    where
        T::Err: Display,
    {
        match self.0.get(flag) {
            Some(value) => value.parse().map_err(|e| format!("{flag} {value:?}: {e}")),
            None => Ok(default),
        }
    }

    pub fn text(&self, flag: &str, default: &str) -> String {
        self.0.get(flag).cloned().unwrap_or_else(|| default.to_string())
    }

    /// `--image`: the flag, else `$ASSEMBLE_TEST_IMAGE` (as the relay benchmark), else the test image.
    pub fn image(&self) -> String {
        self.0
            .get("--image")
            .cloned()
            .or_else(|| std::env::var("ASSEMBLE_TEST_IMAGE").ok().filter(|i| !i.trim().is_empty()))
            .unwrap_or_else(|| DEFAULT_IMAGE.to_string())
    }
}

/// Runs the docker CLI and returns its trimmed stdout; a failure carries its stderr.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let output = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running docker {}: {e}", args.join(" ")))?;
    if !output.status.success() {
        return Err(format!("docker {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Runs the docker CLI for its exit status only (output discarded), as a readiness poll does.
pub fn docker_succeeds(args: &[&str]) -> Result<bool, String> {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .map_err(|e| format!("running docker {}: {e}", args.join(" ")))
}

/// Force-removes containers this benchmark created (by name or ID), with their anonymous volumes.
/// Quiet about ones already gone.
pub fn remove_containers(containers: &[String]) {
    if containers.is_empty() {
        return;
    }
    let mut args = vec!["rm", "-f", "-v"];
    args.extend(containers.iter().rev().map(String::as_str));
    if let Err(err) = docker(&args) {
        if !err.lines().all(|l| l.contains("No such container")) {
            eprintln!("warning: {err}");
        }
    }
}

/// Fails early, with the way out, when an image the benchmark needs is not on the engine.
pub fn require_image(image: &str) -> Result<(), String> {
    docker(&["image", "inspect", "--format", "{{.Id}}", image]).map(|_| ()).map_err(|e| {
        format!("{e}\n(the image must be present; `scripts/setup.sh --test-images` makes the test images)")
    })
}

/// Starts a backend of the bench's own (user `cli.user`, anonymous cache), runs `measure` on it,
/// and stops it afterwards whatever happened in between.
pub fn with_backend<T>(
    cli: &OurCli,
    ports: assemble_core::PortSet,
    image: &str,
    measure: impl FnOnce(&tokio::runtime::Runtime, &assemble_core::Backend) -> Result<T, String>,
) -> Result<T, String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let engine =
        runtime.block_on(assemble_core::engine::Engine::connect(&Default::default())).map_err(|e| e.to_string())?;
    let backend = assemble_core::Backend::new(engine, assemble_core::Names::for_user(cli.user()));
    let request = assemble_core::StartRequest {
        ports,
        cache: assemble_core::CacheSetting::Anonymous,
        image: image.to_string(),
        ready_timeout: assemble_core::backend::start::DEFAULT_READY_TIMEOUT,
        cache_limit: None,
        security: Default::default(),
        allow_network_host: false,
        local_images: Default::default(),
    };
    let result = runtime
        .block_on(backend.start(&request, &assemble_core::backend::progress::silent))
        .map_err(|e| format!("starting the bench backend: {e}"))
        .and_then(|_| measure(&runtime, &backend));
    let stopped = runtime.block_on(backend.stop()).map_err(|e| format!("stopping the bench backend: {e}"));
    result.and_then(|value| stopped.map(|_| value))
}

/// Our CLI (`assemble`, beside this binary) as a bench user of the test kit's: a name of its own,
/// an empty settings folder and a docker config folder of its own (buildx linked in, builders
/// registered there), so it never sees the real user's backend, settings or builders. Its folders
/// are removed when it drops.
pub struct OurCli {
    user: TestUser,
}

impl OurCli {
    pub fn new(benchmark: &str) -> Result<Self, String> {
        find_assemble_binary().map_err(|missing| {
            format!(
                "{missing} (for the benchmarks: `cargo build --release --locked -p assemble-cli -p assemble-bench`)"
            )
        })?;
        let user = TestUser::named(&format!("bench-{benchmark}-{}", std::process::id()), MACHINE_ENGINE)?;
        Ok(Self { user })
    }

    /// The bench user's name.
    pub fn user(&self) -> &str {
        self.user.user()
    }

    /// `assemble ARGS` as the bench user (stdin closed, output piped).
    pub fn command(&self, args: &[&str]) -> Command {
        self.user.command(args)
    }

    /// The bench user's own docker config folder, with the tests' buildx as its CLI plugin when present.
    pub fn docker_config(&self) -> PathBuf {
        self.user.docker_config()
    }

    /// target/buildx/docker-buildx (scripts/fetch-buildx.sh).
    pub fn buildx_plugin(&self) -> PathBuf {
        assemble_testkit::buildx_plugin()
    }

    /// Runs `assemble <args>` to its end; its stdout, or its stderr as the error.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let output = self.command(args).output().map_err(|e| format!("running assemble {}: {e}", args.join(" ")))?;
        if !output.status.success() {
            return Err(format!("assemble {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()));
        }
        Ok(String::from_utf8_lossy(&output.stdout).to_string())
    }
}

/// What a child wrote until it ended, counted rather than kept.
#[derive(Debug, Clone, Copy)]
pub struct Drained {
    pub seconds: f64,
    pub lines: u64,
    pub bytes: u64,
}

/// Spawns `command` with stdout and stderr piped, reads both to EOF (1 MiB reads, counting
/// newlines) and waits for it; the time from spawn to exit.
pub fn drain(mut command: Command) -> Result<Drained, String> {
    let what = format!("{:?}", command.get_program());
    let start = Instant::now();
    let mut child: Child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {what}: {e}"))?;
    let stderr = child.stderr.take().ok_or("no stderr pipe")?;
    let err_counter = thread::spawn(move || count(stderr));
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let out = count(stdout).map_err(|e| format!("reading {what}: {e}"));
    let err = err_counter.join().map_err(|_| "stderr reader panicked".to_string())?;
    let status = child.wait().map_err(|e| format!("waiting for {what}: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    let (out, err) = (out?, err.map_err(|e| format!("reading {what}: {e}"))?);
    if !status.success() {
        return Err(format!("{what} failed ({status})"));
    }
    Ok(Drained { seconds, lines: out.0 + err.0, bytes: out.1 + err.1 })
}

/// (newlines, bytes) read from `reader` until EOF.
fn count(mut reader: impl Read) -> std::io::Result<(u64, u64)> {
    let mut buffer = vec![0u8; 1 << 20];
    let (mut lines, mut bytes) = (0u64, 0u64);
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            return Ok((lines, bytes));
        }
        lines += buffer[..n].iter().filter(|b| **b == b'\n').count() as u64;
        bytes += n as u64;
    }
}

/// Even rounds run the paths in order, odd rounds in reverse, so no path always runs first.
pub fn order(round: usize, paths: usize) -> Vec<usize> {
    if round.is_multiple_of(2) {
        (0..paths).collect()
    } else {
        (0..paths).rev().collect()
    }
}

/// One row per path: median and min–max spread of its samples, scaled to `unit`.
pub fn table(unit: &str, scale: f64, digits: usize, rows: &[(&str, &[f64])]) {
    println!("| path | median {unit} | spread (min–max) | runs |");
    println!("| --- | ---: | --- | ---: |");
    for (label, values) in rows {
        let scaled: Vec<f64> = values.iter().map(|v| v * scale).collect();
        println!(
            "| {label} | {:.digits$} | {} | {} |",
            stats::median(&scaled),
            stats::spread(&scaled, digits),
            values.len()
        );
    }
}

/// The ratio of two paths' medians.
pub fn ratio(a: &[f64], b: &[f64]) -> f64 {
    stats::median(a) / stats::median(b)
}

/// The engine of the docker context `default` (the default socket) rather than `$DOCKER_HOST`
/// (the same socket, by an address a builder cannot name).
pub fn on_default_context(command: &mut Command) {
    command.env_remove("DOCKER_HOST").env("DOCKER_CONTEXT", "default");
}

/// Registers the buildx builder "assemble" in the bench's docker config: our CLI's start on the
/// running bench backend does it. A builder names a docker context, so the default one, not
/// `$DOCKER_HOST`, chooses the engine.
pub fn register_builder(cli: &OurCli, image: &str) -> Result<(), String> {
    let mut command = cli.command(&["backend", "start", "--allow-host-port", "0", "--image", image]);
    on_default_context(&mut command);
    let started = command.output().map_err(|e| format!("running assemble backend start: {e}"))?;
    let said = String::from_utf8_lossy(&started.stdout).to_string() + &String::from_utf8_lossy(&started.stderr);
    if !said.contains("Registered the buildx builder \"assemble\"") {
        return Err(format!("no builder was registered: {said}"));
    }
    Ok(())
}
