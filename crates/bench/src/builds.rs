//! Listing the builds of a backend with a history of N builds (default 50, BuildKit's default
//! retention): (A) `assemble backend builds --format json`, (B) `docker buildx history ls --builder
//! assemble --format json` with a real buildx (target/buildx/docker-buildx, as the tests use),
//! alternated round by round after untimed warm-up rounds. Both print one JSON object per build.
use std::{path::Path, process::Stdio, time::Instant};

use assemble_core::PortSet;

use crate::{
    common::{self, Flags, OurCli},
    stats,
};

const LABELS: [&str; 2] =
    ["A. assemble backend builds --format json", "B. docker buildx history ls --builder assemble --format json"];

struct Options {
    rounds: usize,
    warmup: usize,
    builds: usize,
    image: String,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["--rounds", "--warmup", "--builds", "--image"])?;
    let options = Options {
        rounds: flags.number("--rounds", 20)?,
        warmup: flags.number("--warmup", 2)?,
        builds: flags.number("--builds", 50)?,
        image: flags.image(),
    };
    common::require_image(&options.image)?;
    let cli = OurCli::new("builds")?;
    let buildx = cli.buildx_plugin();
    if !buildx.is_file() {
        return Err(format!("{} is missing: run scripts/fetch-buildx.sh", buildx.display()));
    }
    common::with_backend(&cli, PortSet::none(), &options.image, |runtime, backend| {
        let id = runtime.block_on(backend.running()).map_err(|e| e.to_string())?.id;
        common::register_builder(&cli, &options.image)?;
        make_history(&id, options.builds)?;
        measure(&options, &cli)
    })
}

/// N small builds, each of its own content, with buildctl inside the backend.
fn make_history(id: &str, builds: usize) -> Result<(), String> {
    let script = format!(
        "set -e; for n in $(seq 1 {builds}); do d=$(mktemp -d); echo $n > $d/f; \
         printf 'FROM scratch\\nCOPY f /\\n' > $d/Dockerfile; \
         buildctl build --frontend dockerfile.v0 --local context=$d --local dockerfile=$d >/dev/null 2>&1; done"
    );
    let start = Instant::now();
    common::docker(&["exec", id, "sh", "-c", &script])?;
    eprintln!("made a history of {builds} builds in {:.1}s", start.elapsed().as_secs_f64());
    Ok(())
}

fn measure(options: &Options, cli: &OurCli) -> Result<(), String> {
    let docker_config = cli.docker_config();
    let once = |path: usize| -> Result<f64, String> {
        let mut command = if path == 0 {
            cli.command(&["backend", "builds", "--format", "json"])
        } else {
            buildx_history(&docker_config)
        };
        common::on_default_context(&mut command);
        let start = Instant::now();
        let output = command.stderr(Stdio::null()).output().map_err(|e| format!("{}: {e}", LABELS[path]))?;
        let seconds = start.elapsed().as_secs_f64();
        let lines = String::from_utf8_lossy(&output.stdout).lines().filter(|l| l.starts_with('{')).count();
        if !output.status.success() || lines != options.builds {
            return Err(format!(
                "{}: exit {:?}, {lines} builds listed, not {}",
                LABELS[path],
                output.status.code(),
                options.builds
            ));
        }
        Ok(seconds)
    };
    for _ in 0..options.warmup {
        once(0)?;
        once(1)?;
    }
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..options.rounds {
        // Alternate which goes first, so neither always meets a warmer engine.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for path in order {
            times[path].push(once(path)? * 1000.0);
        }
    }
    println!("\nbuilds: list a history of {} builds, {} rounds (ms)", options.builds, options.rounds);
    println!("{:<62} {:>8} {:>8} {:>14}", "", "median", "p90", "spread");
    for (label, values) in LABELS.iter().zip(&times) {
        println!(
            "{label:<62} {:>8.1} {:>8.1} {:>14}",
            stats::median(values),
            stats::percentile(values, 90.0),
            stats::spread(values, 1)
        );
    }
    println!("ratio B/A (median): {:.2}×", stats::median(&times[1]) / stats::median(&times[0]));
    Ok(())
}

fn buildx_history(docker_config: &Path) -> std::process::Command {
    let mut command = std::process::Command::new("docker");
    command
        .arg("--config")
        .arg(docker_config)
        .args(["buildx", "history", "ls", "--builder", "assemble", "--format", "json"])
        .stdin(Stdio::null());
    command
}
