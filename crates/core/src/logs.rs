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

impl LogOptions {
    /// `--tail` as `docker logs` takes it: a number of lines, or `all`.
    pub fn parse_tail(value: Option<&str>) -> Result<Option<u64>> {
        match value.map(str::trim) {
            None | Some("all") => Ok(None),
            Some(n) => n.parse().map(Some).map_err(|_| Error::InvalidTail(n.to_string())),
        }
    }
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
                    Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                        Some(Ok(LogChunk::Stdout(message)))
                    }
                    Ok(LogOutput::StdErr { message }) => Some(Ok(LogChunk::Stderr(message))),
                    Ok(LogOutput::StdIn { .. }) => None,
                    Err(err) => Some(Err(Error::docker(action)(err))),
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_takes_numbers_and_all() {
        assert_eq!(LogOptions::parse_tail(None).unwrap(), None);
        assert_eq!(LogOptions::parse_tail(Some("all")).unwrap(), None);
        assert_eq!(LogOptions::parse_tail(Some("20")).unwrap(), Some(20));
        assert!(matches!(LogOptions::parse_tail(Some("x")), Err(Error::InvalidTail(_))));
        assert!(matches!(LogOptions::parse_tail(Some("-1")), Err(Error::InvalidTail(_))));
    }
}
