//! What a build sends BuildKit as solve attributes beyond the Dockerfile's own: labels, the
//! attestations (buildx's default minimal provenance among them), `--pull`, `--network`,
//! `--add-host`, named contexts (`--build-context`), and the caches ([`cache_options`]). Each flag
//! is read as buildx reads it (`build/opt.go`, `util/buildflags`), checked here before anything is
//! sent, and turned into the frontend's attributes and the solve's entitlements.
use std::{collections::BTreeMap, net::IpAddr, path::PathBuf};

use sha2::{Digest, Sha256};

use crate::{
    build::cache_options::{self, CachePlan},
    build::error::BuildError,
    build::step_options::{self, StepInput, StepOptions},
    reference::check_image_name,
    Result,
};

/// buildx's default when no `--provenance` is given: a minimal provenance attestation that only
/// an image pushed to a registry carries (`inline-only`: `--load` leaves it out).
pub const DEFAULT_PROVENANCE: &str = "mode=min,inline-only=true";
/// Set to a true value, buildx (and we) send no default attestation.
pub const NO_DEFAULT_ATTESTATIONS_ENV: &str = "BUILDX_NO_DEFAULT_ATTESTATIONS";
/// The scanner BuildKit runs for `--sbom` when none is named (it pulls it from Docker Hub).
pub const DEFAULT_SBOM_SCANNER: &str = "docker/buildkit-syft-scanner:stable-1";
/// The entitlement `--network host` needs, granted by the backend when it starts.
pub const NETWORK_HOST: &str = "network.host";
/// The frontend capability named contexts need (buildx sends it with any `--build-context`).
const CONTEXTS_CAP: &str = "moby.buildkit.frontend.contexts+forward";

/// The flags as typed.
#[derive(Debug, Clone, Default)]
pub struct SolveInput {
    /// `--cache-from`, each value as typed.
    pub cache_from: Vec<String>,
    /// `--cache-to`, each value as typed.
    pub cache_to: Vec<String>,
    /// `--label KEY=VALUE` (or `KEY`, an empty value).
    pub labels: Vec<String>,
    /// `--provenance`: a bool, or `mode=min|max,…`; `None`: buildx's default.
    pub provenance: Option<String>,
    /// `--sbom`: a bool, or `generator=IMAGE,…`.
    pub sbom: Option<String>,
    /// `--attest type=provenance|sbom,…`, each as typed.
    pub attests: Vec<String>,
    /// `--pull`: look up every base image in its registry, even when cached.
    pub pull: bool,
    /// `--network`: `default`, `none` or `host`.
    pub network: Option<String>,
    /// `--add-host HOST:IP` (or `HOST=IP`), comma-separated lists allowed.
    pub add_hosts: Vec<String>,
    /// `--build-context NAME=VALUE`.
    pub build_contexts: Vec<String>,
    /// `--shm-size`, `--ulimit`, `--cgroup-parent`, `--no-cache-filter`, `--annotation`.
    pub steps: StepInput,
}

/// The network the build's `RUN` steps get.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// BuildKit's own (a network namespace with outside access).
    #[default]
    Default,
    /// No network at all.
    None,
    /// The backend's own network; needs the `network.host` entitlement.
    Host,
}

/// Where a named context comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    /// `docker-image://REF`, sent as typed.
    Image(String),
    /// A git or HTTP(S) URL, sent as typed.
    Url(String),
    /// An image in an OCI layout folder (`oci-layout://PATH[:TAG][@DIGEST]`), served on the
    /// session's content store `oci:STORE`, as buildx serves it.
    OciLayout {
        /// The layout folder.
        path: PathBuf,
        /// The tag looked up in its `index.json` (`latest` when none is given).
        tag: String,
        /// The image's digest: given, or the tag's in `index.json`.
        digest: String,
        /// The content store's name on the session.
        store: String,
    },
    /// A local folder, served on the session under `dir_name`.
    Folder {
        /// The folder.
        path: PathBuf,
        /// The name BuildKit asks for it by.
        dir_name: String,
    },
}

/// One `--build-context`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedContext {
    /// The name the Dockerfile uses (`FROM NAME`, `COPY --from=NAME`), normalized as buildx does.
    pub name: String,
    /// What it stands for.
    pub source: ContextSource,
}

