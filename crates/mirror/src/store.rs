//! What the back has exported, by digest: the manifests in memory, the blobs (configs and layers)
//! in its cache folder. A record lives while the engine has its image; when the image goes, its
//! record goes and every blob no other record names is deleted, and a short memory of it stays so
//! that a build still using it gets a sentence rather than "not found". Layer files are also
//! dropped, least recently served first, when they take more than the limit: BuildKit keeps what
//! it fetched, and a layer asked for again is exported again.
use std::{
    collections::{HashMap, HashSet, VecDeque},
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use crate::export::{blob_path, Exported};

/// How many removed images are remembered for their sentence.
const GONE_KEPT: usize = 64;
/// A layer served this recently is never dropped for room.
const IN_USE: Duration = Duration::from_secs(120);

/// One exported image.
#[derive(Debug)]
pub struct Record {
    pub image_id: String,
    /// How it was first asked for (`base:dev`), for sentences.
    pub asked_as: String,
    pub exported: Exported,
}

impl Record {
    /// Every blob the manifest names.
    pub fn blobs(&self) -> impl Iterator<Item = (&str, u64)> {
        std::iter::once((self.exported.config_digest.as_str(), self.exported.config_size))
            .chain(self.exported.layers.iter().map(|l| (l.digest.as_str(), l.size)))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blobs().any(|(d, _)| d == digest)
    }
}

/// An image the engine no longer has, remembered for a while.
#[derive(Debug, Clone)]
pub struct Gone {
    pub image_id: String,
    pub asked_as: String,
    digests: HashSet<String>,
}

#[derive(Default)]
struct State {
    records: HashMap<String, Arc<Record>>,
    /// When each layer file was last served (or written).
    served: HashMap<String, Instant>,
    gone: VecDeque<Gone>,
}

pub struct Store {
    pub blobs: PathBuf,
    pub tmp: PathBuf,
    max_layer_bytes: u64,
    state: Mutex<State>,
}

impl Store {
    /// A store in `dir` (emptied: what an earlier run left is not trusted).
    pub fn open(dir: &Path, max_layer_bytes: u64) -> std::io::Result<Self> {
        let (blobs, tmp) = (dir.join("blobs"), dir.join("tmp"));
        for folder in [&blobs, &tmp] {
            if folder.exists() {
                fs::remove_dir_all(folder)?;
            }
            fs::create_dir_all(folder)?;
        }
        Ok(Self { blobs, tmp, max_layer_bytes, state: Mutex::new(State::default()) })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere never leaves the maps half-changed: every change is one statement.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn record(&self, image_id: &str) -> Option<Arc<Record>> {
        self.state().records.get(image_id).cloned()
    }

    pub fn by_manifest(&self, digest: &str) -> Option<Arc<Record>> {
        self.state().records.values().find(|r| r.exported.manifest_digest == digest).cloned()
    }

    pub fn with_blob(&self, digest: &str) -> Vec<Arc<Record>> {
        self.state().records.values().filter(|r| r.has_blob(digest)).cloned().collect()
    }

    pub fn image_ids(&self) -> Vec<String> {
        self.state().records.keys().cloned().collect()
    }

    /// The image that named `digest` (a manifest or a blob) and is gone, if any.
    pub fn gone(&self, digest: &str) -> Option<Gone> {
        self.state().gone.iter().rev().find(|g| g.digests.contains(digest)).cloned()
    }

    pub fn insert(&self, record: Record) -> Arc<Record> {
        let record = Arc::new(record);
        let mut state = self.state();
        let now = Instant::now();
        for layer in &record.exported.layers {
            state.served.insert(layer.digest.clone(), now);
        }
        state.records.insert(record.image_id.clone(), record.clone());
        record
    }

    /// Whether every blob of `record` is on disk.
    pub fn complete(&self, record: &Record) -> bool {
        record.blobs().all(|(digest, _)| blob_path(&self.blobs, digest).exists())
    }

    pub fn touch(&self, digest: &str) {
        self.state().served.insert(digest.to_string(), Instant::now());
    }

    pub fn path(&self, digest: &str) -> PathBuf {
        blob_path(&self.blobs, digest)
    }

    /// The engine no longer has `image_id`: its record goes, remembered for its sentence, and the
    /// blobs no other record names are deleted. Call with exports held off (see back.rs).
    pub fn forget(&self, image_id: &str) {
        let mut state = self.state();
        let Some(record) = state.records.remove(image_id) else { return };
        let mut digests: HashSet<String> = record.blobs().map(|(d, _)| d.to_string()).collect();
        digests.insert(record.exported.manifest_digest.clone());
        state.gone.push_back(Gone { image_id: record.image_id.clone(), asked_as: record.asked_as.clone(), digests });
        while state.gone.len() > GONE_KEPT {
            state.gone.pop_front();
        }
        drop(state);
        self.collect();
    }

    /// Deletes blob files no record names (and leftovers of an export that failed). Call with
    /// exports held off.
    pub fn collect(&self) {
        let named: HashSet<String> = {
            let state = self.state();
            state
                .records
                .values()
                .flat_map(|r| r.blobs().map(|(d, _)| d.trim_start_matches("sha256:").to_string()).collect::<Vec<_>>())
                .collect()
        };
        if let Ok(entries) = fs::read_dir(&self.blobs) {
            for entry in entries.flatten() {
                if !named.contains(&entry.file_name().to_string_lossy().to_string()) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        if let Ok(entries) = fs::read_dir(&self.tmp) {
            for entry in entries.flatten() {
                let _ = fs::remove_file(entry.path());
            }
        }
        let mut state = self.state();
        let State { records, served, .. } = &mut *state;
        served.retain(|digest, _| records.values().any(|r| r.has_blob(digest)));
    }

    /// Drops layer files, least recently served first, while they take more than the limit
    /// (configs stay: they are small, and a resolve needs them). Call with exports held off.
    pub fn make_room(&self) {
        let mut layers: Vec<(Instant, String, u64)> = {
            let state = self.state();
            let mut seen = HashSet::new();
            state
                .records
                .values()
                .flat_map(|r| r.exported.layers.iter())
                .filter(|l| seen.insert(l.digest.clone()))
                .filter(|l| blob_path(&self.blobs, &l.digest).exists())
                .map(|l| (state.served.get(&l.digest).copied().unwrap_or_else(Instant::now), l.digest.clone(), l.size))
                .collect()
        };
        let mut total: u64 = layers.iter().map(|(_, _, size)| size).sum();
        layers.sort();
        for (served, digest, size) in layers {
            if total <= self.max_layer_bytes {
                break;
            }
            if served.elapsed() < IN_USE {
                continue;
            }
            if fs::remove_file(blob_path(&self.blobs, &digest)).is_ok() {
                total -= size;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{Layer, LAYER_TAR};

    fn record(id: &str, layers: &[&str]) -> Record {
        Record {
            image_id: id.into(),
            asked_as: format!("{id}:dev"),
            exported: Exported {
                config_digest: format!("sha256:c{id}"),
                config_size: 2,
                layers: layers
                    .iter()
                    .map(|d| Layer { digest: d.to_string(), size: 10, media_type: LAYER_TAR })
                    .collect(),
                manifest: Vec::new(),
                manifest_digest: format!("sha256:m{id}"),
            },
        }
    }

    #[test]
    fn a_blob_goes_when_no_image_names_it_and_the_gone_image_is_remembered() {
        let dir = std::env::temp_dir().join(format!("assemble-mirror-store-{}", std::process::id()));
        let store = Store::open(&dir, u64::MAX).unwrap();
        for digest in ["sha256:shared", "sha256:only1", "sha256:only2", "sha256:c1", "sha256:c2", "sha256:stray"] {
            fs::write(store.path(digest), b"0123456789").unwrap();
        }
        store.insert(record("1", &["sha256:shared", "sha256:only1"]));
        store.insert(record("2", &["sha256:shared", "sha256:only2"]));
        store.collect();
        assert!(!store.path("sha256:stray").exists(), "a file no record names is a leftover");
        assert_eq!(store.with_blob("sha256:shared").len(), 2);
        store.forget("1");
        assert!(!store.path("sha256:only1").exists() && !store.path("sha256:c1").exists());
        assert!(store.path("sha256:shared").exists(), "image 2 still names it");
        assert!(store.record("1").is_none() && store.by_manifest("sha256:m2").is_some());
        let gone = store.gone("sha256:only1").unwrap();
        assert_eq!((gone.image_id.as_str(), gone.asked_as.as_str()), ("1", "1:dev"));
        assert!(store.gone("sha256:m1").is_some());
        assert!(store.gone("sha256:only2").is_none());
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn room_is_made_from_layers_not_served_lately() {
        let dir = std::env::temp_dir().join(format!("assemble-mirror-room-{}", std::process::id()));
        let store = Store::open(&dir, 15).unwrap();
        for digest in ["sha256:a", "sha256:b", "sha256:ca"] {
            fs::write(store.path(digest), b"0123456789").unwrap();
        }
        store.insert(record("a", &["sha256:a", "sha256:b"]));
        store.make_room();
        assert!(store.path("sha256:a").exists(), "just served: kept");
        {
            let mut state = store.state();
            let long_ago = Instant::now() - Duration::from_secs(600);
            state.served.insert("sha256:a".into(), long_ago);
            state.served.insert("sha256:b".into(), long_ago + Duration::from_secs(1));
        }
        store.make_room();
        assert!(!store.path("sha256:a").exists(), "the least recently served goes first");
        assert!(store.path("sha256:b").exists() && store.path("sha256:ca").exists(), "then it fits; configs stay");
        assert!(!store.complete(&store.record("a").unwrap()));
        let _ = fs::remove_dir_all(dir);
    }
}
