//! What a finished build leaves in files, as buildx writes them: `--iidfile` (the image ID) and
//! `--metadata-file` (BuildKit's exporter response, decoded, plus `buildx.build.ref`), and the
//! ID `-q` prints.
use std::{collections::HashMap, path::Path};

use base64::Engine as _;

use crate::{build::error::BuildError, Result};

/// The buildx builder and node our backend is registered as (`buildx create --name assemble`
/// names its only node `assemble0`): the prefix of `buildx.build.ref`.
pub const BUILDX_NODE: &str = "assemble/assemble0";

/// The image's ID as buildx gives it: the config digest (what `docker images` shows for a loaded
/// image), else the manifest's (or index's) digest; empty when no image was exported.
pub fn image_id(exporter_response: &HashMap<String, String>) -> String {
    exporter_response
        .get("containerimage.config.digest")
        .or_else(|| exporter_response.get("containerimage.digest"))
        .cloned()
        .unwrap_or_default()
}

/// The metadata file's JSON: every exporter response value, decoded as buildx decodes it (base64
/// of a non-empty JSON object or list of objects becomes that JSON, anything else stays text),
/// and `buildx.build.ref`.
pub fn metadata(exporter_response: &HashMap<String, String>, reference: &str) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (key, value) in exporter_response {
        map.insert(key.clone(), decode(key, value));
    }
    map.insert("buildx.build.ref".into(), format!("{BUILDX_NODE}/{reference}").into());
    // Sorted, as Go writes a map.
    let sorted: std::collections::BTreeMap<String, serde_json::Value> = map.into_iter().collect();
    serde_json::to_value(sorted).unwrap_or_default()
}

fn decode(key: &str, value: &str) -> serde_json::Value {
    if key == "result.json" {
        return serde_json::from_str(value).unwrap_or_else(|_| value.into());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    match decoded {
        Some(serde_json::Value::Object(object)) if !object.is_empty() => serde_json::Value::Object(object),
        Some(serde_json::Value::Array(list)) if !list.is_empty() && list.iter().all(|v| v.is_object()) => {
            serde_json::Value::Array(list)
        }
        _ => value.into(),
    }
}

/// How much of the recorded provenance the metadata file gets, from buildx's
/// `BUILDX_METADATA_PROVENANCE`: `min` (the default), `max`, or `disabled` (also any false value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataProvenance {
    /// No provenance in the file.
    Disabled,
    /// The provenance without its build configuration and metadata (buildx's default).
    Min,
    /// The whole provenance.
    Max,
}

impl MetadataProvenance {
    /// As buildx reads the variable: an unknown value is the default, `min`.
    pub fn parse(value: Option<&str>) -> Self {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("max") => Self::Max,
            Some("disabled" | "false" | "0" | "f") => Self::Disabled,
            _ => Self::Min,
        }
    }

    /// The mode `BUILDX_METADATA_PROVENANCE` asks for.
    pub fn from_env() -> Self {
        Self::parse(std::env::var("BUILDX_METADATA_PROVENANCE").ok().as_deref())
    }
}

/// A recorded provenance predicate as buildx puts it in the exporter response: a builder with
/// no ID dropped, and for `min` no `buildConfig` and no `metadata`; base64 of the JSON.
pub fn provenance_value(predicate: &[u8], mode: MetadataProvenance) -> std::result::Result<String, String> {
    let mut value: serde_json::Value =
        serde_json::from_slice(predicate).map_err(|e| format!("the recorded provenance is not JSON: {e}"))?;
    let object = value.as_object_mut().ok_or("the recorded provenance is not a JSON object")?;
    let builder_without_id =
        object.get("builder").is_some_and(|b| b.get("id").and_then(|id| id.as_str()).is_none_or(|id| id.is_empty()));
    if builder_without_id {
        object.remove("builder");
    }
    if mode == MetadataProvenance::Min {
        object.remove("buildConfig");
        object.remove("metadata");
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(value.to_string()))
}

/// The exporter response of finished build `reference` on the running `backend`, with the
/// provenance BuildKit recorded for it (`buildx.build.provenance`), for `--metadata-file`; a
/// warning when it was not read.
pub async fn exporter_response_with_provenance(
    backend: &crate::Backend,
    exporter_response: &HashMap<String, String>,
    reference: &str,
    mode: MetadataProvenance,
) -> (HashMap<String, String>, Option<String>) {
    let client = match backend.running().await {
        Ok(container) => crate::buildkit::BuildkitClient::connect(backend.docker(), &container.id).await,
        Err(err) => Err(err),
    };
    match client {
        Ok(client) => with_provenance(&client, exporter_response, reference, mode).await,
        Err(err) => (
            exporter_response.clone(),
            Some(format!("the build's provenance was not read for the metadata file: {err}")),
        ),
    }
}

/// The exporter response with `buildx.build.provenance` (or `…/PLATFORM` per platform) added from
/// build `reference`'s record on `client`'s backend, as buildx adds it before writing the metadata
/// file. A provenance that cannot be read is left out and said in the returned warning.
pub async fn with_provenance(
    client: &crate::buildkit::BuildkitClient,
    exporter_response: &HashMap<String, String>,
    reference: &str,
    mode: MetadataProvenance,
) -> (HashMap<String, String>, Option<String>) {
    let mut response = exporter_response.clone();
    if mode == MetadataProvenance::Disabled {
        return (response, None);
    }
    let recorded = match client.recorded_provenance(reference).await {
        Ok(recorded) => recorded,
        Err(err) => {
            return (response, Some(format!("the build's provenance was not read for the metadata file: {err}")))
        }
    };
    for entry in recorded {
        let key = match &entry.platform {
            Some(platform) => format!("buildx.build.provenance/{platform}"),
            None => "buildx.build.provenance".to_string(),
        };
        match provenance_value(&entry.predicate, mode) {
            Ok(value) => {
                response.insert(key, value);
            }
            Err(why) => return (response, Some(why)),
        }
    }
    (response, None)
}

