//! An image's export (`docker save`, the engine's `GET /images/{id}/get`) turned into what a
//! registry serves: every file is hashed as it streams by and large ones are written straight into
//! the blob folder under their digest; at the end the export's manifest.json says which file is the
//! config and which are the layers, and we check that the content is exactly the engine's (the
//! config's digest is the image ID, each uncompressed layer's digest is its diff ID) before we write
//! the OCI manifest that names them. Both of the engine's export formats are read: the classic one
//! (`<id>.json`, `<layer>/layer.tar`) and the OCI layout (`blobs/sha256/…`, with manifest.json).
use std::{
    collections::HashMap,
    fs,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use crate::{
    engine::Image,
    json::{self, Value},
    sha256::{digest_of, Sha256},
    tar::{Kind, Reader},
};

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Files up to this size are kept in memory until the end (manifest.json, the config).
const IN_MEMORY: u64 = 1024 * 1024;
const COPY_BUFFER: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub digest: String,
    pub size: u64,
    pub media_type: &'static str,
}

/// An exported image, its blobs in the blob folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub config_digest: String,
    pub config_size: u64,
    pub layers: Vec<Layer>,
    /// The OCI manifest we serve, and its digest.
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

/// A file of the export, hashed.
struct Stored {
    digest: String,
    size: u64,
    /// Its first bytes, to tell a compressed layer from a plain tar.
    magic: Vec<u8>,
    /// Small files stay here; large ones are already in the blob folder.
    memory: Option<Vec<u8>>,
}

/// The path of blob `digest` in `blobs`.
pub fn blob_path(blobs: &Path, digest: &str) -> PathBuf {
    blobs.join(digest.trim_start_matches("sha256:"))
}

/// Reads `export`, the export of `image`; its blobs go to `blobs` (through `tmp`).
pub fn read(export: impl Read, blobs: &Path, tmp: &Path, image: &Image) -> Result<Exported, String> {
    let mut archive = Reader::new(export);
    let mut files: HashMap<String, Stored> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let broken = |e: io::Error| format!("the export could not be read ({e})");
    while let Some(entry) = archive.next_entry().map_err(broken)? {
        match entry.kind {
            Kind::File => {
                let stored = store(&mut archive.body(), entry.size, blobs, tmp).map_err(broken)?;
                files.insert(clean(&entry.path), stored);
            }
            Kind::Symlink(target) => {
                let folder = entry.path.rsplit_once('/').map_or("", |(folder, _)| folder);
                let target = if target.starts_with('/') { target } else { format!("{folder}/{target}") };
                links.insert(clean(&entry.path), clean(&target));
            }
            Kind::Hardlink(target) => {
                links.insert(clean(&entry.path), clean(&target));
            }
            Kind::Dir | Kind::Other => {}
        }
    }
    let find = |path: &str| -> Result<&Stored, String> {
        let mut path = clean(path);
        for _ in 0..8 {
            if let Some(stored) = files.get(&path) {
                return Ok(stored);
            }
            match links.get(&path) {
                Some(target) => path = target.clone(),
                None => break,
            }
        }
        Err(format!("the export names {path}, which it does not hold"))
    };
    let listing = find("manifest.json")?.memory.as_ref().ok_or("the export's manifest.json is too large")?;
    let manifest = json::parse(listing).map_err(|e| format!("the export's manifest.json is not JSON ({e})"))?;
    let entry = manifest.as_array().first().ok_or("the export's manifest.json names no image")?;
    let config_path =
        entry.get("Config").and_then(Value::as_str).ok_or("the export's manifest.json names no config")?;
    let config = find(config_path)?;
    let config_bytes = match &config.memory {
        Some(bytes) => bytes.clone(),
        None => fs::read(blob_path(blobs, &config.digest))
            .map_err(|e| format!("the image's config could not be read back ({e})"))?,
    };
    let config_value = json::parse(&config_bytes).map_err(|e| format!("the image's config is not JSON ({e})"))?;
    let diff_ids = config_value.get("rootfs").map(|r| r.strings("diff_ids")).unwrap_or_default();
    // Exactly the engine's image: its ID is the config's digest (the classic store), or the digest
    // of a manifest the export holds (the containerd store, whose layers may be compressed).
    let classic = config.digest == image.id;
    if !classic && !files.values().any(|f| f.digest == image.id) {
        return Err(format!("the export does not hold image {} (its config is {})", image.id, config.digest));
    }
    if !image.diff_ids.is_empty() && diff_ids != image.diff_ids {
        return Err("the export's layers are not the ones the engine lists for the image".into());
    }
    let layer_paths = entry.strings("Layers");
    if layer_paths.len() != diff_ids.len() {
        return Err(format!("the export lists {} layers for a config with {}", layer_paths.len(), diff_ids.len()));
    }
    let mut layers = Vec::with_capacity(layer_paths.len());
    for (index, (path, diff_id)) in layer_paths.iter().zip(&diff_ids).enumerate() {
        let stored = find(path)?;
        let media_type = media_type(&stored.magic);
        if media_type == LAYER_TAR && &stored.digest != diff_id {
            return Err(format!("layer {} of the export is {}, not the image's {diff_id}", index + 1, stored.digest));
        }
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            if stored.digest.trim_start_matches("sha256:") != hex {
                return Err(format!("the export's {path} does not have the digest its name says"));
            }
        }
        if let Some(bytes) = &stored.memory {
            put_blob(blobs, tmp, &stored.digest, bytes).map_err(broken)?;
        }
        layers.push(Layer { digest: stored.digest.clone(), size: stored.size, media_type });
    }
    put_blob(blobs, tmp, &config.digest, &config_bytes).map_err(broken)?;
    let manifest = manifest_json(&config.digest, config_bytes.len() as u64, &layers);
    Ok(Exported {
        config_digest: config.digest.clone(),
        config_size: config_bytes.len() as u64,
        manifest_digest: digest_of(&manifest),
        manifest,
        layers,
    })
}

