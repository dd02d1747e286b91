//! The engine's API, as the back asks it over the socket mounted into it: who am I (the proof that
//! the socket is the engine this container runs on), an image by name or ID, an image's export
//! (`docker save`), and image events. Nothing else is ever asked.
use std::io::{self, BufRead, BufReader, Read};

use crate::{
    http::{percent_encode, Client, Response},
    json::{self, Value},
};

/// The most a JSON answer may hold.
const MAX_JSON: u64 = 16 * 1024 * 1024;

/// An image as the engine describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `sha256:…`: the config's digest (the classic store), or the manifest's (containerd's).
    pub id: String,
    pub repo_tags: Vec<String>,
    /// The uncompressed layers' digests, base first.
    pub diff_ids: Vec<String>,
}

/// Why the engine could not answer.
#[derive(Debug)]
pub enum Failure {
    /// The socket does not answer (the engine stopped, or went away).
    Unreachable(io::Error),
    /// It answered with an error status and message.
    Refused { status: u16, message: String },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(err) => write!(f, "its API does not answer ({err})"),
            Failure::Refused { status, message } => write!(f, "it answered {status}: {message}"),
        }
    }
}

pub struct Engine {
    client: Client,
}

impl Engine {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    fn get(&self, path: &str) -> Result<Response, Failure> {
        self.client.get(path).map_err(Failure::Unreachable)
    }

    /// The answer's JSON, `None` for a 404, a [`Failure::Refused`] for any other error.
    fn json(&self, path: &str) -> Result<Option<Value>, Failure> {
        let response = self.get(path)?;
        let status = response.status;
        let body = response.read_all(MAX_JSON).map_err(Failure::Unreachable)?;
        match status {
            200 => json::parse(&body)
                .map(Some)
                .map_err(|e| Failure::Refused { status, message: format!("an answer that is not JSON ({e})") }),
            404 => Ok(None),
            _ => Err(Failure::Refused { status, message: engine_message(&body) }),
        }
    }

    /// Proves the socket is the engine this container runs on: the container named `name` there
    /// has this container's hostname as the start of its ID. Returns the engine's name and version.
    pub fn check_is_mine(&self, name: &str, hostname: &str) -> Result<String, String> {
        let mine = self.json(&format!("/containers/{name}/json")).map_err(|f| format!("the engine's socket {f}"))?;
        let id = mine.as_ref().and_then(|c| c.get("Id")).and_then(Value::as_str).unwrap_or_default();
        if hostname.len() < 12 || !id.starts_with(hostname) {
            return Err(format!(
                "the socket mounted into this container belongs to another engine (it has no container {name} whose ID starts with {hostname})"
            ));
        }
        let info = self.json("/info").ok().flatten();
        let text = |key: &str| info.as_ref().and_then(|i| i.get(key)).and_then(Value::as_str).unwrap_or("").to_string();
        Ok(format!("{} ({} {})", text("Name"), text("OperatingSystem"), text("ServerVersion")))
    }

    /// The image `reference` (a name, or an ID), or `None` when the engine has no such image.
    pub fn image(&self, reference: &str) -> Result<Option<Image>, Failure> {
        let Some(value) = self.json(&format!("/images/{reference}/json"))? else { return Ok(None) };
        let id = value.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
        if id.is_empty() {
            return Err(Failure::Refused { status: 200, message: "an image without an ID".into() });
        }
        Ok(Some(Image {
            id,
            repo_tags: value.strings("RepoTags"),
            diff_ids: value.get("RootFS").map(|r| r.strings("Layers")).unwrap_or_default(),
        }))
    }

    /// The image's export, as `docker save` gets it.
    pub fn export(&self, id: &str) -> Result<Box<dyn Read + Send>, Failure> {
        let response = self.client.patient().get(&format!("/images/{id}/get")).map_err(Failure::Unreachable)?;
        if response.status != 200 {
            let status = response.status;
            let body = response.read_all(MAX_JSON).unwrap_or_default();
            return Err(Failure::Refused { status, message: engine_message(&body) });
        }
        Ok(response.body)
    }

    /// The engine's image events, one JSON object a line, for as long as it runs.
    pub fn image_events(&self) -> Result<impl BufRead, Failure> {
        let filters = percent_encode(r#"{"type":["image"]}"#);
        let response =
            self.client.patient().get(&format!("/events?filters={filters}")).map_err(Failure::Unreachable)?;
        if response.status != 200 {
            let status = response.status;
            return Err(Failure::Refused {
                status,
                message: engine_message(&response.read_all(MAX_JSON).unwrap_or_default()),
            });
        }
        Ok(BufReader::new(response.body))
    }
}

/// The engine's `{"message": …}`, else its text.
fn engine_message(body: &[u8]) -> String {
    json::parse(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_error_message_is_read() {
        assert_eq!(engine_message(br#"{"message":"No such image: x:1"}"#), "No such image: x:1");
        assert_eq!(engine_message(b"plain words\n"), "plain words");
    }
}
