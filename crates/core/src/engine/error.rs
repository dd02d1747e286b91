//! What goes wrong in finding and reaching the Docker Engine, each worded once; the way out is a
//! [`Remedy`], worded by the place that shows it.
use std::path::{Path, PathBuf};

use crate::error::{Place, Remedy};

/// The engine cannot be found or reached, or an engine setting cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine went away: its event stream closed.
    #[error("The Docker Engine closed the event stream.")]
    EventStreamClosed,

    /// The chosen engine cannot be reached: nothing listens, no permission, no answer, or not a Docker Engine.
    #[error("{}", self.sentence(Place::CommandLine))]
    Unreachable {
        /// The address tried, as docker prints it.
        host: String,
        /// The context that named it, and what chose that context.
        context: String,
        /// What went wrong.
        reason: Unreachable,
    },

    /// An engine address (`-H`, `DOCKER_HOST`, a context's host) that cannot be dialled.
    #[error("{address:?} is not a Docker Engine address: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// Both `--host` and `--context` were given.
    #[error("conflicting options: cannot specify both --host and --context (as in docker); give one of them")]
    ConflictingOptions,

    /// No docker context has this name.
    #[error("{}", self.sentence(Place::CommandLine))]
    UnknownContext {
        /// The name asked for.
        name: String,
        /// Every context there is, `default` first.
        known: Vec<String>,
    },

    /// A context whose `meta.json` cannot be read or makes no sense.
    #[error(
        "the docker context {name:?} cannot be used: {}: {reason}; fix the file, or remove the context with \
         `docker context rm {name}`",
        file.display()
    )]
    ContextUnreadable {
        /// The context's name.
        name: String,
        /// Its `meta.json`.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A context name docker would refuse (the settings' pinned context).
    #[error("{0:?} is not a docker context name: use letters, digits, '_', '.', '+' or '-', starting with a letter or digit")]
    InvalidContextName(String),

    /// A TLS file that is needed and does not exist.
    #[error("{}", self.sentence(Place::CommandLine))]
    TlsFileMissing {
        /// Which file.
        what: TlsFile,
        /// Where it should be.
        path: PathBuf,
    },

    /// A TLS file that is there but cannot be used (not PEM, or not what it should hold).
    #[error("the TLS {what} {} cannot be used: {reason}", path.display())]
    TlsFileInvalid {
        /// Which file.
        what: TlsFile,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// TLS could not be set up or spoken, in a sentence of its own.
    #[error("{0}")]
    Tls(String),

    /// The engine's certificate does not verify against the trusted CAs.
    #[error(
        "the Docker Engine at {host} presented a certificate that does not verify against {}: {problem}. \
         Check that DOCKER_CERT_PATH (or the context's TLS files) belong to this engine",
        trusted(ca)
    )]
    TlsUntrusted {
        /// The engine's address.
        host: String,
        /// The CA file trusted; `None` for the system's trusted CAs.
        ca: Option<PathBuf>,
        /// Why the certificate does not verify.
        problem: String,
    },

    /// The engine ended our TLS handshake with an alert, usually for want of a client certificate.
    #[error(
        "the Docker Engine at {host} refused our TLS connection ({alert}): it wants a client certificate it trusts; \
         put cert.pem and key.pem beside ca.pem (in DOCKER_CERT_PATH, or the context's TLS files)"
    )]
    TlsRefused {
        /// The engine's address.
        host: String,
        /// The TLS alert it sent.
        alert: String,
    },

    /// ssh to an `ssh://` engine failed.
    #[error("ssh to {host} failed ({status}): {last_line}")]
    Ssh {
        /// The engine's address.
        host: String,
        /// How ssh ended ("exit status 255").
        status: String,
        /// ssh's last line on stderr: the explanation.
        last_line: String,
    },

    /// The `ssh` command is not installed.
    #[error(
        "the ssh command was not found; install OpenSSH's client (for example `sudo apt-get install openssh-client`) \
         to reach ssh:// engines"
    )]
    SshMissing,
}

/// Why an engine did not answer as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    /// Nothing listens at the address; `elsewhere` are the engines that answer on well-known sockets.
    NothingListens {
        /// Each engine found, with how to select it.
        elsewhere: Vec<Elsewhere>,
    },
    /// The socket is there and refuses this user.
    PermissionDenied,
    /// A TLS server answered plain HTTP.
    SpeaksTls,
    /// Something answered, not as a Docker Engine.
    NotAnEngine(String),
    /// No answer within the patience, in seconds.
    Silent(u64),
}

