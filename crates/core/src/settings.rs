//! The settings file: the wish for the next start, shared by the app and the CLI (flags win).
//! `$ASSEMBLE_CONFIG_DIR/settings.json`, else `$XDG_CONFIG_HOME/assemble-backend/settings.json`,
//! else `~/.config/assemble-backend/settings.json`. Saving applies what can change live
//! ([`save_and_apply`]).
use std::path::{Path, PathBuf};

pub use crate::backend::request::{add_port, CacheSetting, Settings};
use crate::{
    backend::{
        error::BackendError,
        sidecars::record::{PortChange, PortEdit},
        Backend,
    },
    ports::PortSet,
    Error, Result,
};

/// Overrides the folder of the settings file (the tests use it).
pub const CONFIG_DIR_ENV: &str = "ASSEMBLE_CONFIG_DIR";
const FILE_NAME: &str = "settings.json";

/// Settings as loaded, with what the user must be told about the file.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The settings in use: the file's, or the defaults when it was missing or not usable.
    pub settings: Settings,
    /// Set when the file was unreadable or invalid: it was moved aside and defaults are in use.
    pub warning: Option<String>,
}

/// Where the settings file is.
pub fn path() -> PathBuf {
    config_dir().join(FILE_NAME)
}

fn config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("assemble-backend")
}

/// Loads the settings; a missing file gives defaults, a bad one is moved aside (never deleted).
pub fn load() -> Loaded {
    load_from(&path())
}

/// [`load`], from `file`.
pub fn load_from(file: &Path) -> Loaded {
    let text = match std::fs::read(file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Loaded { settings: Settings::default(), warning: None }
        }
        Err(err) => {
            return Loaded {
                settings: Settings::default(),
                warning: Some(format!("Could not read {}: {err}. Using the default settings.", file.display())),
            }
        }
    };
    let problem = match serde_json::from_slice::<Settings>(&text) {
        Ok(settings) => match settings.validate() {
            Ok(()) => return Loaded { settings, warning: None },
            Err(err) => err.to_string(),
        },
        Err(err) => format!("it is not valid settings JSON ({err})"),
    };
    let aside = set_aside(file);
    let kept = match &aside {
        Ok(path) => format!("The file was kept as {}.", path.display()),
        Err(err) => format!("It could not be moved aside ({err}) and was left as it is."),
    };
    Loaded {
        settings: Settings::default(),
        warning: Some(format!(
            "The settings file {} was not used: {problem}. {kept} Using the default settings.",
            file.display()
        )),
    }
}

fn set_aside(file: &Path) -> std::io::Result<PathBuf> {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let aside = file.with_extension(format!("json.bad-{stamp}"));
    std::fs::rename(file, &aside)?;
    Ok(aside)
}

/// Validates, then writes atomically (a temporary file renamed over the old one).
pub fn save(settings: &Settings) -> Result<PathBuf> {
    save_to(&path(), settings)
}

/// What saving the settings did to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The running backend proxies the saved ports now: the same container and cache, no restart.
    PortsLive(PortChange),
    /// No backend runs, or no engine answers: the next start (or Apply) takes the settings.
    AtNextStart,
}

/// Saves the settings (the app's Save) and applies at once what can change live: the ports of a
/// running backend. The rest differs until Apply or the next start (`backend::request::differences`
/// tells what). `backend` is asked only once the file is written, so settings that are refused
/// never wait for an engine. A live change that fails is told beside the ports.
pub async fn save_and_apply(
    settings: &Settings,
    backend: impl std::future::Future<Output = Result<Backend>>,
) -> Result<Applied> {
    save_and_apply_to(&path(), settings, backend).await
}

/// [`save_and_apply`], to `file`.
pub async fn save_and_apply_to(
    file: &Path,
    settings: &Settings,
    backend: impl std::future::Future<Output = Result<Backend>>,
) -> Result<Applied> {
    save_to(file, settings)?;
    // No engine now: the file holds the wish, and the next start applies it.
    let Ok(backend) = backend.await else { return Ok(Applied::AtNextStart) };
    match backend.change_ports(&PortEdit::Set(settings.port_set()?)).await {
        Ok(change) => Ok(Applied::PortsLive(change)),
        Err(Error::Backend(BackendError::PortsNeedARunningBackend)) => Ok(Applied::AtNextStart),
        Err(err) => Err(BackendError::PortsNotApplied(Box::new(err)).into()),
    }
}

