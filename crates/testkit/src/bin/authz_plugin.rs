//! A tiny Docker authorization plugin, for the tests: a policy that refuses privileged containers.
//! It speaks the AuthZ plugin protocol (docs.docker.com "Access authorization plugin"): an HTTP
//! server on the unix socket `/run/docker/plugins/NAME.sock` that answers `/Plugin.Activate` with
//! `{"Implements":["authz"]}`, and `/AuthZPlugin.AuthZReq` and `/AuthZPlugin.AuthZRes` with
//! `{"Allow":…}`. It denies a container create whose body has `"Privileged":true` and allows
//! everything else. Each request it judges is appended to a log, one line each, so a test can tell
//! exactly what the engine was asked.
//!
//! Usage: assemble-test-authz NAME LOG_FILE   (runs until killed)
use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::{UnixListener, UnixStream},
    path::PathBuf,
    sync::{Arc, Mutex},
};

/// What the plugin says when it refuses, as a real policy would word it.
const REFUSAL: &str = "privileged containers are not allowed on this engine";

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(name), Some(log)) = (args.next(), args.next()) else {
        eprintln!("usage: assemble-test-authz NAME LOG_FILE");
        std::process::exit(2);
    };
    let dir = PathBuf::from("/run/docker/plugins");
    if let Err(err) = std::fs::create_dir_all(&dir) {
        eprintln!("assemble-test-authz: cannot make {}: {err}", dir.display());
        std::process::exit(1);
    }
    let socket = dir.join(format!("{name}.sock"));
    let _ = std::fs::remove_file(&socket);
    let listener = match UnixListener::bind(&socket) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("assemble-test-authz: cannot listen on {}: {err}", socket.display());
            std::process::exit(1);
        }
    };
    let log = Arc::new(Mutex::new(log));
    println!("assemble-test-authz: listening on {}", socket.display());
    for stream in listener.incoming().flatten() {
        let log = log.clone();
        std::thread::spawn(move || serve(stream, &log));
    }
}

/// Answers every request on one connection (the engine keeps it alive).
fn serve(stream: UnixStream, log: &Mutex<String>) {
    let Ok(writer) = stream.try_clone() else { return };
    let mut writer = writer;
    let mut reader = BufReader::new(stream);
    while let Some((path, body)) = read_request(&mut reader) {
        let reply = match path.as_str() {
            "/Plugin.Activate" => r#"{"Implements":["authz"]}"#.to_string(),
            "/AuthZPlugin.AuthZReq" => judge(&body, log),
            "/AuthZPlugin.AuthZRes" => r#"{"Allow":true}"#.to_string(),
            _ => r#"{"Err":"unknown call"}"#.to_string(),
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        if writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(reply.as_bytes())).is_err() {
            return;
        }
    }
}

/// One HTTP/1.1 request: its path and body (by Content-Length); `None` at the end of the stream.
fn read_request(reader: &mut impl BufRead) -> Option<(String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some((path, body))
}

/// The policy: a container create that asks for `"Privileged":true` is denied; all else allowed.
fn judge(body: &[u8], log: &Mutex<String>) -> String {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let method = request["RequestMethod"].as_str().unwrap_or_default();
    let uri = request["RequestUri"].as_str().unwrap_or_default();
    // Go encodes the []byte body as base64.
    let container = request["RequestBody"].as_str().map(base64).unwrap_or_default();
    let create = method == "POST" && uri.contains("/containers/create");
    let privileged = create
        && serde_json::from_slice::<serde_json::Value>(&container)
            .ok()
            .is_some_and(|c| c["HostConfig"]["Privileged"].as_bool() == Some(true));
    if create {
        let entry = format!("create privileged={privileged} {uri}\n");
        if let Ok(path) = log.lock() {
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&*path)
                .and_then(|mut file| file.write_all(entry.as_bytes()));
        }
    }
    if privileged {
        serde_json::json!({ "Allow": false, "Msg": REFUSAL }).to_string()
    } else {
        r#"{"Allow":true}"#.to_string()
    }
}

/// Standard base64, padding optional.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut bits, mut count) = (Vec::new(), 0u32, 0);
    for sextet in text.bytes().filter_map(value) {
        bits = (bits << 6) | u32::from(sextet);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_reads_what_go_writes() {
        assert_eq!(base64("eyJQcml2aWxlZ2VkIjp0cnVlfQ=="), br#"{"Privileged":true}"#);
        assert_eq!(base64(""), b"");
    }
}
