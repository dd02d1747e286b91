//! Which engine to talk to, decided as the docker CLI decides it (docker/cli `resolveContextName`):
//! `--context`, then `-H`, then a context pinned in our settings, then a non-empty `DOCKER_HOST`,
//! then `DOCKER_CONTEXT`, then `currentContext` in `config.json`, then `default`. A pinned context
//! is our `--context` written down, so it ranks with the flag, just after it.
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{EngineError, TlsFile};
use super::{
    address::Address,
    store::{ConfigDir, DEFAULT_CONTEXT},
};
use crate::Result;

/// The process environment, as far as engine resolution reads it. Taken once, so resolution is a
/// function of its inputs (and the files they name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `$DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// `$DOCKER_CONTEXT`.
    pub docker_context: Option<String>,
    /// `$DOCKER_CONFIG`.
    pub docker_config: Option<PathBuf>,
    /// `$DOCKER_CERT_PATH`.
    pub docker_cert_path: Option<PathBuf>,
    /// `$DOCKER_TLS_VERIFY`: any non-empty value turns it on, as in docker.
    pub docker_tls_verify: bool,
    /// `$DOCKER_TLS`: any non-empty value turns it on.
    pub docker_tls: bool,
    /// `$HOME`.
    pub home: Option<PathBuf>,
}

impl Environment {
    /// Reads the variables from this process. Empty values count as unset.
    pub fn from_process() -> Self {
        let text = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let path = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Self {
            docker_host: text("DOCKER_HOST"),
            docker_context: text("DOCKER_CONTEXT"),
            docker_config: path("DOCKER_CONFIG"),
            docker_cert_path: path("DOCKER_CERT_PATH"),
            docker_tls_verify: text("DOCKER_TLS_VERIFY").is_some(),
            docker_tls: text("DOCKER_TLS").is_some(),
            home: path("HOME"),
        }
    }

    /// The docker config folder: `--config`, else `$DOCKER_CONFIG`, else `~/.docker`.
    pub fn config_dir(&self, flag: Option<&Path>) -> ConfigDir {
        let path = flag
            .map(Path::to_path_buf)
            .or_else(|| self.docker_config.clone())
            .or_else(|| self.home.as_ref().map(|home| home.join(".docker")))
            .unwrap_or_else(|| PathBuf::from(".docker"));
        ConfigDir::new(path)
    }
}

/// The engine options a user gave us: docker's global flags, and the context pinned in our settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineChoice {
    /// `--context NAME`.
    pub context: Option<String>,
    /// `-H HOST`.
    pub host: Option<String>,
    /// The settings' context, when the user pinned one instead of following docker.
    pub pinned_context: Option<String>,
    /// `--config DIR`.
    pub config_dir: Option<PathBuf>,
    /// `--tls`.
    pub tls: bool,
    /// `--tlsverify`.
    pub tls_verify: bool,
    /// `--tlscacert FILE`.
    pub tls_ca: Option<PathBuf>,
    /// `--tlscert FILE`.
    pub tls_cert: Option<PathBuf>,
    /// `--tlskey FILE`.
    pub tls_key: Option<PathBuf>,
}

impl EngineChoice {
    /// The engine at `host`, as `-H HOST` would choose it.
    pub fn host(host: impl Into<String>) -> Self {
        Self { host: Some(host.into()), ..Self::default() }
    }

    /// The context `name`, as `--context NAME` would choose it.
    pub fn context(name: impl Into<String>) -> Self {
        Self { context: Some(name.into()), ..Self::default() }
    }
}

/// Why this engine was chosen, for messages that say where to change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// `--context`.
    ContextFlag,
    /// `-H`.
    HostFlag,
    /// The context pinned in our settings.
    Pinned,
    /// `$DOCKER_HOST`.
    DockerHost,
    /// `$DOCKER_CONTEXT`.
    DockerContext,
    /// `currentContext` in docker's `config.json` (`docker context use`).
    CurrentContext,
    /// Nothing chose: the local socket.
    Default,
}

impl Origin {
    /// How a sentence names it: "chosen by …".
    pub fn describe(self) -> &'static str {
        match self {
            Origin::ContextFlag => "--context",
            Origin::HostFlag => "-H",
            Origin::Pinned => "the context pinned in the settings",
            Origin::DockerHost => "DOCKER_HOST",
            Origin::DockerContext => "DOCKER_CONTEXT",
            Origin::CurrentContext => "docker's current context",
            Origin::Default => "the default",
        }
    }
}

