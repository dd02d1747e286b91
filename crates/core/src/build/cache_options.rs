//! `--cache-from` and `--cache-to`, read as buildx reads them (`util/buildflags/cache.go`): a
//! value without `=` is a list of registry refs; otherwise comma-separated `key=value` fields with
//! a `type`. Checked here, before anything is sent, and turned into the solve's cache options and
//! the frontend's `cache-imports` attribute (what the BuildKit client library sends).
use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
};

use bollard_buildkit_proto::moby::buildkit::v1::{CacheOptions, CacheOptionsEntry};

use crate::{build::attrs::csv_fields, build::error::BuildError, reference::check_image_name, Result};

/// Which flag a cache entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheDirection {
    /// `--cache-from`: an import.
    From,
    /// `--cache-to`: an export.
    To,
}

impl CacheDirection {
    /// The flag, for sentences.
    pub fn flag(self) -> &'static str {
        match self {
            CacheDirection::From => "--cache-from",
            CacheDirection::To => "--cache-to",
        }
    }
}

/// One cache import or export: its type and attributes (sorted, as buildx sends them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// `registry`, `local`, `inline`.
    pub kind: String,
    /// The attributes, `type` left out.
    pub attrs: BTreeMap<String, String>,
}

impl CacheEntry {
    fn to_proto(&self) -> CacheOptionsEntry {
        CacheOptionsEntry { r#type: self.kind.clone(), attrs: self.attrs.clone().into_iter().collect() }
    }

    /// How the entry reads in a plan (`registry localhost:5000/app:cache (mode=max)`).
    pub fn describe(&self) -> String {
        let mut text = self.kind.clone();
        // The place first: a registry's ref, a local cache's folder.
        let place = ["ref", "dest", "src"].into_iter().find(|k| self.attrs.contains_key(*k));
        if let Some(reference) = place.and_then(|k| self.attrs.get(k)) {
            text.push(' ');
            text.push_str(reference);
        }
        let rest: Vec<String> =
            self.attrs.iter().filter(|(k, _)| Some(k.as_str()) != place).map(|(k, v)| format!("{k}={v}")).collect();
        if !rest.is_empty() {
            text.push_str(&format!(" ({})", rest.join(", ")));
        }
        text
    }
}

/// The caches a build imports and exports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePlan {
    /// `--cache-from`, in order.
    pub imports: Vec<CacheEntry>,
    /// `--cache-to`, in order (and `inline` for `--build-arg BUILDKIT_INLINE_CACHE=1`).
    pub exports: Vec<CacheEntry>,
    /// What was left out, one sentence each: a local cache to import that is not there (buildx
    /// warns and builds without it).
    pub warnings: Vec<String>,
}

/// Attributes a registry cache takes, with the values each allows (`None`: any non-empty text).
const REGISTRY_KEYS: [(&str, Option<&[&str]>); 9] = [
    ("ref", None),
    ("mode", Some(&["min", "max"])),
    ("image-manifest", Some(BOOLS)),
    ("oci-mediatypes", Some(BOOLS)),
    ("ignore-error", Some(BOOLS)),
    ("compression", Some(&["uncompressed", "gzip", "estargz", "zstd"])),
    ("compression-level", None),
    ("force-compression", Some(BOOLS)),
    ("registry.insecure", Some(BOOLS)),
];

/// Attributes a local cache export takes (`dest` and `tag` stay ours too: BuildKit names the
/// store by `dest`, and we tag `index.json` with `tag`).
const LOCAL_EXPORT_KEYS: [(&str, Option<&[&str]>); 9] = [
    ("dest", None),
    ("tag", None),
    ("mode", Some(&["min", "max"])),
    ("image-manifest", Some(BOOLS)),
    ("oci-mediatypes", Some(BOOLS)),
    ("ignore-error", Some(BOOLS)),
    ("compression", Some(&["uncompressed", "gzip", "estargz", "zstd"])),
    ("compression-level", None),
    ("force-compression", Some(BOOLS)),
];

/// Attributes a local cache import takes.
const LOCAL_IMPORT_KEYS: [(&str, Option<&[&str]>); 3] = [("src", None), ("tag", None), ("digest", None)];

/// What Go's `strconv.ParseBool` takes, as BuildKit reads these attributes.
const BOOLS: &[&str] = &["true", "false", "1", "0", "t", "f", "TRUE", "FALSE", "True", "False", "T", "F"];

