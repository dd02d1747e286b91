//! Every failure the core reports, as a sentence that says what happened and what to do.
use std::path::{Path, PathBuf};

use crate::ports::PortError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidPorts(#[from] PortError),

    #[error("{0:?} is not a valid volume name: use letters, digits, '_', '.' or '-', starting with a letter or digit")]
    InvalidVolumeName(String),

    #[error("the image reference is empty: give an image such as moby/buildkit:v0.25.1")]
    EmptyImage,

    #[error("{0}")]
    DockerUnavailable(String),

    #[error("Cannot reach the Docker Engine at {host} ({place}): {reason}")]
    EngineUnreachable { host: String, place: String, reason: String },

    #[error("{address:?} is not a Docker Engine address: {reason}")]
    InvalidEngineAddress { address: String, reason: String },

    #[error("conflicting options: cannot specify both --host and --context (as in docker); give one of them")]
    ConflictingEngineOptions,

    #[error(
        "there is no docker context named {name:?}; the contexts are: {known}. Choose one with --context NAME, \
         or make one current with `docker context use NAME`",
        known = known.join(", ")
    )]
    UnknownContext { name: String, known: Vec<String> },

    #[error(
        "the docker context {name:?} cannot be used: {}: {reason}; fix the file, or remove the context with \
         `docker context rm {name}`",
        file.display()
    )]
    ContextUnreadable { name: String, file: PathBuf, reason: String },

    #[error("{0:?} is not a docker context name: use letters, digits, '_', '.', '+' or '-', starting with a letter or digit")]
    InvalidContextName(String),

    #[error(
        "the TLS {what} {} does not exist; put the engine's {} there, or point DOCKER_CERT_PATH (or {}) at the right file",
        path.display(), file_name(path), what.flag()
    )]
    TlsFileMissing { what: TlsFile, path: PathBuf },

    #[error("the TLS {what} {} cannot be used: {reason}", path.display())]
    TlsFileInvalid { what: TlsFile, path: PathBuf, reason: String },

    #[error("{0}")]
    Tls(String),

    #[error(
        "the Docker Engine at {host} presented a certificate that does not verify against {}: {problem}. \
         Check that DOCKER_CERT_PATH (or the context's TLS files) belong to this engine",
        trusted(ca)
    )]
    TlsUntrusted { host: String, ca: Option<PathBuf>, problem: String },

    #[error(
        "the Docker Engine at {host} refused our TLS connection ({alert}): it wants a client certificate it trusts; \
         put cert.pem and key.pem beside ca.pem (in DOCKER_CERT_PATH, or the context's TLS files)"
    )]
    TlsRefused { host: String, alert: String },

    #[error("ssh to {host} failed ({status}): {last_line}")]
    Ssh { host: String, status: String, last_line: String },

    #[error(
        "the ssh command was not found; install OpenSSH's client (for example `sudo apt-get install openssh-client`) \
         to reach ssh:// engines"
    )]
    SshMissing,

    #[error(
        "a container named {name:?} exists but was not created by Assemble Backend, so it is left alone; \
         remove or rename it yourself (docker rm -f {name}) and try again"
    )]
    ForeignContainer { name: String },

    #[error(
        "image {image} is not present and could not be pulled ({reason}); load or build it locally, \
         or choose another with --image"
    )]
    ImageUnavailable { image: String, reason: String },

    #[error("the backend did not become ready within {seconds}s; its last log lines:\n{logs}")]
    NotReady { seconds: u64, logs: String },

    #[error("the backend container {name:?} stopped while starting; its last log lines:\n{logs}")]
    BackendExited { name: String, logs: String },

    #[error("the Docker Engine refused to start the backend container {name:?}: {reason}")]
    StartRefused { name: String, reason: String },

    #[error(
        "the backend container {name:?} has no network gateway, so host ports cannot be proxied; check the engine's \
         default bridge network (docker network inspect bridge), or start without host ports (--allow-host-port 0)"
    )]
    NoGateway { name: String },

    #[error("{} is already there and is not our link; move it away, or pass --force to replace it", path.display())]
    PluginPathTaken { path: PathBuf },

    #[error("HOME is not set, so the Docker CLI plugin folder is unknown; set HOME or DOCKER_CONFIG")]
    HomeUnset,

    #[error("--tail {0:?} is not a number of lines; give a whole number or \"all\"")]
    InvalidTail(String),

    /// The app runs one start, stop or restart at a time.
    #[error("another start or stop is under way; wait for it to finish")]
    OperationUnderWay,

    #[error("the start was interrupted; everything it had created was removed")]
    Cancelled,

    /// A start failed (or was interrupted) and taking back what it had created failed too.
    #[error(
        "{cause}; and removing what the start had created failed: {}. Remove what is left yourself: {}",
        failures.join("; "),
        leftover_commands(left)
    )]
    RollbackIncomplete {
        /// Why the start did not complete.
        cause: Box<Error>,
        /// One sentence per object that could not be removed.
        failures: Vec<String>,
        /// What is left: containers and volumes, as `docker rm -f` / `docker volume rm` arguments.
        left: Vec<Leftover>,
    },

    #[error("the backend is not running; start it with `docker assemble backend start`")]
    NotRunning,

    /// BuildKit could not be reached: the exec stream or the HTTP/2 connection failed.
    #[error("the backend is running but BuildKit does not answer: {0}")]
    Buildkit(String),

    /// BuildKit answered, and refused or failed the call; `code` is its gRPC status.
    #[error("BuildKit could not {call}: {message} (gRPC status {code:?})")]
    BuildkitStatus {
        /// What we asked for, as a verb phrase ("list its workers").
        call: &'static str,
        /// BuildKit's gRPC status code.
        code: tonic::Code,
        /// BuildKit's message.
        message: String,
        /// The call failed in transit (the connection broke), not in BuildKit.
        transport: bool,
    },

    #[error("could not prepare the sidecar proxy image: {0}")]
    ProxyImage(String),

    #[error("{action}: {source}")]
    Docker {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error("{action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
}

/// Something a start created and could not remove again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// A container, by name or ID.
    Container(String),
    /// A volume, by name.
    Volume(String),
}