/// TLS for a TCP engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsFiles {
    /// The CA that signs the engine's certificate; without one, the system's roots.
    pub ca: Option<PathBuf>,
    /// Our client certificate and its key, when there are both.
    pub client: Option<(PathBuf, PathBuf)>,
    /// Check the engine's certificate (false: `SkipTLSVerify`, or `--tls` without `--tlsverify`).
    pub verify: bool,
}

/// A resolved engine: where it is, how to reach it, and which context named it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The context's name (`default` for `-H`, `DOCKER_HOST` and the local socket).
    pub context: String,
    /// The address.
    pub address: Address,
    /// TLS settings, for TCP addresses that use TLS.
    pub tls: Option<TlsFiles>,
    /// Why this engine.
    pub origin: Origin,
    /// Something the user should know (an unusable `config.json`), said once, as docker says it.
    pub warning: Option<String>,
    /// The docker config folder it was resolved from (for naming other contexts in messages).
    pub config: ConfigDir,
}

impl Endpoint {
    /// The address as docker prints it (`unix:///var/run/docker.sock`, `tcp://host:2376`).
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// What names this engine in per-engine state (locks, memos, kept channels).
    pub fn key(&self) -> String {
        self.host()
    }

    /// [`Endpoint::key`] as a short, stable file-name part.
    pub fn file_key(&self) -> String {
        format!("{:016x}", fnv1a(&self.key()))
    }

    /// Whether `other` reaches the same engine the same way (the origin and warnings aside).
    pub fn same_target(&self, other: &Endpoint) -> bool {
        self.context == other.context && self.address == other.address && self.tls == other.tls
    }

    /// How the UI and `info` show it.
    pub fn view(&self) -> EngineView {
        EngineView { context: self.context.clone(), host: self.host(), tls: self.tls.is_some() }
    }

    /// "context desktop-linux (unix:///…)", for sentences.
    pub fn describe(&self) -> String {
        format!("context {:?} ({})", self.context, self.host())
    }
}

/// The engine as `info`, the panel and the tray show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineView {
    /// The context's name.
    pub context: String,
    /// Its address.
    pub host: String,
    /// Reached over TLS.
    pub tls: bool,
}

/// Resolves `choice` against `env` and docker's files.
pub fn resolve(choice: &EngineChoice, env: &Environment) -> Result<Endpoint> {
    if choice.context.is_some() && choice.host.is_some() {
        return Err(EngineError::ConflictingOptions.into());
    }
    let config = env.config_dir(choice.config_dir.as_deref());
    let mut warning = None;
    let (name, origin) = if let Some(name) = &choice.context {
        (name.clone(), Origin::ContextFlag)
    } else if choice.host.is_some() {
        (DEFAULT_CONTEXT.to_string(), Origin::HostFlag)
    } else if let Some(name) = &choice.pinned_context {
        (name.clone(), Origin::Pinned)
    } else if env.docker_host.is_some() {
        (DEFAULT_CONTEXT.to_string(), Origin::DockerHost)
    } else if let Some(name) = &env.docker_context {
        (name.clone(), Origin::DockerContext)
    } else {
        let current = config.current_context();
        warning = current.warning.map(|w| format!("{w}; using the default engine, as docker does"));
        match current.name {
            Some(name) => (name, Origin::CurrentContext),
            None => (DEFAULT_CONTEXT.to_string(), Origin::Default),
        }
    };
    let mut endpoint = if name == DEFAULT_CONTEXT {
        default_endpoint(choice, env, &config, origin)?
    } else {
        stored_endpoint(&config, &name, origin)?
    };
    endpoint.warning = warning;
    endpoint.config = config;
    Ok(endpoint)
}

