//! HTTP/1.1, as little of it as the mirror speaks: the front reads registry requests (no bodies)
//! and writes answers; the back asks the engine's API over its unix socket and reads answers whose
//! bodies come by length, in chunks, or until the connection closes.
use std::{
    io::{self, BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

/// The most a request's line and headers may take.
pub const MAX_HEAD: usize = 16 * 1024;

/// A request's line and the headers the front looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query's `key=value` pairs, percent-decoded.
    pub query: Vec<(String, String)>,
    pub range: Option<String>,
    /// The client asked to close after this answer (or spoke HTTP/1.0).
    pub close: bool,
    /// The request announces a body (a push, say): never read, the connection is closed after.
    pub has_body: bool,
}

/// Why a request head could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Not HTTP, or too large: answer 400 and close.
    Bad(&'static str),
    /// The connection ended or timed out: just close.
    Gone,
}

/// Reads one request head; `Ok(None)` when the client closed between requests.
pub fn read_request_head(reader: &mut impl BufRead) -> Result<Option<RequestHead>, HeadError> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        let n = Read::take(&mut *reader, (MAX_HEAD - total + 1) as u64)
            .read_until(b'\n', &mut line)
            .map_err(|_| HeadError::Gone)?;
        if n == 0 {
            return if lines.is_empty() { Ok(None) } else { Err(HeadError::Gone) };
        }
        total += n;
        if total > MAX_HEAD {
            return Err(HeadError::Bad("request head too large"));
        }
        if !line.ends_with(b"\n") {
            return Err(HeadError::Gone);
        }
        let text = String::from_utf8(line).map_err(|_| HeadError::Bad("request head is not text"))?;
        let text = text.trim_end_matches(['\r', '\n']).to_string();
        if text.is_empty() {
            if lines.is_empty() {
                continue; // a stray empty line between requests is allowed
            }
            break;
        }
        lines.push(text);
    }
    let mut words = lines[0].split(' ');
    let (Some(method), Some(target), Some(version), None) = (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(HeadError::Bad("malformed request line"));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(HeadError::Bad("unsupported HTTP version"));
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, query),
        None => (target, ""),
    };
    let mut head = RequestHead {
        method: method.to_string(),
        path: path.to_string(),
        query: parse_query(query).ok_or(HeadError::Bad("malformed query"))?,
        range: None,
        close: version == "HTTP/1.0",
        has_body: false,
    };
    for line in &lines[1..] {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HeadError::Bad("malformed header"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "range" => head.range = Some(value.to_string()),
            "connection" => head.close = value.eq_ignore_ascii_case("close"),
            "transfer-encoding" => head.has_body = true,
            "content-length" => head.has_body |= value != "0",
            _ => {}
        }
    }
    Ok(Some(head))
}

fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(key)?, percent_decode(value)?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes a query value (what the engine's `filters` parameter needs).
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

// ---- the back's client for the engine's API ----

/// An answer from the engine.
pub struct Response {
    pub status: u16,
    pub body: Box<dyn Read + Send>,
}

impl Response {
    /// The whole body, up to `limit` bytes.
    pub fn read_all(mut self, limit: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        (&mut self.body).take(limit + 1).read_to_end(&mut out)?;
        if out.len() as u64 > limit {
            return Err(io::Error::other(format!("an answer larger than {limit} bytes")));
        }
        Ok(out)
    }
}

/// The engine's API over its unix socket: one connection per request.
#[derive(Clone)]
pub struct Client {
    socket: PathBuf,
    /// How long a read may wait; exports and events are read without a limit.
    timeout: Option<Duration>,
}

impl Client {
    pub fn new(socket: &Path) -> Self {
        Self { socket: socket.to_path_buf(), timeout: Some(Duration::from_secs(60)) }
    }

    /// The same client, whose reads wait as long as the engine takes.
    pub fn patient(&self) -> Self {
        Self { socket: self.socket.clone(), timeout: None }
    }

    pub fn get(&self, path: &str) -> io::Result<Response> {
        let mut stream = UnixStream::connect(&self.socket)?;
        stream.set_read_timeout(self.timeout)?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: assemble-mirror\r\nConnection: close\r\n\r\n"
        )?;
        read_response(BufReader::with_capacity(256 * 1024, stream))
    }
}

