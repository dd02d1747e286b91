//! `assemble-proxy`: the host-port sidecar. It runs in the backend's network namespace, listens on
//! `localhost:<port>` (IPv4 and IPv6 loopback) and relays every connection to `<target>`, the
//! gateway of the backend's network, which is the host.
//!
//! Dependency-free on purpose: it is compiled by rustc alone into a static binary that is the only
//! file in its image.
mod args;
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