/// The checked options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SolveOptions {
    /// Caches to import and export.
    pub cache: CachePlan,
    /// Image labels, in order.
    pub labels: Vec<(String, String)>,
    /// Attestation attributes (`attest:provenance` → `mode=min,inline-only=true`).
    pub attestations: BTreeMap<String, String>,
    /// Whether the provenance is buildx's default (not asked for).
    pub default_provenance: bool,
    /// `--pull`.
    pub pull: bool,
    /// `--network`.
    pub network: NetworkMode,
    /// `--add-host`, as `host=ip`.
    pub add_hosts: Vec<(String, String)>,
    /// `--build-context`.
    pub contexts: Vec<NamedContext>,
    /// What `RUN` steps get, the stages without cache, and the image's annotations.
    pub steps: StepOptions,
}

/// Checks the flags. `build_args` are the checked build arguments (for buildx's inline-cache
/// argument); `image_output` says whether an image is pushed or loaded; `env` reads the
/// environment.
pub fn check(
    input: &SolveInput,
    build_args: &[(String, String)],
    image_output: bool,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SolveOptions> {
    let cache = cache_options::plan(&input.cache_from, &input.cache_to, build_args, image_output)?;
    let labels = input.labels.iter().map(|l| label(l)).collect::<Result<Vec<_>>>()?;
    let mut attestations = BTreeMap::new();
    let no_default = env(NO_DEFAULT_ATTESTATIONS_ENV).is_some_and(|v| parse_bool(&v) == Some(true));
    let attests = input
        .attests
        .iter()
        .map(|value| Ok((attest_type(value)?, value.clone())))
        .collect::<Result<Vec<(&'static str, String)>>>()?;
    let asked_provenance = input.provenance.is_some() || attests.iter().any(|(kind, _)| *kind == "provenance");
    let default_provenance = !asked_provenance && !no_default;
    if default_provenance {
        attestations.insert("attest:provenance".to_string(), DEFAULT_PROVENANCE.to_string());
    }
    // `--provenance` and `--sbom` are buildx's short forms of `--attest`; the last of a type wins.
    let typed = attests
        .iter()
        .map(|(kind, value)| (*kind, "--attest", value))
        .chain(input.provenance.iter().map(|v| ("provenance", "--provenance", v)))
        .chain(input.sbom.iter().map(|v| ("sbom", "--sbom", v)));
    for (kind, flag, value) in typed {
        match attestation(kind, flag, value)? {
            Some(attr) => attestations.insert(format!("attest:{kind}"), attr),
            None => attestations.remove(&format!("attest:{kind}")),
        };
    }
    let network = match input.network.as_deref().map(str::trim) {
        None | Some("" | "default") => NetworkMode::Default,
        Some("none") => NetworkMode::None,
        Some("host") => NetworkMode::Host,
        Some(other) => return Err(BuildError::InvalidNetwork { mode: other.to_string() }.into()),
    };
    let mut add_hosts = Vec::new();
    for value in &input.add_hosts {
        for one in value.split(',').filter(|h| !h.trim().is_empty()) {
            add_hosts.push(extra_host(one.trim())?);
        }
    }
    let mut contexts: Vec<NamedContext> = Vec::new();
    for value in &input.build_contexts {
        let context = named_context(value)?;
        if contexts.iter().any(|c| c.name == context.name) {
            return Err(BuildError::InvalidBuildContext {
                value: value.clone(),
                reason: format!("names {} a second time; give each name once", context.name),
            }
            .into());
        }
        contexts.push(context);
    }
    let steps = step_options::check(&input.steps)?;
    Ok(SolveOptions {
        cache,
        labels,
        attestations,
        default_provenance,
        pull: input.pull,
        network,
        add_hosts,
        contexts,
        steps,
    })
}

impl SolveOptions {
    /// The frontend attributes these options add, as buildx sends them.
    pub fn frontend_attrs(&self) -> Vec<(String, String)> {
        let mut attrs: Vec<(String, String)> =
            self.labels.iter().map(|(k, v)| (format!("label:{k}"), v.clone())).collect();
        attrs.extend(self.attestations.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(imports) = self.cache.imports_attr() {
            attrs.push(("cache-imports".into(), imports));
        }
        if self.pull {
            attrs.push(("image-resolve-mode".into(), "pull".into()));
        }
        match self.network {
            NetworkMode::Default => {}
            NetworkMode::None => attrs.push(("force-network-mode".into(), "none".into())),
            NetworkMode::Host => attrs.push(("force-network-mode".into(), "host".into())),
        }
        if !self.add_hosts.is_empty() {
            let list: Vec<String> = self.add_hosts.iter().map(|(h, ip)| format!("{h}={ip}")).collect();
            attrs.push(("add-hosts".into(), list.join(",")));
        }
        for context in &self.contexts {
            let value = match &context.source {
                ContextSource::Image(text) | ContextSource::Url(text) => text.clone(),
                ContextSource::OciLayout { tag, digest, store, .. } => format!("oci-layout://{store}:{tag}@{digest}"),
                ContextSource::Folder { dir_name, .. } => format!("local:{dir_name}"),
            };
            attrs.push((format!("context:{}", context.name), value));
        }
        if !self.contexts.is_empty() {
            attrs.push(("frontend.caps".into(), CONTEXTS_CAP.into()));
        }
        attrs.extend(self.steps.frontend_attrs());
        attrs
    }

    /// The entitlements the solve asks for (`network.host` for `--network host`).
    pub fn entitlements(&self) -> Vec<String> {
        if self.network == NetworkMode::Host {
            vec![NETWORK_HOST.to_string()]
        } else {
            Vec::new()
        }
    }

    /// The named contexts' folders, by the name BuildKit asks for them.
    pub fn folders(&self) -> impl Iterator<Item = (&str, &PathBuf)> {
        self.contexts.iter().filter_map(|c| match &c.source {
            ContextSource::Folder { path, dir_name } => Some((dir_name.as_str(), path)),
            _ => None,
        })
    }

    /// The named contexts' OCI layouts, by the session content store's key (`oci:STORE`).
    pub fn oci_layouts(&self) -> impl Iterator<Item = (String, &PathBuf)> {
        self.contexts.iter().filter_map(|c| match &c.source {
            ContextSource::OciLayout { path, store, .. } => Some((format!("oci:{store}"), path)),
            _ => None,
        })
    }

    /// The SBOM scanner the build runs, if it asks for an SBOM.
    pub fn sbom_scanner(&self) -> Option<String> {
        let attr = self.attestations.get("attest:sbom")?;
        let named = csv_fields(attr).ok()?.into_iter().find_map(|f| f.strip_prefix("generator=").map(str::to_string));
        Some(named.unwrap_or_else(|| DEFAULT_SBOM_SCANNER.to_string()))
    }

    /// The plan's lines for these options (label, value), for `--dry-run`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let mut lines = Vec::new();
        lines.extend(self.cache.imports.iter().map(|e| ("Cache from:", e.describe())));
        lines.extend(self.cache.exports.iter().map(|e| ("Cache to:", e.describe())));
        lines.extend(self.labels.iter().map(|(k, v)| ("Label:", format!("{k}={v}"))));
        for (key, value) in &self.attestations {
            let kind = key.trim_start_matches("attest:");
            let note = if self.default_provenance && kind == "provenance" { " (buildx's default)" } else { "" };
            lines.push(("Attest:", format!("{kind}: {value}{note}")));
        }
        if self.pull {
            lines.push(("Pull:", "every base image from its registry, fresh, never the engine's own".into()));
        }
        match self.network {
            NetworkMode::Default => {}
            NetworkMode::None => lines.push(("Network:", "none".into())),
            NetworkMode::Host => lines.push(("Network:", "host (needs the backend's network.host grant)".into())),
        }
        lines.extend(self.add_hosts.iter().map(|(h, ip)| ("Add host:", format!("{h} → {ip}"))));
        for context in &self.contexts {
            let from = match &context.source {
                ContextSource::Image(text) | ContextSource::Url(text) => text.clone(),
                ContextSource::OciLayout { path, tag, digest, .. } => {
                    format!("the OCI layout {} ({tag}, {digest})", path.display())
                }
                ContextSource::Folder { path, .. } => path.display().to_string(),
            };
            lines.push(("Named context:", format!("{} = {from}", context.name)));
        }
        lines.extend(self.steps.describe());
        lines
    }
}

/// Comma-separated fields as Go's CSV reader splits them (a field may be quoted, `""` inside
/// quotes is a quote), as buildx reads its flags' values.
pub fn csv_fields(text: &str) -> std::result::Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if at_start => quoted = true,
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            other => field.push(other),
        }
        at_start = false;
    }
    if quoted {
        return Err("has a quote that is not closed; close it, or leave quotes out");
    }
    fields.push(field);
    Ok(fields)
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn label(text: &str) -> Result<(String, String)> {
    let (key, value) = text.split_once('=').unwrap_or((text, ""));
    if key.trim().is_empty() {
        return Err(BuildError::InvalidLabel { label: text.to_string() }.into());
    }
    Ok((key.to_string(), value.to_string()))
}

