//! Command line of the relay: `assemble-proxy --port <port> --host-loopback` (what the product
//! runs), `--target <host:port>` (a fixed address, for tests and benchmarks), and the unix-socket
//! ends that the benchmark's two-container design uses (`--target unix:PATH`, `--listen unix:PATH`).
use std::{
    net::{SocketAddr, ToSocketAddrs},
    path::PathBuf,
};

pub const USAGE: &str = "usage: assemble-proxy (--port <listen port> | --listen unix:<path>) \
                         (--host-loopback | --target <address:port> | --target unix:<path>) [--max-connections N]";

/// How many connections one relay serves at once unless told: far above what a registry push opens
/// (a handful per push), far below what would strain the host.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// Where the relay connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The same port on the host's loopback, from the engine's network namespace.
    HostLoopback,
    /// A fixed address, from the namespace the relay runs in.
    Address(SocketAddr),
    /// A unix socket.
    Unix(PathBuf),
}

/// Where the relay listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// `localhost:PORT` (IPv4 and IPv6 loopback) in the namespace it starts in.
    Loopback(u16),
    /// A unix socket.
    Unix(PathBuf),
}

/// What the relay does: listen, forward to `target`, at most `max_connections` at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: Listen,
    pub target: Target,
    pub max_connections: usize,
}

impl Config {
    /// The port, for the host's loopback and for messages.
    pub fn port(&self) -> Option<u16> {
        match self.listen {
            Listen::Loopback(port) => Some(port),
            Listen::Unix(_) => None,
        }
    }
}

pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Config, String> {
    let (mut listen, mut target, mut max_connections) = (None, None, DEFAULT_MAX_CONNECTIONS);
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
                listen = Some(Listen::Loopback(parsed));
            }
            "--listen" => {
                let path =
                    value.strip_prefix("unix:").ok_or_else(|| format!("--listen takes unix:PATH, not {value:?}"))?;
                listen = Some(Listen::Unix(path.into()));
            }
            "--target" => {
                if let Some(path) = value.strip_prefix("unix:") {
                    target = Some(Target::Unix(path.into()));
                    continue;
                }
                let resolved = value
                    .to_socket_addrs()
                    .map_err(|e| format!("invalid target {value:?}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("target {value:?} has no address"))?;
                target = Some(Target::Address(resolved));
            }
            "--max-connections" => {
                max_connections =
                    value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("invalid --max-connections {value:?}: give a whole number of at least 1")
                    })?;
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    let config = Config {
        listen: listen.ok_or("--port (or --listen) is required")?,
        target: target.ok_or("--host-loopback or --target is required")?,
        max_connections,
    };
    if matches!(config.listen, Listen::Unix(_)) && config.target == Target::HostLoopback {
        return Err("--host-loopback needs --port: it relays to the same port".into());
    }
    Ok(config)
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
        assert_eq!(config.listen, Listen::Loopback(5000));
        assert_eq!(config.target, Target::Address("172.17.0.1:5000".parse().unwrap()));
        assert_eq!(config.max_connections, DEFAULT_MAX_CONNECTIONS);
        let config = parse_words(&["--port", "5000", "--host-loopback", "--max-connections", "64"]).unwrap();
        assert_eq!((config.target, config.max_connections), (Target::HostLoopback, 64));
        let config = parse_words(&["--listen", "unix:/run/r.sock", "--target", "127.0.0.1:5000"]).unwrap();
        assert_eq!(config.listen, Listen::Unix("/run/r.sock".into()));
        let config = parse_words(&["--port", "5000", "--target", "unix:/run/r.sock"]).unwrap();
        assert_eq!(config.target, Target::Unix("/run/r.sock".into()));
    }

    #[test]
    fn refuses_missing_and_bad_values() {
        assert!(parse_words(&["--port"]).unwrap_err().contains("needs a value"));
        assert_eq!(parse_words(&["--port", "0", "--target", "1.2.3.4:1"]), Err("port 0 cannot be relayed".into()));
        assert_eq!(parse_words(&["--port", "70000", "--target", "1.2.3.4:1"]), Err("invalid port \"70000\"".into()));
        assert!(parse_words(&["--target", "1.2.3.4:1"]).unwrap_err().contains("--port"));
        assert!(parse_words(&["--port", "1"]).unwrap_err().contains("--host-loopback or --target"));
        assert!(parse_words(&["--bogus", "1"]).unwrap_err().contains("unknown"));
        assert!(parse_words(&["--port", "1", "--host-loopback", "--max-connections", "0"])
            .unwrap_err()
            .contains("at least 1"));
        assert!(parse_words(&["--listen", "/x", "--host-loopback"]).unwrap_err().contains("unix:PATH"));
        assert!(parse_words(&["--listen", "unix:/x", "--host-loopback"]).unwrap_err().contains("needs --port"));
    }
}
