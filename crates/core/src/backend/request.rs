//! What the user wants from a start, and its rules, with no I/O: the settings' fields, flags and
//! settings resolved into one request, the one check of every field, the cache-volume rule, and how
//! a running backend differs from the wish. `settings.rs` reads and writes the file; `start.rs` and
//! `cache.rs` act on what is decided here.
use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{
    backend::{
        error::BackendError,
        labels::{BackendLabels, SecurityMode},
        mirror::{config as mirror_config, LocalImages, LocalImagesWish},
        security::SecurityChoice,
    },
    engine::error::EngineError,
    names::{is_valid_volume_name, Names},
    ports::{PortError, PortSet},
    reference::check_image_name,
    Result,
};

/// The production backend image, pinned; `--image` or `$ASSEMBLE_BACKEND_IMAGE` override it.
pub const DEFAULT_IMAGE: &str = "moby/buildkit:v0.25.1";
/// The same BuildKit's rootless image, for the rootless mode when no image is named.
pub const DEFAULT_ROOTLESS_IMAGE: &str = "moby/buildkit:v0.25.1-rootless";
/// The environment variable that asks for a security mode (`capabilities`, `rootless`), between
/// the settings and `--security`.
pub const SECURITY_ENV: &str = "ASSEMBLE_BACKEND_SECURITY";
/// The environment variable that overrides the settings' image (the `--image` flag wins over it).
pub const IMAGE_ENV: &str = "ASSEMBLE_BACKEND_IMAGE";
/// How long BuildKit may take to answer after its container starts.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the build cache goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum CacheSetting {
    /// The original rule: the default volume if it exists, else anonymous.
    #[default]
    Auto,
    /// This named volume, created at start if missing; kept on stop.
    Named(String),
    /// No volume: the cache is lost when the backend stops.
    Anonymous,
}

/// The wish for the next start, shared by the app and the CLI (flags win), kept in the settings
/// file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Host ports to proxy; empty means none.
    pub ports: Vec<u16>,
    /// Where the build cache goes.
    pub cache: CacheSetting,
    /// `None`: `$ASSEMBLE_BACKEND_IMAGE`, else the pinned default.
    pub image: Option<String>,
    /// A docker context to use always; `None` follows docker (`DOCKER_HOST`, `DOCKER_CONTEXT`,
    /// `docker context use`). `--context` and `-H` on the command line win over it.
    pub context: Option<String>,
    /// Each start also makes the buildx builder `assemble` docker's current one (as `--use`).
    pub use_builder: bool,
    /// The most the build cache may use, as typed (`20GB`, `500MiB`); `None`: BuildKit's default.
    pub cache_limit: Option<String>,
    /// The images `assemble build` writes into a generated Dockerfile, in place of ours
    /// (`--build-image` and `--runtime-image` win over them).
    pub base_images: BaseImageChoices,
    /// How the backend is granted its powers (`--security` wins over it).
    pub security: SecurityChoice,
    /// Let builds use `--network host` (BuildKit's `network.host` entitlement); off unless asked.
    pub allow_network_host: bool,
    /// Builds take the engine's own images (a `FROM` the engine has), as `docker build` does;
    /// `--no-local-images` turns it off for one start.
    pub local_images: bool,
    /// Registries besides Docker Hub whose names are looked for in the engine first
    /// (`localhost:5000`, `registry.example.com`).
    pub local_image_registries: Vec<String>,
}

/// The base images a user chose in the settings file (`base_images`), each in place of ours in
/// the Dockerfiles `assemble build` writes (build/dockerfile.rs). Here, with the settings
/// they are part of, so that the settings need nothing from `build`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaseImageChoices {
    /// Maven with a JDK.
    pub maven: Option<String>,
    /// Gradle with a JDK.
    pub gradle: Option<String>,
    /// A Java runtime.
    pub java_runtime: Option<String>,
    /// The .NET SDK.
    pub dotnet_sdk: Option<String>,
    /// The ASP.NET Core runtime.
    pub aspnet_runtime: Option<String>,
}

impl BaseImageChoices {
    /// Checks each chosen image name as Docker would.
    pub fn validate(&self) -> Result<()> {
        [&self.maven, &self.gradle, &self.java_runtime, &self.dotnet_sdk, &self.aspnet_runtime]
            .into_iter()
            .flatten()
            .try_for_each(|image| Ok(check_image_name(image)?))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ports: vec![crate::ports::DEFAULT_PORT],
            cache: CacheSetting::Auto,
            image: None,
            context: None,
            use_builder: false,
            cache_limit: None,
            base_images: Default::default(),
            security: SecurityChoice::Auto,
            allow_network_host: false,
            local_images: true,
            local_image_registries: Vec::new(),
        }
    }
}

