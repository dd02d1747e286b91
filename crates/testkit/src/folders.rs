//! Temporary folders (tempfile): removed with everything in them when their value drops, pass or
//! fail.
use std::path::{Path, PathBuf};

/// A new scratch folder in the temp dir, named after `tag`; removed with its contents on drop.
pub fn make_scratch_dir(tag: &str) -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix(&format!("assemble-test-{tag}-"))
        .tempdir()
        .map_err(|e| format!("cannot make a scratch folder in {}: {e}", std::env::temp_dir().display()))
}

/// [`make_scratch_dir`], or a panic that names the cause (for tests).
pub fn scratch_dir(tag: &str) -> tempfile::TempDir {
    make_scratch_dir(tag).unwrap_or_else(|reason| panic!("{reason}"))
}

/// A folder of files made by a test (`name` → text; a name ending in `/` is an empty folder),
/// removed when it drops.
pub struct Folder {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Folder {
    pub fn new(tag: &str, files: &[(&str, &str)]) -> Self {
        let dir = scratch_dir(tag);
        let path = dir.path().to_path_buf();
        for (name, text) in files {
            match name.strip_suffix('/') {
                Some(folder) => make_dir(&path.join(folder)),
                None => {
                    let file = path.join(name);
                    if let Some(parent) = file.parent() {
                        make_dir(parent);
                    }
                    if let Err(err) = std::fs::write(&file, text) {
                        panic!("cannot write {}: {err}", file.display());
                    }
                }
            }
        }
        Self { path, _dir: dir }
    }

    /// The folder as a command-line argument.
    pub fn arg(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

fn make_dir(dir: &Path) {
    if let Err(err) = std::fs::create_dir_all(dir) {
        panic!("cannot make {}: {err}", dir.display());
    }
}
