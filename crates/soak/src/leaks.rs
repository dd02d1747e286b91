//! The secret's invariant (issue 24): the run's random token, handed to builds only through
//! `--secret`, never appears in a history record, a log line or an exported layer. Read from
//! everything the soak can reach: a build's progress output and what it exported (an image archive,
//! a folder), the history (`builds --format json`, `builds logs REF` of every build that had the
//! secret), our logs (`assemble backend logs`), every container's of ours log (backend, sidecars,
//! mirror), BuildKit's whole state folder in the backend (history database, snapshots, content),
//! and every blob the registry holds (pushed layers, exported cache), decompressed.
use std::{
    collections::{BTreeSet, HashMap},
    io::Read,
    path::{Path, PathBuf},
};

use assemble_core::backend::labels;
use bollard::query_parameters::ListContainersOptionsBuilder;

use crate::world::World;

/// The soak's secret's ID in `--secret id=…` and `RUN --mount=type=secret,id=…`.
pub const SECRET_ID: &str = "soak";

#[derive(Default)]
pub struct Scans {
    /// Registry blobs already read (content-addressed, so never different later).
    blobs: BTreeSet<PathBuf>,
    /// The history refs of builds that had the secret: their records are read at every scan.
    pub secret_refs: Vec<String>,
    /// Leaks already reported: one that stays (a history record) is reported once, not after
    /// every later operation.
    reported: BTreeSet<String>,
}

/// Where `needle` occurs in `haystack` (the first time).
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut from = 0;
    while let Some(at) = haystack[from..=haystack.len() - needle.len()].iter().position(|b| *b == first) {
        let at = from + at;
        if &haystack[at..at + needle.len()] == needle {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// A blob as stored, or gunzipped when it is gzip (registry layers and cache blobs are).
fn plain(bytes: Vec<u8>) -> Vec<u8> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        if flate2::read::MultiGzDecoder::new(bytes.as_slice()).read_to_end(&mut out).is_ok() {
            return out;
        }
    }
    bytes
}

/// The evidence: where, and up to 40 bytes either side of the hit on its line (other control
/// bytes, a tar's padding among them, as dots).
fn evidence(place: &str, bytes: &[u8], at: usize) -> String {
    let start = bytes[..at].iter().rposition(|b| *b == b'\n').map_or(0, |n| n + 1).max(at.saturating_sub(40));
    let end = bytes[at..].iter().position(|b| *b == b'\n').map_or(bytes.len(), |n| at + n).min(at + 72);
    let excerpt: String =
        String::from_utf8_lossy(&bytes[start..end]).chars().map(|c| if c.is_control() { '.' } else { c }).collect();
    format!("the secret appears in {place}: \"{excerpt}\"")
}

/// A hit in `text` (named `place`) as a violation.
pub fn in_text(world: &World, place: &str, text: &[u8]) -> Option<String> {
    find(text, world.secret.as_bytes()).map(|at| evidence(place, text, at))
}

/// Every file of an archive (an image saved by `docker save`: its layers, configs, manifests),
/// layers unpacked from gzip when they are.
pub fn in_archive(world: &World, place: &str, archive: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let file = match std::fs::File::open(archive) {
        Ok(file) => file,
        Err(err) => return vec![format!("cannot read {place} ({}): {err}", archive.display())],
    };
    let mut tar = tar::Archive::new(file);
    let entries = match tar.entries() {
        Ok(entries) => entries,
        Err(err) => return vec![format!("{place} is not a tar archive: {err}")],
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(err) => return vec![format!("reading {place}: {err}")],
        };
        let name = entry.path().map(|p| p.display().to_string()).unwrap_or_default();
        let mut bytes = Vec::new();
        if let Err(err) = entry.read_to_end(&mut bytes) {
            return vec![format!("reading {name} of {place}: {err}")];
        }
        found.extend(in_text(world, &format!("{place}, file {name}"), &plain(bytes)));
    }
    found
}