impl Settings {
    /// Checks every field by the same rules as the CLI flags.
    pub fn validate(&self) -> Result<()> {
        self.port_set()?;
        self.cache_limit_bytes()?;
        check_cache(&self.cache)?;
        if let Some(image) = &self.image {
            check_image(image)?;
        }
        self.base_images.validate()?;
        mirror_config::registries(&self.local_image_registries)?;
        // Only the form: a pinned context that was removed since is reported when it is used,
        // and the file keeps the user's choice.
        if let Some(context) = &self.context {
            if !crate::engine::is_valid_context_name(context) {
                return Err(EngineError::InvalidContextName(context.clone()).into());
            }
        }
        Ok(())
    }

    /// The engine options these settings give: the pinned context, if any.
    pub fn engine_choice(&self) -> crate::engine::EngineChoice {
        crate::engine::EngineChoice { pinned_context: self.context.clone(), ..Default::default() }
    }

    /// The cache limit in bytes, checked.
    pub fn cache_limit_bytes(&self) -> Result<Option<u64>> {
        self.cache_limit.as_deref().filter(|l| !l.trim().is_empty()).map(parse_cache_limit).transpose()
    }

    /// The ports as a set; `0` has no place in a list of ports.
    pub fn port_set(&self) -> Result<PortSet> {
        if self.ports.contains(&0) {
            return Err(PortError::ZeroMixed.into());
        }
        Ok(PortSet::from_ports(self.ports.iter().copied()))
    }

    /// What a start with these settings and no flags would run. `default_volume_exists` feeds the
    /// automatic cache rule.
    pub fn wanted(&self, names: &Names, default_volume_exists: bool) -> Wanted {
        Wanted {
            ports: PortSet::from_ports(self.ports.iter().copied()),
            cache_volume: wanted_volume(&self.cache, names, default_volume_exists),
            image: image_for(effective_image(None, self), self.security),
            cache_limit: self.cache_limit_bytes().ok().flatten(),
            security: self.security,
            network_host: self.allow_network_host,
            local_images: self.local_images_wish(false).ok().and_then(|w| w.registries().map(<[String]>::to_vec)),
        }
    }

    /// What these settings ask of local images; `no_flag` is `--no-local-images`, which wins.
    pub fn local_images_wish(&self, no_flag: bool) -> Result<LocalImagesWish> {
        if no_flag {
            return Ok(LocalImagesWish::Off("--no-local-images".into()));
        }
        if !self.local_images {
            return Ok(LocalImagesWish::Off("turned off in the settings".into()));
        }
        Ok(LocalImagesWish::On(mirror_config::registries(&self.local_image_registries)?))
    }
}

/// The least cache limit we take: below it BuildKit would collect what one build needs.
pub const MIN_CACHE_LIMIT: u64 = 64 * 1024 * 1024;

/// A typed cache limit, in bytes: a size (see [`crate::units::parse_size`]) of at least
/// [`MIN_CACHE_LIMIT`].
pub fn parse_cache_limit(typed: &str) -> Result<u64> {
    let bytes = crate::units::parse_size(typed)?;
    if bytes < MIN_CACHE_LIMIT {
        return Err(BackendError::CacheLimitTooSmall(typed.trim().to_string()).into());
    }
    Ok(bytes)
}

/// Adds the port(s) typed by the user to a list, by the CLI's rules.
pub fn add_port(ports: &[u16], typed: &str) -> Result<Vec<u16>> {
    let parsed = PortSet::parse(&[typed])?;
    if parsed.is_empty() {
        // "0" alone: on the command line it means "no ports"; here, removing them all does that.
        return Err(PortError::ZeroMixed.into());
    }
    Ok(PortSet::from_ports(ports.iter().copied().chain(parsed.iter())).iter().collect())
}

