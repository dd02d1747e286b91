//! Why an engine cannot be reached, as one sentence with the way out: ssh's own last line, the CA
//! file a certificate does not verify against, or, when nothing listens, which well-known engine
//! does answer (Docker Desktop, rootless Docker, Podman) and how to select it. We never switch to
//! it ourselves.
use std::{
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use bollard::{errors::Error as DockerError, Docker};
use rustls::CertificateError;

use super::{
    address::{Address, DEFAULT_SOCKET},
    error::{Elsewhere, EngineError, Unreachable},
    resolve::{Endpoint, Origin},
    transport::TransportError,
};
use crate::error::Remedy;
use crate::failure::{find, io_kind};

/// How long a well-known socket may take to answer a ping while we look for alternatives.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// "context "desktop-linux", chosen by docker's current context", for sentences.
pub(crate) fn place(endpoint: &Endpoint) -> String {
    match endpoint.origin {
        Origin::Default => format!("context {:?}", endpoint.context),
        origin => format!("context {:?}, chosen by {}", endpoint.context, origin.describe()),
    }
}

/// The error for a failed first contact with `endpoint`.
pub(crate) async fn unreachable(endpoint: &Endpoint, err: &DockerError) -> EngineError {
    let host = endpoint.host();
    if let Some(failure) = find::<TransportError>(err) {
        return match failure {
            TransportError::SshMissing => EngineError::SshMissing,
            TransportError::SshExited { status, last_line } => {
                EngineError::Ssh { host, status: status.clone(), last_line: last_line.clone() }
            }
        };
    }
    if let Some(tls) = find::<rustls::Error>(err) {
        return match tls {
            rustls::Error::InvalidCertificate(problem) => EngineError::TlsUntrusted {
                host,
                ca: endpoint.tls.as_ref().and_then(|t| t.ca.clone()),
                problem: certificate_problem(problem),
            },
            rustls::Error::AlertReceived(alert) => EngineError::TlsRefused { host, alert: format!("{alert:?}") },
            other => EngineError::Tls(format!(
                "TLS with the Docker Engine at {host} failed ({other}); check that it serves TLS on that port"
            )),
        };
    }
    let nothing_listens = matches!(io_kind(err), Some(io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused))
        || matches!(err, DockerError::SocketNotFoundError(_));
    let reason = if nothing_listens {
        Unreachable::NothingListens { elsewhere: elsewhere(endpoint).await }
    } else if io_kind(err) == Some(io::ErrorKind::PermissionDenied) {
        Unreachable::PermissionDenied
    } else {
        match err {
            DockerError::DockerResponseServerError { message, .. } if message.contains("HTTPS server") => {
                Unreachable::SpeaksTls
            }
            _ => Unreachable::NotAnEngine(err.to_string()),
        }
    };
    EngineError::Unreachable { host, context: place(endpoint), reason }
}

fn certificate_problem(problem: &CertificateError) -> String {
    match problem {
        CertificateError::UnknownIssuer => "it was not signed by that CA".into(),
        CertificateError::BadSignature => "its signature is not valid".into(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "it has expired".into(),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "it is not valid yet".into(),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "it was not issued for this host name".into()
        }
        other => format!("{other:?}"),
    }
}

/// Engines that answer on well-known sockets other than the one tried, each with how to select it.
async fn elsewhere(endpoint: &Endpoint) -> Vec<Elsewhere> {
    let mut found: Vec<Elsewhere> = Vec::new();
    for (path, what) in well_known_sockets() {
        if endpoint.address == Address::Unix(path.clone()) || found.iter().any(|e| e.socket == path) {
            continue;
        }
        if answers(&path).await {
            found.push(Elsewhere { what, select: how_to_select(endpoint, &path), socket: path });
        }
    }
    found
}

fn well_known_sockets() -> Vec<(PathBuf, &'static str)> {
    let mut sockets = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        sockets.push((PathBuf::from(home).join(".docker/desktop/docker.sock"), "Docker Desktop"));
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|r| !r.is_empty()) {
        sockets.push((PathBuf::from(&runtime).join("docker.sock"), "Rootless Docker"));
        sockets.push((PathBuf::from(&runtime).join("podman/podman.sock"), "Podman"));
    }
    sockets.push((PathBuf::from(DEFAULT_SOCKET), "The system's Docker Engine"));
    sockets.push((PathBuf::from("/run/podman/podman.sock"), "Podman (system)"));
    sockets
}

/// How the user selects the engine at `path`: its context when one names it, else its address.
fn how_to_select(endpoint: &Endpoint, path: &Path) -> Remedy {
    let address = Address::Unix(path.to_path_buf());
    let context = endpoint
        .config
        .contexts()
        .into_iter()
        .find(|c| Address::parse(&c.host, false).is_ok_and(|a| a == address))
        .map(|c| c.name);
    let default_socket =
        path == Path::new(DEFAULT_SOCKET) && !matches!(endpoint.origin, Origin::DockerHost | Origin::HostFlag);
    match context.or_else(|| default_socket.then(|| super::store::DEFAULT_CONTEXT.to_string())) {
        Some(name) => Remedy::UseContext(name),
        None => Remedy::UseHost(address.to_string()),
    }
}

async fn answers(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    if !std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        return false;
    }
    let Ok(docker) = Docker::connect_with_unix(&path.to_string_lossy(), 2, bollard::API_DEFAULT_VERSION) else {
        return false;
    };
    matches!(tokio::time::timeout(PROBE_TIMEOUT, docker.ping()).await, Ok(Ok(_)))
}
