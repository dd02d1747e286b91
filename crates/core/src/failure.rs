//! What a failed request to the engine means, read from bollard's error chain: not found, a
//! conflict, or no engine at all (an I/O error, a failed transport, TLS). A leaf module, so that
//! both the engine code and the error type can ask.
use std::{error::Error as StdError, io};

use bollard::errors::Error as DockerError;

/// What a connector can say about its failure beyond an I/O error kind.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum TransportError {
    /// `ssh` is not installed.
    #[error("the ssh command was not found")]
    SshMissing,
    /// `ssh` ended before or while carrying the connection.
    #[error("ssh exited ({status}): {last_line}")]
    SshExited { status: String, last_line: String },
}

/// The first error of type `T` in `err`'s chain, looking inside `io::Error`s too (whose `source`
/// skips the error they wrap, as does bollard's transparent `IOError`).
pub(crate) fn find<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(DockerError::IOError { err }) = error.downcast_ref::<DockerError>() {
            return find::<T>(err);
        }
        if let Some(inner) = error.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            if let Some(found) = find::<T>(inner) {
                return Some(found);
            }
        }
        current = error.source();
    }
    None
}

/// The kind of the first I/O error in `err`'s chain.
pub(crate) fn io_kind(err: &DockerError) -> Option<io::ErrorKind> {
    if let DockerError::IOError { err } = err {
        return Some(err.kind());
    }
    find::<io::Error>(err).map(io::Error::kind)
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
        || find::<TransportError>(err).is_some()
        || find::<rustls::Error>(err).is_some()
        || matches!(err, DockerError::SocketNotFoundError(_) | DockerError::HyperResponseError { .. })
}

/// The engine's own message for a refused request (the part a user can act on), or the error.
pub(crate) fn engine_message(err: &DockerError) -> String {
    match err {
        DockerError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use rustls::CertificateError;

    use super::*;

    #[test]
    fn errors_are_found_inside_io_errors() {
        let inner = io::Error::other(TransportError::SshMissing);
        let docker = DockerError::IOError { err: inner };
        assert!(matches!(find::<TransportError>(&docker), Some(TransportError::SshMissing)));
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let docker = DockerError::IOError { err: tls };
        assert!(matches!(find::<rustls::Error>(&docker), Some(rustls::Error::InvalidCertificate(_))));
        assert_eq!(io_kind(&docker), Some(io::ErrorKind::InvalidData));
    }
}
