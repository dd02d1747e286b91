//! `assemble-proxy`: the host-port sidecar. It starts in the backend's network namespace, listens
//! on `localhost:<port>` there (IPv4 and IPv6 loopback), moves to the engine's own namespace (the
//! host), and relays every connection to the same port on the host's loopback. Nothing listens
//! anywhere but inside the backend, so a host service bound to 127.0.0.1 is reachable from builds
//! and from nowhere else.
//!
//! Dependency-free on purpose: it is compiled by rustc alone into a static binary that is the only
//! file in its image.
mod args;
mod netns;
mod pool;
mod relay;
mod splice;

use std::process::ExitCode;

fn main() -> ExitCode {
    let config = match args::parse(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("assemble-proxy: {message}\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match relay::serve(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("assemble-proxy: {err}");
            ExitCode::FAILURE
        }
    }
}
