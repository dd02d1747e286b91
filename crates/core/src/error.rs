//! Every failure the core reports, as a sentence that says what happened and what to do.
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

    #[error("--tail {0:?} is not a number of lines; give a whole number or \"all\"")]
    InvalidTail(String),

    #[error("the start was interrupted; everything it had created was removed")]
    Cancelled,

    #[error("the backend is not running; start it with `docker assemble backend start`")]
    NotRunning,

    #[error("the backend is running but BuildKit does not answer: {0}")]
    Buildkit(String),

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

impl Error {
    /// The settings field an error is about, so a form can show it next to that field.
    pub fn settings_field(&self) -> Option<&'static str> {
        match self {
            Error::InvalidPorts(_) => Some("ports"),
            Error::InvalidVolumeName(_) => Some("cache"),
            Error::EmptyImage => Some("image"),
            _ => None,
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