/// The `default` context: `-H`, else `$DOCKER_HOST`, else the local socket; TLS from the flags and
/// `DOCKER_TLS_VERIFY`/`DOCKER_TLS`, with files from `--tlscacert…` or `DOCKER_CERT_PATH`.
fn default_endpoint(choice: &EngineChoice, env: &Environment, config: &ConfigDir, origin: Origin) -> Result<Endpoint> {
    let verify = choice.tls_verify || env.docker_tls_verify;
    let tls_on = verify || choice.tls || env.docker_tls;
    let host = choice.host.as_deref().or(env.docker_host.as_deref()).unwrap_or("");
    let address = Address::parse(host, tls_on)?;
    let tls = if tls_on && !address.is_socket() && !matches!(address, Address::Ssh(_)) {
        let cert_dir = env.docker_cert_path.clone().unwrap_or_else(|| config.path().to_path_buf());
        // As docker: the CA must exist (even without verification); the client pair is used
        // when both files are there.
        let ca = choice.tls_ca.clone().unwrap_or_else(|| cert_dir.join("ca.pem"));
        require_file(&ca, TlsFile::Ca)?;
        let cert = choice.tls_cert.clone().unwrap_or_else(|| cert_dir.join("cert.pem"));
        let key = choice.tls_key.clone().unwrap_or_else(|| cert_dir.join("key.pem"));
        if choice.tls_cert.is_some() {
            require_file(&cert, TlsFile::ClientCertificate)?;
        }
        if choice.tls_key.is_some() {
            require_file(&key, TlsFile::ClientKey)?;
        }
        let client = (cert.is_file() && key.is_file()).then_some((cert, key));
        Some(TlsFiles { ca: Some(ca), client, verify })
    } else {
        None
    };
    Ok(Endpoint { context: DEFAULT_CONTEXT.to_string(), address, tls, origin, warning: None, config: config.clone() })
}

/// A context from the store, with its own TLS files (TLS when it has any, or skips verification).
fn stored_endpoint(config: &ConfigDir, name: &str, origin: Origin) -> Result<Endpoint> {
    let context = config.context(name)?;
    let address = Address::parse(&context.host, false).map_err(|err| EngineError::ContextUnreadable {
        name: name.to_string(),
        file: config.path().join("contexts").join("meta").join(super::store::context_id(name)).join("meta.json"),
        reason: err.to_string(),
    })?;
    let tls = match &address {
        Address::Tcp { .. } => {
            let file = |f: &str| Some(context.tls_dir.join(f)).filter(|p| p.is_file());
            let (ca, cert, key) = (file("ca.pem"), file("cert.pem"), file("key.pem"));
            let any = ca.is_some() || cert.is_some() || key.is_some();
            (any || context.skip_tls_verify).then(|| TlsFiles {
                ca,
                client: cert.zip(key),
                verify: !context.skip_tls_verify,
            })
        }
        Address::Unix(_) | Address::Ssh(_) => None,
    };
    Ok(Endpoint { context: context.name, address, tls, origin, warning: None, config: config.clone() })
}

/// A context as the settings window lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextEntry {
    /// The context's name.
    pub name: String,
    /// Its address as docker prints it.
    pub host: String,
    /// Its description, as `docker context ls` shows it.
    pub description: String,
}

/// What the settings window offers: every context docker knows, and the engine docker itself would
/// use now (what "follow docker" means at this moment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextPicker {
    /// `default` first, then the store's contexts by name.
    pub contexts: Vec<ContextEntry>,
    /// The engine docker would use now, when it resolves.
    pub docker_uses: Option<EngineView>,
    /// What chose it ("docker's current context", "DOCKER_HOST", …); none when nothing did.
    pub docker_uses_by: Option<&'static str>,
    /// Why docker's choice does not resolve, as a sentence.
    pub docker_uses_error: Option<String>,
}

/// Lists the contexts and docker's own choice, for a picker.
pub fn context_picker(env: &Environment) -> ContextPicker {
    let config = env.config_dir(None);
    let default_host = default_endpoint(&EngineChoice::default(), env, &config, Origin::Default)
        .map(|e| e.host())
        .unwrap_or_else(|_| env.docker_host.clone().unwrap_or_default());
    let default = ContextEntry {
        name: DEFAULT_CONTEXT.to_string(),
        host: default_host,
        description: "Current DOCKER_HOST based configuration".to_string(),
    };
    let stored = config.contexts().into_iter().map(|c| ContextEntry {
        host: Address::parse(&c.host, false).map(|a| a.to_string()).unwrap_or(c.host),
        name: c.name,
        description: c.description,
    });
    let docker = resolve(&EngineChoice::default(), env);
    ContextPicker {
        contexts: std::iter::once(default).chain(stored).collect(),
        docker_uses_by: docker.as_ref().ok().filter(|e| e.origin != Origin::Default).map(|e| e.origin.describe()),
        docker_uses: docker.as_ref().ok().map(Endpoint::view),
        docker_uses_error: docker.err().map(|e| e.to_string()),
    }
}

/// A stable hash (std's `DefaultHasher` may change between Rust releases).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

