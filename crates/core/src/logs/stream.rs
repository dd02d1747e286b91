//! `logs`: the backend's output, as `docker logs` gives it.
use bollard::{container::LogOutput, query_parameters::LogsOptionsBuilder, Docker};
use futures_util::{Stream, StreamExt};

use crate::{logs::error::LogsError, Error, Result};

/// What `logs` shows, as `docker logs` takes it.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Keep streaming new output (`--follow`).
    pub follow: bool,
    /// Lines from the end; `None` for all.
    pub tail: Option<u64>,
    /// Put the time before each line (`--timestamps`).
    pub timestamps: bool,
}

impl LogOptions {
    /// `--tail` as `docker logs` takes it: a number of lines, or `all`.
    pub fn parse_tail(value: Option<&str>) -> Result<Option<u64>> {
        match value.map(str::trim) {
            None | Some("all") => Ok(None),
            Some(n) => n.parse().map(Some).map_err(|_| LogsError::InvalidTail(n.to_string()).into()),
        }
    }
}

/// One chunk of output, tagged with the stream it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogChunk {
    /// From standard output, or the console of a container with a TTY.
    Stdout(bytes::Bytes),
    /// From standard error.
    Stderr(bytes::Bytes),
}

/// Splits the RFC 3339 timestamp `docker logs --timestamps` puts before a line from the line.
pub fn split_timestamp(line: &str) -> (Option<&str>, &str) {
    match line.split_once(' ') {
        Some((stamp, rest)) if stamp.len() >= 20 && stamp.as_bytes()[4] == b'-' && stamp.ends_with('Z') => {
            (Some(stamp), rest)
        }
        _ => (None, line),
    }
}

/// Splits output chunks into whole lines, per stream, so a line cut between two chunks is joined.
#[derive(Default)]
pub struct LineSplitter {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl LineSplitter {
    /// The complete lines in `chunk` (without their newline), marked `true` for stderr.
    pub fn push(&mut self, chunk: &LogChunk) -> Vec<(bool, String)> {
        let mut lines = Vec::new();
        self.each_line(chunk, |is_err, line| lines.push((is_err, line.to_string())));
        lines
    }

    /// Calls `line` with each complete line in `chunk` (without its newline or a `\r` before it),
    /// marked `true` for stderr, without a `String` per line: the engine sends a million lines as
    /// a million chunks, and the app's log store copies each line once.
    pub fn each_line(&mut self, chunk: &LogChunk, mut line: impl FnMut(bool, &str)) {
        let (is_err, pending, bytes) = match chunk {
            LogChunk::Stdout(b) => (false, &mut self.stdout, b),
            LogChunk::Stderr(b) => (true, &mut self.stderr, b),
        };
        // The common case, a chunk of whole lines and nothing pending, is read in place.
        let whole = pending.is_empty() && bytes.last() == Some(&b'\n');
        if !whole {
            pending.extend_from_slice(bytes);
        }
        let text: &[u8] = if whole { bytes } else { pending };
        let mut start = 0;
        while let Some(at) = text[start..].iter().position(|b| *b == b'\n') {
            let raw = &text[start..start + at];
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            line(is_err, &String::from_utf8_lossy(raw));
            start += at + 1;
        }
        if !whole {
            pending.drain(..start);
        }
    }

    /// What is left without a final newline, at the end of the stream.
    pub fn finish(&mut self) -> Vec<(bool, String)> {
        let mut rest = Vec::new();
        for (is_err, pending) in [(false, &mut self.stdout), (true, &mut self.stderr)] {
            if !pending.is_empty() {
                rest.push((is_err, String::from_utf8_lossy(pending).into_owned()));
                pending.clear();
            }
        }
        rest
    }
}

/// The logs of container `id` (the backend, named `backend_name` in errors), as `options` say.
pub fn read(
    docker: &Docker,
    id: &str,
    backend_name: &str,
    options: &LogOptions,
) -> impl Stream<Item = Result<LogChunk>> + use<> {
    let tail = options.tail.map(|n| n.to_string()).unwrap_or_else(|| "all".to_string());
    let query = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .follow(options.follow)
        .timestamps(options.timestamps)
        .tail(&tail)
        .build();
    let action = format!("reading the logs of {backend_name}");
    docker.logs(id, Some(query)).filter_map(move |item| {
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_cut_between_chunks_are_joined_per_stream() {
        let mut splitter = LineSplitter::default();
        let out = |s: &str| LogChunk::Stdout(bytes::Bytes::from(s.to_string()));
        let err = |s: &str| LogChunk::Stderr(bytes::Bytes::from(s.to_string()));
        assert_eq!(splitter.push(&out("one\ntw")), vec![(false, "one".to_string())]);
        assert_eq!(splitter.push(&err("e1\r\n")), vec![(true, "e1".to_string())]);
        assert_eq!(splitter.push(&out("o\nthree")), vec![(false, "two".to_string())]);
        assert_eq!(splitter.finish(), vec![(false, "three".to_string())]);
    }

    #[test]
    fn whole_lines_in_one_chunk_and_a_line_over_three_chunks() {
        let mut splitter = LineSplitter::default();
        let out = |s: &str| LogChunk::Stdout(bytes::Bytes::from(s.to_string()));
        let lines = |splitter: &mut LineSplitter, chunk| {
            let mut seen = Vec::new();
            splitter.each_line(&chunk, |is_err, line| seen.push((is_err, line.to_string())));
            seen
        };
        assert_eq!(
            lines(&mut splitter, out("a\nb\r\n\n")),
            [(false, "a".into()), (false, "b".into()), (false, "".into())]
        );
        assert_eq!(lines(&mut splitter, out("lo")), []);
        assert_eq!(lines(&mut splitter, out("ng")), []);
        assert_eq!(lines(&mut splitter, out(" line\nnext")), [(false, "long line".into())]);
        assert_eq!(splitter.finish(), vec![(false, "next".to_string())]);
        assert_eq!(splitter.finish(), vec![]);
    }

    #[test]
    fn timestamps_are_split_off() {
        assert_eq!(
            split_timestamp("2026-11-22T04:30:44.123456789Z hello world"),
            (Some("2026-11-22T04:30:44.123456789Z"), "hello world")
        );
        assert_eq!(split_timestamp("plain line"), (None, "plain line"));
    }

    #[test]
    fn tail_takes_numbers_and_all() {
        assert_eq!(LogOptions::parse_tail(None).unwrap(), None);
        assert_eq!(LogOptions::parse_tail(Some("all")).unwrap(), None);
        assert_eq!(LogOptions::parse_tail(Some("20")).unwrap(), Some(20));
        assert!(matches!(LogOptions::parse_tail(Some("x")), Err(Error::Logs(LogsError::InvalidTail(_)))));
        assert!(matches!(LogOptions::parse_tail(Some("-1")), Err(Error::Logs(LogsError::InvalidTail(_)))));
    }
}