/// Every file under `dir` (an exported folder, the registry's blobs), each read once if `once`.
fn in_folder(world: &World, place: &str, dir: &Path, mut once: Option<&mut BTreeSet<PathBuf>>) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(read) = std::fs::read_dir(&dir) else { continue };
        for entry in read.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                todo.push(path);
            } else if kind.is_file() {
                if let Some(seen) = once.as_deref_mut() {
                    if !seen.insert(path.clone()) {
                        continue;
                    }
                }
                if let Ok(bytes) = std::fs::read(&path) {
                    found.extend(in_text(world, &format!("{place}, {}", path.display()), &plain(bytes)));
                }
            }
        }
    }
    found
}

/// An exported folder (`-o type=local,dest=DIR`).
pub fn in_output(world: &World, dir: &Path) -> Vec<String> {
    in_folder(world, "an exported folder", dir, None)
}

/// Everything the soak can read that is not a build's own output: the history, the logs, the
/// backend's state folder, the registry. Empty when the secret is nowhere.
pub async fn everywhere(world: &World) -> Vec<String> {
    let mut found = Vec::new();
    let refs = world.scans.lock().map(|s| s.secret_refs.clone()).unwrap_or_default();
    let running = crate::ops::running_backend(world).await.is_some();
    if running {
        let list = world.cli(&["backend", "builds", "--format", "json"]).await;
        found.extend(in_text(world, "the history (`builds --format json`)", list.stdout.as_bytes()));
        // The newest records of the secret's builds (older ones were read when they were new).
        for reference in refs.iter().rev().take(4) {
            let logs = world.cli(&["backend", "builds", "logs", reference]).await;
            let text = format!("{}{}", logs.stdout, logs.stderr);
            found.extend(in_text(world, &format!("the history record {reference} (`builds logs`)"), text.as_bytes()));
        }
        let ours = world.cli(&["backend", "logs", "--tail", "all"]).await;
        found.extend(in_text(
            world,
            "our logs (`assemble backend logs`)",
            format!("{}{}", ours.stdout, ours.stderr).as_bytes(),
        ));
        // History database, snapshots, content store: any file under BuildKit's state folder.
        let script =
            format!("grep -rlF -e \"$SOAK_SECRET\" {} 2>/dev/null; true", assemble_core::backend::spec::STATE_DIR);
        let env = vec![format!("SOAK_SECRET={}", world.secret)];
        match crate::flood::exec_env(world, &world.user.names.backend(), &script, env).await {
            Ok(files) => found.extend(
                files
                    .split_whitespace()
                    .map(|file| format!("the secret appears in BuildKit's state in the backend: {file}")),
            ),
            Err(err) => found.push(format!("cannot search BuildKit's state for the secret: {err}")),
        }
    }
    found.extend(in_container_logs(world).await);
    found.extend(in_registry(world));
    let mut scans = world.scans.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    found.retain(|leak| scans.reported.insert(leak.clone()));
    found
}

/// Every blob the registry holds that no scan read yet (blobs are content-addressed: one read
/// is enough), gunzipped.
pub fn in_registry(world: &World) -> Vec<String> {
    let mut scans = world.scans.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    in_folder(world, "the registry's blobs", &world.registry_blobs, Some(&mut scans.blobs))
}

/// Every container of ours (backend, sidecars, mirror), its whole log.
async fn in_container_logs(world: &World) -> Vec<String> {
    let filters =
        HashMap::from([("label".to_string(), vec![format!("{}={}", labels::OWNER, world.user.names.user())])]);
    let list = match world
        .docker
        .list_containers(Some(ListContainersOptionsBuilder::default().all(true).filters(&filters).build()))
        .await
    {
        Ok(list) => list,
        Err(err) => return vec![format!("listing containers for their logs: {err}")],
    };
    let mut found = Vec::new();
    for container in list {
        let Some(id) = container.id else { continue };
        let name = container.names.and_then(|n| n.into_iter().next()).unwrap_or_else(|| id.clone());
        let logs = world.docker_cli(&["logs", &id]).await;
        let text = format!("{}{}", logs.stdout, logs.stderr);
        found.extend(in_text(
            world,
            &format!("the log of container {}", name.trim_start_matches('/')),
            text.as_bytes(),
        ));
    }
    found
}