/// [`save`], to `file`; returns its path.
pub fn save_to(file: &Path, settings: &Settings) -> Result<PathBuf> {
    settings.validate()?;
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let mut normalised = settings.clone();
    normalised.ports = PortSet::from_ports(settings.ports.iter().copied()).iter().collect();
    let text = serde_json::to_vec_pretty(&normalised)
        .map_err(|e| Error::io("encoding the settings")(std::io::Error::other(e)))?;
    let temporary = file.with_extension("json.tmp");
    std::fs::write(&temporary, text).map_err(Error::io(format!("writing {}", temporary.display())))?;
    std::fs::rename(&temporary, file).map_err(Error::io(format!("replacing {}", file.display())))?;
    Ok(file.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::error::BackendError;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("assemble-settings-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(FILE_NAME)
    }

    /// The defaults, written out: port 5000, the automatic cache, the default image, docker's context.
    fn defaults() -> Settings {
        Settings {
            ports: vec![5000],
            cache: CacheSetting::Auto,
            image: None,
            context: None,
            use_builder: false,
            cache_limit: None,
            base_images: Default::default(),
            security: Default::default(),
            allow_network_host: false,
            local_images: true,
            local_image_registries: Vec::new(),
        }
    }

    #[test]
    fn missing_file_gives_defaults_silently() {
        let loaded = load_from(&scratch("missing"));
        assert_eq!(loaded.settings, defaults());
        assert!(loaded.warning.is_none());
    }

    #[test]
    fn save_and_load_round_trip() {
        let file = scratch("roundtrip");
        let settings = Settings {
            ports: vec![7000, 6000, 7000],
            cache: CacheSetting::Named("vol".into()),
            image: Some("img".into()),
            context: Some("desktop-linux".into()),
            use_builder: true,
            cache_limit: Some("20GB".into()),
            base_images: Default::default(),
            security: crate::backend::security::SecurityChoice::Rootless,
            allow_network_host: true,
            local_images: true,
            local_image_registries: Vec::new(),
        };
        save_to(&file, &settings).unwrap();
        let loaded = load_from(&file);
        assert_eq!(loaded.settings.security, crate::backend::security::SecurityChoice::Rootless);
        assert_eq!(loaded.settings.ports, vec![6000, 7000]);
        assert_eq!(loaded.settings.cache, CacheSetting::Named("vol".into()));
        assert_eq!(loaded.settings.context.as_deref(), Some("desktop-linux"));
        assert!(loaded.settings.allow_network_host);
        assert!(loaded.warning.is_none());
    }

    #[tokio::test]
    async fn save_applies_the_ports_live_only_to_a_backend_it_can_reach_and_asks_for_none_when_refused() {
        let file = scratch("apply");
        let mut asked = false;
        let no_engine = async {
            asked = true;
            Err(crate::engine::error::EngineError::InvalidContextName("gone".into()).into())
        };
        let applied = save_and_apply_to(&file, &Settings { ports: vec![6000], ..defaults() }, no_engine).await;
        assert_eq!(applied.unwrap(), Applied::AtNextStart, "no engine now: the next start takes them");
        assert!(asked);
        assert_eq!(load_from(&file).settings.ports, vec![6000], "saved all the same");

        let mut asked = false;
        let never = async {
            asked = true;
            Err(crate::engine::error::EngineError::InvalidContextName("gone".into()).into())
        };
        let bad_image = Settings { image: Some("Moby/BuildKit".into()), ..defaults() };
        let refused = save_and_apply_to(&file, &bad_image, never).await.unwrap_err();
        assert_eq!(refused.settings_field(), Some("image"));
        assert!(!asked, "refused settings never wait for an engine");
        assert_eq!(load_from(&file).settings.ports, vec![6000], "the file keeps what was saved last");

        let failed = Error::from(BackendError::PortsNotApplied(Box::new(
            BackendError::ForeignContainer { name: "proxy-6000".into() }.into(),
        )));
        assert_eq!(failed.settings_field(), Some("ports"), "a live change that fails is told beside the ports");
        assert!(failed.sentence(crate::Place::App).starts_with("a container named \"proxy-6000\" exists"));
    }

    #[test]
    fn a_file_without_a_context_follows_docker() {
        let file = scratch("nocontext");
        std::fs::write(&file, br#"{"ports":[5000],"cache":{"kind":"auto"},"image":null}"#).unwrap();
        let loaded = load_from(&file);
        assert_eq!(loaded.warning, None);
        assert_eq!(loaded.settings.context, None);
        assert_eq!(loaded.settings.engine_choice(), crate::engine::EngineChoice::default());
    }

    #[test]
    fn a_pinned_context_must_be_a_context_name() {
        let file = scratch("badcontext");
        let bad = Settings { context: Some("a/b".into()), ..Settings::default() };
        let err = save_to(&file, &bad).unwrap_err();
        assert_eq!(err.settings_field(), Some("context"));
        assert!(err.to_string().contains("\"a/b\" is not a docker context name"), "{err}");
    }

    #[test]
    fn a_corrupt_file_is_kept_aside_and_defaults_are_used() {
        let file = scratch("corrupt");
        std::fs::write(&file, b"{ not json").unwrap();
        let loaded = load_from(&file);
        assert_eq!(loaded.settings, defaults());
        let warning = loaded.warning.unwrap();
        assert!(warning.contains("not valid settings JSON") && warning.contains("kept as"), "{warning}");
        assert!(!file.exists());
        let aside: Vec<_> = std::fs::read_dir(file.parent().unwrap()).unwrap().flatten().collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(std::fs::read(aside[0].path()).unwrap(), b"{ not json");
    }

    #[test]
    fn invalid_values_in_the_file_are_refused_like_flags() {
        let file = scratch("invalid");
        std::fs::write(&file, br#"{"ports":[0,5000]}"#).unwrap();
        let zero = load_from(&file);
        assert_eq!(zero.settings, defaults());
        assert!(zero.warning.unwrap().contains("cannot be combined"));
        std::fs::write(&file, br#"{"ports":[70000]}"#).unwrap();
        let out_of_range = load_from(&file);
        assert_eq!(out_of_range.settings, defaults());
        let warning = out_of_range.warning.unwrap();
        assert!(
            warning.contains("was not used: it is not valid settings JSON") && warning.contains("70000"),
            "{warning}"
        );
        assert!(warning.ends_with("Using the default settings."), "{warning}");
        let bad_volume = Settings { cache: CacheSetting::Named("a/b".into()), ..defaults() };
        let err = save_to(&file, &bad_volume).unwrap_err();
        assert!(matches!(&err, Error::Backend(BackendError::InvalidVolumeName(name)) if name == "a/b"), "{err:?}");
        assert!(err.to_string().contains("use letters, digits, '_', '.' or '-'"), "{err}");
    }
}
