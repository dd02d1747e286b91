//! Command line of the relay: `assemble-proxy --port <port> --host-loopback` (what the product
//! runs) or `--target <host:port>` (a fixed address, for tests and benchmarks).
use std::net::{SocketAddr, ToSocketAddrs};

pub const USAGE: &str = "usage: assemble-proxy --port <listen port> (--host-loopback | --target <address:port>)";

/// Where the relay connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The same port on the host's loopback, from the engine's network namespace.
    HostLoopback,
    /// A fixed address, from the namespace the relay runs in.
    Address(SocketAddr),
}

/// What the relay does: listen on loopback `port`, forward to `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub port: u16,
    pub target: Target,
}

pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Config, String> {
    let (mut port, mut target) = (None, None);
    while let Some(flag) = args.next() {
        if flag == "--host-loopback" {
            target = Some(Target::HostLoopback);
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => {
                let parsed: u16 = value.parse().map_err(|_| format!("invalid port {value:?}"))?;
                if parsed == 0 {
                    return Err("port 0 cannot be relayed".into());
                }
                port = Some(parsed);
            }
            "--target" => {
                let resolved = value
                    .to_socket_addrs()
                    .map_err(|e| format!("invalid target {value:?}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("target {value:?} has no address"))?;
                target = Some(Target::Address(resolved));
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(Config {
        port: port.ok_or("--port is required")?,
        target: target.ok_or("--host-loopback or --target is required")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Config, String> {
        parse(words.iter().map(|w| w.to_string()))
    }

    #[test]
    fn parses_port_and_target() {
        let config = parse_words(&["--port", "5000", "--target", "172.17.0.1:5000"]).unwrap();
        assert_eq!(config.port, 5000);
        assert_eq!(config.target, Target::Address("172.17.0.1:5000".parse().unwrap()));
        let config = parse_words(&["--port", "5000", "--host-loopback"]).unwrap();
        assert_eq!(config.target, Target::HostLoopback);
    }

    #[test]
    fn refuses_missing_and_bad_values() {
        assert!(parse_words(&["--port"]).unwrap_err().contains("needs a value"));
        assert_eq!(parse_words(&["--port", "0", "--target", "1.2.3.4:1"]), Err("port 0 cannot be relayed".into()));
        assert_eq!(parse_words(&["--port", "70000", "--target", "1.2.3.4:1"]), Err("invalid port \"70000\"".into()));
        assert!(parse_words(&["--target", "1.2.3.4:1"]).unwrap_err().contains("--port"));
        assert!(parse_words(&["--port", "1"]).unwrap_err().contains("--host-loopback or --target"));
        assert!(parse_words(&["--bogus", "1"]).unwrap_err().contains("unknown"));
    }
}