/// The OCI manifest for a config and layers; the same input gives the same bytes, so the same
/// image always has the same manifest digest (BuildKit's cache keys on it).
pub fn manifest_json(config_digest: &str, config_size: u64, layers: &[Layer]) -> Vec<u8> {
    let layers: Vec<String> = layers
        .iter()
        .map(|l| format!("{{\"mediaType\":\"{}\",\"digest\":\"{}\",\"size\":{}}}", l.media_type, l.digest, l.size))
        .collect();
    format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{MANIFEST_TYPE}\",\"config\":{{\"mediaType\":\"{CONFIG_TYPE}\",\"digest\":\"{config_digest}\",\"size\":{config_size}}},\"layers\":[{}]}}",
        layers.join(",")
    )
    .into_bytes()
}

fn media_type(magic: &[u8]) -> &'static str {
    if magic.starts_with(&[0x1f, 0x8b]) {
        LAYER_GZIP
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        LAYER_ZSTD
    } else {
        LAYER_TAR
    }
}

/// `a/./b/../c` → `a/c`, without a leading `/` or `./`.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

static TEMP: AtomicU64 = AtomicU64::new(0);

fn temp_file(tmp: &Path) -> io::Result<(PathBuf, fs::File)> {
    let path = tmp.join(format!("part-{}-{}", std::process::id(), TEMP.fetch_add(1, Ordering::SeqCst)));
    let file = fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
    Ok((path, file))
}

