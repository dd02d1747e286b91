//! What standard input holds for a build, as buildx reads it: with `-` as PATH, a tar of the context
//! (plain or gzip) or else a Dockerfile; with `-f -`, a Dockerfile. A tar is unpacked into a
//! folder of ours that lives as long as the plan and is sent like any folder.
use std::{
    io::Read,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use crate::{build::error::BuildError, Result};

/// What standard input held.
#[derive(Debug)]
pub enum StdinContent {
    /// A Dockerfile's text.
    Dockerfile(String),
    /// A tar of the context, unpacked.
    Context(UnpackedContext),
}

/// A folder of ours that holds a context unpacked from standard input; removed when dropped.
#[derive(Debug)]
pub struct UnpackedContext {
    path: PathBuf,
}

impl UnpackedContext {
    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UnpackedContext {
    fn drop(&mut self) {
        // Ours alone (made here, named by our process); nothing else is in it.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Standard input with `-` as PATH: a tar (plain or gzip) is unpacked, anything else is a Dockerfile.
pub fn context_or_dockerfile(bytes: &[u8]) -> Result<StdinContent> {
    if is_gzip(bytes) {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut plain)
            .map_err(|err| BuildError::StdinTarUnreadable { reason: format!("gzip: {err}") })?;
        return unpack(&plain).map(StdinContent::Context);
    }
    if is_tar(bytes) {
        return unpack(bytes).map(StdinContent::Context);
    }
    dockerfile(bytes).map(StdinContent::Dockerfile)
}

/// Standard input with `-f -`: a Dockerfile's text.
pub fn dockerfile(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| BuildError::StdinNotText.into())
}

/// A POSIX or GNU tar: "ustar" at offset 257 of its first header.
fn is_tar(bytes: &[u8]) -> bool {
    bytes.get(257..262) == Some(b"ustar")
}

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

fn unpack(tar_bytes: &[u8]) -> Result<UnpackedContext> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "assemble-stdin-context-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let unreadable = |err: std::io::Error| BuildError::StdinTarUnreadable { reason: err.to_string() };
    // A folder left by an earlier process of the same id is ours too; start empty.
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).map_err(unreadable)?;
    let unpacked = UnpackedContext { path };
    let mut archive = tar::Archive::new(tar_bytes);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    // The tar crate keeps every entry inside the folder (no `..`, no absolute paths, no writes
    // through links that point out).
    archive.unpack(&unpacked.path).map_err(unreadable)?;
    Ok(unpacked)
}

/// A tar of `files` (name, text), for tests.
#[cfg(test)]
pub(crate) fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, text) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, text.as_bytes()).expect("a tar entry");
    }
    builder.into_inner().expect("the tar")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tar_is_unpacked_into_a_folder_that_goes_with_it() {
        let bytes = tar_of(&[("Dockerfile", "FROM scratch\n"), ("sub/a.txt", "a")]);
        let StdinContent::Context(unpacked) = context_or_dockerfile(&bytes).unwrap() else { panic!("not a context") };
        let folder = unpacked.path().to_path_buf();
        assert_eq!(std::fs::read_to_string(folder.join("Dockerfile")).unwrap(), "FROM scratch\n");
        assert_eq!(std::fs::read_to_string(folder.join("sub/a.txt")).unwrap(), "a");
        drop(unpacked);
        assert!(!folder.exists());
    }

    #[test]
    fn a_gzip_tar_is_unpacked_too() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar_of(&[("Dockerfile", "FROM scratch\n")])).unwrap();
        let bytes = gz.finish().unwrap();
        let StdinContent::Context(unpacked) = context_or_dockerfile(&bytes).unwrap() else { panic!("not a context") };
        assert!(unpacked.path().join("Dockerfile").is_file());
    }

    #[test]
    fn text_is_a_dockerfile_and_other_bytes_are_refused() {
        match context_or_dockerfile(b"FROM scratch\nCOPY . /\n").unwrap() {
            StdinContent::Dockerfile(text) => assert_eq!(text, "FROM scratch\nCOPY . /\n"),
            other => panic!("{other:?}"),
        }
        let err = context_or_dockerfile(&[0xff, 0xfe, 0x00]).unwrap_err();
        assert!(err.to_string().contains("not UTF-8 text"), "{err}");
        let broken = [0x1f, 0x8b, 0x08, 0x00];
        let err = context_or_dockerfile(&broken).unwrap_err();
        assert!(err.to_string().starts_with("the tar on standard input could not be unpacked (gzip:"), "{err}");
    }
}
