//! `assemble-bench`: benchmarks that print figures side by side with the alternative, in one run.
//!
//!   assemble-bench relay [--gib N] [--rounds R] [--image REF]
//!       throughput and connection cost from inside the backend to a sink on the host, through
//!       (a) our sidecar (to the host's loopback), (b) straight to the gateway, (c) a socat
//!       sidecar to the gateway, and (d) the floor: the host's own loopback, no namespace.
//!   assemble-bench start [--rounds R] [--image REF] [--port P]
//!       start to ready, image present, one host port: (A) `assemble backend start`, (B) a
//!       buildx-style bootstrap with the docker CLI and a socat sidecar, and the floor.
//!   assemble-bench info [--rounds R] [--warmup W] [--image REF] [--port P]
//!       warm `info`: (A) our CLI, (B) `buildctl debug workers` + `buildctl du` through docker exec,
//!       (A2) our library over one open BuildKit channel, (A3) `Backend::info()` with a new
//!       channel, (A4) `Backend::info()` with its kept channel.
//!   assemble-bench logs [--rounds R] [--lines N] [--image REF]
//!       a backend log of a million lines read to EOF: (A) `assemble backend logs`, (B) `docker logs`.
//!   assemble-bench engines [--rounds R] [--warmup W] [--image REF]
//!       warm `info` over unix, TLS and ssh to a second dockerd: (A) `assemble --context X backend
//!       info`, (B) `docker --context X exec <backend> buildctl debug workers`.
//!   assemble-bench builds [--rounds R] [--warmup W] [--builds N] [--image REF]
//!       list a history of N builds: (A) `assemble backend builds --format json`, (B) `docker
//!       buildx history ls --builder assemble --format json`.
//!   assemble-bench build [--rounds R] [--files N] [--mib M] [--image REF] [--parts all|context|session]
//!       a context of N files, M MiB: (A) `assemble build`, (B) `docker buildx build --builder
//!       assemble`, first build, after one file changed, cached rebuild; then (session) 200 MiB
//!       to a local folder, and a step with a secret and an ssh mount.
//!   assemble-bench platforms [--rounds R] [--loops N] [--image REF]
//!       what emulation costs: one RUN step (a shell loop) for linux/arm64 through the backend's
//!       qemu emulator against the same step for linux/amd64, natively.
//!   assemble-bench nodes [--rounds R] [--loops N] [--image REF]
//!       several machines as one builder: a two-platform build pushed as one index, on one node and
//!       on two (the second on a private dockerd, declared linux/arm64), (A) `assemble build`
//!       against (B) `docker buildx build --builder assemble`.
//!   assemble-bench build-cache [--rounds R] [--seconds S] [--mib M] [--image REF]
//!       a registry cache import on a cold backend: (A) `assemble build --cache-from`, (B) `docker
//!       buildx build --builder assemble --cache-from`, (C) no import.
//!   assemble-bench client send|conns …   (internal: runs inside the backend's network namespace)
//!
//! start, info and logs need `assemble` (the CLI) next to this binary, and use only the default
//! engine socket.
mod build;
mod build_cache;
mod build_session;
mod builds;
mod common;
mod engines;
mod info;
mod logs;
mod net;
mod nodes;
mod platforms;
mod relay;
mod security;
mod socat;
mod start;
mod stats;

use std::process::ExitCode;

const USAGE: &str = "usage: assemble-bench relay [--gib N] [--rounds R] [--image REF]
       assemble-bench start [--rounds R (10)] [--image REF] [--port P (5000)]
       assemble-bench info [--rounds R (30)] [--warmup W (2)] [--image REF] [--port P (5000)]
       assemble-bench logs [--rounds R (5)] [--lines N (1000000)] [--image REF]
       assemble-bench engines [--rounds R (20)] [--warmup W (2)] [--image REF]
       assemble-bench builds [--rounds R (20)] [--warmup W (2)] [--builds N (50)] [--image REF]
       assemble-bench build [--rounds R (3)] [--files N (20000)] [--mib M (200)] [--image REF] [--parts all|context|session]
       assemble-bench build-cache [--rounds R (3)] [--seconds S (5)] [--mib M (64)] [--image REF]
       assemble-bench security [--rounds R (5)] [--image REF] [--rootless-image REF]
       assemble-bench platforms [--rounds R (3)] [--loops N (200000)] [--image REF]
       assemble-bench nodes [--rounds R (3)] [--loops N (200000)] [--image REF]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("client") => client(&args[1..]),
        Some("relay") => relay::run(&args[1..]),
        Some("engines") => engines::run(&args[1..]),
        // The local node on the default engine; the second node's engine is named by its context.
        Some("nodes") => {
            common::use_default_engine();
            nodes::run(&args[1..])
        }
        Some(name @ ("start" | "info" | "logs" | "builds" | "build" | "build-cache" | "security" | "platforms")) => {
            common::use_default_engine();
            match name {
                "start" => start::run(&args[1..]),
                "info" => info::run(&args[1..]),
                "builds" => builds::run(&args[1..]),
                "build" => build::run(&args[1..]),
                "build-cache" => build_cache::run(&args[1..]),
                "security" => security::run(&args[1..]),
                "platforms" => platforms::run(&args[1..]),
                _ => logs::run(&args[1..]),
            }
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("assemble-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The half that runs in the backend's network namespace; prints its measurements on stdout.
fn client(args: &[String]) -> Result<(), String> {
    let arg = |i: usize| args.get(i).cloned().ok_or_else(|| format!("client: missing argument {i}"));
    let number = |i: usize| arg(i)?.parse::<u64>().map_err(|e| format!("client: argument {i}: {e}"));
    match arg(0)?.as_str() {
        "send" => {
            let sent = net::send(&arg(1)?, number(2)?, number(3)? as usize).map_err(|e| format!("send: {e}"))?;
            println!("{} {} {}", sent.seconds, sent.delivered, sent.failed);
        }
        "conns" => {
            let latencies = net::connections(&arg(1)?, number(2)? as usize).map_err(|e| format!("conns: {e}"))?;
            println!("{}", latencies.iter().map(|l| format!("{l:.1}")).collect::<Vec<_>>().join(" "));
        }
        other => return Err(format!("client: unknown mode {other}")),
    }
    Ok(())
}