/// Reads one `--cache-from`/`--cache-to` value into its entries, checked.
pub fn parse(direction: CacheDirection, value: &str) -> Result<Vec<CacheEntry>> {
    let bad = |reason: String| BuildError::InvalidCache { flag: direction.flag(), value: value.to_string(), reason };
    let fields = csv_fields(value).map_err(|reason| bad(reason.to_string()))?;
    if fields.is_empty() || fields.iter().all(|f| f.trim().is_empty()) {
        return Err(bad("is empty; give a registry ref, or type=registry,ref=REF".into()).into());
    }
    // buildx: no `=` anywhere means each field is a registry ref.
    if !value.contains('=') {
        return fields
            .iter()
            .map(|field| {
                let entry = CacheEntry {
                    kind: "registry".into(),
                    attrs: BTreeMap::from([("ref".to_string(), field.trim().to_string())]),
                };
                check(direction, &entry).map_err(bad)?;
                Ok(entry)
            })
            .collect();
    }
    let mut kind = None;
    let mut attrs = BTreeMap::new();
    for field in &fields {
        let Some((key, val)) = field.split_once('=') else {
            return Err(bad(format!("has the field {field:?}, which is not key=value")).into());
        };
        let key = key.trim().to_ascii_lowercase();
        if key == "type" {
            kind = Some(val.trim().to_string());
        } else {
            attrs.insert(key, val.to_string());
        }
    }
    let Some(kind) = kind else {
        return Err(bad("has no type; write type=registry,ref=REF (or type=inline for --cache-to)".into()).into());
    };
    let entry = CacheEntry { kind, attrs };
    check(direction, &entry).map_err(bad)?;
    Ok(vec![entry])
}

/// Why `entry` cannot be used, as the end of a sentence.
fn check(direction: CacheDirection, entry: &CacheEntry) -> std::result::Result<(), String> {
    match (entry.kind.as_str(), direction) {
        ("registry", _) => {
            let Some(reference) = entry.attrs.get("ref").filter(|r| !r.trim().is_empty()) else {
                return Err("has no ref; add ref=REGISTRY/NAME:TAG, for example ref=localhost:5000/app:cache".into());
            };
            check_image_name(reference).map_err(|err| format!("has a ref that {}", err.reason))?;
            check_keys(entry, "a registry cache", &REGISTRY_KEYS)
        }
        ("local", CacheDirection::To) => {
            let Some(dest) = entry.attrs.get("dest").filter(|d| !d.trim().is_empty()) else {
                return Err("has no dest; add dest=FOLDER (made if missing)".into());
            };
            check_keys(entry, "a local cache export", &LOCAL_EXPORT_KEYS)?;
            if PathBuf::from(dest).exists() && !PathBuf::from(dest).is_dir() {
                return Err(format!("has dest={dest}, which is a file; give a folder (made if missing)"));
            }
            Ok(())
        }
        ("local", CacheDirection::From) => {
            if entry.attrs.get("src").is_none_or(|s| s.trim().is_empty()) {
                return Err("has no src; add src=FOLDER (a folder written by --cache-to type=local,dest=FOLDER)".into());
            }
            check_keys(entry, "a local cache import", &LOCAL_IMPORT_KEYS)?;
            match entry.attrs.get("digest") {
                Some(digest) if !crate::buildkit::content::valid_digest(digest) => {
                    Err(format!("has digest={digest}, which is not a digest; write digest=sha256:HEX (64 hex digits)"))
                }
                _ => Ok(()),
            }
        }
        ("inline", CacheDirection::From) => Err(
            "is an inline cache, which is imported from the image itself: write --cache-from IMAGE (the image pushed with --cache-to type=inline)".into(),
        ),
        ("inline", CacheDirection::To) => match entry.attrs.iter().next() {
            None => Ok(()),
            Some((key, value)) if key == "mode" && value == "min" => Ok(()),
            Some((key, value)) if key == "mode" => Err(format!(
                "has mode={value}, but an inline cache holds only the image's own steps (mode=min); use type=registry,ref=REF,mode=max for every step"
            )),
            Some((key, _)) => Err(format!("has {key}=, which an inline cache does not take (it takes no option)")),
        },
        ("gha" | "s3" | "azblob", _) => Err(format!(
            "is a {} cache, which assemble build does not serve; use type=registry,ref=REF or type=local (or docker buildx build --builder assemble)",
            entry.kind
        )),
        (other, _) => Err(format!(
            "has type={other}, which is not a cache type; use type=registry, type=local or type=inline"
        )),
    }
}

