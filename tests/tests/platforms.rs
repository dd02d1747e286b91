//! Several platforms on one backend: the emulators in its image (buildkit-qemu-*, found without any
//! host binfmt registration or --privileged), an image index pushed to a real registry by
//! `assemble build` and by a real buildx, and the refusals that come before anything is sent.
use std::{
    io::Write,
    process::{Command, Stdio},
};

use assemble_testkit::{
    buildx_plugin, copy_busybox_into, copy_foreign_busybox_into, native_platform, Folder, Registry, TestUser,
};

/// Each platform's own busybox (`busybox-amd64`, `busybox-arm64`): the step runs the image's
/// architecture, so an arm64 step runs aarch64 code through the backend's emulator. The shell's
/// commands are busybox's applets run without a new exec (Debian's busybox prefers its applets):
/// Debian's qemu-user emulates the step's first program only, as README's Platforms says.
const DOCKERFILE: &str = r#"FROM scratch
ARG TARGETARCH
COPY busybox-$TARGETARCH /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "arch=$(uname -m) && echo $arch && echo $arch > /arch"]
"#;

/// A context for [`DOCKERFILE`] with the machine's busybox and Debian's arm64 one.
fn two_architectures_context(tag: &str) -> Folder {
    assert_eq!(native_platform(), "linux/amd64", "these tests emulate arm64 on an amd64 machine");
    let context = Folder::new(tag, &[("Dockerfile", DOCKERFILE)]);
    copy_busybox_into(&context.path);
    std::fs::rename(context.path.join("busybox"), context.path.join("busybox-amd64")).expect("busybox-amd64");
    copy_foreign_busybox_into(&context.path, "arm64");
    context
}

/// The pushed index of `name:tag`: for each platform (`linux/arm64`), what its image's `/arch`
/// holds (the step's `uname -m`), read from the layer blobs the registry keeps.
fn arch_files_in_index(registry: &Registry, name: &str, tag: &str) -> Vec<(String, String)> {
    let index = registry.manifest(name, tag);
    let media_type = index["mediaType"].as_str().unwrap_or_default();
    assert!(
        media_type == "application/vnd.oci.image.index.v1+json"
            || media_type == "application/vnd.docker.distribution.manifest.list.v2+json",
        "{name}:{tag} is one image index: {index:#}"
    );
    let mut found = Vec::new();
    for entry in index["manifests"].as_array().expect("the index lists manifests") {
        let platform = &entry["platform"];
        let os_arch =
            format!("{}/{}", platform["os"].as_str().unwrap_or("?"), platform["architecture"].as_str().unwrap_or("?"));
        // buildx and BuildKit may add attestation manifests (platform unknown/unknown); skip them.
        if os_arch == "unknown/unknown" {
            continue;
        }
        let manifest = registry.manifest(name, entry["digest"].as_str().expect("a digest"));
        let config: serde_json::Value =
            serde_json::from_slice(&registry.blob(name, manifest["config"]["digest"].as_str().expect("a config")))
                .expect("the config is JSON");
        assert_eq!(
            format!("{}/{}", config["os"].as_str().unwrap_or("?"), config["architecture"].as_str().unwrap_or("?")),
            os_arch,
            "the image's config names the index entry's platform"
        );
        let layers = manifest["layers"].as_array().expect("layers");
        let last = layers.last().expect("a layer");
        let arch = file_in_layer(&registry.blob(name, last["digest"].as_str().expect("a digest")), "arch");
        found.push((os_arch, arch));
    }
    found.sort();
    found
}

