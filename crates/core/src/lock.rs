//! Single flight: one start or stop at a time per user on this machine, across processes (CLI and
//! app) and within one (tray and window). Each operation opens the lock file anew, so the kernel's
//! per-open-file `flock` serialises callers in the same process too.
use std::{fs::File, path::PathBuf};

use crate::{
    error::{Error, Result},
    names::Names,
};

pub struct OperationLock {
    _file: File,
}

impl OperationLock {
    /// Waits until no other start or stop of `names`' backend is running here, then holds it.
    pub async fn acquire(names: &Names) -> Result<Self> {
        let path = lock_path(names);
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

fn lock_path(names: &Names) -> PathBuf {
    runtime_dir().join(format!("{}.lock", names.backend()))
}

/// Where per-machine, per-boot files go: `$XDG_RUNTIME_DIR`, else the temp folder.
pub(crate) fn runtime_dir() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir)
}
