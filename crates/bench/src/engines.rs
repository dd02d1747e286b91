//! Warm `info` over each transport to one engine (the tests' private dockerd): unix socket, TCP
//! with TLS, and ssh (a private sshd on loopback). For each, (A) `assemble --context X backend
//! info` against (B) `docker --context X exec <backend> buildctl debug workers`, with the
//! contexts made by the docker CLI itself. Alternated round by round after untimed warm-up rounds.
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use assemble_testkit::{
    private_engine::{Certificates, EngineSpec, PrivateEngine},
    sshd::Sshd,
};

use crate::common::{self, Flags, OurCli};

const TRANSPORTS: [&str; 3] = ["unix", "tls", "ssh"];

struct Options {
    rounds: usize,
    warmup: usize,
    image: String,
}

/// The engine, its transports, and a docker config folder holding one context per transport.
struct Setup {
    engine: PrivateEngine,
    _sshd: Sshd,
    docker_config: PathBuf,
    /// `PATH` with the sshd's `ssh` first (its keys and known hosts).
    path: std::ffi::OsString,
    scratch: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["--rounds", "--warmup", "--image"])?;
    let options =
        Options { rounds: flags.number("--rounds", 20)?, warmup: flags.number("--warmup", 2)?, image: flags.image() };
    common::require_image(&options.image)?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let setup = runtime.block_on(set_up(&options.image))?;
    let cli = OurCli::new("engines")?;
    let ours = |transport: &str, args: &[&str]| {
        let mut command = cli.command(&[&["--context", &context(transport)][..], args].concat());
        command.env("DOCKER_CONFIG", &setup.docker_config).env("PATH", &setup.path).env_remove("DOCKER_HOST");
        command
    };
    let started = ours("unix", &["backend", "start", "--image", &options.image, "--allow-host-port", "5000"])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("running assemble backend start: {e}"))?;
    if !started.status.success() {
        return Err(format!("starting the bench backend: {}", String::from_utf8_lossy(&started.stderr).trim()));
    }
    let backend = format!("docker-assemble-backend-{}", cli.user());
    let result = measure(&options, &setup, &backend, &ours);
    let stopped = ours("unix", &["backend", "stop"]).stdout(Stdio::null()).status();
    if !stopped.is_ok_and(|s| s.success()) {
        eprintln!("warning: could not stop the bench backend {backend} on {}", setup.engine.host);
    }
    result
}

async fn set_up(image: &str) -> Result<Setup, String> {
    let scratch = std::env::temp_dir().join(format!("assemble-bench-engines-{}", std::process::id()));
    let certs = Certificates::make(&scratch.join("certs"))?;
    let port = assemble_testkit::free_port();
    let engine =
        PrivateEngine::start_with_images(EngineSpec::engine_tests().with_tls(certs.listener(port)), &[image]).await?;
    let sshd = Sshd::start(&scratch.join("sshd"))?;
    let client = scratch.join("client");
    certs.client_files(&client, "ca.pem")?;
    let docker_config = scratch.join("docker-config");
    let tls = format!(
        "host=tcp://127.0.0.1:{port},ca={},cert={},key={}",
        client.join("ca.pem").display(),
        client.join("cert.pem").display(),
        client.join("key.pem").display()
    );
    for (transport, endpoint) in [
        ("unix", format!("host={}", engine.host)),
        ("tls", tls),
        ("ssh", format!("host={}", sshd.url(Some(&engine.socket())))),
    ] {
        docker_cli(
            &docker_config,
            &sshd.path_env(),
            &["context", "create", &context(transport), "--docker", &endpoint],
        )?;
    }
    Ok(Setup { path: sshd.path_env(), engine, _sshd: sshd, docker_config, scratch })
}

fn context(transport: &str) -> String {
    format!("bench-{transport}")
}

fn docker_cli(config: &Path, path: &std::ffi::OsStr, args: &[&str]) -> Result<(), String> {
    let output = docker_command(config, path, args).output().map_err(|e| format!("running docker: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("docker {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

fn docker_command(config: &Path, path: &std::ffi::OsStr, args: &[&str]) -> Command {
    let mut command = Command::new("docker");
    command.args(args).env("DOCKER_CONFIG", config).env("PATH", path).env_remove("DOCKER_HOST").stdin(Stdio::null());
    command
}

fn measure(
    options: &Options,
    setup: &Setup,
    backend: &str,
    ours: &dyn Fn(&str, &[&str]) -> Command,
) -> Result<(), String> {
    // Paths: 2 per transport, ours then docker's.
    let once = |path: usize| -> Result<f64, String> {
        let transport = TRANSPORTS[path / 2];
        let mut command = if path.is_multiple_of(2) {
            ours(transport, &["backend", "info"])
        } else {
            let args = ["--context", &context(transport), "exec", backend, "buildctl", "debug", "workers"];
            docker_command(&setup.docker_config, &setup.path, &args)
        };
        let start = Instant::now();
        let output = command.stdout(Stdio::null()).output().map_err(|e| format!("running {command:?}: {e}"))?;
        if !output.status.success() {
            return Err(format!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
        Ok(start.elapsed().as_secs_f64())
    };
    let paths = TRANSPORTS.len() * 2;
    for _ in 0..options.warmup {
        for path in 0..paths {
            once(path)?;
        }
    }
    eprintln!("{} warm-up rounds done", options.warmup);
    let mut times = vec![Vec::new(); paths];
    for round in 0..options.rounds {
        for path in common::order(round, paths) {
            times[path].push(once(path)?);
        }
        if (round + 1) % 10 == 0 || round + 1 == options.rounds {
            eprintln!("round {} of {} done", round + 1, options.rounds);
        }
    }
    println!(
        "### Warm info over unix, TLS and ssh ({}, a second dockerd; {} rounds after {} warm-up, paths alternated)\n",
        options.image, options.rounds, options.warmup
    );
    let labels: Vec<String> = TRANSPORTS
        .iter()
        .flat_map(|t| {
            [
                format!("A-{t}. assemble --context bench-{t} backend info"),
                format!("B-{t}. docker --context bench-{t} exec … buildctl debug workers"),
            ]
        })
        .collect();
    let rows: Vec<(&str, &[f64])> = labels.iter().zip(&times).map(|(l, t)| (l.as_str(), t.as_slice())).collect();
    common::table("ms", 1e3, 1, &rows);
    let ratios: Vec<String> = TRANSPORTS
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{t} A/B = {:.2}", common::ratio(&times[2 * i], &times[2 * i + 1])))
        .collect();
    println!("\nRatios (medians): {}", ratios.join(", "));
    Ok(())
}
