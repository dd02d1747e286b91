//! What goes wrong in asking for the backend's logs.

/// Log options that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// A `--tail` value that is neither a number nor `all`.
    #[error("--tail {0:?} is not a number of lines; give a whole number or \"all\"")]
    InvalidTail(String),
}
