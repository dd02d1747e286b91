//! The front: a registry's read-only face, listening only inside the backend's network namespace
//! (BuildKit names it as the mirror of docker.io and of the registries the settings list). It holds
//! nothing: no engine, no capability, no file but the store's socket. It reads registry requests,
//! turns the few it answers (`GET`/`HEAD` of `/v2/`, a manifest, a blob) into one checked line for
//! the back, and relays the back's answer. Everything else is refused here: pushes, deletions,
//! catalogs, tag lists, any other path.
use std::{
    io::{self, BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use crate::{
    answer::{error, AnswerHead, Code},
    grammar::{is_digest, is_registry_host, is_repository_name, Ask, Range, Reference, Request},
    http::{read_request_head, reason, HeadError, RequestHead},
};

/// What the front prints once it listens (the core waits for it).
pub const READY: &str = "assemble-mirror: front listening on";

/// How long a client may sit between requests, and how long a request head may take.
const IDLE: Duration = Duration::from_secs(60);
/// How long the back may take to answer: the first question about an image waits for its export.
const BACK_PATIENCE: Duration = Duration::from_secs(30 * 60);
/// Relay buffer: a layer moves in pieces this large.
const BUFFER: usize = 256 * 1024;

#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub socket: PathBuf,
    pub max_connections: usize,
}

pub fn serve(config: &Config) -> io::Result<()> {
    let listener = TcpListener::bind(config.listen)?;
    println!("{READY} {} (read-only; at most {} connections at once)", config.listen, config.max_connections);
    let active = Arc::new(AtomicUsize::new(0));
    let mut last_refusal: Option<Instant> = None;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= config.max_connections {
            active.fetch_sub(1, Ordering::SeqCst);
            if last_refusal.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                eprintln!(
                    "assemble-mirror: refused a connection: {} are open, the most allowed",
                    config.max_connections
                );
                last_refusal = Some(Instant::now());
            }
            continue;
        }
        let guard = Slot(active.clone());
        let socket = config.socket.clone();
        let spawned = thread::Builder::new().stack_size(256 * 1024).spawn(move || {
            let _slot = guard;
            connection(stream, &socket);
        });
        if let Err(err) = spawned {
            // The slot was moved into the closure that never ran, and given back as it dropped.
            eprintln!("assemble-mirror: no thread for a connection ({err}); it is closed");
        }
    }
    Ok(())
}

/// A connection's place under the cap, given back when it drops.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn connection(stream: TcpStream, socket: &Path) {
    let _ = stream.set_read_timeout(Some(IDLE));
    let _ = stream.set_write_timeout(Some(IDLE));
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let head = match read_request_head(&mut reader) {
            Ok(Some(head)) => head,
            Ok(None) | Err(HeadError::Gone) => return,
            Err(HeadError::Bad(why)) => {
                let (answer, body) = error(400, Code::Unsupported, &format!("not a registry request: {why}"));
                let _ = write_head(&mut writer, &answer, true, false).and_then(|()| writer.write_all(&body));
                return;
            }
        };
        let keep = match answer(&head, &mut writer, socket) {
            Ok(keep) => keep,
            Err(_) => return,
        };
        // A request with a body (a push) is never read: the connection cannot be used again.
        if !keep || head.close || head.has_body {
            return;
        }
    }
}

/// Which question `head` asks, or the refusal it gets here.
pub fn route(head: &RequestHead) -> Result<Request, (u16, Code, String)> {
    let only_reads = "this registry is read-only: it serves the engine's own images to builds, and takes no pushes \
                      or deletions";
    let method_head = match head.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => return Err((405, Code::Unsupported, only_reads.to_string())),
    };
    if head.has_body {
        return Err((405, Code::Unsupported, only_reads.to_string()));
    }
    if head.path == "/v2" || head.path == "/v2/" {
        return Ok(Request { head: method_head, ask: Ask::Ping });
    }
    let not_here = || {
        (
            404,
            Code::NameUnknown,
            "not served here: this mirror answers only a manifest or a blob of an image asked for by name".to_string(),
        )
    };
    let rest = head.path.strip_prefix("/v2/").ok_or_else(not_here)?;
    let (before, last) = rest.rsplit_once('/').ok_or_else(not_here)?;
    let registry = head.query.iter().find(|(k, _)| k == "ns").map(|(_, v)| v.as_str());
    let registry = match registry {
        Some(ns) if is_registry_host(ns) => ns.to_string(),
        _ => {
            return Err((
                404,
                Code::NameUnknown,
                "not served here: this mirror answers only as a mirror, for the registry BuildKit names (ns)"
                    .to_string(),
            ))
        }
    };
    if let Some(name) = before.strip_suffix("/manifests") {
        let reference = Reference::parse(last).filter(|_| is_repository_name(name)).ok_or_else(not_here)?;
        return Ok(Request { head: method_head, ask: Ask::Manifest { registry, name: name.to_string(), reference } });
    }
    if let Some(name) = before.strip_suffix("/blobs") {
        if !is_repository_name(name) || !is_digest(last) {
            return Err(not_here());
        }
        let range = match &head.range {
            None => None,
            Some(value) => Some(Range::parse_header(value).ok_or((
                416,
                Code::Unsupported,
                format!("a range this mirror does not serve: {value}"),
            ))?),
        };
        return Ok(Request {
            head: method_head,
            ask: Ask::Blob { registry, name: name.to_string(), digest: last.to_string(), range },
        });
    }
    Err(not_here())
}