/// Why an attribute of `entry` is not one `what` takes (`keys`, with the values each allows).
fn check_keys(entry: &CacheEntry, what: &str, keys: &[(&str, Option<&[&str]>)]) -> std::result::Result<(), String> {
    for (key, value) in &entry.attrs {
        let Some((_, allowed)) = keys.iter().find(|(known, _)| known == key) else {
            let known: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
            return Err(format!("has {key}=, which {what} does not take (it takes {})", known.join(", ")));
        };
        match allowed {
            Some(values) if !values.contains(&value.as_str()) => {
                let shown: Vec<&str> = values
                    .iter()
                    .copied()
                    .filter(|v| v.len() > 1 && v.chars().all(|c| c.is_ascii_lowercase()))
                    .collect();
                return Err(format!("has {key}={value}; {key} is one of {}", shown.join(", ")));
            }
            None if value.trim().is_empty() => return Err(format!("has an empty {key}")),
            _ => {}
        }
    }
    Ok(())
}

/// A local cache import as BuildKit's Go client prepares it (`parseCacheOptions`): without a
/// `digest`, the one `index.json` in `src` names by `tag` (default `latest`). `Ok(None)`, with a
/// warning, when the folder or its index cannot be read: buildx warns and builds without it.
fn resolve_local_import(mut entry: CacheEntry) -> std::result::Result<(Option<CacheEntry>, Option<String>), String> {
    if entry.attrs.contains_key("digest") {
        return Ok((Some(entry), None));
    }
    let src = entry.attrs.get("src").cloned().unwrap_or_default();
    let tag = entry.attrs.get("tag").cloned().unwrap_or_else(|| "latest".to_string());
    match crate::buildkit::content::lookup_index(&PathBuf::from(&src), &tag) {
        Err(reason) => Ok((
            None,
            Some(format!("local cache import at {src} not found ({reason}); building without it, as buildx does")),
        )),
        Ok(None) => Err(format!(
            "names no digest, and {src}/index.json has no entry tagged {tag:?}; add tag=TAG or digest=sha256:HEX"
        )),
        Ok(Some(descriptor)) => match descriptor["digest"].as_str() {
            Some(digest) => {
                entry.attrs.insert("digest".into(), digest.to_string());
                Ok((Some(entry), None))
            }
            None => Err(format!("names no digest, and the entry tagged {tag:?} in {src}/index.json has none")),
        },
    }
}

/// The checked caches of a build: every `--cache-from` and `--cache-to` value, and the inline
/// export buildx adds for `--build-arg BUILDKIT_INLINE_CACHE=1` (any true value). `image_output`
/// says whether the build exports an image (an inline cache rides in it).
pub fn plan(from: &[String], to: &[String], build_args: &[(String, String)], image_output: bool) -> Result<CachePlan> {
    let mut cache = CachePlan::default();
    for value in from {
        for entry in parse(CacheDirection::From, value)? {
            if entry.kind != "local" {
                cache.imports.push(entry);
                continue;
            }
            let (entry, warning) = resolve_local_import(entry).map_err(|reason| BuildError::InvalidCache {
                flag: "--cache-from",
                value: value.clone(),
                reason,
            })?;
            cache.imports.extend(entry);
            cache.warnings.extend(warning);
        }
    }
    for value in to {
        cache.exports.extend(parse(CacheDirection::To, value)?);
    }
    let inline_arg = build_args
        .iter()
        .any(|(k, v)| k == "BUILDKIT_INLINE_CACHE" && matches!(v.as_str(), "1" | "true" | "True" | "TRUE" | "t" | "T"));
    if inline_arg && !cache.exports.iter().any(|e| e.kind == "inline") {
        cache.exports.push(CacheEntry { kind: "inline".into(), attrs: BTreeMap::new() });
    }
    // BuildKit refuses two exports of one type; say it before sending.
    for (index, entry) in cache.exports.iter().enumerate() {
        if cache.exports[..index].iter().any(|e| e.kind == entry.kind) {
            return Err(BuildError::InvalidCache {
                flag: "--cache-to",
                value: entry.describe(),
                reason: format!(
                    "is a second {} cache export; BuildKit takes one of each type, so keep one",
                    entry.kind
                ),
            }
            .into());
        }
    }
    if !image_output {
        if let Some(inline) = cache.exports.iter().find(|e| e.kind == "inline") {
            return Err(BuildError::InvalidCache {
                flag: "--cache-to",
                value: inline.describe(),
                reason: "writes the cache into the image, but this build exports no image; add --push or --load".into(),
            }
            .into());
        }
    }
    Ok(cache)
}

impl CachePlan {
    /// Whether there is nothing to import or export.
    pub fn is_empty(&self) -> bool {
        self.imports.is_empty() && self.exports.is_empty()
    }

