//! The images the tests run, all made on this machine (no registry is reachable here): the BuildKit
//! test image (scripts/build-buildkit-image.sh) and an image with a shell but no buildkitd.
use std::path::Path;

use crate::machine::docker_cli;

/// The BuildKit image the tests run (made by scripts/build-buildkit-image.sh); `$ASSEMBLE_TEST_IMAGE`
/// names another.
pub fn test_image() -> String {
    std::env::var("ASSEMBLE_TEST_IMAGE")
        .ok()
        .filter(|image| !image.trim().is_empty())
        .unwrap_or_else(|| "assemble-buildkit:v0.25-debian-qemu".into())
}

/// The rootless BuildKit image the tests run (made by scripts/build-buildkit-rootless-image.sh);
/// `$ASSEMBLE_TEST_ROOTLESS_IMAGE` names another.
pub fn rootless_test_image() -> String {
    std::env::var("ASSEMBLE_TEST_ROOTLESS_IMAGE")
        .ok()
        .filter(|image| !image.trim().is_empty())
        .unwrap_or_else(|| "assemble-buildkit:v0.25-debian-rootless".into())
}

/// The test image's repository: its name without the tag (`assemble-buildkit` for
/// `assemble-buildkit:v0.25-debian-qemu`).
pub fn test_image_repository() -> String {
    repository_of(&test_image())
}

/// `image` without its tag; a registry's port (`host:5000/name`) is not a tag.
fn repository_of(image: &str) -> String {
    let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[name_start..].rfind(':') {
        Some(colon) => image[..name_start + colon].to_string(),
        None => image.to_string(),
    }
}

/// The platform this machine runs natively, as BuildKit names it first among a worker's platforms.
pub fn native_platform() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "linux/amd64",
        "aarch64" => "linux/arm64",
        "arm" => "linux/arm/v7",
        "x86" => "linux/386",
        "riscv64" => "linux/riscv64",
        "powerpc64" => "linux/ppc64le",
        "s390x" => "linux/s390x",
        other => panic!("the tests do not know BuildKit's name for the {other} architecture"),
    }
}

/// An image with /bin/sh but no buildkitd: a backend made from it exits at once.
pub fn broken_backend_image() -> String {
    std::env::var("ASSEMBLE_TEST_SOCAT_IMAGE").unwrap_or_else(|_| "assemble-socat:debian".into())
}

/// Copies the BuildKit image's static busybox into `dir`: a base for test images (`FROM scratch`
/// plus it), since no public registry is reachable here.
pub fn copy_busybox_into(dir: &Path) {
    let created = docker_cli().args(["create", &test_image(), "true"]).output().expect("the docker CLI runs");
    assert!(created.status.success(), "docker create: {}", String::from_utf8_lossy(&created.stderr));
    let id = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let copied = docker_cli()
        .args(["cp", &format!("{id}:/bin/busybox"), &dir.join("busybox").to_string_lossy()])
        .output()
        .expect("the docker CLI runs");
    // With its anonymous volume (the image declares /var/lib/buildkit one), which would stay behind.
    let _ = docker_cli().args(["rm", "-f", "-v", &id]).output();
    assert!(copied.status.success(), "docker cp: {}", String::from_utf8_lossy(&copied.stderr));
}

/// Debian's static busybox for a foreign architecture (Debian's name: `arm64`), fetched by
/// scripts/fetch-foreign-busybox.sh, copied into `dir` as `busybox-<arch>`; a missing one fails the
/// test with the line that fetches it.
pub fn copy_foreign_busybox_into(dir: &Path, arch: &str) {
    let fetched = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../target/foreign/busybox-{arch}"));
    assert!(
        fetched.exists(),
        "{} is missing: run scripts/fetch-foreign-busybox.sh {arch} (scripts/setup.sh --test-images does)",
        fetched.display()
    );
    if let Err(err) = std::fs::copy(&fetched, dir.join(format!("busybox-{arch}"))) {
        panic!("copying {} into {}: {err}", fetched.display(), dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::repository_of;

    #[test]
    fn a_repository_is_the_name_without_its_tag() {
        assert_eq!(repository_of("assemble-buildkit:v0.25-debian-qemu"), "assemble-buildkit");
        assert_eq!(repository_of("localhost:5000/buildkit"), "localhost:5000/buildkit");
        assert_eq!(repository_of("localhost:5000/buildkit:v1"), "localhost:5000/buildkit");
    }
}
