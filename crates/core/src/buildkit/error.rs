//! What goes wrong in talking to BuildKit and in what we send it (the context, its ignore file,
//! prune's filters), each worded once; the way out is a [`Remedy`], worded by the place that
//! shows it.
use crate::error::{Place, Remedy};

/// BuildKit cannot be reached, refuses a call, or cannot be given what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BuildkitError {
    /// A platform neither the backend's kernel nor one of its emulators runs.
    #[error(
        "the backend cannot build for {platform}: it builds for {native} natively, and for {emulated} through its \
         emulators"
    )]
    UnsupportedPlatform {
        /// The platform asked for.
        platform: String,
        /// What it builds for natively, for the sentence.
        native: String,
        /// What its emulators run ("none").
        emulated: String,
    },

    /// BuildKit could not be reached: the exec stream or the HTTP/2 connection failed.
    #[error("the backend is running but BuildKit does not answer: {0}")]
    Unreachable(String),

    /// BuildKit answered, and refused or failed the call; `code` is its gRPC status.
    #[error("BuildKit could not {call}: {message} (gRPC status {code:?})")]
    Status {
        /// What we asked for, as a verb phrase ("list its workers").
        call: &'static str,
        /// BuildKit's gRPC status code.
        code: tonic::Code,
        /// BuildKit's message.
        message: String,
        /// The call failed in transit (the connection broke), not in BuildKit.
        transport: bool,
    },

    /// A purge that broke off after BuildKit had removed some records: not run again by itself.
    #[error(
        "the purge stopped after removing {removed} cache entries ({freed}): {cause}; run it again to remove the rest"
    )]
    PurgeInterrupted {
        /// Records removed before the break.
        removed: usize,
        /// Their size, as docker prints sizes.
        freed: String,
        /// What broke it.
        cause: Box<BuildkitError>,
    },

    /// A build ref BuildKit does not know.
    #[error("{}", self.sentence(Place::CommandLine))]
    UnknownBuild(String),

    /// A cache filter we do not know.
    #[error(
        "{filter:?} is not a cache filter; use until=DURATION (such as 24h) or type=TYPE, where TYPE is one of {types}"
    )]
    InvalidCacheFilter {
        /// The filter as typed.
        filter: String,
        /// The record types BuildKit knows, for the sentence.
        types: String,
    },

    /// A `.dockerignore` line Docker would refuse.
    #[error("line {line} of {file}, {pattern:?}: {reason}; fix or remove that line")]
    InvalidIgnorePattern {
        /// The ignore file.
        file: String,
        /// Its number, from 1.
        line: usize,
        /// The line as written (trimmed).
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A file or folder in the context whose name BuildKit's transfer cannot carry.
    #[error(
        "{} has a name that is not UTF-8, which BuildKit's file transfer cannot carry; rename it, or leave it \
         out with a line in .dockerignore",
        path.display()
    )]
    ContextNameNotUtf8 {
        /// The entry.
        path: std::path::PathBuf,
    },
}

impl BuildkitError {
    /// The sentence for `place`, its way out in that place's terms.
    pub fn sentence(&self, place: Place) -> String {
        match self {
            BuildkitError::UnknownBuild(reference) => {
                format!("there is no build {reference:?} on the backend; {}", Remedy::ListBuilds.words(place))
            }
            other => other.to_string(),
        }
    }

    /// A failure in reaching BuildKit, where trying again over a new connection may succeed; a
    /// refusal by BuildKit itself is final (retrying a failed purge would run it twice).
    pub fn is_transport(&self) -> bool {
        match self {
            BuildkitError::Unreachable(_) => true,
            BuildkitError::Status { transport, .. } => *transport,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_broken_connection_to_buildkit_is_worth_a_new_one() {
        let refused = BuildkitError::Status {
            call: "purge its cache",
            code: tonic::Code::Internal,
            message: "boom".into(),
            transport: false,
        };
        assert!(!refused.is_transport());
        assert_eq!(refused.to_string(), "BuildKit could not purge its cache: boom (gRPC status Internal)");
        assert!(BuildkitError::Unreachable("the exec stream was detached".into()).is_transport());
        // A purge that removed some records before the break is not run again.
        let interrupted = BuildkitError::PurgeInterrupted {
            removed: 3,
            freed: "2.5MB".into(),
            cause: Box::new(BuildkitError::Unreachable("connection reset".into())),
        };
        assert!(!interrupted.is_transport());
        assert_eq!(
            interrupted.to_string(),
            "the purge stopped after removing 3 cache entries (2.5MB): the backend is running but BuildKit does not \
             answer: connection reset; run it again to remove the rest"
        );
    }
}