/// The start options as typed on the command line, before the settings fill the gaps.
#[derive(Debug, Clone, Default)]
pub struct StartFlags {
    /// Every `--allow-host-port` value, unparsed.
    pub allow_host_port: Vec<String>,
    /// `--cache-volume`.
    pub cache_volume: Option<String>,
    /// `--image`.
    pub image: Option<String>,
    /// `--ready-timeout`; `None` is [`DEFAULT_READY_TIMEOUT`].
    pub ready_timeout: Option<Duration>,
    /// `--cache-limit`, unparsed.
    pub cache_limit: Option<String>,
    /// `--security`, unparsed.
    pub security: Option<String>,
    /// `--allow-network-host` (the settings' choice still counts without it).
    pub allow_network_host: bool,
    /// `--no-local-images`.
    pub no_local_images: bool,
}

/// What the user asked for, flags and settings resolved and checked.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// The host ports to proxy.
    pub ports: PortSet,
    /// Where the build cache goes.
    pub cache: CacheSetting,
    /// The BuildKit image to run.
    pub image: String,
    /// How long BuildKit may take to answer.
    pub ready_timeout: Duration,
    /// The most bytes the build cache may use; `None`: BuildKit's default policy.
    pub cache_limit: Option<u64>,
    /// How the backend is granted its powers.
    pub security: SecurityChoice,
    /// Whether builds may use `--network host`.
    pub allow_network_host: bool,
    /// Whether builds take the engine's own images, and for which registries.
    pub local_images: LocalImagesWish,
}

impl StartRequest {
    /// Flags win, then `$ASSEMBLE_BACKEND_IMAGE` (for the image), then the settings file.
    pub fn resolve(flags: &StartFlags, settings: &Settings) -> Result<Self> {
        let ports = if flags.allow_host_port.is_empty() {
            settings.port_set()?
        } else {
            PortSet::parse(&flags.allow_host_port)?
        };
        let cache = match &flags.cache_volume {
            Some(name) => CacheSetting::Named(name.clone()),
            None => settings.cache.clone(),
        };
        let from_env = std::env::var(SECURITY_ENV).ok().filter(|v| !v.trim().is_empty());
        let security = match flags.security.as_deref().or(from_env.as_deref()) {
            Some(typed) => SecurityChoice::parse(typed)?,
            None => settings.security,
        };
        let image = image_for(effective_image(flags.image.as_deref(), settings), security);
        let cache_limit = match &flags.cache_limit {
            Some(typed) => Some(parse_cache_limit(typed)?),
            None => settings.cache_limit_bytes()?,
        };
        let request = Self {
            ports,
            cache,
            image,
            ready_timeout: flags.ready_timeout.unwrap_or(DEFAULT_READY_TIMEOUT),
            cache_limit,
            security,
            allow_network_host: flags.allow_network_host || settings.allow_network_host,
            local_images: settings.local_images_wish(flags.no_local_images)?,
        };
        request.validate()?;
        Ok(request)
    }

    /// The same checks as the settings', for a request built by hand.
    pub fn validate(&self) -> Result<()> {
        check_image(&self.image)?;
        check_cache(&self.cache)
    }

    /// What this request would run. `default_volume_exists` feeds the automatic cache rule.
    pub fn wanted(&self, names: &Names, default_volume_exists: bool) -> Wanted {
        Wanted {
            ports: self.ports.clone(),
            cache_volume: wanted_volume(&self.cache, names, default_volume_exists),
            image: self.image.clone(),
            cache_limit: self.cache_limit,
            security: self.security,
            network_host: self.allow_network_host,
            local_images: self.local_images.registries().map(<[String]>::to_vec),
        }
    }
}

/// The pinned default names the root image; the rootless mode runs its rootless twin. An image
/// the user named is theirs to choose.
fn image_for(image: String, security: SecurityChoice) -> String {
    if security == SecurityChoice::Rootless && image == DEFAULT_IMAGE {
        DEFAULT_ROOTLESS_IMAGE.to_string()
    } else {
        image
    }
}

/// The backend image passes the one reference check (`reference.rs`), as every image name does;
/// a blank one has a sentence of its own.
fn check_image(image: &str) -> Result<()> {
    if image.trim().is_empty() {
        return Err(BackendError::EmptyImage.into());
    }
    check_image_name(image).map_err(|reason| BackendError::InvalidImage(reason).into())
}

fn check_cache(cache: &CacheSetting) -> Result<()> {
    match cache {
        CacheSetting::Named(volume) if !is_valid_volume_name(volume) => {
            Err(BackendError::InvalidVolumeName(volume.clone()).into())
        }
        _ => Ok(()),
    }
}