/// Answers one request; false when the connection must close (a body cut short).
fn answer(head: &RequestHead, writer: &mut TcpStream, socket: &Path) -> io::Result<bool> {
    let request = match route(head) {
        Ok(request) => request,
        Err((status, code, message)) => {
            let (answer, body) = error(status, code, &message);
            let is_head = head.method == "HEAD";
            write_head(writer, &answer, head.close || head.has_body, false)?;
            if !is_head {
                writer.write_all(&body)?;
            }
            return Ok(true);
        }
    };
    let blob = matches!(request.ask, Ask::Blob { .. });
    let mut back = match ask_back(socket, &request) {
        Ok(back) => back,
        Err(err) => {
            let (answer, body) = error(
                503,
                Code::Unknown,
                &format!(
                    "the store of the engine's images does not answer ({err}); the image is looked for in its registry"
                ),
            );
            write_head(writer, &answer, head.close, false)?;
            if !request.head {
                writer.write_all(&body)?;
            }
            return Ok(true);
        }
    };
    let answer = match AnswerHead::read_from(&mut back) {
        Ok(answer) => answer,
        Err(err) => {
            let (answer, body) = error(502, Code::Unknown, &format!("the store's answer could not be read ({err})"));
            write_head(writer, &answer, head.close, false)?;
            if !request.head {
                writer.write_all(&body)?;
            }
            return Ok(true);
        }
    };
    write_head(writer, &answer, head.close, blob)?;
    if request.head {
        return Ok(true);
    }
    Ok(relay_body(&mut back, writer, answer.length)? == answer.length)
}

fn ask_back(socket: &Path, request: &Request) -> io::Result<BufReader<UnixStream>> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(BACK_PATIENCE))?;
    stream.set_write_timeout(Some(IDLE))?;
    stream.write_all(request.line().as_bytes())?;
    Ok(BufReader::with_capacity(BUFFER, stream))
}

fn write_head(writer: &mut impl Write, answer: &AnswerHead, close: bool, ranges: bool) -> io::Result<()> {
    let mut text = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nDocker-Distribution-Api-Version: registry/2.0\r\n",
        answer.status,
        reason(answer.status),
        answer.content_type,
        answer.length
    );
    if let Some(digest) = &answer.digest {
        text.push_str(&format!("Docker-Content-Digest: {digest}\r\n"));
    }
    if ranges {
        text.push_str("Accept-Ranges: bytes\r\n");
    }
    if let Some((first, last, total)) = answer.range {
        text.push_str(&format!("Content-Range: bytes {first}-{last}/{total}\r\n"));
    }
    if close {
        text.push_str("Connection: close\r\n");
    }
    text.push_str("\r\n");
    writer.write_all(text.as_bytes())
}

/// Copies `length` bytes of body; returns how many arrived.
fn relay_body(back: &mut BufReader<UnixStream>, writer: &mut impl Write, length: u64) -> io::Result<u64> {
    let mut left = length;
    while left > 0 {
        let buffer = back.fill_buf()?;
        if buffer.is_empty() {
            break;
        }
        let n = buffer.len().min(left.min(usize::MAX as u64) as usize);
        writer.write_all(&buffer[..n])?;
        back.consume(n);
        left -= n as u64;
    }
    Ok(length - left)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn head(method: &str, target: &str) -> RequestHead {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        RequestHead {
            method: method.into(),
            path: path.into(),
            query: query
                .split('&')
                .filter(|q| !q.is_empty())
                .map(|q| {
                    let (k, v) = q.split_once('=').unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect(),
            range: None,
            close: false,
            has_body: false,
        }
    }

    #[test]
    fn manifests_and_blobs_asked_by_name_go_to_the_back() {
        let manifest = route(&head("HEAD", "/v2/library/base/manifests/dev?ns=docker.io")).unwrap();
        assert_eq!(manifest.line(), "mirror/1 HEAD manifest docker.io library/base dev -\n");
        let mut ranged = head("GET", &format!("/v2/team/app/blobs/{DIGEST}?ns=localhost:5000"));
        ranged.range = Some("bytes=100-".into());
        assert_eq!(
            route(&ranged).unwrap().line(),
            format!("mirror/1 GET blob localhost:5000 team/app {DIGEST} 100-\n")
        );
        assert_eq!(route(&head("GET", "/v2/")).unwrap().ask, Ask::Ping);
    }

    #[test]
    fn pushes_deletions_listings_and_strangers_are_refused_here() {
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            let refused = route(&head(method, "/v2/x/blobs/uploads/?ns=docker.io")).unwrap_err();
            assert_eq!(refused.0, 405, "{method}");
            assert!(refused.2.contains("read-only"), "{}", refused.2);
        }
        let mut with_body = head("GET", "/v2/x/manifests/dev?ns=docker.io");
        with_body.has_body = true;
        assert_eq!(route(&with_body).unwrap_err().0, 405);
        for path in [
            "/v2/_catalog?ns=docker.io",
            "/v2/library/base/tags/list?ns=docker.io",
            "/v2/library/base/manifests/dev",
            "/v2/library/base/manifests/dev?ns=bad%20host",
            "/v2/Library/base/manifests/dev?ns=docker.io",
            "/v2/library/base/blobs/dev?ns=docker.io",
            "/v2/library/../base/manifests/dev?ns=docker.io",
            "/v1/search?ns=docker.io",
            "/",
        ] {
            let refused = route(&head("GET", path)).unwrap_err();
            assert_eq!(refused.0, 404, "{path}");
        }
        let mut bad_range = head("GET", &format!("/v2/x/blobs/{DIGEST}?ns=docker.io"));
        bad_range.range = Some("bytes=-5".into());
        assert_eq!(route(&bad_range).unwrap_err().0, 416);
    }
}
