//! Warm `info` on a running backend: (A) our CLI, (B) what `buildx inspect` + `buildx du` cost
//! (`buildctl debug workers`, then `buildctl du`, each through `docker exec`), (A2) our library
//! over one BuildKit channel kept open, (A3) our library's `Backend::info` on a new `Backend` per
//! call, so a new channel per call (what one CLI run does, without the process), (A4)
//! `Backend::info` on one `Backend`, which keeps its channel (what the app does). Alternated round
//! by round after untimed warm-up rounds.
use std::{process::Stdio, time::Instant};

use assemble_core::{Backend, BuildkitClient, PortSet};

use crate::common::{self, Flags, OurCli};

const LABELS: [&str; 5] = [
    "A. assemble backend info (CLI)",
    "B. docker exec buildctl debug workers + buildctl du",
    "A2. library, one channel kept open: workers + disk usage",
    "A3. library, new channel per call: Backend::info() on a new Backend",
    "A4. library, channel kept: Backend::info() on one Backend",
];

struct Options {
    rounds: usize,
    warmup: usize,
    image: String,
    port: u16,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["--rounds", "--warmup", "--image", "--port"])?;
    let options = Options {
        rounds: flags.number("--rounds", 30)?,
        warmup: flags.number("--warmup", 2)?,
        image: flags.image(),
        port: flags.number("--port", 5000)?,
    };
    common::require_image(&options.image)?;
    let cli = OurCli::new("info")?;
    common::with_backend(&cli, PortSet::from_ports([options.port]), &options.image, |runtime, backend| {
        measure(&options, &cli, backend, runtime)
    })
}

fn measure(
    options: &Options,
    cli: &OurCli,
    backend: &Backend,
    runtime: &tokio::runtime::Runtime,
) -> Result<(), String> {
    let id = runtime.block_on(backend.running()).map_err(|e| e.to_string())?.id;
    let session = runtime
        .block_on(BuildkitClient::connect(backend.docker(), &id))
        .map_err(|e| format!("connecting to BuildKit: {e}"))?;
    let once = |path: usize| -> Result<f64, String> {
        let start = Instant::now();
        match path {
            0 => {
                let status = cli
                    .command(&["backend", "info"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map_err(|e| format!("running assemble backend info: {e}"))?;
                if !status.success() {
                    return Err(format!("assemble backend info failed ({status})"));
                }
            }
            1 => {
                for command in ["debug workers", "du"] {
                    let mut args = vec!["exec", id.as_str(), "buildctl"];
                    args.extend(command.split(' '));
                    if !common::docker_succeeds(&args)? {
                        return Err(format!("docker exec buildctl {command} failed"));
                    }
                }
            }
            2 => runtime.block_on(async {
                let (workers, records) = tokio::join!(session.workers(), session.disk_usage());
                match (workers, records) {
                    (Ok(w), Ok(_)) if !w.is_empty() => Ok(()),
                    (Ok(_), Ok(_)) => Err("BuildKit listed no workers".to_string()),
                    (Err(e), _) | (_, Err(e)) => Err(format!("over the open channel: {e}")),
                }
            })?,
            3 => {
                let fresh = Backend::new(backend.engine().clone(), backend.names().clone());
                runtime.block_on(fresh.info()).map_err(|e| format!("Backend::info: {e}"))?;
            }
            _ => {
                runtime.block_on(backend.info()).map_err(|e| format!("Backend::info: {e}"))?;
            }
        }
        Ok(start.elapsed().as_secs_f64())
    };

    for _ in 0..options.warmup {
        for path in 0..LABELS.len() {
            once(path)?;
        }
    }
    eprintln!("{} warm-up rounds done", options.warmup);
    let mut times = vec![Vec::new(); LABELS.len()];
    for round in 0..options.rounds {
        for path in common::order(round, LABELS.len()) {
            times[path].push(once(path)?);
        }
        if (round + 1) % 10 == 0 || round + 1 == options.rounds {
            eprintln!("round {} of {} done", round + 1, options.rounds);
        }
    }

    println!(
        "### Warm info ({}, running backend with host port {}, {} rounds after {} warm-up, paths alternated)\n",
        options.image, options.port, options.rounds, options.warmup
    );
    let rows: Vec<(&str, &[f64])> = LABELS.iter().zip(&times).map(|(l, t)| (*l, t.as_slice())).collect();
    common::table("ms", 1e3, 1, &rows);
    println!(
        "\nRatios (medians): A/B = {:.2}, A2/B = {:.3}, A3/B = {:.2}, A4/B = {:.3}, A/A3 = {:.2}",
        common::ratio(&times[0], &times[1]),
        common::ratio(&times[2], &times[1]),
        common::ratio(&times[3], &times[1]),
        common::ratio(&times[4], &times[1]),
        common::ratio(&times[0], &times[3])
    );
    Ok(())
}