fn require_file(path: &Path, what: TlsFile) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(EngineError::TlsFileMissing { what, path: path.to_path_buf() }.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::store::tests::Scratch;

    const DESKTOP: &str = r#"{"Name":"desktop-linux","Endpoints":{"docker":{"Host":"unix:///d/docker.sock"}}}"#;

    fn env(scratch: &Scratch) -> Environment {
        Environment { docker_config: Some(scratch.0.clone()), ..Environment::default() }
    }

    fn chosen(choice: &EngineChoice, env: &Environment) -> (String, String, Origin) {
        let endpoint = resolve(choice, env).unwrap();
        (endpoint.context.clone(), endpoint.host(), endpoint.origin)
    }

    #[test]
    fn the_picker_lists_default_first_and_says_what_docker_uses() {
        let scratch = Scratch::new("picker");
        scratch.write_meta("desktop-linux", DESKTOP);
        scratch.write_meta(
            "remote",
            r#"{"Name":"remote","Metadata":{"Description":"far"},"Endpoints":{"docker":{"Host":"tcp://far:2376"}}}"#,
        );
        scratch.write_config(r#"{"currentContext":"desktop-linux"}"#);
        let picker = context_picker(&env(&scratch));
        let names: Vec<_> = picker.contexts.iter().map(|c| (c.name.as_str(), c.host.as_str())).collect();
        assert_eq!(
            names,
            [
                ("default", "unix:///var/run/docker.sock"),
                ("desktop-linux", "unix:///d/docker.sock"),
                ("remote", "tcp://far:2376")
            ]
        );
        assert_eq!(picker.contexts[2].description, "far");
        assert_eq!(picker.docker_uses.as_ref().map(|v| v.context.as_str()), Some("desktop-linux"));
        assert_eq!(picker.docker_uses_by, Some("docker's current context"));

        scratch.write_config(r#"{"currentContext":"gone"}"#);
        let picker = context_picker(&env(&scratch));
        assert_eq!(picker.docker_uses, None);
        let error = picker.docker_uses_error.unwrap_or_default();
        assert!(error.contains("gone") && error.contains("desktop-linux"), "{error}");
    }

    #[test]
    fn precedence_is_dockers() {
        let scratch = Scratch::new("precedence");
        scratch.write_meta("desktop-linux", DESKTOP);
        scratch.write_meta("other", r#"{"Name":"other","Endpoints":{"docker":{"Host":"unix:///o.sock"}}}"#);
        let base = env(&scratch);
        let none = EngineChoice::default();
        assert_eq!(chosen(&none, &base), ("default".into(), "unix:///var/run/docker.sock".into(), Origin::Default));

        scratch.write_config(r#"{"currentContext":"desktop-linux"}"#);
        assert_eq!(
            chosen(&none, &base),
            ("desktop-linux".into(), "unix:///d/docker.sock".into(), Origin::CurrentContext)
        );

        let with_context = Environment { docker_context: Some("default".into()), ..base.clone() };
        assert_eq!(chosen(&none, &with_context).2, Origin::DockerContext);
        assert_eq!(chosen(&none, &with_context).1, "unix:///var/run/docker.sock");

        let with_host = Environment { docker_host: Some("tcp://h:1".into()), ..with_context.clone() };
        assert_eq!(chosen(&none, &with_host), ("default".into(), "tcp://h:1".into(), Origin::DockerHost));

        let pinned = EngineChoice { pinned_context: Some("other".into()), ..EngineChoice::default() };
        assert_eq!(chosen(&pinned, &with_host), ("other".into(), "unix:///o.sock".into(), Origin::Pinned));

        let host_flag = EngineChoice { host: Some("unix:///flag.sock".into()), ..pinned.clone() };
        assert_eq!(chosen(&host_flag, &with_host), ("default".into(), "unix:///flag.sock".into(), Origin::HostFlag));

        let context_flag = EngineChoice { context: Some("desktop-linux".into()), ..pinned };
        assert_eq!(chosen(&context_flag, &with_host).2, Origin::ContextFlag);
        // --context default still takes its host from DOCKER_HOST, as in docker.
        assert_eq!(chosen(&EngineChoice::context("default"), &with_host).1, "tcp://h:1");
    }

    #[test]
    fn file_keys_are_stable_and_tell_engines_apart() {
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        let local = resolve(&EngineChoice::default(), &Environment::default()).unwrap();
        let remote = resolve(&EngineChoice::host("tcp://10.0.0.2:2375"), &Environment::default()).unwrap();
        assert_eq!(local.file_key(), format!("{:016x}", fnv1a("unix:///var/run/docker.sock")));
        assert_ne!(local.file_key(), remote.file_key());
    }

    #[test]
    fn context_and_host_together_are_refused() {
        let choice =
            EngineChoice { context: Some("x".into()), host: Some("tcp://h".into()), ..EngineChoice::default() };
        let err = resolve(&choice, &Environment::default()).unwrap_err();
        assert!(err.to_string().contains("cannot specify both --host and --context"), "{err}");
    }

    #[test]
    fn an_unusable_config_file_falls_back_with_a_warning() {
        let scratch = Scratch::new("badconfig");
        scratch.write_config("{nope");
        let endpoint = resolve(&EngineChoice::default(), &env(&scratch)).unwrap();
        assert_eq!(endpoint.host(), "unix:///var/run/docker.sock");
        assert!(endpoint.warning.unwrap().contains("not valid JSON"));
    }

    #[test]
    fn default_tls_comes_from_the_environment_and_names_missing_files() {
        let scratch = Scratch::new("tlsenv");
        let certs = scratch.0.join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        let tls_env = Environment {
            docker_host: Some("tcp://127.0.0.1:2376".into()),
            docker_tls_verify: true,
            docker_cert_path: Some(certs.clone()),
            ..env(&scratch)
        };
        let err = resolve(&EngineChoice::default(), &tls_env).unwrap_err();
        assert_eq!(err.to_string(), format!(
            "the TLS CA certificate {} does not exist; put the engine's ca.pem there, or point DOCKER_CERT_PATH (or --tlscacert) at the right file",
            certs.join("ca.pem").display()
        ));
        std::fs::write(certs.join("ca.pem"), "x").unwrap();
        let tls = resolve(&EngineChoice::default(), &tls_env).unwrap().tls.unwrap();
        assert_eq!((tls.ca, tls.client, tls.verify), (Some(certs.join("ca.pem")), None, true));
        std::fs::write(certs.join("cert.pem"), "x").unwrap();
        std::fs::write(certs.join("key.pem"), "x").unwrap();
        let tls = resolve(&EngineChoice::default(), &tls_env).unwrap().tls.unwrap();
        assert_eq!(tls.client, Some((certs.join("cert.pem"), certs.join("key.pem"))));
        // DOCKER_TLS alone: TLS without checking the engine's certificate.
        let unverified = Environment { docker_tls_verify: false, docker_tls: true, ..tls_env.clone() };
        assert!(!resolve(&EngineChoice::default(), &unverified).unwrap().tls.unwrap().verify);
        // TLS never applies to a socket.
        let socket = Environment { docker_host: Some("unix:///x.sock".into()), ..tls_env };
        assert_eq!(resolve(&EngineChoice::default(), &socket).unwrap().tls, None);
    }

    #[test]
    fn a_context_uses_its_own_tls_files() {
        let scratch = Scratch::new("tlsctx");
        scratch.write_meta("remote", r#"{"Name":"remote","Endpoints":{"docker":{"Host":"tcp://r:2376"}}}"#);
        let plain = resolve(&EngineChoice::context("remote"), &env(&scratch)).unwrap();
        assert_eq!(plain.tls, None);
        let tls_dir = scratch.0.join("contexts/tls").join(crate::engine::store::context_id("remote")).join("docker");
        std::fs::create_dir_all(&tls_dir).unwrap();
        for file in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(tls_dir.join(file), "x").unwrap();
        }
        let tls = resolve(&EngineChoice::context("remote"), &env(&scratch)).unwrap().tls.unwrap();
        assert!(tls.verify);
        assert_eq!(tls.ca, Some(tls_dir.join("ca.pem")));
        scratch.write_meta(
            "insecure",
            r#"{"Name":"insecure","Endpoints":{"docker":{"Host":"tcp://i:2376","SkipTLSVerify":true}}}"#,
        );
        let tls = resolve(&EngineChoice::context("insecure"), &env(&scratch)).unwrap().tls.unwrap();
        assert_eq!((tls.ca, tls.verify), (None, false));
    }

    #[test]
    fn a_context_with_a_bad_host_names_its_file() {
        let scratch = Scratch::new("badhost");
        scratch.write_meta("bad", r#"{"Name":"bad","Endpoints":{"docker":{"Host":"http://x"}}}"#);
        let message = resolve(&EngineChoice::context("bad"), &env(&scratch)).unwrap_err().to_string();
        assert!(message.contains("meta.json") && message.contains("http://"), "{message}");
    }
}
