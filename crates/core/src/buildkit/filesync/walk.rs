//! The folder as the receiver wants to see it: walked in the order it checks (depth first, names
//! in byte order), filtered by the patterns BuildKit asks for (include, exclude with Docker's rules,
//! and the paths to follow through symlinks), each entry with its metadata as fsutil sends it.
use std::{
    fs::Metadata,
    os::unix::{ffi::OsStrExt, fs::MetadataExt},
    path::{Path, PathBuf},
    sync::Arc,
};

use bollard_buildkit_proto::fsutil::types::Stat;

use crate::buildkit::error::BuildkitError;
use crate::buildkit::{
    dockerignore::IgnoreRules,
    filesync::mode::{can_request_data, go_mode, GO_MODE_CHAR_DEVICE, GO_MODE_DEVICE, GO_MODE_DIR},
};
use crate::{Error, Result};

/// Symlinks followed in a row for one `followpaths` entry before giving up, as Linux does.
const MAX_LINK_HOPS: usize = 40;

/// A folder a session offers under a name (`context`, `dockerfile`).
#[derive(Debug, Clone)]
pub enum SyncDir {
    /// A folder on disk.
    Folder(PathBuf),
    /// Files made in memory (a generated Dockerfile), as regular files in one flat folder.
    Files(Vec<(String, Arc<[u8]>)>),
}

/// What the receiver asked to see of a folder (the request's metadata).
#[derive(Debug, Clone, Default)]
pub struct TransferFilter {
    /// Only paths these match (or lie under what they match); all when empty.
    pub include: Vec<String>,
    /// Paths these leave out, Docker's rules (`!` exceptions, the last match wins).
    pub exclude: Vec<String>,
    /// Paths to include with the symlinks on their way resolved (the Dockerfile's name).
    pub follow: Vec<String>,
}

/// One entry of a walk: its metadata as sent, and where its contents come from.
#[derive(Debug, Clone)]
pub struct WalkedEntry {
    /// The STAT packet's metadata.
    pub stat: Stat,
    pub(super) source: Option<Contents>,
}

impl WalkedEntry {
    /// A folder.
    pub fn is_dir(&self) -> bool {
        self.stat.mode & GO_MODE_DIR != 0
    }

    /// Its contents travel when the receiver asks (a file's; not a folder's, a link's or a
    /// device's): the bytes a transfer may send for it are its size.
    pub fn has_contents(&self) -> bool {
        self.source.is_some()
    }
}

/// A walk: what it sends, and how many entries its filter left out (a folder left out whole
/// counts once; sockets, which cannot be sent, are not counted).
#[derive(Debug, Clone, Default)]
pub struct Walk {
    /// The entries, in the order they are sent.
    pub entries: Vec<WalkedEntry>,
    /// Entries the filter left out.
    pub left_out: u64,
}

/// Where an entry's contents come from, when the receiver asks for them.
#[derive(Debug, Clone)]
pub(super) enum Contents {
    File(PathBuf),
    Memory(Arc<[u8]>),
}

/// Walks `dir` as the receiver wants to see it: `filter` applied, parents of included entries
/// always present, siblings in byte order.
pub fn walk(dir: &SyncDir, filter: &TransferFilter) -> Result<Vec<WalkedEntry>> {
    walk_counting(dir, filter).map(|walk| walk.entries)
}

/// [`walk`], with how many entries the filter left out: what a transfer sends, for
/// `--dry-run` to count, and what it refuses, with the same error.
pub fn walk_counting(dir: &SyncDir, filter: &TransferFilter) -> Result<Walk> {
    match dir {
        SyncDir::Files(files) => walk_memory(files, filter),
        SyncDir::Folder(root) => walk_folder(root, filter),
    }
}

fn walk_memory(files: &[(String, Arc<[u8]>)], filter: &TransferFilter) -> Result<Walk> {
    let rules = Rules::new(Path::new("/nonexistent"), filter)?;
    let mut sorted: Vec<&(String, Arc<[u8]>)> = files.iter().filter(|(name, _)| rules.keeps(name)).collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let left_out = (files.len() - sorted.len()) as u64;
    let entries = sorted
        .into_iter()
        .map(|(name, data)| WalkedEntry {
            stat: Stat {
                path: name.clone(),
                mode: 0o644,
                size: i64::try_from(data.len()).unwrap_or(i64::MAX),
                // BuildKit compares size and time with what it kept: a time made of the contents
                // changes whenever they do, so a new generated Dockerfile is always asked for.
                mod_time: content_time(data),
                ..Default::default()
            },
            source: Some(Contents::Memory(data.clone())),
        })
        .collect();
    Ok(Walk { entries, left_out })
}

