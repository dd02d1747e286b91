//! Registry credentials from the docker config (`config.json`), as docker and buildx find them: a
//! credential helper for the host (`credHelpers`), else the config's store (`credsStore`), else the
//! `auths` entry. A host with none of them is reached anonymously.
use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use base64::Engine as _;
use serde::Deserialize;

/// Docker Hub's key in `config.json`, for the hosts BuildKit names it by.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The credentials a config folder gives, read once per build.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    config: ConfigFile,
    /// Where `docker-credential-*` helpers are looked for besides `PATH` (for tests).
    helper_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

impl Credentials {
    /// Reads `config.json` in `config_dir`. A missing or unreadable file means no credentials (docker
    /// warns about an unreadable one when it resolves the engine, from the same file).
    pub fn from_config_dir(config_dir: &Path) -> Self {
        let config = std::fs::read(config_dir.join("config.json"))
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok())
            .unwrap_or_default();
        Self { config, helper_dir: None }
    }

    /// Looks for credential helpers in `dir` first.
    pub fn with_helper_dir(mut self, dir: PathBuf) -> Self {
        self.helper_dir = Some(dir);
        self
    }

    /// `(username, secret)` for a registry host as BuildKit names it (`localhost:5000`,
    /// `registry-1.docker.io`); `None` for anonymous access.
    pub fn for_host(&self, host: &str) -> Option<(String, String)> {
        let key = config_key(host);
        if let Some(helper) = self.config.cred_helpers.get(&key).or_else(|| self.config.cred_helpers.get(host)) {
            return self.ask_helper(helper, &key);
        }
        if let Some(store) = &self.config.creds_store {
            if let Some(found) = self.ask_helper(store, &key) {
                return Some(found);
            }
        }
        let entry = self.config.auths.iter().find(|(k, _)| normalize(k) == normalize(&key)).map(|(_, v)| v)?;
        if let Some(token) = entry.identity_token.as_ref().filter(|t| !t.is_empty()) {
            // An identity token goes as the secret with an empty user, as docker passes it on.
            return Some((String::new(), token.clone()));
        }
        if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
            return Some((user.clone(), password.clone()));
        }
        let decoded = base64::engine::general_purpose::STANDARD.decode(entry.auth.as_deref()?.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        Some((user.to_string(), password.to_string()))
    }

    /// Runs `docker-credential-NAME get`; `None` when it is missing or knows nothing of the host.
    fn ask_helper(&self, name: &str, key: &str) -> Option<(String, String)> {
        let program = format!("docker-credential-{name}");
        let path = self.helper_dir.as_ref().map(|d| d.join(&program)).filter(|p| p.is_file());
        let mut child = Command::new(path.unwrap_or_else(|| PathBuf::from(&program)))
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(key.as_bytes()).ok()?;
        let output = child.wait_with_output().ok()?;
        if !output.status.success() {
            return None;
        }
        let answer: HelperAnswer = serde_json::from_slice(&output.stdout).ok()?;
        Some((answer.username, answer.secret))
    }
}

/// The key docker files a host's credentials under.
fn config_key(host: &str) -> String {
    match host {
        "registry-1.docker.io" | "docker.io" | "index.docker.io" => DOCKER_HUB_KEY.to_string(),
        other => other.to_string(),
    }
}

/// A key without its scheme and path (`https://localhost:5000/v2/` → `localhost:5000`), as docker
/// compares them.
fn normalize(key: &str) -> String {
    if key == DOCKER_HUB_KEY {
        return key.to_string();
    }
    let without_scheme = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    without_scheme.split('/').next().unwrap_or(without_scheme).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_config(json: &str) -> (Credentials, PathBuf) {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("assemble-auth-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), json).unwrap();
        (Credentials::from_config_dir(&dir).with_helper_dir(dir.clone()), dir)
    }

    #[test]
    fn auths_give_user_and_password_by_host() {
        let (creds, dir) = with_config(
            r#"{"auths":{"localhost:5000":{"auth":"YWxpY2U6czNjcmV0"},"https://index.docker.io/v1/":{"username":"bob","password":"pw"},"https://reg.example:443/v2/":{"identitytoken":"tok"}}}"#,
        );
        assert_eq!(creds.for_host("localhost:5000"), Some(("alice".into(), "s3cret".into())));
        assert_eq!(creds.for_host("registry-1.docker.io"), Some(("bob".into(), "pw".into())));
        assert_eq!(creds.for_host("reg.example:443"), Some((String::new(), "tok".into())));
        assert_eq!(creds.for_host("localhost:5001"), None, "anonymous elsewhere");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_credential_helper_is_asked_for_its_host() {
        use std::os::unix::fs::PermissionsExt;
        let (creds, dir) =
            with_config(r#"{"credHelpers":{"localhost:5000":"test"},"auths":{"localhost:5000":{"auth":"eDp5"}}}"#);
        let helper = dir.join("docker-credential-test");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread host\n[ \"$1\" = get ] && [ \"$host\" = localhost:5000 ] && echo '{\"Username\":\"helped\",\"Secret\":\"h-secret\"}'\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(creds.for_host("localhost:5000"), Some(("helped".into(), "h-secret".into())));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn no_config_means_anonymous() {
        let creds = Credentials::from_config_dir(Path::new("/nonexistent/assemble"));
        assert_eq!(creds.for_host("localhost:5000"), None);
    }
}