/// `--provenance`/`--sbom` as buildx canonicalizes them: a bool turns the attestation on (`type=T`)
/// or off (`None`); otherwise `key=value` fields, sent with `type=T` first and the rest sorted.
fn attestation(kind: &str, flag: &'static str, value: &str) -> Result<Option<String>> {
    let bad = |reason: String| BuildError::InvalidAttestation { flag, value: value.to_string(), reason };
    if let Some(on) = parse_bool(value.trim()) {
        return Ok(on.then(|| format!("type={kind}")));
    }
    let mut attrs = BTreeMap::new();
    for field in csv_fields(value).map_err(|r| bad(r.to_string()))? {
        let Some((key, val)) = field.split_once('=') else {
            return Err(bad(format!("has the field {field:?}, which is not key=value (or give true or false)")).into());
        };
        attrs.insert(key.trim().to_ascii_lowercase(), val.trim().to_string());
    }
    if let Some(other) = attrs.remove("type").filter(|t| t != kind) {
        return Err(bad(format!("has type={other}; {flag} is always type={kind}")).into());
    }
    if attrs.get("disabled").is_some_and(|d| parse_bool(d) == Some(true)) {
        return Ok(None);
    }
    attrs.remove("disabled");
    if kind == "provenance" {
        if let Some(mode) = attrs.get("mode").filter(|m| !matches!(m.as_str(), "min" | "max")) {
            return Err(bad(format!("has mode={mode}; mode is min or max")).into());
        }
    }
    if let Some(generator) = attrs.get("generator") {
        check_image_name(generator).map_err(|err| bad(format!("names a generator that {}", err.reason)))?;
    }
    let mut text = format!("type={kind}");
    for (key, val) in attrs {
        text.push_str(&format!(",{key}={val}"));
    }
    Ok(Some(text))
}

