//! The docker CLI's own files, read as the docker CLI reads them: the config folder
//! (`--config`, `$DOCKER_CONFIG`, `~/.docker`), `currentContext` in its `config.json`, and the
//! context store (`contexts/meta/<sha256 of the name>/meta.json`, TLS files under
//! `contexts/tls/<sha256>/docker/`). Go matches JSON keys to its fields case-insensitively, so
//! we do too; map keys (the endpoint name `docker`) stay exact.
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::error::EngineError;
use crate::{Error, Result};

/// The context that is not in the store: the local engine, `-H` or `$DOCKER_HOST`.
pub const DEFAULT_CONTEXT: &str = "default";

/// A docker config folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfigDir {
    path: PathBuf,
}

/// What `config.json` says about the current context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentContext {
    /// `currentContext`, when set.
    pub name: Option<String>,
    /// Set when `config.json` could not be used; docker then warns and goes on with defaults.
    pub warning: Option<String>,
}

/// A context from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContext {
    /// The context's name.
    pub name: String,
    /// Its description, as `docker context ls` shows it.
    pub description: String,
    /// `Endpoints.docker.Host`; empty means the local socket.
    pub host: String,
    /// `Endpoints.docker.SkipTLSVerify`.
    pub skip_tls_verify: bool,
    /// Where its TLS files are (they may not exist).
    pub tls_dir: PathBuf,
}

impl ConfigDir {
    /// A config folder at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `config.json` in the folder.
    pub fn config_file(&self) -> PathBuf {
        self.path.join("config.json")
    }

    /// Reads `currentContext`. A missing file is no context; an unreadable or invalid one is a
    /// warning, as docker treats it.
    pub fn current_context(&self) -> CurrentContext {
        let file = self.config_file();
        let text = match std::fs::read(&file) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return CurrentContext::default(),
            Err(err) => return warning(format!("{} could not be read ({err})", file.display())),
        };
        let value: Value = match serde_json::from_slice(&text) {
            Ok(value) => value,
            Err(err) => return warning(format!("{} is not valid JSON ({err})", file.display())),
        };
        let Some(object) = value.as_object() else {
            return warning(format!("{} is not a JSON object", file.display()));
        };
        match field(object, "currentContext") {
            None | Some(Value::Null) => CurrentContext::default(),
            Some(Value::String(name)) => {
                CurrentContext { name: Some(name.clone()).filter(|n| !n.is_empty()), warning: None }
            }
            Some(_) => warning(format!("currentContext in {} is not a string", file.display())),
        }
    }

    /// The context named `name`, from the store.
    pub fn context(&self, name: &str) -> Result<StoredContext> {
        let file = self.meta_dir(name).join("meta.json");
        let text = match std::fs::read(&file) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(EngineError::UnknownContext { name: name.to_string(), known: self.context_names() }.into())
            }
            Err(err) => return Err(unreadable(name, &file, format!("it could not be read ({err})"))),
        };
        self.parse_meta(name, &file, &text)
    }

    /// Every readable context in the store, by name; `default` is not among them.
    pub fn contexts(&self) -> Vec<StoredContext> {
        let Ok(entries) = std::fs::read_dir(self.path.join("contexts").join("meta")) else { return Vec::new() };
        let mut contexts: Vec<StoredContext> = entries
            .flatten()
            .filter_map(|entry| {
                let file = entry.path().join("meta.json");
                let text = std::fs::read(&file).ok()?;
                let name = serde_json::from_slice::<Value>(&text)
                    .ok()?
                    .as_object()
                    .and_then(|o| field(o, "Name"))?
                    .as_str()?
                    .to_string();
                // A folder that is not the hash of the name inside it is not found by docker either.
                (context_id(&name) == entry.file_name().to_string_lossy()).then_some(())?;
                self.parse_meta(&name, &file, &text).ok()
            })
            .collect();
        contexts.sort_by(|a, b| a.name.cmp(&b.name));
        contexts
    }

    /// `default` and the names in the store, for messages and pickers.
    pub fn context_names(&self) -> Vec<String> {
        std::iter::once(DEFAULT_CONTEXT.to_string()).chain(self.contexts().into_iter().map(|c| c.name)).collect()
    }

    fn meta_dir(&self, name: &str) -> PathBuf {
        self.path.join("contexts").join("meta").join(context_id(name))
    }

    fn tls_dir(&self, name: &str) -> PathBuf {
        self.path.join("contexts").join("tls").join(context_id(name)).join("docker")
    }

    fn parse_meta(&self, name: &str, file: &Path, text: &[u8]) -> Result<StoredContext> {
        let value: Value = serde_json::from_slice(text)
            .map_err(|err| unreadable(name, file, format!("it is not valid JSON ({err})")))?;
        let object = value.as_object().ok_or_else(|| unreadable(name, file, "it is not a JSON object".into()))?;
        let description = match field(object, "Metadata") {
            Some(Value::Object(metadata)) => field(metadata, "Description").and_then(Value::as_str).unwrap_or(""),
            _ => "",
        };
        let endpoints = match field(object, "Endpoints") {
            Some(Value::Object(endpoints)) => endpoints,
            Some(Value::Null) | None => return Err(unreadable(name, file, "it has no docker endpoint".into())),
            Some(_) => return Err(unreadable(name, file, "its Endpoints is not a JSON object".into())),
        };
        let docker = match endpoints.get("docker") {
            Some(Value::Object(docker)) => docker,
            None | Some(Value::Null) => return Err(unreadable(name, file, "it has no docker endpoint".into())),
            Some(_) => return Err(unreadable(name, file, "its docker endpoint is not a JSON object".into())),
        };
        let host = match field(docker, "Host") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(host)) => host.clone(),
            Some(_) => return Err(unreadable(name, file, "its docker Host is not a string".into())),
        };
        let skip_tls_verify = match field(docker, "SkipTLSVerify") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(skip)) => *skip,
            Some(_) => return Err(unreadable(name, file, "its SkipTLSVerify is not true or false".into())),
        };
        Ok(StoredContext {
            name: name.to_string(),
            description: description.to_string(),
            host,
            skip_tls_verify,
            tls_dir: self.tls_dir(name),
        })
    }
}

