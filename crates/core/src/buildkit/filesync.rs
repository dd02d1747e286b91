//! The sending side of BuildKit's file transfer (`moby.filesync.v1.FileSync/DiffCopy`, tonistiigi/fsutil's
//! `Send`): a folder walked in the order the receiver checks (depth first, names in byte order),
//! filtered by the patterns BuildKit asks for, one STAT packet per entry, then the contents of the
//! files the receiver asks for (REQ), each as DATA packets ended by an empty one, until FIN. The
//! receiver keeps what it got last time under the session's shared key, so it asks only for files
//! whose metadata changed: the modification times, modes and sizes sent here decide that.
use std::{
    collections::HashMap,
    fs::Metadata,
    io::Read,
    os::unix::{ffi::OsStrExt, fs::MetadataExt},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use bollard_buildkit_proto::fsutil::types::{packet::PacketType, Packet, Stat};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::buildkit::dockerignore::IgnoreRules;
use crate::error::{Error, Result};

/// Bytes per DATA packet.
const CHUNK: usize = 64 * 1024;
/// Files read at once for the receiver, as fsutil does.
const READERS: usize = 4;
/// Symlinks followed in a row for one `followpaths` entry before giving up, as Linux does.
const MAX_LINK_HOPS: usize = 40;

// Go's `os.FileMode` bits, which the receiver reads the mode as.
const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_DEVICE: u32 = 1 << 26;
const GO_MODE_NAMED_PIPE: u32 = 1 << 25;
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_CHAR_DEVICE: u32 = 1 << 21;
const GO_MODE_STICKY: u32 = 1 << 20;
/// Every type bit: an entry with none of them is a regular file, whose contents can be asked for.
const GO_MODE_TYPE: u32 =
    GO_MODE_DIR | GO_MODE_SYMLINK | GO_MODE_NAMED_PIPE | GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE | (1 << 24) | (1 << 19);

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
    source: Option<Contents>,
}

#[derive(Debug, Clone)]
enum Contents {
    File(PathBuf),
    Memory(Arc<[u8]>),
}

/// What one transfer sent: counted while it runs, read after.
#[derive(Debug, Default)]
pub struct TransferCount {
    /// Entries described (STAT packets).
    pub entries: AtomicU64,
    /// Files whose contents the receiver asked for.
    pub files_sent: AtomicU64,
    /// Bytes of contents sent.
    pub bytes_sent: AtomicU64,
}

/// Walks `dir` as the receiver wants to see it: `filter` applied, parents of included entries
/// always present, siblings in byte order.
pub fn walk(dir: &SyncDir, filter: &TransferFilter) -> Result<Vec<WalkedEntry>> {
    match dir {
        SyncDir::Files(files) => walk_memory(files, filter),
        SyncDir::Folder(root) => walk_folder(root, filter),
    }
}

fn walk_memory(files: &[(String, Arc<[u8]>)], filter: &TransferFilter) -> Result<Vec<WalkedEntry>> {
    let rules = Rules::new(Path::new("/nonexistent"), filter)?;
    let mut sorted: Vec<&(String, Arc<[u8]>)> = files.iter().filter(|(name, _)| rules.keeps(name)).collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(sorted
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
        .collect())
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

fn walk_folder(root: &Path, filter: &TransferFilter) -> Result<Vec<WalkedEntry>> {
    let rules = Rules::new(root, filter)?;
    let mut out = Vec::new();
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
    out: &mut Vec<WalkedEntry>,
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
            continue;
        }
        if name.to_str().is_none() {
            return Err(Error::ContextNameNotUtf8 { path: full });
        }
        let entry = entry_for(&full, &relative, &metadata)?;
        if kept {
            out.append(waiting_parents);
            out.push(entry);
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
            target.to_str().ok_or_else(|| Error::ContextNameNotUtf8 { path: full.to_path_buf() })?.to_string();
    }
    if mode & (GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE) != 0 {
        let rdev = metadata.rdev();
        stat.devmajor = i64::try_from((rdev >> 8) & 0xfff).unwrap_or(0);
        stat.devminor = i64::try_from((rdev & 0xff) | ((rdev >> 12) & 0xfff00)).unwrap_or(0);
    }
    let source = can_request_data(mode).then(|| Contents::File(full.to_path_buf()));
    Ok(WalkedEntry { stat, source })
}