/// The `type` of an `--attest` value: `provenance` or `sbom`.
fn attest_type(value: &str) -> Result<&'static str> {
    let bad = |reason: &str| BuildError::InvalidAttestation {
        flag: "--attest",
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let fields = csv_fields(value).map_err(bad)?;
    let kind = fields.iter().find_map(|f| {
        let (key, val) = f.split_once('=')?;
        key.trim().eq_ignore_ascii_case("type").then(|| val.trim().to_string())
    });
    match kind.as_deref() {
        Some("provenance") => Ok("provenance"),
        Some("sbom") => Ok("sbom"),
        Some(_) => Err(bad("has a type BuildKit does not attest; use type=provenance or type=sbom").into()),
        None => Err(bad("has no type; write type=provenance[,mode=max] or type=sbom").into()),
    }
}

/// `HOST:IP` or `HOST=IP` (the form for IPv6), as buildx splits it; the IP may be in brackets.
fn extra_host(text: &str) -> Result<(String, String)> {
    let bad = |reason: &str| BuildError::InvalidAddHost { host: text.to_string(), reason: reason.to_string() };
    let (host, ip) = text
        .split_once('=')
        .or_else(|| text.split_once(':'))
        .ok_or_else(|| bad("is not HOST:IP; write it like --add-host db:10.0.0.5 (or db=::1 for IPv6)"))?;
    let ip = ip.trim().trim_start_matches('[').trim_end_matches(']');
    if host.trim().is_empty() {
        return Err(bad("has no host name before the IP").into());
    }
    if ip == "host-gateway" {
        return Err(bad(
            "asks for host-gateway, which BuildKit cannot resolve on a remote backend; give the host's IP address",
        )
        .into());
    }
    if ip.parse::<IpAddr>().is_err() {
        return Err(bad("has no valid IP address after the host name").into());
    }
    Ok((host.trim().to_string(), ip.to_string()))
}

/// A git repository or an HTTP(S) URL, which the backend fetches itself: buildx's test for a build's
/// PATH and for a `--build-context` value alike.
pub fn is_remote_url(text: &str) -> bool {
    ["http://", "https://", "git://", "github.com/", "git@"].iter().any(|prefix| text.starts_with(prefix))
}