/// A modification time (nanoseconds, positive) that is a function of `data`.
fn content_time(data: &[u8]) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(data);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(first) & i64::MAX
}

/// The patterns compiled once per transfer.
struct Rules {
    include: Option<IgnoreRules>,
    exclude: Option<IgnoreRules>,
}

impl Rules {
    fn new(root: &Path, filter: &TransferFilter) -> Result<Self> {
        let mut include = filter.include.clone();
        // The followed paths go after the asked patterns, whose order decides (the last match
        // wins), and each once.
        for path in followed_paths(root, &filter.follow) {
            if !include.contains(&path) {
                include.push(path);
            }
        }
        let include = if include.is_empty() { None } else { Some(IgnoreRules::from_patterns(&include)?) };
        let exclude = if filter.exclude.is_empty() { None } else { Some(IgnoreRules::from_patterns(&filter.exclude)?) };
        Ok(Self { include, exclude })
    }

    fn included(&self, path: &str) -> bool {
        // "Leaves out" is "matches" here: the same last-match-wins rule over a path and its parents.
        self.include.as_ref().is_none_or(|rules| rules.excludes(path))
    }

    fn excluded(&self, path: &str) -> bool {
        self.exclude.as_ref().is_some_and(|rules| rules.excludes(path))
    }

    fn keeps(&self, path: &str) -> bool {
        self.included(path) && !self.excluded(path)
    }

    /// Whether a folder that is not kept itself may still hold kept entries.
    fn worth_entering(&self, dir: &str) -> bool {
        if !self.included(dir) && !self.include.as_ref().is_some_and(|rules| rules.may_match_inside(dir, false)) {
            return false;
        }
        if self.excluded(dir) {
            return self
                .exclude
                .as_ref()
                .is_some_and(|rules| rules.has_exceptions() && rules.may_match_inside(dir, true));
        }
        true
    }
}

/// `followpaths` as fsutil's `FollowLinks` reads them: each path, and where each symlink on it leads
/// (while it stays inside the folder).
fn followed_paths(root: &Path, follow: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for path in follow {
        let mut current = clean_relative(path);
        for _ in 0..MAX_LINK_HOPS {
            let Some(relative) = current.clone() else { break };
            out.push(relative.clone());
            let full = root.join(&relative);
            let Ok(target) = std::fs::read_link(&full) else { break };
            let joined = if target.is_absolute() {
                target
            } else {
                Path::new(&relative).parent().unwrap_or(Path::new("")).join(target)
            };
            current = clean_relative(&joined.to_string_lossy());
        }
    }
    out
}

