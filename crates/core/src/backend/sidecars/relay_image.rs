//! The sidecar image: our static relay binary and nothing else, made on the engine on first use
//! (an import of a one-file tarball), so no registry is ever needed for it.
use bollard::{body_full, query_parameters::CreateImageOptionsBuilder, Docker};
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};

use crate::{
    backend::progress::{Reporter, StartEvent},
    backend::{error::BackendError, labels},
    engine::is_not_found,
    Result,
};

/// The relay, compiled static by build.rs from `crates/proxy`.
static RELAY_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/assemble-proxy"));

/// Where the relay sits in its image.
pub const RELAY_PATH: &str = "/assemble-proxy";

const REPOSITORY: &str = "docker-assemble-backend-proxy";

/// `docker-assemble-backend-proxy:<version>-<hash of the binary>`: a new relay gets a new tag, an
/// unchanged one is found again and not rebuilt.
pub fn reference() -> String {
    format!("{REPOSITORY}:{}", tag_for(RELAY_BINARY))
}

/// `<version>-<the first 6 bytes of the binary's SHA-256, in hex>`.
pub(in crate::backend) fn tag_for(binary: &[u8]) -> String {
    let digest = Sha256::digest(binary);
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", labels::OUR_VERSION)
}

/// Makes the sidecar image unless the engine has it already; returns its reference.
pub async fn ensure(docker: &Docker, report: Reporter<'_>) -> Result<String> {
    let image = OneFileImage { repository: REPOSITORY, binary: RELAY_BINARY, path: RELAY_PATH, role: "proxy-image" };
    let (reference, built) = image.ensure(docker).await.map_err(BackendError::ProxyImage)?;
    if built {
        report(StartEvent::ProxyImageBuilt { image: reference.clone() });
    }
    Ok(reference)
}

/// An image of one static binary of ours and nothing else, imported on the engine on first use:
/// the relay's (here) and the local-image mirror's (backend/mirror).
pub(in crate::backend) struct OneFileImage {
    /// The repository; the tag is our version and the start of the binary's SHA-256.
    pub repository: &'static str,
    pub binary: &'static [u8],
    /// Where the binary sits in the image, which is also its entrypoint.
    pub path: &'static str,
    /// Its role label.
    pub role: &'static str,
}

impl OneFileImage {
    /// `repository:<version>-<hash of the binary>`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, tag_for(self.binary))
    }

    /// Imports the image unless the engine has it; returns its reference and whether it was made
    /// now. A failure is a sentence.
    pub async fn ensure(&self, docker: &Docker) -> std::result::Result<(String, bool), String> {
        let reference = self.reference();
        match docker.inspect_image(&reference).await {
            Ok(_) => return Ok((reference, false)),
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(format!("inspecting image {reference}: {}", crate::failure::engine_message(&err))),
        }
        let tarball = rootfs_tarball(self.binary, self.path).map_err(|e| format!("packing {}: {e}", self.path))?;
        let options = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(self.repository)
            .tag(&tag_for(self.binary))
            .changes(vec![
                format!("ENTRYPOINT [\"{}\"]", self.path),
                format!("LABEL {}={} {}={}", labels::ROLE, self.role, labels::VERSION, labels::OUR_VERSION),
            ])
            .build();
        docker
            .create_image(Some(options), Some(body_full(tarball.into())), None)
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| format!("importing {reference}: {e}"))?;
        Ok((reference, true))
    }
}

fn rootfs_tarball(binary: &[u8], path: &str) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(binary.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_cksum();
    builder.append_data(&mut header, path.trim_start_matches('/'), binary)?;
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_relay_is_a_static_elf() {
        assert_eq!(&RELAY_BINARY[..4], b"\x7fELF");
        // A dynamically linked ELF64 has a PT_INTERP (type 3) program header; a static one has none.
        let read_u16 = |at: usize| u16::from_le_bytes([RELAY_BINARY[at], RELAY_BINARY[at + 1]]) as usize;
        let program_headers = u64::from_le_bytes(RELAY_BINARY[0x20..0x28].try_into().unwrap()) as usize;
        let (entry_size, count) = (read_u16(0x36), read_u16(0x38));
        assert!(count > 0);
        let has_interpreter = (0..count).any(|i| {
            let at = program_headers + i * entry_size;
            u32::from_le_bytes(RELAY_BINARY[at..at + 4].try_into().unwrap()) == 3
        });
        assert!(!has_interpreter, "the relay must be statically linked");
    }

    #[test]
    fn the_tag_is_the_version_and_the_start_of_the_binarys_sha256() {
        // By `sha256sum`: "relay v1" is 4dad2c26bcdda4e1…, the empty input e3b0c44298fc1c14….
        assert_eq!(tag_for(b"relay v1"), format!("{}-4dad2c26bcdd", labels::OUR_VERSION));
        assert_eq!(tag_for(b""), format!("{}-e3b0c44298fc", labels::OUR_VERSION));
    }

    #[test]
    fn the_tag_follows_the_binary() {
        // "relay v2" is 8311074d2be734f5…: one changed byte, a new tag, so a new relay is imported.
        assert_eq!(tag_for(b"relay v2"), format!("{}-8311074d2be7", labels::OUR_VERSION));
        assert_ne!(tag_for(b"relay v1"), tag_for(b"relay v2"));
    }

    #[test]
    fn the_reference_names_the_embedded_relay() {
        let sha256 = format!("{:x}", Sha256::digest(RELAY_BINARY));
        assert_eq!(sha256.len(), 64);
        let expected = format!("docker-assemble-backend-proxy:{}-{}", labels::OUR_VERSION, &sha256[..12]);
        assert_eq!(reference(), expected);
    }
}