/// `NAME=VALUE` of `--build-context`.
fn named_context(text: &str) -> Result<NamedContext> {
    let bad = |reason: String| BuildError::InvalidBuildContext { value: text.to_string(), reason };
    let Some((name, value)) = text.split_once('=') else {
        return Err(
            bad("is not NAME=VALUE; write it like --build-context base=docker-image://alpine:3.20".into()).into()
        );
    };
    let name = normalize_context_name(name.trim()).map_err(|reason| bad(reason.to_string()))?;
    let value = value.trim();
    let source = if let Some(image) = value.strip_prefix("docker-image://") {
        if image != "scratch" {
            check_image_name(image).map_err(|err| bad(format!("names an image that {}", err.reason)))?;
        }
        ContextSource::Image(value.to_string())
    } else if let Some(stage) = value.strip_prefix("target:") {
        return Err(bad(format!(
            "points at a stage: target: contexts are a buildx bake feature, and buildx build refuses them too; \
             in the Dockerfile, name the stage itself (FROM {stage} or COPY --from={stage})"
        ))
        .into());
    } else if let Some(layout) = value.strip_prefix("oci-layout://") {
        oci_layout(layout).map_err(bad)?
    } else if is_remote_url(value) {
        ContextSource::Url(value.to_string())
    } else if value.is_empty() {
        return Err(bad("has no value; give a folder, docker-image://REF or a git or https URL".into()).into());
    } else {
        let path = PathBuf::from(value);
        if !path.is_dir() {
            return Err(bad(format!(
                "names {value}, which is not a folder; give a folder, docker-image://REF or a git or https URL"
            ))
            .into());
        }
        // buildx's names for the folders, kept apart from the build's own two.
        let dir_name = if name == "context" || name == "dockerfile" { format!("_{name}") } else { name.clone() };
        ContextSource::Folder { path, dir_name }
    };
    Ok(NamedContext { name, source })
}

/// `PATH[:TAG][@DIGEST]` of an `oci-layout://` context, read as buildx reads it: the tag defaults
/// to `latest`, and a missing digest is the tag's in the folder's `index.json`.
fn oci_layout(text: &str) -> std::result::Result<ContextSource, String> {
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (text, None),
    };
    let (path, tag) = rest.split_once(':').unwrap_or((rest, "latest"));
    let path = PathBuf::from(path);
    if !path.join("index.json").is_file() {
        return Err(format!(
            "names {}, which is not an OCI layout folder (it has no index.json); give a folder that \
             -o type=oci,dest=DIR,tar=false or buildx wrote",
            path.display()
        ));
    }
    let digest = match digest {
        Some(digest) if crate::buildkit::content::valid_digest(digest) => digest.to_string(),
        Some(digest) => return Err(format!("has @{digest}, which is not a digest; write @sha256:HEX (64 hex digits)")),
        None => match crate::buildkit::content::lookup_index(&path, tag) {
            Ok(Some(descriptor)) => descriptor["digest"].as_str().unwrap_or_default().to_string(),
            Ok(None) => {
                return Err(format!(
                    "names the tag {tag}, which {}/index.json does not list; give a tag it lists, or @DIGEST",
                    path.display()
                ))
            }
            Err(reason) => return Err(reason),
        },
    };
    // The store's name on the session: the folder's, so the same folder is one store.
    let mut hash = Sha256::new();
    hash.update(std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone()).as_os_str().as_encoded_bytes());
    let store: String = hash.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect();
    Ok(ContextSource::OciLayout { path, tag: tag.to_string(), digest, store })
}

