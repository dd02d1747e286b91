//! Start to ready, image present, one host port: (A) our CLI, (B) a buildx-style bootstrap with the
//! docker CLI and a socat sidecar, and the floor (docker run, then buildctl polled without pause).
//! The three alternate round by round; every container is removed after its run, untimed.
use std::{
    thread,
    time::{Duration, Instant},
};

use assemble_core::{
    backend::{
        labels::{self, BackendLabels, SecurityMode},
        spec,
    },
    Names, PortSet,
};
use bollard::{models::MountType, Docker};

use crate::{
    common::{self, Flags, OurCli},
    socat,
};

struct Options {
    rounds: usize,
    image: String,
    socat_image: String,
    port: u16,
}

const LABELS: [&str; 3] = [
    "A. assemble backend start",
    "B. docker run + buildx wait + socat sidecar",
    "floor. docker run + tight buildctl poll",
];

/// The floor gives up after this long without an answer (buildx's own limit is about 14 s).
const FLOOR_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["--rounds", "--image", "--socat-image", "--port"])?;
    let options = Options {
        rounds: flags.number("--rounds", 10)?,
        image: flags.image(),
        socat_image: flags.text("--socat-image", "assemble-socat:debian"),
        port: flags.number("--port", 5000)?,
    };
    common::require_image(&options.image)?;
    common::require_image(&options.socat_image)?;
    let cli = OurCli::new("start")?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let docker = runtime
        .block_on(assemble_core::engine::Engine::connect(&Default::default()))
        .map_err(|e| e.to_string())?
        .docker()
        .clone();
    let bench = Bench { run_args: docker_run_args(&options.image)?, options, cli, runtime, docker };
    eprintln!("B and the floor run: docker run -d --name <name> {}", bench.run_args.join(" "));

    // One untimed run of each first: our CLI makes its relay image on first use, and the page
    // cache warms for everyone.
    for path in 0..LABELS.len() {
        bench.once(path, "warmup")?;
    }
    eprintln!("warm-up done");
    let mut times = vec![Vec::new(); LABELS.len()];
    for round in 0..bench.options.rounds {
        for path in common::order(round, LABELS.len()) {
            times[path].push(bench.once(path, &round.to_string())?);
        }
        eprintln!("round {} of {} done", round + 1, bench.options.rounds);
    }

    println!(
        "### Start to ready ({}, image present, host port {}, {} rounds, paths alternated)\n",
        bench.options.image, bench.options.port, bench.options.rounds
    );
    let rows: Vec<(&str, &[f64])> = LABELS.iter().zip(&times).map(|(l, t)| (*l, t.as_slice())).collect();
    common::table("s", 1.0, 2, &rows);
    println!(
        "\nRatios (medians): A/B = {:.2}, A/floor = {:.2}, B/floor = {:.2}",
        common::ratio(&times[0], &times[1]),
        common::ratio(&times[0], &times[2]),
        common::ratio(&times[1], &times[2])
    );
    Ok(())
}

struct Bench {
    options: Options,
    cli: OurCli,
    runtime: tokio::runtime::Runtime,
    docker: Docker,
    /// `docker run -d` arguments after the name: the flags, the image, the command.
    run_args: Vec<String>,
}

impl Bench {
    /// One timed run of one path; what it created is removed afterwards, also when it failed.
    fn once(&self, path: usize, round: &str) -> Result<f64, String> {
        let name = format!("{}-{}-{round}", self.cli.user(), ["ours", "buildx", "floor"][path]);
        let mut created = Vec::new();
        let result = match path {
            0 => self.ours(),
            1 => self.buildx(&name, &mut created),
            _ => self.floor(&name, &mut created),
        };
        common::remove_containers(&created);
        result.map_err(|e| format!("{} (round {round}): {e}", LABELS[path]))
    }

