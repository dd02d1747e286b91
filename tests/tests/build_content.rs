//! `assemble build`'s session content store against the real backend and a real buildx:
//! `--cache-to type=local` leaves a folder in BuildKit's layout (blobs named by their digest,
//! `index.json` tagged `latest`), `--cache-from type=local` brings the heavy steps back CACHED on a
//! cold backend, buildx reads our folder and we read buildx's, a missing folder is buildx's warning,
//! and `-o type=oci,dest=DIR,tar=false` writes an OCI layout folder buildx takes as a context.
use std::path::Path;

use assemble_testkit::{buildx_plugin, copy_busybox_into, step_cached, step_said, Folder, Run, TestUser};

/// Two steps worth caching: a file written by a slow `RUN`, and one more on top of it.
const HEAVY_DOCKERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo heavy-step-ran; /bin/busybox sleep 3; /bin/busybox head -c 2000000 /dev/urandom > /heavy.bin"]
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo second-step-ran; /bin/busybox wc -c /heavy.bin > /size"]
"#;

fn backend_id(user: &TestUser) -> String {
    let inspect = user.docker(&["inspect", "--format", "{{.Id}}", &user.names.backend()]).expect_ok();
    inspect.stdout.trim().to_string()
}

/// A new backend with an empty cache (the user has no cache volume).
fn restart_cold(user: &TestUser) {
    let before = backend_id(user);
    user.run(&["backend", "stop"]).expect_ok();
    user.run(&["backend", "start"]).expect_ok();
    assert_ne!(backend_id(user), before, "the backend was not replaced");
    let usage = user.run(&["backend", "cache", "usage", "--format", "json"]).expect_ok();
    assert!(!usage.stdout.contains("heavy"), "the new backend already has the steps: {}", usage.stdout);
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every blob's name is the sha256 of its bytes (sha256sum, not our code), and there is at least
/// one; the ingest folder holds no unfinished write.
fn check_blobs(dir: &Path) -> usize {
    let blobs: Vec<_> = std::fs::read_dir(dir.join("blobs/sha256")).expect("blobs/sha256").flatten().collect();
    assert!(!blobs.is_empty(), "no blobs in {}", dir.display());
    for blob in &blobs {
        let sum = std::process::Command::new("sha256sum").arg(blob.path()).output().expect("sha256sum runs");
        let sum = String::from_utf8_lossy(&sum.stdout);
        assert_eq!(sum.split_whitespace().next(), Some(blob.file_name().to_string_lossy().as_ref()), "{blob:?}");
    }
    if let Ok(ingest) = std::fs::read_dir(dir.join("ingest")) {
        assert_eq!(ingest.count(), 0, "an unfinished write was left in {}", dir.display());
    }
    assert!(!dir.join("index.json.lock").exists());
    blobs.len()
}

/// The descriptor `index.json` tags `tag`, and its blob.
fn tagged(dir: &Path, tag: &str) -> serde_json::Value {
    let index = read_json(&dir.join("index.json"));
    assert_eq!(index["schemaVersion"], 2, "{index}");
    assert_eq!(read_json(&dir.join("oci-layout"))["imageLayoutVersion"], "1.0.0");
    let manifests = index["manifests"].as_array().expect("manifests");
    let entry = manifests
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no entry tagged {tag}: {index}"))
        .clone();
    let digest = entry["digest"].as_str().expect("a digest");
    let blob = dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    assert_eq!(std::fs::metadata(&blob).expect("the tagged blob").len(), entry["size"].as_u64().expect("a size"));
    entry
}

fn build(user: &TestUser, context: &Folder, flags: &[&str]) -> Run {
    let mut args = vec!["build", context.path.to_str().expect("a UTF-8 path"), "--progress", "plain"];
    args.extend_from_slice(flags);
    user.run(&args)
}

fn buildx(user: &TestUser, context: &Folder, flags: &[&str]) -> Run {
    let mut args = vec!["buildx", "build", "--builder", "assemble", "--progress", "plain"];
    args.extend_from_slice(flags);
    args.push(context.path.to_str().expect("a UTF-8 path"));
    user.docker(&args)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_cache_folder_brings_the_heavy_steps_back_on_a_cold_backend_and_buildx_shares_it() {
    assert!(buildx_plugin().exists(), "{} is missing: run scripts/fetch-buildx.sh", buildx_plugin().display());
    let user = TestUser::new("content-cache");
    let context = Folder::new("content-cache", &[("Dockerfile", HEAVY_DOCKERFILE)]);
    copy_busybox_into(&context.path);
    user.run(&["backend", "start"]).expect_ok();
    let ours = user.scratch("ours");
    let ours_arg = ours.display().to_string();

    let first = build(&user, &context, &["--cache-to", &format!("type=local,dest={ours_arg},mode=max")]);
    assert!(first.ok(), "{first:#?}");
    assert!(step_said(&first.stderr, "heavy-step-ran"), "the first build runs the step: {}", first.stderr);
    assert!(first.stderr.contains("exporting cache to client directory"), "{}", first.stderr);
    let blobs = check_blobs(&ours);
    assert!(blobs >= 4, "mode=max: the layers of both steps, the config and the manifest; {blobs} blobs");
    let cache = tagged(&ours, "latest");
    assert_eq!(cache["mediaType"], "application/vnd.oci.image.manifest.v1+json", "image-manifest is the default");

    // A cold backend, our folder: the heavy steps come back CACHED.
    restart_cold(&user);
    let from_ours = build(&user, &context, &["--cache-from", &format!("type=local,src={ours_arg}")]);
    assert!(from_ours.ok(), "{from_ours:#?}");
    assert!(!step_said(&from_ours.stderr, "heavy-step-ran"), "the step ran again: {}", from_ours.stderr);
    assert!(step_cached(&from_ours.stderr, "heavy-step-ran"), "{}", from_ours.stderr);
    assert!(step_cached(&from_ours.stderr, "second-step-ran"), "{}", from_ours.stderr);

    // buildx reads the folder we wrote.
    restart_cold(&user);
    let buildx_reads = buildx(&user, &context, &["--cache-from", &format!("type=local,src={ours_arg}")]);
    assert!(buildx_reads.ok(), "{buildx_reads:#?}");
    assert!(step_cached(&buildx_reads.stderr, "heavy-step-ran"), "{}", buildx_reads.stderr);

    // We read the folder buildx wrote (with its own tag).
    let theirs = user.scratch("theirs");
    let theirs_arg = theirs.display().to_string();
    let buildx_writes =
        buildx(&user, &context, &["--cache-to", &format!("type=local,dest={theirs_arg},mode=max,tag=v1")]);
    assert!(buildx_writes.ok(), "{buildx_writes:#?}");
    tagged(&theirs, "v1");
    restart_cold(&user);
    let from_theirs = build(&user, &context, &["--cache-from", &format!("type=local,src={theirs_arg},tag=v1")]);
    assert!(from_theirs.ok(), "{from_theirs:#?}");
    assert!(step_cached(&from_theirs.stderr, "heavy-step-ran"), "{}", from_theirs.stderr);

    // A second export into the same folder keeps the blobs it has and moves the tag.
    let again = build(&user, &context, &["--no-cache", "--cache-to", &format!("type=local,dest={ours_arg},mode=max")]);
    assert!(again.ok(), "{again:#?}");
    check_blobs(&ours);
    let index = read_json(&ours.join("index.json"));
    assert_eq!(index["manifests"].as_array().map(Vec::len), Some(1), "one entry per tag: {index}");
    assert_ne!(tagged(&ours, "latest")["digest"], cache["digest"], "--no-cache made new layers");

    // Without an import the cold backend runs the step: the CACHED above came from the folders.
    // A folder that is not there is buildx's warning, and the build goes on.
    restart_cold(&user);
    let missing = user.scratch("missing").join("none");
    let cold = build(&user, &context, &["--cache-from", &format!("type=local,src={}", missing.display())]);
    assert!(cold.ok() && step_said(&cold.stderr, "heavy-step-ran"), "{cold:#?}");
    assert!(
        cold.stderr.contains(&format!("Warning: local cache import at {} not found", missing.display())),
        "{}",
        cold.stderr
    );
    assert!(cold.stderr.contains("building without it, as buildx does"), "{}", cold.stderr);
    eprintln!(
        "cold backend: {:.1} s from our local cache, {:.1} s from buildx's, {:.1} s without a cache",
        from_ours.took.as_secs_f64(),
        from_theirs.took.as_secs_f64(),
        cold.took.as_secs_f64()
    );

    // A folder that cannot be made is one sentence naming the flag.
    let unwritable = build(&user, &context, &["--cache-to", "type=local,dest=/proc/assemble-cache"]);
    assert_eq!(unwritable.code, Some(1), "{unwritable:#?}");
    let last = unwritable.stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("Error: --cache-to") && last.contains("give a folder you can write"), "{last}");
    user.run(&["backend", "stop"]).expect_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oci_output_with_tar_false_is_a_layout_folder() {
    let user = TestUser::new("content-oci");
    let context = Folder::new(
        "content-oci",
        &[
            ("Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\nCOPY hello.txt /hello.txt\n"),
            ("hello.txt", "hello"),
        ],
    );
    copy_busybox_into(&context.path);
    user.run(&["backend", "start"]).expect_ok();
    let layout = user.scratch("layout").join("oci");
    let dest = layout.display().to_string();
    let built = build(
        &user,
        &context,
        &["-t", "localhost:5000/e2e/layout:1", "-o", &format!("type=oci,dest={dest},tar=false")],
    );
    assert!(built.ok(), "{built:#?}");
    assert!(built.stdout.contains(&format!("Wrote the result (oci layout) to the folder {dest}")), "{built:#?}");
    check_blobs(&layout);
    let entry = tagged(&layout, "1");
    assert_eq!(entry["annotations"]["io.containerd.image.name"], "localhost:5000/e2e/layout:1", "{entry}");
    // The image's manifest, config and layers are all in the folder.
    let blob = |digest: &serde_json::Value| {
        layout.join("blobs/sha256").join(digest.as_str().expect("a digest").trim_start_matches("sha256:"))
    };
    let manifest = read_json(&blob(&entry["digest"]));
    let manifest = match manifest["mediaType"].as_str() {
        Some("application/vnd.oci.image.index.v1+json") => read_json(&blob(&manifest["manifests"][0]["digest"])),
        _ => manifest,
    };
    assert!(blob(&manifest["config"]["digest"]).exists(), "{manifest}");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2, "{manifest}");
    assert!(layers.iter().all(|l| blob(&l["digest"]).exists()), "{manifest}");

    // A cold backend (no blob of the image in BuildKit's store) builds FROM the folder as an
    // oci-layout:// context, by the tag we gave it: ours through the session's content store, then
    // buildx's, which reads our folder too.
    let from_layout = Folder::new(
        "content-oci-from",
        &[("Dockerfile", "FROM base\nRUN [\"/bin/busybox\", \"cp\", \"/hello.txt\", \"/copied.txt\"]\n")],
    );
    let from_layout_to = |out: &Path| {
        [
            "--build-context".to_string(),
            format!("base=oci-layout://{dest}:1"),
            "-o".into(),
            format!("type=local,dest={}", out.display()),
        ]
    };
    restart_cold(&user);
    let ours_out = user.scratch("from-layout-ours");
    let ours = build(&user, &from_layout, &from_layout_to(&ours_out).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ours.ok(), "{ours:#?}");
    assert_eq!(std::fs::read_to_string(ours_out.join("copied.txt")).expect("the copied file"), "hello");
    let untagged = build(&user, &from_layout, &["--build-context", &format!("base=oci-layout://{dest}:2")]);
    assert_eq!(untagged.code, Some(1), "{untagged:#?}");
    assert!(untagged.stderr.contains("names the tag 2, which"), "{untagged:#?}");
    assert!(buildx_plugin().exists(), "{} is missing: run scripts/fetch-buildx.sh", buildx_plugin().display());
    restart_cold(&user);
    let out = user.scratch("from-layout");
    let read = buildx(&user, &from_layout, &from_layout_to(&out).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(read.ok(), "{read:#?}");
    assert_eq!(std::fs::read_to_string(out.join("copied.txt")).expect("the copied file"), "hello");

    // Without a name the entry is tagged latest, as BuildKit's client tags it.
    let unnamed = user.scratch("unnamed");
    let built = build(&user, &context, &["-o", &format!("type=docker,dest={},tar=false", unnamed.display())]);
    assert!(built.ok(), "{built:#?}");
    tagged(&unnamed, "latest");
    user.run(&["backend", "stop"]).expect_ok();
}