/// Removes an image-ID file left from before, as buildx does before a build, so a failed build
/// never leaves an old ID behind.
pub fn clear_iidfile(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(write_error("--iidfile", path, &err)),
    }
}

/// Writes the image ID, without a newline (buildx's form).
pub fn write_iidfile(path: &Path, exporter_response: &HashMap<String, String>) -> Result<()> {
    std::fs::write(path, image_id(exporter_response)).map_err(|err| write_error("--iidfile", path, &err))
}

/// Writes the metadata file whole or not at all (a temporary file beside it, renamed).
pub fn write_metadata_file(path: &Path, exporter_response: &HashMap<String, String>, reference: &str) -> Result<()> {
    let text = serde_json::to_string_pretty(&metadata(exporter_response, reference)).unwrap_or_default();
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, path)).map_err(|err| {
        let _ = std::fs::remove_file(&temporary);
        write_error("--metadata-file", path, &err)
    })
}

fn write_error(flag: &'static str, path: &Path, err: &std::io::Error) -> crate::Error {
    BuildError::WriteResultFile { flag, path: path.display().to_string(), reason: err.to_string() }.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_for_the_metadata_file_is_trimmed_as_buildx_trims_it() {
        let predicate = br#"{"builder":{"id":""},"buildType":"https://mobyproject.org/buildkit@v1","invocation":{"configSource":{}},"buildConfig":{"llbDefinition":[]},"metadata":{"buildInvocationID":"x"},"materials":[]}"#;
        let decode = |text: String| -> serde_json::Value {
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(text).unwrap()).unwrap()
        };
        let min = decode(provenance_value(predicate, MetadataProvenance::Min).unwrap());
        assert_eq!(min["buildType"], "https://mobyproject.org/buildkit@v1");
        for gone in ["builder", "buildConfig", "metadata"] {
            assert!(min.get(gone).is_none(), "{gone} stays out in min: {min}");
        }
        let max = decode(provenance_value(predicate, MetadataProvenance::Max).unwrap());
        assert!(
            max.get("buildConfig").is_some() && max.get("metadata").is_some() && max.get("builder").is_none(),
            "{max}"
        );
        assert!(provenance_value(b"[1]", MetadataProvenance::Min).is_err());
        assert_eq!(MetadataProvenance::parse(None), MetadataProvenance::Min);
        assert_eq!(MetadataProvenance::parse(Some("MAX")), MetadataProvenance::Max);
        assert_eq!(MetadataProvenance::parse(Some("false")), MetadataProvenance::Disabled);
        assert_eq!(MetadataProvenance::parse(Some("disabled")), MetadataProvenance::Disabled);
        assert_eq!(MetadataProvenance::parse(Some("what")), MetadataProvenance::Min);
    }

    fn response() -> HashMap<String, String> {
        let descriptor = base64::engine::general_purpose::STANDARD
            .encode(r#"{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:aa","size":1}"#);
        HashMap::from([
            ("containerimage.digest".to_string(), "sha256:aa".to_string()),
            ("containerimage.descriptor".to_string(), descriptor),
            ("image.name".to_string(), "localhost:5000/app:1".to_string()),
            ("cache.manifest".to_string(), r#"{"mediaType":"x","digest":"sha256:cc","size":2}"#.to_string()),
        ])
    }

    #[test]
    fn the_metadata_is_buildx_s_decoded_response_and_ref() {
        let meta = metadata(&response(), "abc123");
        assert_eq!(meta["containerimage.digest"], "sha256:aa");
        assert_eq!(meta["containerimage.descriptor"]["digest"], "sha256:aa", "base64 JSON is embedded");
        assert_eq!(meta["image.name"], "localhost:5000/app:1");
        assert!(meta["cache.manifest"].is_string(), "plain JSON stays text, as buildx leaves it");
        assert_eq!(meta["buildx.build.ref"], "assemble/assemble0/abc123");
        assert_eq!(image_id(&response()), "sha256:aa");
        let mut loaded = response();
        loaded.insert("containerimage.config.digest".into(), "sha256:bb".into());
        assert_eq!(image_id(&loaded), "sha256:bb", "the config digest first");
        assert_eq!(image_id(&HashMap::new()), "");
    }

    #[test]
    fn the_files_are_written_whole_and_an_old_id_is_cleared() {
        let dir = std::env::temp_dir().join(format!("assemble-metadata-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let iid = dir.join("iid");
        std::fs::write(&iid, "old").unwrap();
        clear_iidfile(&iid).unwrap();
        assert!(!iid.exists());
        clear_iidfile(&iid).unwrap();
        write_iidfile(&iid, &response()).unwrap();
        assert_eq!(std::fs::read_to_string(&iid).unwrap(), "sha256:aa");
        let meta = dir.join("meta.json");
        write_metadata_file(&meta, &response(), "r1").unwrap();
        let read: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
        assert_eq!(read["buildx.build.ref"], "assemble/assemble0/r1");
        let refused = write_metadata_file(&dir.join("no/such/meta.json"), &response(), "r1").unwrap_err();
        assert!(refused.to_string().starts_with("--metadata-file could not be written"), "{refused}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