/// Hashes a file of the export; a large one goes to the blob folder under its digest.
fn store(body: &mut impl Read, size: u64, blobs: &Path, tmp: &Path) -> io::Result<Stored> {
    let mut hash = Sha256::new();
    if size <= IN_MEMORY {
        let mut data = Vec::with_capacity(size as usize);
        body.read_to_end(&mut data)?;
        hash.update(&data);
        return Ok(Stored {
            digest: hash.finish_digest(),
            size,
            magic: data.iter().copied().take(4).collect(),
            memory: Some(data),
        });
    }
    let (path, mut file) = temp_file(tmp)?;
    let result = (|| {
        let mut buffer = vec![0u8; COPY_BUFFER];
        let mut magic = Vec::new();
        loop {
            let n = body.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            if magic.len() < 4 {
                magic.extend(buffer[..n].iter().take(4 - magic.len()));
            }
            hash.update(&buffer[..n]);
            file.write_all(&buffer[..n])?;
        }
        Ok::<_, io::Error>(magic)
    })();
    drop(file);
    let magic = match result {
        Ok(magic) => magic,
        Err(err) => {
            let _ = fs::remove_file(&path);
            return Err(err);
        }
    };
    let digest = hash.finish_digest();
    let target = blob_path(blobs, &digest);
    if target.exists() {
        fs::remove_file(&path)?;
    } else {
        fs::rename(&path, &target)?;
    }
    Ok(Stored { digest, size, magic, memory: None })
}

