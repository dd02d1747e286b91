//! `logs`: the backend's output, as `docker logs` gives it.
use bollard::{container::LogOutput, query_parameters::LogsOptionsBuilder};
use futures_util::{Stream, StreamExt};

use crate::{
    backend::{Backend, Presence},
    error::{Error, Result},
};

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// Lines from the end; `None` for all.
    pub tail: Option<u64>,
    pub timestamps: bool,
}

/// One chunk of output, tagged with the stream it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogChunk {
    Stdout(bytes::Bytes),
    Stderr(bytes::Bytes),
}

impl Backend {
    /// The backend's logs. Works on a stopped-but-present backend too, like `docker logs`.
    pub async fn logs(&self, options: &LogOptions) -> Result<impl Stream<Item = Result<LogChunk>> + use<>> {
        let id = match self.presence().await? {
            Presence::Ours(container) => container.id,
            Presence::Foreign => return Err(Error::ForeignContainer { name: self.names.backend() }),
            Presence::Absent => return Err(Error::NotRunning),
        };
        let tail = options.tail.map(|n| n.to_string()).unwrap_or_else(|| "all".to_string());
        let query = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(options.follow)
            .timestamps(options.timestamps)
            .tail(&tail)
            .build();
        let action = format!("reading the logs of {}", self.names.backend());
        Ok(self.docker.logs(&id, Some(query)).filter_map(move |item| {
            let action = action.clone();
            async move {
                match item {
                    Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => Some(Ok(LogChunk::Stdout(message))),
                    Ok(LogOutput::StdErr { message }) => Some(Ok(LogChunk::Stderr(message))),
                    Ok(LogOutput::StdIn { .. }) => None,
                    Err(err) => Some(Err(Error::docker(action)(err))),
                }
            }
        }))
    }
}
