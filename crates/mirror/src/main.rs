//! `assemble-mirror`: local images in builds. A read-only registry that serves the engine's own
//! images to the backend's BuildKit (named in its config as a mirror, so an image the engine does
//! not have is asked of its registry as before), in two processes that never meet but through one
//! narrow protocol:
//!
//! - `front` listens on a loopback address inside the backend's network namespace, where builds
//!   run too. It has no engine, no capability and no network of its own; it turns the only
//!   requests it answers into one checked line for the back (front.rs).
//! - `back` holds the engine's API (its socket) in a container without a network, answers those
//!   lines, and keeps what it exported by digest until the engine no longer has the image
//!   (back.rs, store.rs, export.rs).
//!
//! Dependency-free on purpose, as the relay: compiled by rustc alone (crates/core/build.rs) into
//! the static binary that is the only file of its image.
mod answer;
mod back;
mod engine;
mod export;
mod front;
mod grammar;
mod http;
mod json;
mod sha256;
mod store;
mod tar;
mod words;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

const USAGE: &str = "usage: assemble-mirror front --listen ADDRESS:PORT --socket PATH [--max-connections N]
       assemble-mirror back --engine SOCKET --socket PATH --cache DIR --name CONTAINER --engine-label TEXT
                            --registry HOST [--registry HOST]... [--socket-group GID] [--max-layer-bytes N]
                            [--max-connections N]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("front") => front_config(&args[1..]).and_then(|config| front::serve(&config).map_err(|e| e.to_string())),
        Some("back") => back_config(&args[1..]).and_then(|config| back::serve(&config)),
        _ => Err("say front or back".to_string()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("assemble-mirror: error: {message}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

/// `--flag value` pairs; a flag may repeat.
fn pairs(args: &[String]) -> Result<Vec<(&str, &str)>, String> {
    let mut out = Vec::new();
    let mut words = args.iter();
    while let Some(flag) = words.next() {
        let value = words.next().ok_or_else(|| format!("{flag} needs a value"))?;
        out.push((flag.as_str(), value.as_str()));
    }
    Ok(out)
}

fn one<'a>(pairs: &[(&str, &'a str)], flag: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(f, _)| *f == flag).map(|(_, v)| *v)
}

fn required<'a>(pairs: &[(&str, &'a str)], flag: &str) -> Result<&'a str, String> {
    one(pairs, flag).ok_or_else(|| format!("{flag} is required"))
}

fn number<T: std::str::FromStr>(pairs: &[(&str, &str)], flag: &str, default: T) -> Result<T, String> {
    one(pairs, flag).map_or(Ok(default), |v| v.parse().map_err(|_| format!("{flag} takes a number, not {v:?}")))
}

fn check_known(pairs: &[(&str, &str)], known: &[&str]) -> Result<(), String> {
    match pairs.iter().find(|(f, _)| !known.contains(f)) {
        Some((flag, _)) => Err(format!("unknown option {flag}")),
        None => Ok(()),
    }
}

fn front_config(args: &[String]) -> Result<front::Config, String> {
    let pairs = pairs(args)?;
    check_known(&pairs, &["--listen", "--socket", "--max-connections"])?;
    let listen: SocketAddr =
        required(&pairs, "--listen")?.parse().map_err(|_| "--listen takes ADDRESS:PORT".to_string())?;
    if !listen.ip().is_loopback() {
        return Err(format!("--listen {listen}: the front listens on a loopback address only"));
    }
    Ok(front::Config {
        listen,
        socket: PathBuf::from(required(&pairs, "--socket")?),
        max_connections: number(&pairs, "--max-connections", 64)?,
    })
}

fn back_config(args: &[String]) -> Result<back::Config, String> {
    let pairs = pairs(args)?;
    check_known(
        &pairs,
        &[
            "--engine",
            "--socket",
            "--socket-group",
            "--cache",
            "--name",
            "--engine-label",
            "--registry",
            "--max-layer-bytes",
            "--max-connections",
        ],
    )?;
    let registries: Vec<String> =
        pairs.iter().filter(|(f, _)| *f == "--registry").map(|(_, v)| v.to_string()).collect();
    if let Some(bad) = registries.iter().find(|r| !grammar::is_registry_host(r)) {
        return Err(format!("--registry {bad}: not a registry host"));
    }
    if registries.is_empty() {
        return Err("--registry is required".into());
    }
    Ok(back::Config {
        engine_socket: PathBuf::from(required(&pairs, "--engine")?),
        socket: PathBuf::from(required(&pairs, "--socket")?),
        socket_group: one(&pairs, "--socket-group")
            .map(|g| g.parse().map_err(|_| format!("--socket-group takes a number, not {g:?}")))
            .transpose()?,
        cache: PathBuf::from(required(&pairs, "--cache")?),
        own_name: required(&pairs, "--name")?.to_string(),
        engine_label: required(&pairs, "--engine-label")?.to_string(),
        registries,
        max_layer_bytes: number(&pairs, "--max-layer-bytes", 8 * 1024 * 1024 * 1024)?,
        max_connections: number(&pairs, "--max-connections", 128)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(String::from).collect()
    }

    #[test]
    fn the_front_listens_on_loopback_only() {
        let config = front_config(&words("--listen 127.0.0.2:49500 --socket /run/m/back.sock")).unwrap();
        assert_eq!((config.listen.to_string().as_str(), config.max_connections), ("127.0.0.2:49500", 64));
        assert!(front_config(&words("--listen 0.0.0.0:49500 --socket /s")).unwrap_err().contains("loopback"));
        assert!(front_config(&words("--listen 127.0.0.2:49500")).unwrap_err().contains("--socket"));
        assert!(front_config(&words("--listen 127.0.0.2:1 --socket /s --other x")).unwrap_err().contains("unknown"));
    }

    #[test]
    fn the_back_needs_its_engine_and_registries() {
        let config = back_config(&words(
            "--engine /run/docker.sock --socket /s --cache /c --name n --engine-label default --registry docker.io --registry localhost:5000 --socket-group 65534",
        ))
        .unwrap();
        assert_eq!(config.registries, ["docker.io", "localhost:5000"]);
        assert_eq!(config.socket_group, Some(65534));
        assert!(back_config(&words("--engine /e --socket /s --cache /c --name n --engine-label l"))
            .unwrap_err()
            .contains("--registry"));
        assert!(
            back_config(&words("--engine /e --socket /s --cache /c --name n --engine-label l --registry a/b")).is_err()
        );
    }
}