    /// The content stores the session serves for local caches, by the ID BuildKit names them with:
    /// `local:` and the folder as typed (a relative folder is this process's).
    pub fn content_stores(&self) -> HashMap<String, PathBuf> {
        let mut stores = HashMap::new();
        for entry in self.exports.iter().chain(&self.imports).filter(|e| e.kind == "local") {
            if let Some(dir) = entry.attrs.get("dest").or(entry.attrs.get("src")) {
                stores.insert(format!("local:{dir}"), PathBuf::from(dir));
            }
        }
        stores
    }

    /// The local cache exports: each folder and the tag its `index.json` entry gets (default
    /// `latest`).
    pub fn local_exports(&self) -> Vec<(PathBuf, String)> {
        self.exports
            .iter()
            .filter(|e| e.kind == "local")
            .filter_map(|e| {
                let dest = e.attrs.get("dest")?;
                Some((PathBuf::from(dest), e.attrs.get("tag").cloned().unwrap_or_else(|| "latest".to_string())))
            })
            .collect()
    }

    /// The solve's cache options.
    pub fn to_proto(&self) -> CacheOptions {
        CacheOptions {
            exports: self.exports.iter().map(CacheEntry::to_proto).collect(),
            imports: self.imports.iter().map(CacheEntry::to_proto).collect(),
            ..Default::default()
        }
    }

