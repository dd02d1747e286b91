//! Logs of a backend whose log holds a million lines: (A) `assemble backend logs`, (B) `docker logs`,
//! each read to EOF through pipes (lines and bytes counted, nothing kept), alternated round by round.
use std::{
    thread,
    time::{Duration, Instant},
};

use assemble_core::PortSet;

use crate::{
    common::{self, Drained, Flags, OurCli},
    stats,
};

const LABELS: [&str; 2] = ["A. assemble backend logs", "B. docker logs"];
/// How long the engine may take to record the lines written.
const FILL_TIMEOUT: Duration = Duration::from_secs(300);

struct Options {
    rounds: usize,
    lines: u64,
    image: String,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["--rounds", "--lines", "--image"])?;
    let options = Options {
        rounds: flags.number("--rounds", 5)?,
        lines: flags.number("--lines", 1_000_000)?,
        image: flags.image(),
    };
    common::require_image(&options.image)?;
    let cli = OurCli::new("logs")?;
    common::with_backend(&cli, PortSet::none(), &options.image, |runtime, backend| {
        let running = runtime.block_on(backend.running()).map_err(|e| e.to_string())?;
        measure(&options, &cli, &running.id)
    })
}

fn docker_logs(id: &str) -> Result<Drained, String> {
    let mut command = std::process::Command::new("docker");
    command.args(["logs", id]);
    common::drain(command).map_err(|e| format!("docker logs: {e}"))
}

fn measure(options: &Options, cli: &OurCli, id: &str) -> Result<(), String> {
    let before = docker_logs(id)?.lines;
    // buildkitd is PID 1 (the entrypoint execs it): its stdout is the container's log.
    let script = format!("seq 1 {} > /proc/1/fd/1", options.lines);
    let start = Instant::now();
    common::docker(&["exec", id, "sh", "-c", &script])?;
    let wanted = before + options.lines;
    loop {
        let now = docker_logs(id)?.lines;
        if now >= wanted {
            eprintln!(
                "the log holds {now} lines ({before} from buildkitd), after {:.1}s",
                start.elapsed().as_secs_f64()
            );
            break;
        }
        if start.elapsed() > FILL_TIMEOUT {
            return Err(format!("the log holds {now} of {wanted} lines after {FILL_TIMEOUT:?}"));
        }
        thread::sleep(Duration::from_secs(1));
    }

    let once = |path: usize| match path {
        0 => common::drain(cli.command(&["backend", "logs"])).map_err(|e| format!("assemble backend logs: {e}")),
        _ => docker_logs(id),
    };
    // One untimed read of each: the log file is in the page cache for both.
    for path in 0..LABELS.len() {
        once(path)?;
    }
    let mut runs: Vec<Vec<Drained>> = vec![Vec::new(); LABELS.len()];
    for round in 0..options.rounds {
        for path in common::order(round, LABELS.len()) {
            runs[path].push(once(path)?);
        }
        eprintln!("round {} of {} done", round + 1, options.rounds);
    }

    let seconds: Vec<Vec<f64>> = runs.iter().map(|r| r.iter().map(|d| d.seconds).collect()).collect();
    println!(
        "### Logs to EOF ({}, {} lines written + {} from buildkitd, {} rounds, paths alternated)\n",
        options.image, options.lines, before, options.rounds
    );
    let rows: Vec<(&str, &[f64])> = LABELS.iter().zip(&seconds).map(|(l, t)| (*l, t.as_slice())).collect();
    common::table("s", 1.0, 2, &rows);
    // Throughput at each path's median time (a median of MB/s could come from another run).
    let bytes = |i: usize| runs[i].first().map_or(0, |d| d.bytes) as f64;
    println!(
        "\nThroughput at the median time: A {:.2} MB/s, B {:.2} MB/s",
        bytes(0) / 1e6 / stats::median(&seconds[0]),
        bytes(1) / 1e6 / stats::median(&seconds[1])
    );
    println!("Ratio (median time): A/B = {:.2}", common::ratio(&seconds[0], &seconds[1]));
    for (label, runs) in LABELS.iter().zip(&runs) {
        let mut lines: Vec<u64> = runs.iter().map(|d| d.lines).collect();
        let mut bytes: Vec<u64> = runs.iter().map(|d| d.bytes).collect();
        lines.dedup();
        bytes.dedup();
        println!("{label}: lines {lines:?}, bytes {bytes:?}");
    }
    let same = runs[0].iter().chain(&runs[1]).all(|d| d.lines == runs[0].first().map_or(0, |f| f.lines));
    println!("{}", if same { "Both delivered the same number of lines." } else { "LINE COUNTS DIFFER." });
    Ok(())
}