/// A Unix `st_mode` as Go's `os.FileMode`.
pub fn go_mode(unix: u32) -> u32 {
    const S_IFMT: u32 = 0o170000;
    let mut mode = unix & 0o777;
    mode |= match unix & S_IFMT {
        0o040000 => GO_MODE_DIR,
        0o120000 => GO_MODE_SYMLINK,
        0o010000 => GO_MODE_NAMED_PIPE,
        0o060000 => GO_MODE_DEVICE,
        0o020000 => GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
        _ => 0,
    };
    if unix & 0o4000 != 0 {
        mode |= GO_MODE_SETUID;
    }
    if unix & 0o2000 != 0 {
        mode |= GO_MODE_SETGID;
    }
    if unix & 0o1000 != 0 {
        mode |= GO_MODE_STICKY;
    }
    mode
}

/// Whether the receiver may ask for an entry's contents (fsutil's `fileCanRequestData`).
fn can_request_data(go_mode: u32) -> bool {
    go_mode & GO_MODE_TYPE == 0
}

fn packet(kind: PacketType) -> Packet {
    Packet { r#type: kind as i32, ..Default::default() }
}

/// The failure sent to the receiver and kept for the user.
#[derive(Debug, Clone)]
pub struct TransferFailure(pub String);

/// Runs one DiffCopy: `entries` (a finished walk) as STAT packets, then the contents asked for,
/// until the receiver's FIN. `send` carries packets out; `inbound` is what the receiver sends.
pub async fn send_entries<S>(
    entries: Vec<WalkedEntry>,
    mut inbound: S,
    send: mpsc::Sender<Packet>,
    count: Arc<TransferCount>,
) -> std::result::Result<(), TransferFailure>
where
    S: Stream<Item = std::result::Result<Packet, String>> + Unpin,
{
    let mut sources: HashMap<u32, Contents> = HashMap::new();
    let mut stats = Vec::with_capacity(entries.len() + 1);
    for (id, entry) in entries.into_iter().enumerate() {
        if let (Some(source), Ok(id)) = (entry.source, u32::try_from(id)) {
            sources.insert(id, source);
        }
        stats.push(Packet { r#type: PacketType::PacketStat as i32, stat: Some(entry.stat), ..Default::default() });
    }
    // The empty STAT ends the listing.
    stats.push(packet(PacketType::PacketStat));
    count.entries.fetch_add(stats.len() as u64 - 1, Ordering::Relaxed);

    let listing = {
        let send = send.clone();
        tokio::spawn(async move {
            for stat in stats {
                if send.send(stat).await.is_err() {
                    break;
                }
            }
        })
    };

    let (work, readers) = start_readers(send.clone(), count.clone());
    let result = loop {
        let Some(message) = inbound.next().await else {
            break Err(TransferFailure("BuildKit ended the file transfer before it finished".into()));
        };
        let packet_in = match message {
            Ok(packet_in) => packet_in,
            Err(e) => break Err(TransferFailure(format!("the file transfer broke: {e}"))),
        };
        match PacketType::try_from(packet_in.r#type) {
            Ok(PacketType::PacketReq) => {
                let Some(source) = sources.remove(&packet_in.id) else {
                    let message =
                        format!("BuildKit asked for file number {} which is not one it may ask for", packet_in.id);
                    let _ = send
                        .send(Packet {
                            r#type: PacketType::PacketErr as i32,
                            data: message.clone().into_bytes(),
                            ..Default::default()
                        })
                        .await;
                    break Err(TransferFailure(message));
                };
                if let Ok(queue) = work.lock() {
                    let _ = queue.send((packet_in.id, source));
                }
            }
            Ok(PacketType::PacketFin) => {
                let _ = send.send(packet(PacketType::PacketFin)).await;
                break Ok(());
            }
            Ok(PacketType::PacketErr) => {
                break Err(TransferFailure(format!(
                    "BuildKit refused the files: {}",
                    String::from_utf8_lossy(&packet_in.data)
                )))
            }
            // The receiver sends nothing else; anything unknown is ignored, as fsutil does.
            _ => {}
        }
    };
    drop(work);
    listing.abort();
    for reader in readers {
        let _ = reader.await;
    }
    result
}

type WorkQueue = Arc<Mutex<std::sync::mpsc::Sender<(u32, Contents)>>>;

/// Threads that read requested files and send their DATA packets; they end when the queue closes.
fn start_readers(
    send: mpsc::Sender<Packet>,
    count: Arc<TransferCount>,
) -> (WorkQueue, Vec<tokio::task::JoinHandle<()>>) {
    let (queue, jobs) = std::sync::mpsc::channel::<(u32, Contents)>();
    let jobs = Arc::new(Mutex::new(jobs));
    let readers = (0..READERS)
        .map(|_| {
            let (jobs, send, count) = (jobs.clone(), send.clone(), count.clone());
            tokio::task::spawn_blocking(move || loop {
                let job = match jobs.lock() {
                    Ok(jobs) => jobs.recv(),
                    Err(_) => return,
                };
                let Ok((id, source)) = job else { return };
                if send_contents(id, &source, &send, &count).is_err() {
                    return;
                }
            })
        })
        .collect();
    (Arc::new(Mutex::new(queue)), readers)
}

/// The transfer is over for this reader: BuildKit stopped listening, or a file could not be read
/// (BuildKit was told).
struct TransferOver;

impl From<mpsc::error::SendError<Packet>> for TransferOver {
    fn from(_: mpsc::error::SendError<Packet>) -> Self {
        TransferOver
    }
}

/// Sends one file's contents as it is now, then the empty DATA that ends it. A file that cannot be
/// opened any more arrives empty, as with fsutil; one that changed since the walk arrives as it is.
fn send_contents(
    id: u32,
    source: &Contents,
    send: &mpsc::Sender<Packet>,
    count: &TransferCount,
) -> std::result::Result<(), TransferOver> {
    let data_packet = |data: Vec<u8>| Packet { r#type: PacketType::PacketData as i32, id, data, ..Default::default() };
    count.files_sent.fetch_add(1, Ordering::Relaxed);
    match source {
        Contents::Memory(data) => {
            for chunk in data.chunks(CHUNK) {
                count.bytes_sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                send.blocking_send(data_packet(chunk.to_vec()))?;
            }
        }
        Contents::File(path) => {
            if let Ok(mut file) = std::fs::File::open(path) {
                loop {
                    let mut buffer = vec![0; CHUNK];
                    match file.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(n) => {
                            buffer.truncate(n);
                            count.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
                            send.blocking_send(data_packet(buffer))?;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        // A file cut short would be built as if it were whole: the transfer fails.
                        Err(e) => {
                            let message = format!("could not read {} for the build context: {e}", path.display());
                            send.blocking_send(Packet {
                                r#type: PacketType::PacketErr as i32,
                                data: message.into_bytes(),
                                ..Default::default()
                            })?;
                            return Err(TransferOver);
                        }
                    }
                }
            }
        }
    }
    send.blocking_send(data_packet(Vec::new()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(entries: &[WalkedEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.stat.path.as_str()).collect()
    }

    fn tree(files: &[&str]) -> tempdir::Dir {
        let dir = tempdir::Dir::new();
        for file in files {
            let path = dir.path().join(file);
            if let Some(stripped) = file.strip_suffix('/') {
                std::fs::create_dir_all(dir.path().join(stripped)).unwrap();
            } else {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, file.as_bytes()).unwrap();
            }
        }
        dir
    }

    mod tempdir {
        use std::path::{Path, PathBuf};
        use std::sync::atomic::{AtomicUsize, Ordering};

        static NEXT: AtomicUsize = AtomicUsize::new(0);

        pub struct Dir(PathBuf);

        impl Dir {
            pub fn new() -> Self {
                let n = NEXT.fetch_add(1, Ordering::SeqCst);
                let path = std::env::temp_dir().join(format!("assemble-filesync-{}-{n}", std::process::id()));
                let _ = std::fs::remove_dir_all(&path);
                std::fs::create_dir_all(&path).unwrap();
                Self(path)
            }
            pub fn path(&self) -> &Path {
                &self.0
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
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

    /// The receiver's side of a DiffCopy, played by the test: asks for every file, then FIN.
    async fn transfer(entries: Vec<WalkedEntry>, change: impl FnOnce()) -> (Vec<Packet>, Arc<TransferCount>) {
        let (to_receiver, mut received) = mpsc::channel(1024);
        let (to_sender, inbound) = mpsc::channel::<std::result::Result<Packet, String>>(16);
        let count = Arc::new(TransferCount::default());
        let inbound = futures_util::stream::poll_fn({
            let mut inbound = inbound;
            move |cx| inbound.poll_recv(cx)
        });
        let task = tokio::spawn(send_entries(entries, inbound, to_receiver, count.clone()));
        let mut stats = Vec::new();
        loop {
            let p = received.recv().await.unwrap();
            if p.stat.is_none() {
                break;
            }
            stats.push(p);
        }
        change();
        let files: Vec<u32> = stats
            .iter()
            .enumerate()
            .filter(|(_, p)| can_request_data(p.stat.as_ref().unwrap().mode))
            .map(|(i, _)| i as u32)
            .collect();
        for id in &files {
            to_sender
                .send(Ok(Packet { r#type: PacketType::PacketReq as i32, id: *id, ..Default::default() }))
                .await
                .unwrap();
        }
        let mut data = Vec::new();
        let mut ended = 0;
        while ended < files.len() {
            let p = received.recv().await.unwrap();
            assert_eq!(p.r#type, PacketType::PacketData as i32);
            if p.data.is_empty() {
                ended += 1;
            }
            data.push(p);
        }
        to_sender.send(Ok(packet(PacketType::PacketFin))).await.unwrap();
        assert_eq!(received.recv().await.unwrap().r#type, PacketType::PacketFin as i32);
        task.await.unwrap().unwrap();
        let mut all = stats;
        all.extend(data);
        (all, count)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn sends_the_contents_asked_for_as_they_are_when_asked() {
        let dir = tree(&["a", "big", "sub/c"]);
        std::fs::write(dir.path().join("big"), vec![7u8; CHUNK * 2 + 5]).unwrap();
        let entries = walk(&SyncDir::Folder(dir.path().into()), &TransferFilter::default()).unwrap();
        // "a" changes after the walk, before BuildKit asks for it.
        let changed = dir.path().join("a");
        let (packets, count) = transfer(entries, || std::fs::write(&changed, b"changed since").unwrap()).await;
        let contents = |id: u32| -> Vec<u8> {
            packets
                .iter()
                .filter(|p| p.r#type == PacketType::PacketData as i32 && p.id == id)
                .flat_map(|p| p.data.clone())
                .collect()
        };
        // ids: 0 a, 1 big, 2 sub, 3 sub/c
        assert_eq!(packets[0].stat.as_ref().unwrap().size, 1, "the stat is the walk's");
        assert_eq!(contents(0), b"changed since", "the contents are the file's when asked");
        assert_eq!(contents(1).len(), CHUNK * 2 + 5);
        assert_eq!(contents(3), b"sub/c");
        assert_eq!(count.files_sent.load(Ordering::Relaxed), 3);
        assert_eq!(count.entries.load(Ordering::Relaxed), 4);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_request_for_an_unknown_id_fails_the_transfer_with_a_sentence() {
        let (to_receiver, mut received) = mpsc::channel(16);
        let inbound = futures_util::stream::iter(vec![Ok(Packet {
            r#type: PacketType::PacketReq as i32,
            id: 9,
            ..Default::default()
        })]);
        let result = send_entries(Vec::new(), inbound, to_receiver, Arc::default()).await;
        assert!(result.unwrap_err().0.contains("file number 9"));
        let mut kinds = Vec::new();
        while let Ok(p) = received.try_recv() {
            kinds.push(p.r#type);
        }
        assert!(kinds.contains(&(PacketType::PacketErr as i32)), "{kinds:?}");
    }
}