/// The image to run: the flag, else `$ASSEMBLE_BACKEND_IMAGE`, else the settings' image, else
/// [`DEFAULT_IMAGE`].
pub fn effective_image(flag: Option<&str>, settings: &Settings) -> String {
    let from_env = std::env::var(IMAGE_ENV).ok();
    choose_image(flag, from_env.as_deref(), settings.image.as_deref())
}

/// [`effective_image`] with the environment given: a blank value counts as unset.
fn choose_image(flag: Option<&str>, from_env: Option<&str>, from_settings: Option<&str>) -> String {
    flag.or(from_env.filter(|i| !i.trim().is_empty())).or(from_settings).unwrap_or(DEFAULT_IMAGE).to_string()
}

/// The cache rule: the named volume; for "automatic" the user's default volume when it exists
/// (the original product's rule); else none, and the cache goes with the container.
pub fn wanted_volume(setting: &CacheSetting, names: &Names, default_volume_exists: bool) -> Option<String> {
    match setting {
        CacheSetting::Auto => default_volume_exists.then(|| names.default_cache_volume()),
        CacheSetting::Named(name) => Some(name.clone()),
        CacheSetting::Anonymous => None,
    }
}

/// A backend's configuration as a start would make it: compared with a running one's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The host ports.
    pub ports: PortSet,
    /// The cache volume; `None` is an anonymous one.
    pub cache_volume: Option<String>,
    /// The image reference.
    pub image: String,
    /// The cache limit in bytes; `None`: BuildKit's default.
    pub cache_limit: Option<u64>,
    /// The security mode asked for.
    pub security: SecurityChoice,
    /// Whether `--network host` is granted.
    pub network_host: bool,
    /// The registries served from the engine; `None`: local images off.
    pub local_images: Option<Vec<String>>,
}

/// What in the backend's configuration can differ from a wish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Field {
    /// The proxied host ports.
    Ports,
    /// The volume that holds the build cache.
    CacheVolume,
    /// The BuildKit image.
    Image,
    /// The cache limit.
    CacheLimit,
    /// The security mode.
    Security,
    /// The `--network host` grant.
    NetworkHost,
    /// Whether builds take local images, and for which registries.
    LocalImages,
}

/// Whether applying `differences` needs a restart: anything but the ports (which change live).
pub fn needs_restart(differences: &[Difference]) -> bool {
    differences.iter().any(|d| d.field.needs_restart())
}

impl Field {
    /// Only a restart changes it in a running backend; ports change live.
    pub fn needs_restart(self) -> bool {
        !matches!(self, Field::Ports)
    }

    fn noun(self) -> &'static str {
        match self {
            Field::Ports => "host ports",
            Field::CacheVolume => "cache volume",
            Field::Image => "image",
            Field::CacheLimit => "cache limit",
            Field::Security => "security mode",
            Field::NetworkHost => "host network for builds",
            Field::LocalImages => "local images",
        }
    }
}

/// One way a running backend differs from the wish, as the user would name both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Which part of the configuration differs.
    pub field: Field,
    /// What runs.
    pub running: String,
    /// What was wished for.
    pub wanted: String,
}

impl Difference {
    /// "host ports: running 5000, settings 6000", with `wished_by` naming the wish's source.
    pub fn sentence(&self, wished_by: &str) -> String {
        format!("{}: running {}, {wished_by} {}", self.field.noun(), self.running, self.wanted)
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sentence("wanted"))
    }
}

