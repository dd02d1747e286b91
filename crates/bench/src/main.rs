//! `assemble-bench`: benchmarks that print figures side by side with the alternative, in one run.
//!
//!   assemble-bench relay [--gib N] [--rounds R] [--image REF]
//!       throughput and connection cost from inside the backend to a sink on the host, through
//!       (a) our sidecar, (b) straight to the gateway (the limit), (c) a socat sidecar.
//!   assemble-bench client send|conns …   (internal: runs inside the backend's network namespace)
mod net;
mod relay;
mod stats;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("client") => client(&args[1..]),
        Some("relay") => relay::run(&args[1..]),
        _ => Err("usage: assemble-bench relay [--gib N] [--rounds R] [--image REF]".to_string()),
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