    /// The frontend's `cache-imports` attribute: the imports as Go's JSON of
    /// `[]CacheOptionsEntry` (`Type`, `Attrs`), which the Dockerfile frontend reads to resolve
    /// its stages against them. `None` without imports.
    pub fn imports_attr(&self) -> Option<String> {
        if self.imports.is_empty() {
            return None;
        }
        let list: Vec<serde_json::Value> =
            self.imports.iter().map(|entry| serde_json::json!({ "Type": entry.kind, "Attrs": entry.attrs })).collect();
        Some(serde_json::Value::Array(list).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn values_are_read_as_buildx_reads_them() {
        let refs = parse(CacheDirection::From, "localhost:5000/a:cache,localhost:5000/b:cache").unwrap();
        assert_eq!(refs.len(), 2, "no `=`: each field is a registry ref");
        assert_eq!(refs[1], CacheEntry { kind: "registry".into(), attrs: attrs(&[("ref", "localhost:5000/b:cache")]) });
        let full = parse(
            CacheDirection::To,
            "TYPE=registry,Ref=localhost:5000/a:cache,mode=max,image-manifest=true,oci-mediatypes=false",
        )
        .unwrap();
        assert_eq!(
            full,
            [CacheEntry {
                kind: "registry".into(),
                attrs: attrs(&[
                    ("image-manifest", "true"),
                    ("mode", "max"),
                    ("oci-mediatypes", "false"),
                    ("ref", "localhost:5000/a:cache")
                ])
            }]
        );
        assert_eq!(parse(CacheDirection::To, "type=inline").unwrap()[0].kind, "inline");
        assert_eq!(
            full[0].describe(),
            "registry localhost:5000/a:cache (image-manifest=true, mode=max, oci-mediatypes=false)"
        );
    }

    #[test]
    fn each_bad_value_is_one_sentence_naming_the_flag() {
        let said = |direction, value: &str| match parse(direction, value) {
            Err(Error::Build(err @ BuildError::InvalidCache { .. })) => err.to_string(),
            other => panic!("{value}: {other:?}"),
        };
        assert_eq!(
            said(CacheDirection::To, "type=registry"),
            "--cache-to \"type=registry\" has no ref; add ref=REGISTRY/NAME:TAG, for example ref=localhost:5000/app:cache"
        );
        assert!(said(CacheDirection::To, "ref=localhost:5000/a").contains("has no type"));
        assert!(said(CacheDirection::To, "type=registry,ref=x,mode=all").ends_with("mode is one of min, max"));
        assert!(said(CacheDirection::To, "type=registry,ref=x,image-manifest=yes")
            .contains("image-manifest is one of true, false"));
        assert!(said(CacheDirection::To, "type=registry,ref=x,colour=red").contains("does not take"));
        assert!(said(CacheDirection::To, "type=registry,ref=Bad:Name").contains("has a ref that"));
        assert!(said(CacheDirection::From, "type=inline").contains("--cache-from IMAGE"));
        assert!(said(CacheDirection::To, "type=inline,mode=max").contains("mode=min"));
        assert!(said(CacheDirection::To, "type=gha").contains("does not serve"));
        assert!(said(CacheDirection::To, "type=local").contains("has no dest; add dest=FOLDER"));
        assert!(said(CacheDirection::From, "type=local,dest=/tmp/c").contains("has no src"));
        assert!(said(CacheDirection::To, "type=local,dest=/tmp/c,ref=x")
            .contains("which a local cache export does not take"));
        assert!(said(CacheDirection::To, "type=local,dest=/tmp/c,mode=all").ends_with("mode is one of min, max"));
        assert!(said(CacheDirection::From, "type=local,src=/tmp/c,digest=abc").contains("write digest=sha256:HEX"));
        assert!(
            said(CacheDirection::From, "type=local,src=/tmp/c,mode=max").contains("a local cache import does not take")
        );
        let file = std::env::temp_dir().join(format!("assemble-cache-file-{}", std::process::id()));
        std::fs::write(&file, "").unwrap();
        assert!(said(CacheDirection::To, &format!("type=local,dest={}", file.display())).contains("which is a file"));
        std::fs::remove_file(file).unwrap();
        assert!(said(CacheDirection::To, "type=floppy").contains("not a cache type"));
        assert!(said(CacheDirection::To, "type=registry,ref=x,mode").contains("not key=value"));
        assert!(said(CacheDirection::From, "").contains("is empty"));
        assert!(said(CacheDirection::From, "\"unclosed").contains("quote"));
    }

    #[test]
    fn a_local_import_is_resolved_from_index_json_or_left_out_with_buildx_s_warning() {
        let dir = std::env::temp_dir().join(format!("assemble-cache-local-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.display().to_string();
        let missing = format!("type=local,src={src}/none");
        let skipped = plan(&[missing], &[], &[], false).unwrap();
        assert!(skipped.imports.is_empty(), "left out, as buildx");
        assert!(skipped.warnings[0].starts_with(&format!("local cache import at {src}/none not found")), "{skipped:?}");
        let digest = format!("sha256:{}", "b".repeat(64));
        let descriptor =
            serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": 1});
        crate::buildkit::content::put_index(
            &dir,
            &descriptor,
            &[crate::buildkit::content::IndexName::Tag("latest".into())],
        )
        .unwrap();
        let cache =
            plan(&[format!("type=local,src={src}")], &[format!("type=local,dest={src},mode=max")], &[], false).unwrap();
        assert_eq!(cache.imports[0].attrs["digest"], digest);
        assert!(cache.warnings.is_empty());
        let sent: serde_json::Value = serde_json::from_str(&cache.imports_attr().unwrap()).unwrap();
        assert_eq!(
            sent,
            serde_json::json!([{"Type": "local", "Attrs": {"digest": digest, "src": src}}]),
            "as Go's client"
        );
        assert_eq!(cache.content_stores(), HashMap::from([(format!("local:{src}"), dir.clone())]));
        assert_eq!(cache.local_exports(), [(dir.clone(), "latest".to_string())]);
        let untagged = plan(&[format!("type=local,src={src},tag=v2")], &[], &[], false).unwrap_err();
        assert!(untagged.to_string().contains("has no entry tagged \"v2\""), "{untagged}");
        assert_eq!(cache.exports[0].describe(), format!("local {src} (mode=max)"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_plan_adds_buildx_s_inline_export_refuses_duplicates_and_speaks_go_json() {
        let args = [("BUILDKIT_INLINE_CACHE".to_string(), "1".to_string())];
        let cache = plan(
            &["localhost:5000/a:c".into()],
            &["type=registry,ref=localhost:5000/a:c,mode=max".into()],
            &args,
            true,
        )
        .unwrap();
        assert_eq!(cache.exports.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["registry", "inline"]);
        let sent: serde_json::Value = serde_json::from_str(&cache.imports_attr().unwrap()).unwrap();
        assert_eq!(sent, serde_json::json!([{"Type": "registry", "Attrs": {"ref": "localhost:5000/a:c"}}]));
        let proto = cache.to_proto();
        assert_eq!((proto.imports.len(), proto.exports.len()), (1, 2));
        assert_eq!(proto.exports[0].attrs["mode"], "max");
        let refused = plan(&[], &["type=inline".into()], &[], false).unwrap_err();
        assert!(refused.to_string().contains("add --push or --load"), "{refused}");
        let twice = plan(&[], &["localhost:5000/a:1".into(), "localhost:5000/a:2".into()], &[], true).unwrap_err();
        assert!(twice.to_string().contains("one of each type"), "{twice}");
        assert!(plan(&[], &[], &[], false).unwrap().is_empty());
        assert_eq!(plan(&[], &[], &[], false).unwrap().imports_attr(), None);
    }
}