/// One file of a gzip'd layer tar, by Debian's tar (the registry serves the layer as pushed).
fn file_in_layer(layer: &[u8], path: &str) -> String {
    let mut tar = Command::new("tar")
        .args(["-xzO", "-f", "-", path])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tar runs");
    tar.stdin.take().expect("stdin").write_all(layer).expect("the layer goes to tar");
    let out = tar.wait_with_output().expect("tar ends");
    assert!(out.status.success(), "{path} is not in the layer: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn expected() -> Vec<(String, String)> {
    vec![("linux/amd64".into(), "x86_64\n".into()), ("linux/arm64".into(), "aarch64\n".into())]
}

fn builds_count(user: &TestUser) -> usize {
    user.run(&["backend", "builds", "--format", "json"])
        .expect_ok()
        .stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emulated_arm64_image_and_a_native_amd64_one_are_pushed_as_one_index() {
    assert!(buildx_plugin().exists(), "{} is missing: run scripts/fetch-buildx.sh", buildx_plugin().display());
    let registry = Registry::start();
    let user = TestUser::new("platforms");
    let port = registry.port.to_string();
    user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();

    // The worker lists what the kernel runs; the image's emulators add the rest, marked.
    let info: serde_json::Value =
        serde_json::from_str(&user.run(&["backend", "info", "--format", "json"]).expect_ok().stdout).expect("json");
    // Emulation needs neither --privileged nor binfmt_misc on the host (BuildKit mounts its emulator).
    assert_ne!(info["security"], "privileged", "{:#}", info["security"]);
    let worker = &info["workers"][0];
    let listed = |key: &str| -> Vec<String> {
        worker[key].as_array().expect(key).iter().filter_map(|p| p.as_str().map(String::from)).collect()
    };
    assert!(listed("platforms").contains(&"linux/amd64".to_string()), "{worker:#}");
    for emulated in ["linux/arm64", "linux/arm/v7", "linux/riscv64", "linux/ppc64le", "linux/s390x"] {
        assert!(listed("emulated_platforms").contains(&emulated.to_string()), "{emulated} is emulated: {worker:#}");
        assert!(!listed("platforms").contains(&emulated.to_string()), "{emulated} is not native: {worker:#}");
    }
    assert_eq!(info["platforms"]["native"][0], "linux/amd64", "{:#}", info["platforms"]);
    let text = user.run(&["backend", "info"]).expect_ok().stdout;
    assert!(text.contains("    - linux/amd64\n") && text.contains("    - linux/arm64 (emulated)\n"), "{text}");

    // `assemble build` for two platforms: one index, each image built by its own architecture.
    let context = two_architectures_context("platforms-context");
    let dir = context.path.display().to_string();
    let image = format!("localhost:{port}/e2e/multi:1");
    let built = user.run(&[
        "build",
        "--platform",
        "linux/amd64,linux/arm64",
        "--push",
        "-t",
        &image,
        "--progress",
        "plain",
        &dir,
    ]);
    assert!(built.ok(), "{built:#?}");
    assert!(
        built.stderr.contains("x86_64") && built.stderr.contains("aarch64"),
        "each RUN printed its uname: {}",
        built.stderr
    );
    assert!(built.stdout.contains("Platforms: linux/amd64, linux/arm64 (emulated)"), "{}", built.stdout);
    assert_eq!(arch_files_in_index(&registry, "e2e/multi", "1"), expected());

    // Several platforms cannot be loaded: refused before anything is sent, so nothing is built.
    let before = builds_count(&user);
    let local_tag = format!("e2e-platforms-{}:1", user.user());
    let load = user.run(&["build", "--platform", "linux/amd64,linux/arm64", "--load", "-t", &local_tag, &dir]);
    assert_eq!(load.code, Some(1), "{load:#?}");
    assert!(
        load.stderr.contains(
            "docker exporter does not currently support exporting manifest lists: --load takes one platform (asked: \
             linux/amd64, linux/arm64); push the platforms as one image with --push instead, or give --platform one of them"
        ),
        "{}",
        load.stderr
    );
    assert_eq!(builds_count(&user), before, "no build reached BuildKit");
    assert!(!user.docker(&["image", "inspect", &local_tag]).ok(), "nothing was loaded");

    // A platform neither the kernel nor an emulator runs: the sentence names what the backend has.
    let unknown = user.run(&["build", "--platform", "linux/mips64", "--push", "-t", &image, &dir]);
    assert_eq!(unknown.code, Some(1), "{unknown:#?}");
    assert!(
        unknown.stderr.contains("the backend cannot build for linux/mips64: it builds for linux/amd64")
            && unknown.stderr.contains(
                "natively, and for linux/arm64, linux/arm/v7, linux/arm/v6, linux/ppc64le, linux/riscv64, linux/s390x \
                 through its emulators"
            ),
        "{}",
        unknown.stderr
    );
    assert_eq!(builds_count(&user), before, "no build reached BuildKit");

    // buildx on our backend does the same, from the same context.
    let buildx_image = format!("localhost:{port}/e2e/multi-buildx:1");
    let buildx = user.docker(&[
        "buildx",
        "build",
        "--builder",
        "assemble",
        "--progress",
        "plain",
        "--platform",
        "linux/amd64,linux/arm64",
        "--push",
        "-t",
        &buildx_image,
        &dir,
    ]);
    assert!(buildx.ok(), "{buildx:#?}");
    assert_eq!(arch_files_in_index(&registry, "e2e/multi-buildx", "1"), expected());
}