    /// A: our CLI, spawn to exit; then `assemble backend stop`, untimed.
    fn ours(&self) -> Result<f64, String> {
        let port = self.options.port.to_string();
        let start = Instant::now();
        let output = self
            .cli
            .command(&["backend", "start", "--allow-host-port", &port, "--image", &self.options.image])
            .output();
        let seconds = start.elapsed().as_secs_f64();
        let stopped = self.cli.run(&["backend", "stop"]);
        let output = output.map_err(|e| format!("running assemble backend start: {e}"))?;
        if !output.status.success() {
            return Err(format!("assemble backend start: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
        stopped?;
        Ok(seconds)
    }

    /// B: `docker run -d`, then `buildctl debug workers` polled as buildx's docker-container
    /// driver waits, then the socat sidecar for the one port; from `docker run` to the sidecar
    /// started.
    fn buildx(&self, name: &str, created: &mut Vec<String>) -> Result<f64, String> {
        let start = Instant::now();
        let id = self.docker_run(name, created)?;
        // buildx: on failure, give up after the 15th retry, else sleep try*120 ms and try again.
        let mut attempt: u64 = 1;
        while !common::docker_succeeds(&["exec", &id, "buildctl", "debug", "workers"])? {
            if attempt > 15 {
                return Err(format!("buildctl debug workers in {name} failed {attempt} times"));
            }
            thread::sleep(Duration::from_millis(attempt * 120));
            attempt += 1;
        }
        let sidecar = format!("{name}-socat-{}", self.options.port);
        created.push(sidecar.clone());
        self.runtime.block_on(async {
            let gateway = socat::gateway(&self.docker, &id).await?;
            let listen = format!("TCP-LISTEN:{},fork,reuseaddr", self.options.port);
            let connect = format!("TCP:{gateway}:{}", self.options.port);
            socat::sidecar(&self.docker, &sidecar, &id, listen, connect, &self.options.socat_image).await
        })?;
        Ok(start.elapsed().as_secs_f64())
    }

    /// The floor: `docker run -d`, then `buildctl debug workers` again at once until it answers.
    fn floor(&self, name: &str, created: &mut Vec<String>) -> Result<f64, String> {
        let start = Instant::now();
        let id = self.docker_run(name, created)?;
        while !common::docker_succeeds(&["exec", &id, "buildctl", "debug", "workers"])? {
            if start.elapsed() > FLOOR_TIMEOUT {
                return Err(format!("buildctl debug workers in {name} did not answer in {FLOOR_TIMEOUT:?}"));
            }
        }
        Ok(start.elapsed().as_secs_f64())
    }

    fn docker_run(&self, name: &str, created: &mut Vec<String>) -> Result<String, String> {
        created.push(name.to_string());
        let label = format!("{}=start", socat::BENCH_LABEL);
        let mut args = vec!["run", "-d", "--name", name, "--label", &label];
        args.extend(self.run_args.iter().map(String::as_str));
        common::docker(&args)
    }
}

/// Our backend's container in the mode this engine gets (all capabilities but SYS_RESOURCE;
/// it refuses `--privileged`), read from `assemble_core::backend::spec` and put as docker CLI flags, so
/// B and the floor run exactly what our backend runs. Our labels and hostname are left out.
fn docker_run_args(image: &str) -> Result<Vec<String>, String> {
    let config = BackendLabels {
        ports: PortSet::none(),
        cache_volume: None,
        image: image.to_string(),
        version: labels::OUR_VERSION.to_string(),
        security: SecurityMode::Capabilities,
        security_reason: None,
        cache_limit: None,
        network_host: false,
        // The plain backend: the mirror is separate containers, not flags of this one.
        local_images: assemble_core::backend::mirror::LocalImages::Off { reason: None },
    };
    let body = spec::backend(&Names::for_user("bench"), &config);
    let host = body.host_config.ok_or("the backend spec has no host config")?;
    let mut args: Vec<String> = Vec::new();
    let mut flag = |name: &str, value: String| args.extend([name.to_string(), value]);
    for cap in host.cap_add.unwrap_or_default() {
        flag("--cap-add", cap);
    }
    for cap in host.cap_drop.unwrap_or_default() {
        flag("--cap-drop", cap);
    }
    for option in host.security_opt.unwrap_or_default() {
        flag("--security-opt", option);
    }
    // The API form of `--security-opt systempaths=unconfined`.
    if host.masked_paths.as_ref().is_some_and(Vec::is_empty) && host.readonly_paths.as_ref().is_some_and(Vec::is_empty)
    {
        flag("--security-opt", "systempaths=unconfined".into());
    }
    let mut sysctls: Vec<_> = host.sysctls.unwrap_or_default().into_iter().collect();
    sysctls.sort();
    for (key, value) in sysctls {
        flag("--sysctl", format!("{key}={value}"));
    }
    for mount in host.mounts.unwrap_or_default() {
        let target = mount.target.ok_or("a backend mount has no target")?;
        match (mount.typ, mount.source) {
            // Anonymous, as ours is when no cache volume is chosen.
            (Some(MountType::VOLUME), None) => flag("-v", target),
            (Some(MountType::VOLUME), Some(source)) => flag("-v", format!("{source}:{target}")),
            (other, _) => return Err(format!("unexpected mount type {other:?} in the backend spec")),
        }
    }
    if let Some(policy) = host.restart_policy.and_then(|p| p.name) {
        flag("--restart", policy.to_string());
    }
    if host.privileged == Some(true) {
        return Err("the capabilities spec asks for --privileged".into());
    }
    // `--entrypoint` takes the program; the rest of the entrypoint goes after the image.
    let mut entrypoint = body.entrypoint.unwrap_or_default().into_iter();
    let mut tail: Vec<String> = Vec::new();
    if let Some(program) = entrypoint.next() {
        flag("--entrypoint", program);
        tail.extend(entrypoint);
    }
    tail.extend(body.cmd.unwrap_or_default());
    args.push(image.to_string());
    args.extend(tail);
    Ok(args)
}