/// Reads an answer's status and headers; the body follows as the headers say.
pub fn read_response<R: BufRead + Send + 'static>(mut reader: R) -> io::Result<Response> {
    let mut line = String::new();
    reader.by_ref().take(MAX_HEAD as u64).read_line(&mut line)?;
    let status =
        line.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("not an HTTP answer: {:?}", line.trim()))
        })?;
    let (mut length, mut chunked) = (None, false);
    let mut total = line.len();
    loop {
        let mut header = String::new();
        let n = reader.by_ref().take(MAX_HEAD as u64).read_line(&mut header)?;
        total += n;
        if n == 0 || total > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "an HTTP answer whose headers do not end"));
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse::<u64>().ok(),
                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                _ => {}
            }
        }
    }
    let body: Box<dyn Read + Send> = if chunked {
        Box::new(Chunked { inner: reader, left: 0, done: false })
    } else if let Some(length) = length {
        Box::new(reader.take(length))
    } else {
        Box::new(reader)
    };
    Ok(Response { status, body })
}

/// A chunked body (`Transfer-Encoding: chunked`), decoded.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.by_ref().take(1024).read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            self.left = u64::from_str_radix(size, 16).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, format!("a bad chunk size {:?}", line.trim()))
            })?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the answer ends inside a chunk"));
        }
        self.left -= n as u64;
        if self.left == 0 {
            let mut end = [0u8; 2];
            self.inner.read_exact(&mut end)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<RequestHead>, HeadError> {
        read_request_head(&mut BufReader::new(text.as_bytes()))
    }

    #[test]
    fn reads_a_registry_request() {
        let got = head(
            "HEAD /v2/library/base/manifests/dev?ns=localhost%3A5000 HTTP/1.1\r\nHost: x\r\nRange: bytes=5-\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(got.method, "HEAD");
        assert_eq!(got.path, "/v2/library/base/manifests/dev");
        assert_eq!(got.query, [("ns".to_string(), "localhost:5000".to_string())]);
        assert_eq!(got.range.as_deref(), Some("bytes=5-"));
        assert!(!got.close && !got.has_body);
        let push = head("POST /v2/x/blobs/uploads/ HTTP/1.1\r\nContent-Length: 10\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(push.has_body && push.close);
    }

    #[test]
    fn refuses_what_is_not_a_request() {
        assert_eq!(head(""), Ok(None));
        assert_eq!(head("GET /v2/\r\n\r\n"), Err(HeadError::Bad("malformed request line")));
        assert_eq!(head("GET /v2/ HTTP/2\r\n\r\n"), Err(HeadError::Bad("unsupported HTTP version")));
        assert_eq!(head("GET /v2/ HTTP/1.1\r\nNoColon\r\n\r\n"), Err(HeadError::Bad("malformed header")));
        assert_eq!(head("GET /v2/?ns=%zz HTTP/1.1\r\n\r\n"), Err(HeadError::Bad("malformed query")));
        let huge = format!("GET /v2/ HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(head(&huge), Err(HeadError::Bad("request head too large")));
        assert_eq!(head("GET /v2/ HTTP/1.1\r\nHost: x"), Err(HeadError::Gone));
    }

    #[test]
    fn bodies_by_length_in_chunks_or_to_the_end() {
        let answer = |text: &'static str| read_response(BufReader::new(text.as_bytes())).unwrap();
        let by_length = answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA");
        assert_eq!((by_length.status, by_length.read_all(100).unwrap()), (200, b"hello".to_vec()));
        let chunked =
            answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n");
        assert_eq!(chunked.read_all(100).unwrap(), b"hello world");
        let to_end = answer("HTTP/1.0 404 Not Found\r\n\r\nno such image");
        assert_eq!((to_end.status, to_end.read_all(100).unwrap()), (404, b"no such image".to_vec()));
        assert!(answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").read_all(3).is_err(), "over the limit");
        assert!(read_response(BufReader::new(&b"garbage\r\n\r\n"[..])).is_err());
    }

    #[test]
    fn filters_are_encoded_for_a_query() {
        assert_eq!(percent_encode(r#"{"type":["image"]}"#), "%7B%22type%22%3A%5B%22image%22%5D%7D");
        assert_eq!(percent_decode(&percent_encode("a b:/\"é")).as_deref(), Some("a b:/\"é"));
    }
}
