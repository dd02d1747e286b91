//! The connection to the Docker Engine, and the one sentence a user sees when there is none.
use std::{error::Error as _, io, time::Duration};

use bollard::errors::Error as DockerError;
pub use bollard::Docker;

use crate::error::{Error, Result};

/// Where the engine is when `DOCKER_HOST` does not say.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// How long we wait for the engine to answer a ping before calling it unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects as the docker CLI would (`DOCKER_HOST`, else the local socket), agrees on an API
/// version the engine speaks, and checks that it answers.
pub async fn connect() -> Result<Docker> {
    let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
    let endpoint = host.clone().unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    let docker = Docker::connect_with_defaults().map_err(|e| unavailable(&endpoint, &e))?;
    let docker = tokio::time::timeout(PING_TIMEOUT, docker.negotiate_version())
        .await
        .map_err(|_| Error::DockerUnavailable(format!(
            "The Docker Engine at {endpoint} did not answer within {}s; check that Docker is running and healthy, then try again.",
            PING_TIMEOUT.as_secs()
        )))?
        .map_err(|e| unavailable(&endpoint, &e))?;
    Ok(docker)
}

/// One sentence that names the endpoint, the cause, and the way out.
pub(crate) fn unavailable(endpoint: &str, err: &DockerError) -> Error {
    let hint = match io_kind(err) {
        Some(io::ErrorKind::NotFound) | Some(io::ErrorKind::ConnectionRefused) => {
            "nothing is listening there. Start Docker (for example `sudo systemctl start docker`, or open Docker Desktop) or point DOCKER_HOST at a running engine, then try again."
        }
        Some(io::ErrorKind::PermissionDenied) => {
            "permission denied. Add your user to the `docker` group (then log in again) or run with sufficient rights."
        }
        _ if matches!(err, DockerError::SocketNotFoundError(_)) => {
            "nothing is listening there. Start Docker (for example `sudo systemctl start docker`, or open Docker Desktop), then try again."
        }
        _ if matches!(
            err,
            DockerError::UnsupportedURISchemeError { .. } | DockerError::InvalidURIError { .. } | DockerError::URLParseError { .. }
        ) =>
        {
            "that is not a valid engine address. Set DOCKER_HOST to something like unix:///var/run/docker.sock or tcp://host:2376."
        }
        _ => "it did not answer as a Docker Engine. Check DOCKER_HOST and that Docker is running.",
    };
    Error::DockerUnavailable(format!("Cannot reach the Docker Engine at {endpoint}: {hint}"))
}

fn io_kind(err: &DockerError) -> Option<io::ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
    if let DockerError::IOError { err } = err {
        return Some(err.kind());
    }
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        source = current.source();
    }
    None
}

/// The engine answered 404 for the object.
pub(crate) fn is_not_found(err: &DockerError) -> bool {
    matches!(err, DockerError::DockerResponseServerError { status_code: 404, .. })
}

/// The engine answered 409: the name is taken (or the object is busy).
pub(crate) fn is_conflict(err: &DockerError) -> bool {
    matches!(err, DockerError::DockerResponseServerError { status_code: 409, .. })
}

/// The engine could not be reached at all (as opposed to refusing a request).
pub(crate) fn is_connection_failure(err: &DockerError) -> bool {
    io_kind(err).is_some()
        || matches!(err, DockerError::SocketNotFoundError(_) | DockerError::HyperResponseError { .. })
}