/// `path` cleaned and relative to the folder; `None` when it leaves it.
fn clean_relative(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn walk_folder(root: &Path, filter: &TransferFilter) -> Result<Walk> {
    let rules = Rules::new(root, filter)?;
    let mut out = Walk::default();
    let mut waiting_parents = Vec::new();
    walk_into(root, "", &rules, &mut waiting_parents, &mut out)?;
    Ok(out)
}

/// Walks one folder's entries. `waiting_parents` holds the folders above that were entered but not
/// sent (left out themselves): they are sent just before the first entry under them that is kept.
fn walk_into(
    dir: &Path,
    prefix: &str,
    rules: &Rules,
    waiting_parents: &mut Vec<WalkedEntry>,
    out: &mut Walk,
) -> Result<()> {
    let unreadable = |path: &Path, source: std::io::Error| Error::Io {
        action: format!("reading {} for the build context", path.display()),
        source,
    };
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
        .map_err(|e| unreadable(dir, e))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| unreadable(dir, e))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let full = dir.join(&name);
        let lossy = name.to_string_lossy();
        let relative = if prefix.is_empty() { lossy.to_string() } else { format!("{prefix}/{lossy}") };
        let metadata = match std::fs::symlink_metadata(&full) {
            Ok(metadata) => metadata,
            // Gone since the folder was listed: as if it had never been there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(unreadable(&full, e)),
        };
        // Sockets cannot be sent (fsutil turns them into empty files); they are left out.
        if metadata.file_type().is_socket_like() {
            continue;
        }
        let kept = rules.keeps(&relative);
        let is_dir = metadata.is_dir();
        let entering = is_dir && rules.worth_entering(&relative);
        if !(kept || entering) {
            out.left_out += 1;
            continue;
        }
        if name.to_str().is_none() {
            return Err(BuildkitError::ContextNameNotUtf8 { path: full }.into());
        }
        let entry = entry_for(&full, &relative, &metadata)?;
        if kept {
            out.entries.append(waiting_parents);
            out.entries.push(entry);
            if is_dir {
                walk_into(&full, &relative, rules, waiting_parents, out)?;
            }
        } else {
            waiting_parents.push(entry);
            walk_into(&full, &relative, rules, waiting_parents, out)?;
            // Still waiting: nothing under it was kept, so it is not sent.
            if waiting_parents.last().is_some_and(|w| w.stat.path == relative) {
                waiting_parents.pop();
            }
        }
    }
    Ok(())
}

trait SocketLike {
    fn is_socket_like(&self) -> bool;
}

impl SocketLike for std::fs::FileType {
    fn is_socket_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_socket()
    }
}