/// Writes a small blob unless it is there.
fn put_blob(blobs: &Path, tmp: &Path, digest: &str, bytes: &[u8]) -> io::Result<()> {
    let target = blob_path(blobs, digest);
    if target.exists() {
        return Ok(());
    }
    let (path, mut file) = temp_file(tmp)?;
    file.write_all(bytes)?;
    drop(file);
    fs::rename(path, target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::build;

    fn scratch(tag: &str) -> (PathBuf, PathBuf) {
        let root = std::env::temp_dir().join(format!("assemble-mirror-export-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let (blobs, tmp) = (root.join("blobs"), root.join("tmp"));
        fs::create_dir_all(&blobs).unwrap();
        fs::create_dir_all(&tmp).unwrap();
        (blobs, tmp)
    }

    /// A layer: a real tar of one file, `size` bytes of it.
    fn layer(name: &str, size: usize) -> Vec<u8> {
        build(&[(name, Kind::File, &vec![b'x'; size])])
    }

    fn config(diff_ids: &[String]) -> Vec<u8> {
        let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
        format!(
            "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[{}]}}}}",
            ids.join(",")
        )
        .into_bytes()
    }

    #[test]
    fn the_classic_export_becomes_a_manifest_of_the_engines_exact_content() {
        let (blobs, tmp) = scratch("classic");
        let (base, top) = (layer("a", 3 * 1024 * 1024), layer("b", 10));
        let diff_ids = vec![digest_of(&base), digest_of(&top)];
        let config = config(&diff_ids);
        let id = digest_of(&config);
        let config_name = format!("{}.json", id.trim_start_matches("sha256:"));
        let manifest = format!(
            "[{{\"Config\":\"{config_name}\",\"RepoTags\":null,\"Layers\":[\"l1/layer.tar\",\"l2/layer.tar\"]}}]"
        );
        let archive = build(&[
            (&config_name, Kind::File, &config),
            ("l1", Kind::Dir, b""),
            ("l1/layer.tar", Kind::File, &base),
            ("l1/VERSION", Kind::File, b"1.0"),
            ("l2/layer.tar", Kind::Symlink("../l3/layer.tar".into()), b""),
            ("l3/layer.tar", Kind::File, &top),
            ("manifest.json", Kind::File, manifest.as_bytes()),
        ]);
        let image = Image { id: id.clone(), repo_tags: vec!["base:dev".into()], diff_ids: diff_ids.clone() };
        let exported = read(&archive[..], &blobs, &tmp, &image).unwrap();
        assert_eq!(exported.config_digest, id, "the config's digest is the image ID");
        assert_eq!(exported.layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>(), diff_ids);
        assert!(exported.layers.iter().all(|l| l.media_type == LAYER_TAR));
        assert_eq!(exported.layers[0].size, base.len() as u64);
        for digest in diff_ids.iter().chain([&id]) {
            let bytes = fs::read(blob_path(&blobs, digest)).unwrap();
            assert_eq!(&digest_of(&bytes), digest);
        }
        let value = json::parse(&exported.manifest).unwrap();
        assert_eq!(value.get("mediaType").and_then(Value::as_str), Some(MANIFEST_TYPE));
        assert_eq!(value.get("config").and_then(|c| c.get("digest")).and_then(Value::as_str), Some(id.as_str()));
        assert_eq!(exported.manifest_digest, digest_of(&exported.manifest));
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "nothing left half-written");
        // The same image exported again: the same manifest, byte for byte.
        assert_eq!(read(&archive[..], &blobs, &tmp, &image).unwrap(), exported);
    }

    #[test]
    fn content_that_is_not_the_engines_image_is_refused() {
        let (blobs, tmp) = scratch("refused");
        let base = layer("a", 100);
        let config = config(&[digest_of(&base)]);
        let id = digest_of(&config);
        let archive = |layer: &[u8]| {
            build(&[
                ("c.json", Kind::File, &config),
                ("l1/layer.tar", Kind::File, layer),
                ("manifest.json", Kind::File, br#"[{"Config":"c.json","Layers":["l1/layer.tar"]}]"#),
            ])
        };
        let image = Image { id: id.clone(), repo_tags: vec![], diff_ids: vec![digest_of(&base)] };
        assert!(read(&archive(&base)[..], &blobs, &tmp, &image).is_ok());
        let other = layer("a", 101);
        let refused = read(&archive(&other)[..], &blobs, &tmp, &image).unwrap_err();
        assert!(refused.contains("layer 1 of the export"), "{refused}");
        let wrong_id = Image { id: digest_of(b"another"), ..image.clone() };
        assert!(read(&archive(&base)[..], &blobs, &tmp, &wrong_id).unwrap_err().contains("does not hold image"));
        let cut = archive(&base);
        assert!(read(&cut[..cut.len() / 2], &blobs, &tmp, &image).is_err());
    }

    #[test]
    fn the_oci_layout_export_is_read_too() {
        let (blobs, tmp) = scratch("oci");
        let base = layer("a", 2 * 1024 * 1024);
        let config = config(&[digest_of(&base)]);
        let (config_digest, layer_digest) = (digest_of(&config), digest_of(&base));
        let path = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
        let manifest =
            format!("[{{\"Config\":\"{}\",\"Layers\":[\"{}\"]}}]", path(&config_digest), path(&layer_digest));
        let archive = build(&[
            ("blobs/sha256", Kind::Dir, b""),
            (&path(&config_digest), Kind::File, &config),
            (&path(&layer_digest), Kind::File, &base),
            ("index.json", Kind::File, b"{}"),
            ("oci-layout", Kind::File, b"{}"),
            ("manifest.json", Kind::File, manifest.as_bytes()),
        ]);
        let image = Image { id: config_digest.clone(), repo_tags: vec![], diff_ids: vec![layer_digest.clone()] };
        let exported = read(&archive[..], &blobs, &tmp, &image).unwrap();
        assert_eq!(exported.layers, [Layer { digest: layer_digest, size: base.len() as u64, media_type: LAYER_TAR }]);
    }

    #[test]
    fn compressed_layers_keep_their_media_type() {
        assert_eq!(media_type(&[0x1f, 0x8b, 8, 0]), LAYER_GZIP);
        assert_eq!(media_type(&[0x28, 0xb5, 0x2f, 0xfd]), LAYER_ZSTD);
        assert_eq!(media_type(b"a\0\0\0"), LAYER_TAR);
        assert_eq!(clean("./l2/../l3/layer.tar"), "l3/layer.tar");
        assert_eq!(clean("/blobs//sha256/x"), "blobs/sha256/x");
    }
}
