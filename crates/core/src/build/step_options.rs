//! What the build's `RUN` steps get and which stages skip the cache, and the annotations its image
//! carries, as buildx reads the flags (`build/opt.go`, `util/buildflags/annotations.go`):
//! `--shm-size`, `--ulimit`, `--cgroup-parent` and `--no-cache-filter` become frontend attributes;
//! `--annotation` becomes attributes of the image, oci and docker exporters.
use crate::{build::error::BuildError, buildkit::platform::Platform, Result};

/// The names `--ulimit` takes (Docker's `units.ParseUlimit`).
const ULIMIT_NAMES: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// The annotation types BuildKit's exporters know (exptypes `Annotation*`).
const ANNOTATION_TYPES: [&str; 4] = ["manifest", "manifest-descriptor", "index", "index-descriptor"];

/// The flags as typed.
#[derive(Debug, Clone, Default)]
pub struct StepInput {
    /// `--shm-size`: the size of `/dev/shm` for `RUN` steps (`128m`, `1g`, bytes).
    pub shm_size: Option<String>,
    /// `--ulimit NAME=SOFT[:HARD]`, each as typed.
    pub ulimits: Vec<String>,
    /// `--cgroup-parent`.
    pub cgroup_parent: Option<String>,
    /// `--no-cache-filter STAGE`, each as typed (commas allowed).
    pub no_cache_filter: Vec<String>,
    /// `--annotation [TYPE[PLATFORM]:]KEY=VALUE`, each as typed.
    pub annotations: Vec<String>,
}

/// The checked options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepOptions {
    /// `/dev/shm`'s size in bytes.
    pub shm_size: Option<u64>,
    /// Each ulimit as BuildKit takes it, `name=soft:hard`.
    pub ulimits: Vec<String>,
    /// The cgroup parent.
    pub cgroup_parent: Option<String>,
    /// The stages built without the cache.
    pub no_cache_filter: Vec<String>,
    /// Exporter attributes (`annotation-manifest[linux/amd64].KEY` → value), in order typed.
    pub annotations: Vec<(String, String)>,
}

/// Checks the flags.
pub fn check(input: &StepInput) -> Result<StepOptions> {
    let shm_size = input.shm_size.as_deref().map(ram_in_bytes).transpose()?;
    let ulimits = input.ulimits.iter().map(|u| ulimit(u)).collect::<Result<Vec<_>>>()?;
    let cgroup_parent = input.cgroup_parent.as_ref().map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
    let no_cache_filter: Vec<String> = input
        .no_cache_filter
        .iter()
        .flat_map(|f| f.split(','))
        .map(|stage| stage.trim().to_string())
        .filter(|stage| !stage.is_empty())
        .collect();
    let annotations = input.annotations.iter().map(|a| annotation(a)).collect::<Result<Vec<_>>>()?;
    Ok(StepOptions { shm_size, ulimits, cgroup_parent, no_cache_filter, annotations })
}

impl StepOptions {
    /// The frontend attributes, as buildx sends them (`no-cache` with stages replaces a bare
    /// `--no-cache`'s empty value, as in buildx, where the filter is set last).
    pub fn frontend_attrs(&self) -> Vec<(String, String)> {
        let mut attrs = Vec::new();
        if let Some(size) = self.shm_size.filter(|s| *s > 0) {
            attrs.push(("shm-size".to_string(), size.to_string()));
        }
        if !self.ulimits.is_empty() {
            attrs.push(("ulimit".to_string(), self.ulimits.join(",")));
        }
        if let Some(parent) = &self.cgroup_parent {
            attrs.push(("cgroup-parent".to_string(), parent.clone()));
        }
        if !self.no_cache_filter.is_empty() {
            attrs.push(("no-cache".to_string(), self.no_cache_filter.join(",")));
        }
        attrs
    }

