//! Engine addresses as the docker CLI reads them (`-H`, `DOCKER_HOST`, a context's `Host`):
//! `unix:///path`, `tcp://host:port`, a bare `host:port`, and `ssh://[user@]host[:port][/socket]`.
use std::{fmt, path::PathBuf};

use super::error::EngineError;

/// The engine's socket when nothing says otherwise.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// `unix://` + [`DEFAULT_SOCKET`].
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Where TLS goes when TLS is asked for but no host is given (docker's default).
const DEFAULT_TLS_HOST: &str = "tcp://localhost:2376";
const DEFAULT_TCP_PORT: u16 = 2375;

/// How to reach an engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// A local socket file.
    Unix(PathBuf),
    /// A TCP address; TLS, if any, is decided by the endpoint.
    Tcp {
        /// Host name or IP address (without brackets).
        host: String,
        /// TCP port.
        port: u16,
    },
    /// The system `ssh` runs `docker system dial-stdio` on the remote host.
    Ssh(SshTarget),
}

/// The parts of an `ssh://` address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SshTarget {
    /// `-l USER`, when the address names one.
    pub user: Option<String>,
    /// The remote host, as ssh should resolve it (ssh_config aliases work).
    pub host: String,
    /// `-p PORT`, when the address names one.
    pub port: Option<u16>,
    /// The engine's socket on the remote host, when not its default.
    pub socket: Option<String>,
}

impl Address {
    /// Parses `text` as the docker CLI does (`ParseHost`): empty means the local socket, or
    /// `tcp://localhost:2376` when TLS is on.
    pub fn parse(text: &str, tls: bool) -> Result<Self, EngineError> {
        let text = text.trim();
        if text.is_empty() {
            return Self::parse(if tls { DEFAULT_TLS_HOST } else { DEFAULT_HOST }, false);
        }
        let invalid = |why: &str| EngineError::InvalidAddress { address: text.to_string(), reason: why.to_string() };
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            // docker reads a bare `host:port` as TCP.
            None => ("tcp".to_string(), text),
        };
        match scheme.as_str() {
            "unix" => {
                let path = if rest.is_empty() { DEFAULT_SOCKET } else { rest };
                if !path.starts_with('/') {
                    return Err(invalid("a unix socket needs an absolute path, as in unix:///var/run/docker.sock"));
                }
                Ok(Address::Unix(PathBuf::from(path)))
            }
            "tcp" => parse_tcp(rest).map_err(|why| invalid(&why)),
            "ssh" => parse_ssh(rest).map(Address::Ssh).map_err(|why| invalid(&why)),
            "npipe" => Err(invalid("named pipes exist only on Windows")),
            "fd" => Err(invalid("fd:// is a daemon's listen address, not one a client can dial")),
            other => {
                Err(invalid(&format!("the scheme {other}:// is not one docker knows; use unix://, tcp:// or ssh://")))
            }
        }
    }

    /// True for local socket files, where TLS never applies.
    pub fn is_socket(&self) -> bool {
        matches!(self, Address::Unix(_))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(path) => write!(f, "unix://{}", path.display()),
            Address::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Address::Ssh(target) => {
                f.write_str("ssh://")?;
                if let Some(user) = &target.user {
                    write!(f, "{user}@")?;
                }
                f.write_str(&target.host)?;
                if let Some(port) = target.port {
                    write!(f, ":{port}")?;
                }
                if let Some(socket) = &target.socket {
                    f.write_str(socket)?;
                }
                Ok(())
            }
        }
    }
}

fn parse_tcp(rest: &str) -> std::result::Result<Address, String> {
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    if !path.trim_matches('/').is_empty() {
        return Err("a path after the TCP address is not supported; give tcp://host:port".into());
    }
    let (host, port) = split_host_port(authority)?;
    let host = if host.is_empty() { "localhost".to_string() } else { host };
    let port = match port {
        None => DEFAULT_TCP_PORT,
        Some(port) => port.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("{port:?} is not a port"))?,
    };
    Ok(Address::Tcp { host, port })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(authority: &str) -> std::result::Result<(String, Option<&str>), String> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("an IPv6 address must be closed with ']'")?;
        return match after {
            "" => Ok((host.to_string(), None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host.to_string(), Some(port))),
                None => Err(format!("unexpected {after:?} after the IPv6 address")),
            },
        };
    }
    match authority.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Err("put an IPv6 address in brackets, as in [::1]:2376".into()),
        Some((host, port)) => Ok((host.to_string(), Some(port))),
        None => Ok((authority.to_string(), None)),
    }
}

fn parse_ssh(rest: &str) -> std::result::Result<SshTarget, String> {
    if rest.contains(['?', '#']) {
        return Err("an ssh address takes no query or fragment".into());
    }
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, _)) if user.contains(':') => {
            return Err("a password in an ssh address is not supported; use a key or ssh-agent".into())
        }
        Some((user, host_port)) => (Some(user.to_string()).filter(|u| !u.is_empty()), host_port),
        None => (None, authority),
    };
    let (host, port) = split_host_port(host_port)?;
    if host.is_empty() {
        return Err("an ssh address needs a host, as in ssh://user@host".into());
    }
    let port = match port {
        None | Some("") => None,
        Some(port) => {
            Some(port.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("{port:?} is not a port"))?)
        }
    };
    let socket = Some(path.to_string()).filter(|p| !p.trim_matches('/').is_empty());
    Ok(SshTarget { user, host, port, socket })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> String {
        Address::parse(text, false).map(|a| a.to_string()).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn addresses_read_as_docker_reads_them() {
        assert_eq!(parsed(""), "unix:///var/run/docker.sock");
        assert_eq!(Address::parse(" ", true).unwrap().to_string(), "tcp://localhost:2376");
        assert_eq!(parsed("unix://"), "unix:///var/run/docker.sock");
        assert_eq!(parsed("unix:///run/user/1000/docker.sock"), "unix:///run/user/1000/docker.sock");
        assert_eq!(parsed("tcp://10.0.0.2"), "tcp://10.0.0.2:2375");
        assert_eq!(parsed("tcp://:2376"), "tcp://localhost:2376");
        assert_eq!(parsed("10.0.0.2:2376"), "tcp://10.0.0.2:2376");
        assert_eq!(parsed("TCP://[::1]:2376/"), "tcp://[::1]:2376");
        assert_eq!(parsed("ssh://me@box:2222"), "ssh://me@box:2222");
        assert_eq!(parsed("ssh://box/run/docker.sock"), "ssh://box/run/docker.sock");
    }

    #[test]
    fn ssh_parts_become_ssh_arguments() {
        let Address::Ssh(target) = Address::parse("ssh://me@box:2222/run/x.sock", false).unwrap() else {
            panic!("not ssh")
        };
        assert_eq!(target.user.as_deref(), Some("me"));
        assert_eq!(target.host, "box");
        assert_eq!(target.port, Some(2222));
        assert_eq!(target.socket.as_deref(), Some("/run/x.sock"));
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        assert!(parsed("unix://relative.sock").contains("absolute path"));
        assert!(parsed("tcp://host:port").contains("\"port\" is not a port"));
        assert!(parsed("tcp://host:70000").contains("is not a port"));
        assert!(parsed("tcp://host:2375/api").contains("path"));
        assert!(parsed("http://host").contains("scheme http://"));
        assert!(parsed("ssh://me:secret@box").contains("password"));
        assert!(parsed("ssh://").contains("needs a host"));
        assert!(parsed("tcp://::1:2375").contains("brackets"));
        assert!(parsed("npipe:////./pipe/docker_engine").contains("Windows"));
    }
}