/// Everything in which `running` differs from `wanted`, in a fixed order: ports, cache volume,
/// cache limit, image.
pub fn differences(wanted: &Wanted, running: &BackendLabels) -> Vec<Difference> {
    let volume = |v: &Option<String>| v.clone().unwrap_or_else(|| "none (lost on stop)".into());
    let mut differences = Vec::new();
    if wanted.ports != running.ports {
        differences.push(Difference {
            field: Field::Ports,
            running: running.ports.to_string(),
            wanted: wanted.ports.to_string(),
        });
    }
    if wanted.cache_volume != running.cache_volume {
        differences.push(Difference {
            field: Field::CacheVolume,
            running: volume(&running.cache_volume),
            wanted: volume(&wanted.cache_volume),
        });
    }
    if wanted.cache_limit != running.cache_limit {
        let limit = crate::units::cache_limit_text;
        differences.push(Difference {
            field: Field::CacheLimit,
            running: limit(running.cache_limit),
            wanted: limit(wanted.cache_limit),
        });
    }
    if !security_matches(wanted.security, running.security) {
        differences.push(Difference {
            field: Field::Security,
            running: running.security.as_str().to_string(),
            wanted: wanted.security.as_str().to_string(),
        });
    }
    if wanted.network_host != running.network_host {
        let words = |granted: bool| if granted { "allowed" } else { "not allowed" }.to_string();
        differences.push(Difference {
            field: Field::NetworkHost,
            running: words(running.network_host),
            wanted: words(wanted.network_host),
        });
    }
    if let Some((running_text, wanted_text)) =
        local_images_differ(wanted.local_images.as_deref(), &running.local_images)
    {
        differences.push(Difference { field: Field::LocalImages, running: running_text, wanted: wanted_text });
    }
    if wanted.image != running.image {
        differences.push(Difference {
            field: Field::Image,
            running: running.image.clone(),
            wanted: wanted.image.clone(),
        });
    }
    differences
}

/// How running local images differ from the wish, both sides in words; an engine that could not
/// give them is not a difference (a restart would not change it).
fn local_images_differ(wanted: Option<&[String]>, running: &LocalImages) -> Option<(String, String)> {
    let used = |registries: &[String]| format!("used ({})", registries.join(", "));
    match (wanted, running) {
        (Some(wanted), LocalImages::Used { registries }) if wanted != registries.as_slice() => {
            Some((used(registries), used(wanted)))
        }
        (Some(wanted), LocalImages::Off { .. }) => Some(("off".into(), used(wanted))),
        (None, LocalImages::Used { registries }) => Some((used(registries), "off".into())),
        _ => None,
    }
}