    /// The plan's lines (label, value), for `--dry-run`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let mut lines = Vec::new();
        if let Some(size) = self.shm_size {
            lines.push(("Shm size:", crate::units::binary_size(size)));
        }
        lines.extend(self.ulimits.iter().map(|u| ("Ulimit:", u.clone())));
        if let Some(parent) = &self.cgroup_parent {
            lines.push(("Cgroup parent:", parent.clone()));
        }
        if !self.no_cache_filter.is_empty() {
            lines.push(("No cache for:", self.no_cache_filter.join(", ")));
        }
        lines.extend(self.annotations.iter().map(|(k, v)| ("Annotation:", format!("{k}={v}"))));
        lines
    }
}

fn invalid(flag: &'static str, value: &str, reason: &str) -> crate::Error {
    BuildError::InvalidStepOption { flag, value: value.to_string(), reason: reason.to_string() }.into()
}

/// Docker's `RAMInBytes`: a number, then `b`, `k`, `m`, `g`, `t` or `p` (any case, an optional
/// `b`/`ib` after), each a power of 1024.
fn ram_in_bytes(typed: &str) -> Result<u64> {
    let text = typed.trim().to_ascii_lowercase();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim_start();
    let multiplier: u64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => {
            return Err(invalid(
                "--shm-size",
                typed,
                "has a unit Docker does not know; use b, k, m, g or t (such as 128m)",
            ))
        }
    };
    let value: f64 =
        number.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0).ok_or_else(|| {
            invalid("--shm-size", typed, "is not a size; give a number and a unit, such as 128m or 1g")
        })?;
    Ok((value * multiplier as f64) as u64)
}

/// Docker's `ParseUlimit`: `NAME=SOFT[:HARD]`, numbers (`-1` is unlimited), soft at most hard.
fn ulimit(typed: &str) -> Result<String> {
    let text = typed.trim();
    let (name, limits) = text
        .split_once('=')
        .ok_or_else(|| invalid("--ulimit", typed, "is not NAME=SOFT[:HARD], such as nofile=1024:2048"))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(invalid("--ulimit", typed, &format!("names no limit; the names are {}", ULIMIT_NAMES.join(", "))));
    }
    let number = |part: &str| {
        part.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= -1)
            .ok_or_else(|| invalid("--ulimit", typed, "has a limit that is not a number (-1 is unlimited)"))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((soft, hard)) => (number(soft)?, number(hard)?),
        None => {
            let both = number(limits)?;
            (both, both)
        }
    };
    if hard != -1 && (soft == -1 || soft > hard) {
        return Err(invalid("--ulimit", typed, "has a soft limit above its hard limit"));
    }
    Ok(format!("{name}={soft}:{hard}"))
}