fn entry_for(full: &Path, relative: &str, metadata: &Metadata) -> Result<WalkedEntry> {
    let mode = go_mode(metadata.mode());
    let mut stat = Stat {
        path: relative.to_string(),
        mode,
        uid: metadata.uid(),
        gid: metadata.gid(),
        mod_time: metadata.mtime().saturating_mul(1_000_000_000).saturating_add(metadata.mtime_nsec()),
        ..Default::default()
    };
    if !metadata.is_dir() {
        stat.size = i64::try_from(metadata.size()).unwrap_or(i64::MAX);
    }
    if metadata.file_type().is_symlink() {
        let target = std::fs::read_link(full)
            .map_err(|e| Error::Io { action: format!("reading the link {}", full.display()), source: e })?;
        stat.linkname =
            target.to_str().ok_or_else(|| BuildkitError::ContextNameNotUtf8 { path: full.to_path_buf() })?.to_string();
    }
    if mode & (GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE) != 0 {
        let rdev = metadata.rdev();
        stat.devmajor = i64::try_from((rdev >> 8) & 0xfff).unwrap_or(0);
        stat.devminor = i64::try_from((rdev & 0xff) | ((rdev >> 12) & 0xfff00)).unwrap_or(0);
    }
    let source = can_request_data(mode).then(|| Contents::File(full.to_path_buf()));
    Ok(WalkedEntry { stat, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildkit::filesync::{
        mode::{
            GO_MODE_CHAR_DEVICE, GO_MODE_DEVICE, GO_MODE_DIR, GO_MODE_NAMED_PIPE, GO_MODE_SETUID, GO_MODE_STICKY,
            GO_MODE_SYMLINK,
        },
        testing::tree,
    };

    fn paths(entries: &[WalkedEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.stat.path.as_str()).collect()
    }

    #[test]
    fn walks_depth_first_with_names_in_byte_order() {
        let dir = tree(&["b", "a.txt", "a/z", "a/b/c", "A", "a-b", "empty/"]);
        let entries = walk(&SyncDir::Folder(dir.path().into()), &TransferFilter::default()).unwrap();
        // '-' (0x2d) and '.' (0x2e) sort before '/', yet "a" comes first with its whole folder, as
        // Go's WalkDir orders it (and fsutil's receiver checks).
        assert_eq!(paths(&entries), ["A", "a", "a/b", "a/b/c", "a/z", "a-b", "a.txt", "b", "empty"]);
        assert!(entries.iter().find(|e| e.stat.path == "empty").unwrap().stat.mode & GO_MODE_DIR != 0);
    }

    #[test]
    fn modes_sizes_links_and_times_are_go_s() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tree(&["run.sh", "data"]);
        std::fs::set_permissions(dir.path().join("run.sh"), std::fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink("data", dir.path().join("link")).unwrap();
        let entries = walk(&SyncDir::Folder(dir.path().into()), &TransferFilter::default()).unwrap();
        let find = |p: &str| entries.iter().find(|e| e.stat.path == p).unwrap();
        assert_eq!(find("run.sh").stat.mode, 0o755 | GO_MODE_SETUID);
        assert_eq!(find("run.sh").stat.size, 6);
        assert!(find("run.sh").source.is_some());
        let link = find("link");
        assert_eq!(link.stat.mode & GO_MODE_SYMLINK, GO_MODE_SYMLINK);
        assert_eq!(link.stat.linkname, "data");
        assert!(link.source.is_none(), "a link's contents are never asked for");
        let metadata = std::fs::metadata(dir.path().join("data")).unwrap();
        let nanos = metadata.modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        assert_eq!(find("data").stat.mod_time as u128, nanos);
        assert_eq!(go_mode(0o020644), 0o644 | GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE);
        assert_eq!(go_mode(0o010600), 0o600 | GO_MODE_NAMED_PIPE);
        assert_eq!(go_mode(0o041777), 0o777 | GO_MODE_DIR | GO_MODE_STICKY);
    }

    #[test]
    fn excludes_and_exceptions_send_the_parents_they_need() {
        let dir =
            tree(&["keep.txt", "secret.txt", "logs/a.log", "logs/keep/b.log", "node_modules/x/y.js", "src/main.rs"]);
        let filter = TransferFilter {
            exclude: vec!["secret.txt".into(), "logs".into(), "!logs/keep".into(), "node_modules".into()],
            ..Default::default()
        };
        let entries = walk(&SyncDir::Folder(dir.path().into()), &filter).unwrap();
        assert_eq!(paths(&entries), ["keep.txt", "logs", "logs/keep", "logs/keep/b.log", "src", "src/main.rs"]);
    }

    #[test]
    fn includes_and_followed_links_select_only_what_is_asked() {
        let dir = tree(&["Dockerfile.real", "other", "sub/deep/file", "sub/skip"]);
        std::os::unix::fs::symlink("Dockerfile.real", dir.path().join("Dockerfile")).unwrap();
        let followed = TransferFilter {
            follow: vec!["Dockerfile".into(), "Dockerfile.dockerignore".into()],
            ..Default::default()
        };
        let entries = walk(&SyncDir::Folder(dir.path().into()), &followed).unwrap();
        assert_eq!(paths(&entries), ["Dockerfile", "Dockerfile.real"]);
        let included = TransferFilter { include: vec!["sub/deep".into()], ..Default::default() };
        let entries = walk(&SyncDir::Folder(dir.path().into()), &included).unwrap();
        assert_eq!(paths(&entries), ["sub", "sub/deep", "sub/deep/file"]);
    }

    #[test]
    fn files_made_in_memory_carry_a_time_that_changes_with_their_contents() {
        let file = |text: &str| -> Vec<WalkedEntry> {
            walk(&SyncDir::Files(vec![("Dockerfile".into(), text.as_bytes().into())]), &TransferFilter::default())
                .unwrap()
        };
        // Same size, other contents (a base image's tag changed): BuildKit must see a change.
        let (before, after) = (file("FROM a:17\n"), file("FROM a:21\n"));
        assert_eq!(before[0].stat.size, after[0].stat.size);
        assert_ne!(before[0].stat.mod_time, after[0].stat.mod_time);
        assert_eq!(before[0].stat.mod_time, file("FROM a:17\n")[0].stat.mod_time);
        assert!(before[0].stat.mod_time > 0);
    }

    #[test]
    fn a_name_that_is_not_utf8_is_refused_unless_left_out() {
        let dir = tree(&["ok"]);
        let name = std::ffi::OsStr::from_bytes(b"bad-\xff-name");
        std::fs::write(dir.path().join(name), b"x").unwrap();
        let err = walk(&SyncDir::Folder(dir.path().into()), &TransferFilter::default()).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        let filter = TransferFilter { exclude: vec!["bad-*".into()], ..Default::default() };
        let entries = walk(&SyncDir::Folder(dir.path().into()), &filter).unwrap();
        assert_eq!(paths(&entries), ["ok"]);
    }
}