/// An engine that answers on a well-known socket other than the one tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elsewhere {
    /// What it is ("Docker Desktop").
    pub what: &'static str,
    /// Its socket.
    pub socket: PathBuf,
    /// How the user selects it.
    pub select: Remedy,
}

impl Unreachable {
    /// What went wrong and the way out, in `place`'s terms.
    pub fn sentence(&self, place: Place) -> String {
        match self {
            Unreachable::NothingListens { elsewhere } => {
                let mut sentence = format!(
                    "nothing is listening there. Start Docker (for example `sudo systemctl start docker`, or open \
                     Docker Desktop), or {}, then try again.",
                    Remedy::ChooseEngine.words(place)
                );
                for engine in elsewhere {
                    sentence += &format!(
                        " {} answers at unix://{}: to use it, {}.",
                        engine.what,
                        engine.socket.display(),
                        engine.select.words(place)
                    );
                }
                sentence
            }
            Unreachable::PermissionDenied => "permission denied. Add your user to the `docker` group (then log in \
                                              again) or run with sufficient rights."
                .into(),
            Unreachable::SpeaksTls => "it speaks TLS. Set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH (or use a \
                                       context that holds its TLS files), then try again."
                .into(),
            Unreachable::NotAnEngine(answer) => {
                format!(
                    "it did not answer as a Docker Engine ({answer}). Check the address and that Docker is running."
                )
            }
            Unreachable::Silent(seconds) => {
                format!(
                    "it did not answer within {seconds}s; check that Docker is running and healthy, then try again."
                )
            }
        }
    }
}

impl EngineError {
    /// The sentence for `place`, its way out in that place's terms.
    pub fn sentence(&self, place: Place) -> String {
        match self {
            EngineError::Unreachable { host, context, reason } => {
                format!("Cannot reach the Docker Engine at {host} ({context}): {}", reason.sentence(place))
            }
            EngineError::UnknownContext { name, known } => format!(
                "there is no docker context named {name:?}; the contexts are: {}. {}",
                known.join(", "),
                Remedy::ChooseContext.words(place)
            ),
            EngineError::TlsFileMissing { what, path } => format!(
                "the TLS {what} {} does not exist; put the engine's {} there, or {}",
                path.display(),
                file_name(path),
                Remedy::PointAtTlsFile { flag: what.flag() }.words(place)
            ),
            other => other.to_string(),
        }
    }

    /// The engine could not be found or reached; a context name the settings cannot hold is only
    /// a bad setting.
    pub fn is_unavailable(&self) -> bool {
        !matches!(self, EngineError::InvalidContextName(_))
    }

    /// The settings field this error is about.
    pub fn settings_field(&self) -> Option<&'static str> {
        matches!(self, EngineError::InvalidContextName(_)).then_some("context")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_that_does_not_answer_is_told_with_the_way_to_another_in_each_place() {
        let error = EngineError::Unreachable {
            host: "unix:///var/run/docker.sock".into(),
            context: "context \"default\"".into(),
            reason: Unreachable::NothingListens {
                elsewhere: vec![Elsewhere {
                    what: "Docker Desktop",
                    socket: "/home/u/.docker/desktop/docker.sock".into(),
                    select: Remedy::UseContext("desktop-linux".into()),
                }],
            },
        };
        assert_eq!(
            error.to_string(),
            "Cannot reach the Docker Engine at unix:///var/run/docker.sock (context \"default\"): nothing is listening \
             there. Start Docker (for example `sudo systemctl start docker`, or open Docker Desktop), or choose another \
             engine (--context, -H, DOCKER_HOST or `docker context use`), then try again. Docker Desktop answers at \
             unix:///home/u/.docker/desktop/docker.sock: to use it, run `docker context use desktop-linux` or pass \
             --context desktop-linux."
        );
        assert_eq!(
            error.sentence(Place::App),
            "Cannot reach the Docker Engine at unix:///var/run/docker.sock (context \"default\"): nothing is listening \
             there. Start Docker (for example `sudo systemctl start docker`, or open Docker Desktop), or choose another \
             engine (in Settings, or with `docker context use`), then try again. Docker Desktop answers at \
             unix:///home/u/.docker/desktop/docker.sock: to use it, choose it in Settings, or run `docker context use \
             desktop-linux`."
        );
        let missing = EngineError::TlsFileMissing { what: TlsFile::Ca, path: "/certs/ca.pem".into() };
        assert_eq!(
            missing.to_string(),
            "the TLS CA certificate /certs/ca.pem does not exist; put the engine's ca.pem there, or point \
             DOCKER_CERT_PATH (or --tlscacert) at the right file"
        );
        assert!(!missing.sentence(Place::App).contains("--"), "{}", missing.sentence(Place::App));
    }
}