/// buildx's `ParseAnnotations`: `[TYPE[PLATFORM]:]KEY=VALUE` → the exporter attribute
/// (`annotation[-TYPE][[PLATFORM]].KEY`) and the value.
fn annotation(typed: &str) -> Result<(String, String)> {
    let (key_part, value) = typed.split_once('=').ok_or_else(|| {
        invalid("--annotation", typed, "is not KEY=VALUE (or TYPE:KEY=VALUE, such as index:KEY=VALUE)")
    })?;
    let (kind, key) = match key_part.split_once(':') {
        // A key may hold ':' itself only after a type; a bare one is read as buildx reads it.
        Some((kind, key)) if kind.chars().all(|c| c.is_ascii_lowercase() || "-[]/_0123456789".contains(c)) => {
            (Some(kind), key)
        }
        _ => (None, key_part),
    };
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(invalid("--annotation", typed, "has an empty key or a key with spaces"));
    }
    let mut prefix = String::from("annotation");
    if let Some(kind) = kind {
        let (name, platform) = match kind.split_once('[') {
            Some((name, rest)) => {
                let platform = rest
                    .strip_suffix(']')
                    .ok_or_else(|| invalid("--annotation", typed, "has a platform without its closing ]"))?;
                (name, Some(platform))
            }
            None => (kind, None),
        };
        if !ANNOTATION_TYPES.contains(&name) {
            return Err(invalid(
                "--annotation",
                typed,
                &format!("has the type {name:?}; the types are {}", ANNOTATION_TYPES.join(", ")),
            ));
        }
        prefix.push('-');
        prefix.push_str(name);
        if let Some(platform) = platform {
            let platform = Platform::parse(platform)
                .ok_or_else(|| invalid("--annotation", typed, "has a platform that is not OS/ARCH[/VARIANT]"))?;
            prefix.push_str(&format!("[{platform}]"));
        }
    }
    Ok((format!("{prefix}.{key}"), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(input: StepInput) -> StepOptions {
        check(&input).unwrap()
    }

    #[test]
    fn shm_sizes_are_dockers_powers_of_1024() {
        for (typed, bytes) in
            [("128m", 128 << 20), ("1g", 1 << 30), ("1GB", 1 << 30), ("64MiB", 64 << 20), ("4096", 4096)]
        {
            assert_eq!(ram_in_bytes(typed).unwrap(), bytes, "{typed}");
        }
        for bad in ["", "m", "12q", "-1m", "1.2.3"] {
            assert!(ram_in_bytes(bad).is_err(), "{bad}");
        }
        let options = checked(StepInput { shm_size: Some("128m".into()), ..Default::default() });
        assert_eq!(options.frontend_attrs(), [("shm-size".to_string(), "134217728".to_string())]);
    }

    #[test]
    fn ulimits_are_name_soft_hard() {
        assert_eq!(ulimit("nofile=1024:2048").unwrap(), "nofile=1024:2048");
        assert_eq!(ulimit("nproc=512").unwrap(), "nproc=512:512");
        assert_eq!(ulimit("core=-1:-1").unwrap(), "core=-1:-1");
        let sentence = |typed: &str| ulimit(typed).unwrap_err().to_string();
        assert!(sentence("files=1").contains("the names are core, cpu"), "{}", sentence("files=1"));
        assert!(sentence("nofile=2048:1024").contains("soft limit above its hard limit"));
        assert!(sentence("nofile").contains("NAME=SOFT[:HARD]"));
        assert!(sentence("nofile=many").contains("not a number"));
        let options =
            checked(StepInput { ulimits: vec!["nofile=1024:2048".into(), "nproc=64".into()], ..Default::default() });
        assert_eq!(options.frontend_attrs(), [("ulimit".to_string(), "nofile=1024:2048,nproc=64:64".to_string())]);
    }

    #[test]
    fn no_cache_filters_and_the_cgroup_parent_are_attributes() {
        let options = checked(StepInput {
            no_cache_filter: vec!["deps,test".into(), "final".into()],
            cgroup_parent: Some("builds.slice".into()),
            ..Default::default()
        });
        assert_eq!(
            options.frontend_attrs(),
            [
                ("cgroup-parent".to_string(), "builds.slice".to_string()),
                ("no-cache".to_string(), "deps,test,final".to_string())
            ]
        );
        assert!(checked(StepInput::default()).frontend_attrs().is_empty());
    }

    #[test]
    fn annotations_take_buildx_s_types_and_platforms() {
        assert_eq!(
            annotation("org.opencontainers.image.title=app").unwrap().0,
            "annotation.org.opencontainers.image.title"
        );
        assert_eq!(annotation("index:a.b=c d").unwrap(), ("annotation-index.a.b".to_string(), "c d".to_string()));
        assert_eq!(annotation("manifest[linux/arm64]:k=v").unwrap().0, "annotation-manifest[linux/arm64].k");
        assert_eq!(
            annotation("manifest-descriptor:k=").unwrap(),
            ("annotation-manifest-descriptor.k".to_string(), String::new())
        );
        let sentence = |typed: &str| annotation(typed).unwrap_err().to_string();
        assert!(
            sentence("layer:k=v").contains("the types are manifest, manifest-descriptor, index"),
            "{}",
            sentence("layer:k=v")
        );
        assert!(sentence("novalue").contains("KEY=VALUE"));
        assert!(sentence("manifest[linux/:k=v").contains("closing ]"));
        assert!(sentence("=v").contains("empty key"));
    }
}