fn leftover_commands(left: &[Leftover]) -> String {
    let containers: Vec<&str> =
        left.iter().filter_map(|l| if let Leftover::Container(c) = l { Some(c.as_str()) } else { None }).collect();
    let volumes: Vec<&str> =
        left.iter().filter_map(|l| if let Leftover::Volume(v) = l { Some(v.as_str()) } else { None }).collect();
    let mut commands = Vec::new();
    if !containers.is_empty() {
        commands.push(format!("`docker rm -f {}`", containers.join(" ")));
    }
    if !volumes.is_empty() {
        commands.push(format!("`docker volume rm {}`", volumes.join(" ")));
    }
    commands.join(" and ")
}

/// The TLS files docker reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// `ca.pem`.
    Ca,
    /// `cert.pem`.
    ClientCertificate,
    /// `key.pem`.
    ClientKey,
}

impl TlsFile {
    /// The docker flag that names this file.
    pub fn flag(self) -> &'static str {
        match self {
            TlsFile::Ca => "--tlscacert",
            TlsFile::ClientCertificate => "--tlscert",
            TlsFile::ClientKey => "--tlskey",
        }
    }
}

impl std::fmt::Display for TlsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsFile::Ca => "CA certificate",
            TlsFile::ClientCertificate => "client certificate",
            TlsFile::ClientKey => "client key",
        })
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

fn trusted(ca: &Option<PathBuf>) -> String {
    match ca {
        Some(ca) => format!("the CA in {}", ca.display()),
        None => "the system's trusted CAs".to_string(),
    }
}

/// Where a sentence is shown, so that its way out names what the reader can do there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The CLI: flags and commands.
    CommandLine,
    /// The app's windows and tray: buttons and the settings window, no flags.
    App,
}

impl Error {
    /// The sentence for `place`: the error's own text on the command line; in the app, the same
    /// facts with a way out in the app's terms where the text would name a flag.
    pub fn sentence(&self, place: Place) -> String {
        if place == Place::CommandLine {
            return self.to_string();
        }
        match self {
            Error::InvalidPorts(port) => port.in_settings(),
            Error::NoGateway { name } => format!(
                "the backend container {name:?} has no network gateway, so host ports cannot be proxied; check the \
                 engine's default bridge network (docker network inspect bridge), or remove the host ports in Settings"
            ),
            Error::ImageUnavailable { image, reason } => format!(
                "image {image} is not present and could not be pulled ({reason}); load or build it locally, or \
                 choose another image in Settings"
            ),
            Error::UnknownContext { name, known } => format!(
                "there is no docker context named {name:?}; the contexts are: {}. Choose one in Settings",
                known.join(", ")
            ),
            Error::NotRunning => "the backend is not running; start it with Start".to_string(),
            Error::RollbackIncomplete { cause, .. } => {
                // The cause in the app's terms, then the cleanup's own sentence.
                let full = self.to_string();
                let cleanup = full.strip_prefix(&cause.to_string()).unwrap_or_default().to_string();
                cause.sentence(place) + &cleanup
            }
            other => other.to_string(),
        }
    }

    /// The settings field an error is about, so a form can show it next to that field.
    pub fn settings_field(&self) -> Option<&'static str> {
        match self {
            Error::InvalidPorts(_) => Some("ports"),
            Error::InvalidVolumeName(_) => Some("cache"),
            Error::EmptyImage => Some("image"),
            Error::InvalidContextName(_) => Some("context"),
            _ => None,
        }
    }

    /// The engine could not be found or reached (as opposed to refusing a request).
    pub fn is_engine_unavailable(&self) -> bool {
        match self {
            Error::DockerUnavailable(_)
            | Error::EngineUnreachable { .. }
            | Error::InvalidEngineAddress { .. }
            | Error::ConflictingEngineOptions
            | Error::UnknownContext { .. }
            | Error::ContextUnreadable { .. }
            | Error::TlsFileMissing { .. }
            | Error::TlsFileInvalid { .. }
            | Error::Tls(_)
            | Error::TlsUntrusted { .. }
            | Error::TlsRefused { .. }
            | Error::Ssh { .. }
            | Error::SshMissing => true,
            Error::Docker { source, .. } => crate::failure::is_connection_failure(source),
            _ => false,
        }
    }

    /// A failure in reaching BuildKit, where trying again over a new connection may succeed; a
    /// refusal by BuildKit itself is final (retrying a failed purge would run it twice).
    pub fn is_buildkit_transport(&self) -> bool {
        match self {
            Error::Buildkit(_) => true,
            Error::BuildkitStatus { transport, .. } => *transport,
            _ => false,
        }
    }

    pub(crate) fn docker(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Error {
        let action = action.into();
        move |source| Error::Docker { action, source }
    }

    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let action = action.into();
        move |source| Error::Io { action, source }
    }
}