/// Whether a running mode is what a choice asks for: `auto` takes privileged or its capability
/// fallback, `capabilities` only that, `rootless` only rootless.
pub fn security_matches(wanted: SecurityChoice, running: SecurityMode) -> bool {
    match wanted {
        SecurityChoice::Auto => running != SecurityMode::Rootless,
        SecurityChoice::Capabilities => running == SecurityMode::Capabilities,
        SecurityChoice::Rootless => running == SecurityMode::Rootless,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn flags(ports: &[&str], volume: Option<&str>, image: Option<&str>) -> StartFlags {
        StartFlags {
            allow_host_port: ports.iter().map(|p| p.to_string()).collect(),
            cache_volume: volume.map(String::from),
            image: image.map(String::from),
            ready_timeout: None,
            cache_limit: None,
            allow_network_host: false,
            security: None,
            no_local_images: false,
        }
    }

    #[test]
    fn flags_win_over_settings() {
        let settings = Settings {
            ports: vec![7000],
            cache: CacheSetting::Anonymous,
            image: Some("settings-img".into()),
            context: None,
            use_builder: false,
            cache_limit: None,
            allow_network_host: false,
            base_images: Default::default(),
            security: SecurityChoice::Auto,
            local_images: true,
            local_image_registries: Vec::new(),
        };
        let request = StartRequest::resolve(&flags(&["6000"], Some("vol"), Some("flag-img")), &settings).unwrap();
        assert_eq!(request.ports.iter().collect::<Vec<_>>(), vec![6000]);
        assert_eq!(request.cache, CacheSetting::Named("vol".into()));
        assert_eq!(request.image, "flag-img");
        assert_eq!(request.ready_timeout, Duration::from_secs(60));
    }

    #[test]
    fn settings_fill_what_flags_leave_out() {
        let settings = Settings {
            ports: vec![7000],
            cache: CacheSetting::Anonymous,
            image: None,
            context: None,
            use_builder: false,
            cache_limit: None,
            allow_network_host: false,
            base_images: Default::default(),
            security: SecurityChoice::Auto,
            local_images: true,
            local_image_registries: Vec::new(),
        };
        let request = StartRequest::resolve(&flags(&[], None, Some("x")), &settings).unwrap();
        assert_eq!(request.ports.iter().collect::<Vec<_>>(), vec![7000]);
        assert_eq!(request.cache, CacheSetting::Anonymous);
        let none = Settings { ports: vec![], ..Settings::default() };
        assert!(StartRequest::resolve(&flags(&[], None, Some("x")), &none).unwrap().ports.is_empty());
    }

    #[test]
    fn bad_flags_are_refused_with_the_field_they_belong_to() {
        let settings = Settings::default();
        let field = |f: StartFlags| StartRequest::resolve(&f, &settings).unwrap_err().settings_field();
        assert_eq!(field(flags(&["0,1"], None, Some("x"))), Some("ports"));
        assert_eq!(field(flags(&[], Some("a/b"), Some("x"))), Some("cache"));
        assert_eq!(field(flags(&[], None, Some(" "))), Some("image"));
    }

    #[test]
    fn settings_and_requests_are_checked_by_the_same_rules() {
        let bad_volume = Settings { cache: CacheSetting::Named("a/b".into()), ..Settings::default() };
        let bad_image = Settings { image: Some("  ".into()), ..Settings::default() };
        assert_eq!(bad_volume.validate().unwrap_err().settings_field(), Some("cache"));
        assert_eq!(bad_image.validate().unwrap_err().settings_field(), Some("image"));
        let mut bad_base = Settings::default();
        bad_base.base_images.maven = Some("Maven Image".into());
        assert!(matches!(bad_base.validate(), Err(Error::InvalidImageName { .. })));
        let by_hand = StartRequest {
            ports: PortSet::from_ports([5000]),
            cache: CacheSetting::Named("a/b".into()),
            image: "x".into(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            cache_limit: None,
            allow_network_host: false,
            security: SecurityChoice::Auto,
            local_images: LocalImagesWish::Off("test".into()),
        };
        assert_eq!(by_hand.validate().unwrap_err().settings_field(), Some("cache"));
    }

    #[test]
    fn every_backend_image_passes_the_reference_check_and_a_bad_one_is_told_beside_the_image_field() {
        let by_flag = StartRequest::resolve(&flags(&[], None, Some("moby/BuildKit:v1")), &Settings::default());
        let by_flag = by_flag.unwrap_err();
        assert!(matches!(by_flag, Error::Backend(BackendError::InvalidImage(_))), "{by_flag:?}");
        assert_eq!(by_flag.settings_field(), Some("image"));
        assert_eq!(
            by_flag.sentence(crate::Place::App),
            "the backend image \"moby/BuildKit:v1\" is not a valid image name: each part of the path is lower-case \
             letters and digits, with one '.', one or two '_', or '-'s only between them; use a name like \
             `localhost:5000/team/app:1.0`"
        );
        let in_settings = Settings { image: Some("moby/buildkit:".into()), ..Settings::default() };
        let refused = in_settings.validate().unwrap_err();
        assert!(matches!(refused, Error::Backend(BackendError::InvalidImage(_))), "{refused:?}");
        assert_eq!(refused.settings_field(), Some("image"));
        // The environment's image is checked as the flag's is, whatever the settings hold.
        let from_env = choose_image(None, Some("registry:port/buildkit"), Some("moby/buildkit:v0.25.1"));
        let by_hand = StartRequest {
            image: from_env,
            ..StartRequest::resolve(&flags(&[], None, Some("x")), &Settings::default()).unwrap()
        };
        assert_eq!(by_hand.validate().unwrap_err().settings_field(), Some("image"));
        for good in [
            DEFAULT_IMAGE,
            DEFAULT_ROOTLESS_IMAGE,
            "assemble-buildkit:v0.25-debian",
            "localhost:5000/bk@sha256:0123456789abcdef0123456789abcdef",
        ] {
            assert!(check_image(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn image_precedence_is_flag_then_environment_then_settings_then_default() {
        assert_eq!(choose_image(Some("flag"), Some("env"), Some("file")), "flag");
        assert_eq!(choose_image(None, Some("env"), Some("file")), "env");
        assert_eq!(choose_image(None, Some(" "), Some("file")), "file", "a blank variable counts as unset");
        assert_eq!(choose_image(None, None, Some("file")), "file");
        assert_eq!(choose_image(None, None, None), "moby/buildkit:v0.25.1");
    }

    #[test]
    fn the_automatic_cache_takes_the_default_volume_only_when_it_exists() {
        let names = Names::for_user("u");
        assert_eq!(
            wanted_volume(&CacheSetting::Auto, &names, true).as_deref(),
            Some("docker-assemble-backend-cache-u")
        );
        assert_eq!(wanted_volume(&CacheSetting::Auto, &names, false), None);
        assert_eq!(wanted_volume(&CacheSetting::Named("v".into()), &names, false).as_deref(), Some("v"));
        assert_eq!(wanted_volume(&CacheSetting::Anonymous, &names, true), None);
    }

    #[test]
    fn adding_ports_uses_the_cli_rules() {
        assert_eq!(add_port(&[5000], "6000").unwrap(), vec![5000, 6000]);
        assert_eq!(add_port(&[5000], "6000,7000").unwrap(), vec![5000, 6000, 7000]);
        assert_eq!(add_port(&[5000], "5000").unwrap(), vec![5000]);
        let zero = add_port(&[], "0").unwrap_err();
        assert!(matches!(zero, Error::InvalidPorts(PortError::ZeroMixed)), "{zero:?}");
        assert!(zero.to_string().contains("give 0 alone or only real ports"), "{zero}");
        assert!(add_port(&[], "abc").unwrap_err().to_string().contains("not a port number"));
        assert!(add_port(&[], "65536").unwrap_err().to_string().contains("out of range"));
    }

    fn running(ports: &[u16], volume: Option<&str>, image: &str) -> BackendLabels {
        BackendLabels {
            ports: PortSet::from_ports(ports.iter().copied()),
            cache_volume: volume.map(String::from),
            image: image.into(),
            version: "0".into(),
            security: SecurityMode::Privileged,
            security_reason: None,
            cache_limit: None,
            network_host: false,
            local_images: crate::backend::mirror::LocalImages::Off { reason: None },
        }
    }

    #[test]
    fn the_cache_limit_comes_from_the_flag_else_the_settings_and_is_checked() {
        let settings = Settings { cache_limit: Some("20GB".into()), ..Settings::default() };
        assert_eq!(
            StartRequest::resolve(&flags(&[], None, None), &settings).unwrap().cache_limit,
            Some(20_000_000_000)
        );
        let flag = StartFlags { cache_limit: Some("2GiB".into()), ..flags(&[], None, None) };
        assert_eq!(StartRequest::resolve(&flag, &settings).unwrap().cache_limit, Some(2_147_483_648));
        assert_eq!(StartRequest::resolve(&flags(&[], None, None), &Settings::default()).unwrap().cache_limit, None);
        let tiny = StartFlags { cache_limit: Some("10MB".into()), ..flags(&[], None, None) };
        let refused = StartRequest::resolve(&tiny, &settings).unwrap_err();
        assert!(matches!(&refused, Error::Backend(BackendError::CacheLimitTooSmall(v)) if v == "10MB"), "{refused:?}");
        assert_eq!(
            refused.to_string(),
            "a cache limit of 10MB is too small to build with; give at least 64MiB, such as 20GB"
        );
        let garbage = Settings { cache_limit: Some("lots".into()), ..Settings::default() };
        let refused = garbage.validate().unwrap_err();
        assert_eq!(
            (refused.settings_field(), refused.to_string().as_str()),
            (Some("cache_limit"), "\"lots\" is not a size; give a number and a unit, such as 20GB or 500MiB")
        );
        // A blank field in the settings window means no limit.
        assert_eq!(
            Settings { cache_limit: Some(" ".into()), ..Settings::default() }.cache_limit_bytes().unwrap(),
            None
        );
    }

    #[test]
    fn differences_name_every_field_that_differs() {
        let wanted = Wanted {
            ports: PortSet::from_ports([5000]),
            cache_volume: None,
            image: "img".into(),
            cache_limit: None,
            network_host: false,
            security: SecurityChoice::Auto,
            local_images: None,
        };
        assert_eq!(differences(&wanted, &running(&[5000], None, "img")), vec![]);

        let all = differences(&wanted, &running(&[6071, 6072], Some("vol"), "other"));
        let sentences: Vec<_> = all.iter().map(|d| d.sentence("settings")).collect();
        assert_eq!(
            sentences,
            vec![
                "host ports: running 6071,6072, settings 5000",
                "cache volume: running vol, settings none (lost on stop)",
                "image: running other, settings img",
            ]
        );
        let image_only = differences(&wanted, &running(&[5000], None, "other"));
        assert_eq!(image_only.iter().map(|d| d.field).collect::<Vec<_>>(), vec![Field::Image]);
    }

    #[test]
    fn the_security_mode_comes_from_the_flag_else_the_settings_and_a_rootless_start_runs_the_rootless_image() {
        let rootless = Settings { security: SecurityChoice::Rootless, image: None, ..Settings::default() };
        let request = StartRequest::resolve(&flags(&[], None, None), &rootless).unwrap();
        assert_eq!(request.security, SecurityChoice::Rootless);
        // The image from the environment (the tests set one) or the pinned default's rootless twin.
        if std::env::var(IMAGE_ENV).is_err() {
            assert_eq!(request.image, DEFAULT_ROOTLESS_IMAGE);
        }
        assert_eq!(image_for(DEFAULT_IMAGE.into(), SecurityChoice::Rootless), DEFAULT_ROOTLESS_IMAGE);
        assert_eq!(image_for("mine:1".into(), SecurityChoice::Rootless), "mine:1");
        assert_eq!(image_for(DEFAULT_IMAGE.into(), SecurityChoice::Auto), DEFAULT_IMAGE);
        let flag = StartFlags { security: Some("auto".into()), ..flags(&[], None, Some("x")) };
        assert_eq!(StartRequest::resolve(&flag, &rootless).unwrap().security, SecurityChoice::Auto);
        let bad = StartFlags { security: Some("root".into()), ..flags(&[], None, Some("x")) };
        assert_eq!(StartRequest::resolve(&bad, &rootless).unwrap_err().settings_field(), Some("security"));
    }

    #[test]
    fn a_running_mode_differs_from_the_wish_only_across_rootless_or_an_asked_for_capability_mode() {
        use SecurityChoice::*;
        assert!(security_matches(Auto, SecurityMode::Privileged));
        assert!(security_matches(Auto, SecurityMode::Capabilities), "the fallback is what auto gives");
        assert!(!security_matches(Auto, SecurityMode::Rootless));
        assert!(security_matches(Rootless, SecurityMode::Rootless));
        assert!(!security_matches(Rootless, SecurityMode::Capabilities));
        assert!(!security_matches(Capabilities, SecurityMode::Privileged));
        let mut wanted = Wanted {
            ports: PortSet::from_ports([5000]),
            cache_volume: None,
            image: "img".into(),
            cache_limit: None,
            network_host: false,
            security: Rootless,
            local_images: None,
        };
        let found = differences(&wanted, &running(&[5000], None, "img"));
        assert_eq!(
            found.iter().map(|d| d.sentence("settings")).collect::<Vec<_>>(),
            ["security mode: running privileged, settings rootless"]
        );
        assert!(needs_restart(&found));
        wanted.security = Auto;
        assert!(differences(&wanted, &running(&[5000], None, "img")).is_empty());
    }

    #[test]
    fn the_automatic_rule_decides_what_the_settings_want() {
        let names = Names::for_user("u");
        let settings = Settings {
            ports: vec![5000],
            cache: CacheSetting::Auto,
            image: Some("img".into()),
            context: None,
            use_builder: false,
            cache_limit: None,
            allow_network_host: false,
            base_images: Default::default(),
            security: SecurityChoice::Auto,
            local_images: true,
            local_image_registries: Vec::new(),
        };
        let with_default = settings.wanted(&names, true);
        assert_eq!(with_default.cache_volume.as_deref(), Some("docker-assemble-backend-cache-u"));
        assert_eq!(settings.wanted(&names, false).cache_volume, None);
    }

    #[test]
    fn the_host_network_grant_is_off_unless_the_flag_or_the_settings_ask_and_a_change_needs_a_restart() {
        let off = StartRequest::resolve(&flags(&[], None, None), &Settings::default()).unwrap();
        assert!(!off.allow_network_host);
        let flag = StartFlags { allow_network_host: true, ..flags(&[], None, None) };
        assert!(StartRequest::resolve(&flag, &Settings::default()).unwrap().allow_network_host);
        let settings = Settings { allow_network_host: true, ..Settings::default() };
        let from_settings = StartRequest::resolve(&flags(&[], None, None), &settings).unwrap();
        assert!(from_settings.allow_network_host);
        let read: Settings = serde_json::from_str(r#"{"allow_network_host": true}"#).unwrap();
        assert!(read.allow_network_host);
        let names = Names::for_user("u");
        let wanted = from_settings.wanted(&names, false);
        let running = BackendLabels {
            network_host: false,
            local_images: crate::backend::mirror::LocalImages::Used { registries: vec!["docker.io".into()] },
            ..running(&[5000], None, &from_settings.image)
        };
        let found = differences(&wanted, &running);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].sentence("asked"), "host network for builds: running not allowed, asked allowed");
        assert!(needs_restart(&found));
    }
}