/// The store's folder name for a context: the hex SHA-256 of its name.
pub fn context_id(name: &str) -> String {
    Sha256::digest(name.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Docker's rule for context names (`docker context create` refuses anything else).
pub fn is_valid_context_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'))
}

/// A field of a Go struct as `encoding/json` finds it: the exact key first, else any key equal
/// under case folding.
fn field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).or_else(|| {
        let folded = key.to_lowercase();
        object.iter().find(|(k, _)| k.to_lowercase() == folded).map(|(_, v)| v)
    })
}

fn warning(text: String) -> CurrentContext {
    CurrentContext { name: None, warning: Some(text) }
}

fn unreadable(name: &str, file: &Path, reason: String) -> Error {
    EngineError::ContextUnreadable { name: name.to_string(), file: file.to_path_buf(), reason }.into()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A config folder of its own under the temp dir, removed when dropped.
    pub(crate) struct Scratch(pub PathBuf);

    impl Scratch {
        pub(crate) fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("assemble-store-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        pub(crate) fn config(&self) -> ConfigDir {
            ConfigDir::new(&self.0)
        }

        pub(crate) fn write_meta(&self, name: &str, json: &str) {
            let dir = self.0.join("contexts/meta").join(context_id(name));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("meta.json"), json).unwrap();
        }

        pub(crate) fn write_config(&self, json: &str) {
            std::fs::write(self.0.join("config.json"), json).unwrap();
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn context_folders_are_the_sha256_of_the_name() {
        // `printf default | sha256sum`, and docker's own folder for desktop-linux.
        assert_eq!(context_id("default"), "37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f");
        assert_eq!(context_id("desktop-linux"), "fe9c6bd7a66301f49ca9b6a70b217107cd1284598bfc254700c989b916da791e");
    }

    #[test]
    fn keys_match_whatever_their_case() {
        let scratch = Scratch::new("case");
        scratch.write_meta(
            "desktop-linux",
            r#"{"name":"desktop-linux","metadata":{"description":"Docker Desktop"},
                "endpoints":{"docker":{"HOST":"unix:///home/u/.docker/desktop/docker.sock","skiptlsverify":true}}}"#,
        );
        let context = scratch.config().context("desktop-linux").unwrap();
        assert_eq!(context.host, "unix:///home/u/.docker/desktop/docker.sock");
        assert!(context.skip_tls_verify);
        assert_eq!(context.description, "Docker Desktop");
        scratch.write_config(r#"{"auths":{},"CURRENTCONTEXT":"desktop-linux"}"#);
        assert_eq!(scratch.config().current_context().name.as_deref(), Some("desktop-linux"));
    }

    #[test]
    fn an_unknown_context_lists_the_known_ones() {
        let scratch = Scratch::new("unknown");
        scratch.write_meta("remote", r#"{"Name":"remote","Endpoints":{"docker":{"Host":"ssh://box"}}}"#);
        let err = scratch.config().context("nope").unwrap_err();
        assert_eq!(
            err.to_string(),
            "there is no docker context named \"nope\"; the contexts are: default, remote. \
             Choose one with --context NAME, or make one current with `docker context use NAME`"
        );
    }

    #[test]
    fn malformed_meta_files_are_sentences_never_panics() {
        let scratch = Scratch::new("malformed");
        let cases = [
            ("{ not json", "is not valid JSON"),
            ("[1,2]", "is not a JSON object"),
            (r#"{"Name":"x"}"#, "has no docker endpoint"),
            (r#"{"Name":"x","Endpoints":{"Docker":{"Host":"unix:///x"}}}"#, "has no docker endpoint"),
            (r#"{"Name":"x","Endpoints":{"docker":{"Host":5}}}"#, "Host is not a string"),
            (r#"{"Name":"x","Endpoints":{"docker":{"Host":"tcp://h","SkipTLSVerify":"yes"}}}"#, "SkipTLSVerify"),
            (r#"{"Name":"x","Endpoints":[]}"#, "Endpoints is not a JSON object"),
        ];
        for (json, words) in cases {
            scratch.write_meta("x", json);
            let message = scratch.config().context("x").unwrap_err().to_string();
            assert!(message.contains(words), "{json}: {message}");
            assert!(message.contains("meta.json"), "names the file: {message}");
        }
    }

    #[test]
    fn a_bad_config_file_is_a_warning_and_no_context() {
        let scratch = Scratch::new("config");
        assert_eq!(scratch.config().current_context(), CurrentContext::default());
        scratch.write_config("{");
        let current = scratch.config().current_context();
        assert_eq!(current.name, None);
        assert!(current.warning.unwrap().contains("not valid JSON"));
        scratch.write_config(r#"{"currentContext":7}"#);
        assert!(scratch.config().current_context().warning.unwrap().contains("not a string"));
        scratch.write_config(r#"{"currentContext":""}"#);
        assert_eq!(scratch.config().current_context(), CurrentContext::default());
    }

    #[test]
    fn listing_skips_what_docker_could_not_find() {
        let scratch = Scratch::new("list");
        scratch.write_meta("b", r#"{"Name":"b","Endpoints":{"docker":{"Host":"tcp://b:2376"}}}"#);
        scratch.write_meta("a", r#"{"Name":"a","Endpoints":{"docker":{"Host":"unix:///a.sock"}}}"#);
        scratch.write_meta("broken", "{");
        // A meta.json whose name does not hash to its folder.
        scratch.write_meta("c", r#"{"Name":"not-c","Endpoints":{"docker":{"Host":"tcp://c"}}}"#);
        assert_eq!(scratch.config().context_names(), ["default", "a", "b"]);
    }

    #[test]
    fn context_names_follow_docker() {
        assert!(is_valid_context_name("desktop-linux"));
        assert!(is_valid_context_name("my.ctx+1_x"));
        assert!(!is_valid_context_name("x"));
        assert!(!is_valid_context_name("-x"));
        assert!(!is_valid_context_name("a/b"));
    }
}