/// A context name as buildx normalizes it (Docker Hub's prefixes and `:latest` dropped), which
/// must be a valid lower-case image name.
fn normalize_context_name(name: &str) -> std::result::Result<String, &'static str> {
    if name.is_empty() {
        return Err("has no name before =");
    }
    if check_image_name(name).is_err() || name.contains('@') {
        return Err("has a name that is not a valid image name (lower case, such as base or docker.io/library/alpine)");
    }
    let short = name.strip_prefix("docker.io/library/").or_else(|| name.strip_prefix("docker.io/")).unwrap_or(name);
    Ok(short.strip_suffix(":latest").unwrap_or(short).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn checked(input: SolveInput) -> Result<SolveOptions> {
        check(&input, &[], true, &|_| None)
    }

    fn attrs(options: &SolveOptions) -> BTreeMap<String, String> {
        options.frontend_attrs().into_iter().collect()
    }

    #[test]
    fn an_oci_layout_context_is_served_from_its_folder_by_the_tag_s_digest() {
        let dir = std::env::temp_dir().join(format!("assemble-attrs-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let digest = format!("sha256:{}", "a".repeat(64));
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1,
            "annotations": {"org.opencontainers.image.ref.name": "1"}}]});
        std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
        let with = |value: String| checked(SolveInput { build_contexts: vec![value], ..Default::default() });
        let options = with(format!("base=oci-layout://{}:1", dir.display())).unwrap();
        let (key, folder) = options.oci_layouts().next().expect("one layout");
        assert_eq!(folder, &dir);
        let store = key.strip_prefix("oci:").expect("an oci: store");
        assert_eq!(attrs(&options)["context:base"], format!("oci-layout://{store}:1@{digest}"));
        assert_eq!(attrs(&options)["frontend.caps"], CONTEXTS_CAP);
        // A digest given is taken as given; a tag the index does not list is refused.
        let other = format!("sha256:{}", "b".repeat(64));
        let pinned = with(format!("base=oci-layout://{}@{other}", dir.display())).unwrap();
        assert_eq!(attrs(&pinned)["context:base"], format!("oci-layout://{store}:latest@{other}"));
        let missing = with(format!("base=oci-layout://{}:2", dir.display())).unwrap_err().to_string();
        assert!(missing.contains("names the tag 2, which") && missing.contains("does not list"), "{missing}");
        let bad = with(format!("base=oci-layout://{}@sha256:x", dir.display())).unwrap_err().to_string();
        assert!(bad.contains("which is not a digest"), "{bad}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_default_is_buildx_s_minimal_provenance_and_the_flags_replace_it() {
        let plain = checked(SolveInput::default()).unwrap();
        assert_eq!(attrs(&plain)["attest:provenance"], "mode=min,inline-only=true");
        assert!(plain.default_provenance && plain.entitlements().is_empty());
        let off = checked(SolveInput { provenance: Some("false".into()), ..Default::default() }).unwrap();
        assert!(!attrs(&off).contains_key("attest:provenance"));
        let max = checked(SolveInput { provenance: Some("mode=max".into()), ..Default::default() }).unwrap();
        assert_eq!(attrs(&max)["attest:provenance"], "type=provenance,mode=max");
        let on = checked(SolveInput { provenance: Some("true".into()), ..Default::default() }).unwrap();
        assert_eq!(attrs(&on)["attest:provenance"], "type=provenance");
        let disabled = checked(SolveInput { provenance: Some("mode=max,disabled=true".into()), ..Default::default() });
        assert!(!attrs(&disabled.unwrap()).contains_key("attest:provenance"));
        let env = check(&SolveInput::default(), &[], true, &|k| (k == NO_DEFAULT_ATTESTATIONS_ENV).then(|| "1".into()));
        assert!(!attrs(&env.unwrap()).contains_key("attest:provenance"));
        let attest = checked(SolveInput {
            attests: vec!["type=provenance,mode=max".into(), "type=sbom".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(attrs(&attest)["attest:provenance"], "type=provenance,mode=max");
        assert_eq!(attrs(&attest)["attest:sbom"], "type=sbom");
        assert!(!attest.default_provenance);
        let sbom_only = checked(SolveInput { attests: vec!["type=sbom".into()], ..Default::default() }).unwrap();
        assert_eq!(attrs(&sbom_only)["attest:provenance"], DEFAULT_PROVENANCE, "an SBOM keeps the default provenance");
        let sbom = checked(SolveInput { sbom: Some("true".into()), ..Default::default() }).unwrap();
        assert_eq!(attrs(&sbom)["attest:sbom"], "type=sbom");
        assert_eq!(sbom.sbom_scanner().as_deref(), Some(DEFAULT_SBOM_SCANNER));
        let named =
            checked(SolveInput { sbom: Some("generator=localhost:5000/scan:1".into()), ..Default::default() }).unwrap();
        assert_eq!(attrs(&named)["attest:sbom"], "type=sbom,generator=localhost:5000/scan:1");
        assert_eq!(named.sbom_scanner().as_deref(), Some("localhost:5000/scan:1"));
    }

    #[test]
    fn labels_pull_network_hosts_and_contexts_become_buildx_s_attributes() {
        let folder = std::env::temp_dir();
        let options = checked(SolveInput {
            labels: vec!["org.opencontainers.image.title=demo".into(), "flag".into()],
            pull: true,
            network: Some("host".into()),
            add_hosts: vec!["db:10.0.0.5,cache=[::1]".into()],
            build_contexts: vec![
                "docker.io/library/alpine:latest=docker-image://localhost:5000/alpine:3".into(),
                format!("assets={}", folder.display()),
                format!("context={}", folder.display()),
            ],
            ..Default::default()
        })
        .unwrap();
        let sent = attrs(&options);
        assert_eq!(sent["label:org.opencontainers.image.title"], "demo");
        assert_eq!(sent["label:flag"], "");
        assert_eq!(sent["image-resolve-mode"], "pull");
        assert_eq!(sent["force-network-mode"], "host");
        assert_eq!(options.entitlements(), ["network.host"]);
        assert_eq!(sent["add-hosts"], "db=10.0.0.5,cache=::1");
        assert_eq!(sent["context:alpine"], "docker-image://localhost:5000/alpine:3");
        assert_eq!(sent["context:assets"], "local:assets");
        assert_eq!(sent["context:context"], "local:_context");
        assert_eq!(sent["frontend.caps"], "moby.buildkit.frontend.contexts+forward");
        let folders: Vec<&str> = options.folders().map(|(name, _)| name).collect();
        assert_eq!(folders, ["assets", "_context"]);
        let none = checked(SolveInput { network: Some("none".into()), ..Default::default() }).unwrap();
        assert_eq!(attrs(&none)["force-network-mode"], "none");
        assert!(none.entitlements().is_empty());
    }

    #[test]
    fn each_bad_flag_is_one_sentence() {
        let refused = |input: SolveInput| match checked(input) {
            Err(Error::Build(err)) => err.to_string(),
            other => panic!("{other:?}"),
        };
        assert!(refused(SolveInput { labels: vec!["=x".into()], ..Default::default() }).contains("--label"));
        let network = refused(SolveInput { network: Some("bridge".into()), ..Default::default() });
        assert!(network.contains("default, none or host"), "{network}");
        for (host, says) in [
            ("db", "is not HOST:IP"),
            ("db:nope", "no valid IP"),
            ("db:host-gateway", "host-gateway"),
            (":1.2.3.4", "no host name"),
        ] {
            let said = refused(SolveInput { add_hosts: vec![host.into()], ..Default::default() });
            assert!(said.contains(says) && said.starts_with("--add-host"), "{host}: {said}");
        }
        for (context, says) in [
            ("base", "is not NAME=VALUE"),
            ("Base=docker-image://alpine", "not a valid image name"),
            ("base=target:build", "bake"),
            ("base=docker-image://Bad", "names an image that"),
            ("base=/no/such/folder", "not a folder"),
            ("base=oci-layout:///x", "OCI layout"),
        ] {
            let said = refused(SolveInput { build_contexts: vec![context.into()], ..Default::default() });
            assert!(said.contains(says) && said.starts_with("--build-context"), "{context}: {said}");
        }
        let twice = refused(SolveInput {
            build_contexts: vec!["a=docker-image://alpine".into(), "a=docker-image://busybox".into()],
            ..Default::default()
        });
        assert!(twice.contains("a second time"), "{twice}");
        for (value, says) in [("type=vex", "does not attest"), ("mode=max", "has no type")] {
            let said = refused(SolveInput { attests: vec![value.into()], ..Default::default() });
            assert!(said.contains(says) && said.starts_with("--attest"), "{value}: {said}");
        }
        for (value, says) in [("mode=all", "min or max"), ("type=sbom", "always type=provenance"), ("max", "key=value")]
        {
            let said = refused(SolveInput { provenance: Some(value.into()), ..Default::default() });
            assert!(said.contains(says) && said.starts_with("--provenance"), "{value}: {said}");
        }
    }

    #[test]
    fn csv_fields_are_split_as_go_splits_them() {
        assert_eq!(csv_fields("a=1,\"b=2,3\",c=\"\"\"q\"").unwrap(), ["a=1", "b=2,3", "c=\"\"\"q\""]);
        assert_eq!(csv_fields("\"x\"\"y\"").unwrap(), ["x\"y"]);
        assert!(csv_fields("\"open").is_err());
    }
}
