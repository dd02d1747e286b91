//! Single flight: one start or stop at a time per user and engine on this machine, across
//! processes (CLI and app) and within one (tray and window). Each operation opens the lock file
//! anew, so the kernel's per-open-file `flock` serialises callers in the same process too. The
//! engine is part of the key: a start on one engine never waits for a stop on another.
use std::{fs::File, path::PathBuf};

use crate::{engine::Endpoint, names::Names, Error, Result};

/// The single-flight lock for one user's backend on one engine; held until dropped.
pub struct OperationLock {
    _file: File,
}

impl OperationLock {
    /// Waits until no other start or stop of `names`' backend on `engine` runs here, then holds it.
    pub async fn acquire(names: &Names, engine: &Endpoint) -> Result<Self> {
        let path = lock_path(names, engine);
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || {
            let file = File::options().create(true).truncate(false).write(true).open(&path)?;
            file.lock()?;
            Ok(file)
        })
        .await
        .map_err(|e| Error::Io { action: format!("locking {shown}"), source: std::io::Error::other(e) })?
        .map(|file| Self { _file: file })
        .map_err(Error::io(format!("locking {shown}")))
    }
}

fn lock_path(names: &Names, engine: &Endpoint) -> PathBuf {
    crate::names::runtime_dir().join(format!("{}-{}.lock", names.backend(), engine.file_key()))
}
