//! `assemble build`'s solve attributes against the real backend, a real registry (reached
//! through the port sidecars) and the real engine: registry and inline cache carried across a
//! cold backend, labels, `--iidfile`, `--metadata-file`, `-q`, the attestations, the network
//! flags and named contexts. Bad values are refused before anything starts.
use std::process::Stdio;

use assemble_testkit::{copy_busybox_into, step_cached, step_said, Folder, Registry, TestUser};

/// Two steps worth caching: a file written by a slow `RUN`, and one more on top of it.
const HEAVY_DOCKERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo heavy-step-ran; /bin/busybox sleep 3; /bin/busybox head -c 2000000 /dev/urandom > /heavy.bin"]
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo second-step-ran; /bin/busybox wc -c /heavy.bin > /size"]
"#;

fn docker(args: &[&str]) -> std::process::Output {
    assemble_testkit::docker_cli().args(args).stdin(Stdio::null()).output().expect("docker runs")
}

/// The backend's container ID (a restart makes a new one).
fn backend_id(user: &TestUser) -> String {
    let inspect = docker(&["inspect", "--format", "{{.Id}}", &user.names.backend()]);
    String::from_utf8_lossy(&inspect.stdout).trim().to_string()
}

fn restart_cold(user: &TestUser, port: &str) {
    let before = backend_id(user);
    user.run(&["backend", "stop"]).expect_ok();
    // The user has no default cache volume, so the new backend starts with an empty cache.
    user.run(&["backend", "start", "--allow-host-port", port]).expect_ok();
    assert_ne!(backend_id(user), before, "the backend was not replaced");
    let usage = user.run(&["backend", "cache", "usage", "--format", "json"]).expect_ok();
    assert!(!usage.stdout.contains("heavy"), "the new backend already has the steps: {}", usage.stdout);
}

/// Cache exported to a registry that asks for a password (credentials through the session's
/// Auth service), to the registry and inline in a pushed image, comes back on a cold backend.
#[tokio::test(flavor = "multi_thread")]
async fn registry_and_inline_cache_bring_the_heavy_steps_back_cached_on_a_cold_backend() {
    let registry = Registry::with_password("builder", "s3cret-pass");
    let user = TestUser::new("attrs-cache");
    let port = registry.port.to_string();
    let config = serde_json::json!({"auths": {format!("localhost:{port}"): {"auth": "YnVpbGRlcjpzM2NyZXQtcGFzcw=="}}});
    std::fs::write(user.docker_config().join("config.json"), config.to_string()).expect("the docker config");
    let context = Folder::new("attrs-cache", &[("Dockerfile", HEAVY_DOCKERFILE)]);
    copy_busybox_into(&context.path);
    user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    let cache_ref = format!("localhost:{port}/e2e/cache:max");
    let image = format!("localhost:{port}/e2e/inline:1");

    let first = user.run(&[
        "build",
        &context.arg(),
        "--progress",
        "plain",
        "--cache-to",
        &format!("type=registry,ref={cache_ref},mode=max,image-manifest=true,oci-mediatypes=true"),
        "--cache-to",
        "type=inline",
        "-t",
        &image,
        "--push",
    ]);
    assert!(first.ok(), "{first:#?}");
    assert!(step_said(&first.stderr, "heavy-step-ran"), "the first build runs the step: {}", first.stderr);
    assert!(first.stderr.contains("exporting cache to registry"), "{}", first.stderr);
    assert!(registry.repository_dir("e2e/cache").exists(), "no cache reached the registry");

    restart_cold(&user, &port);
    let from_registry = user.run(&["build", &context.arg(), "--progress", "plain", "--cache-from", &cache_ref]);
    assert!(from_registry.ok(), "{from_registry:#?}");
    assert!(!step_said(&from_registry.stderr, "heavy-step-ran"), "the step ran again: {}", from_registry.stderr);
    assert!(step_cached(&from_registry.stderr, "heavy-step-ran"), "{}", from_registry.stderr);
    assert!(step_cached(&from_registry.stderr, "second-step-ran"), "{}", from_registry.stderr);

    // The inline cache rides in the image: importing the image itself is enough.
    restart_cold(&user, &port);
    let from_image = user.run(&["build", &context.arg(), "--progress", "plain", "--cache-from", &image]);
    assert!(from_image.ok(), "{from_image:#?}");
    assert!(step_cached(&from_image.stderr, "heavy-step-ran"), "{}", from_image.stderr);

    // Without an import the cold backend runs it: the CACHED above came from the registry.
    restart_cold(&user, &port);
    let cold = user.run(&["build", &context.arg(), "--progress", "plain"]);
    assert!(cold.ok() && step_said(&cold.stderr, "heavy-step-ran"), "{cold:#?}");
    user.run(&["backend", "stop"]).expect_ok();
}

/// Labels reach the image; `-q` prints only its ID, which the iidfile holds and the engine
/// shows; the metadata file has buildx's keys; the default provenance makes a pushed image an
/// index and `--provenance=false` leaves it a single manifest.
#[tokio::test(flavor = "multi_thread")]
async fn labels_ids_metadata_and_the_default_provenance_are_buildx_s() {
    let registry = Registry::start();
    let user = TestUser::new("attrs-meta");
    let port = registry.port.to_string();
    let context =
        Folder::new("attrs-meta", &[("Dockerfile", "FROM scratch\nCOPY hello.txt /\n"), ("hello.txt", "hi\n")]);
    user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    let files = user.scratch("attrs-meta-files");
    let iidfile = files.join("iid");
    let metadata_file = files.join("metadata.json");
    std::fs::write(&iidfile, "stale").expect("an old iidfile");

    let name = format!("e2e-attrs-{}:1", user.user());
    let loaded = user.run(&[
        "build",
        &context.arg(),
        "-q",
        "--load",
        "-t",
        &name,
        "--label",
        "org.opencontainers.image.title=attrs-demo",
        "--label",
        "empty.label",
        "--iidfile",
        &iidfile.to_string_lossy(),
    ]);
    assert!(loaded.ok(), "{loaded:#?}");
    let id = loaded.stdout.trim();
    assert!(id.starts_with("sha256:") && loaded.stdout.lines().count() == 1, "-q prints the ID alone: {loaded:#?}");
    assert!(!loaded.stderr.contains("#1 "), "-q shows no progress: {}", loaded.stderr);
    assert_eq!(std::fs::read_to_string(&iidfile).expect("the iidfile"), id, "no newline, as buildx");
    let inspect = docker(&["image", "inspect", "--format", "{{.Id}} {{json .Config.Labels}}", &name]);
    let inspect = String::from_utf8_lossy(&inspect.stdout).to_string();
    assert!(inspect.starts_with(id), "the engine's image ID is the one printed: {inspect}");
    assert!(inspect.contains(r#""org.opencontainers.image.title":"attrs-demo""#), "{inspect}");
    assert!(inspect.contains(r#""empty.label":"""#), "{inspect}");
    let _ = docker(&["rmi", "-f", &name]);

    let image = format!("localhost:{port}/e2e/meta:1");
    let pushed = user.run(&[
        "build",
        &context.arg(),
        "--progress",
        "plain",
        "-t",
        &image,
        "--push",
        "--metadata-file",
        &metadata_file.to_string_lossy(),
    ]);
    assert!(pushed.ok(), "{pushed:#?}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata_file).expect("the metadata file")).expect("JSON");
    assert_eq!(meta["image.name"], image.as_str(), "{meta}");
    let digest = meta["containerimage.digest"].as_str().expect("containerimage.digest");
    assert!(digest.starts_with("sha256:"), "{meta}");
    assert_eq!(meta["containerimage.descriptor"]["digest"], digest, "the descriptor is decoded: {meta}");
    assert_eq!(
        meta["containerimage.descriptor"]["mediaType"], "application/vnd.oci.image.index.v1+json",
        "buildx's default provenance makes the pushed image an index: {meta}"
    );
    let reference = meta["buildx.build.ref"].as_str().expect("buildx.build.ref");
    assert!(reference.starts_with("assemble/assemble0/"), "{meta}");
    assert!(pushed.stderr.contains("exporting attestation manifest"), "the attestation is pushed: {}", pushed.stderr);
    // buildx's `buildx.build.provenance`: the recorded SLSA provenance, min (no buildConfig, no metadata).
    let provenance = &meta["buildx.build.provenance"];
    assert!(
        provenance["buildType"].as_str().is_some_and(|t| t.starts_with("https://mobyproject.org/buildkit")),
        "{meta}"
    );
    assert!(provenance["invocation"]["parameters"]["frontend"] == "dockerfile.v0", "{meta}");
    assert!(provenance.get("buildConfig").is_none() && provenance.get("metadata").is_none(), "min: {meta}");
    // buildx's ref names the build in our history too.
    user.run(&["backend", "builds", "logs", reference]).expect_ok();

    let bare = user.run(&[
        "build",
        &context.arg(),
        "--progress",
        "plain",
        "-t",
        &image,
        "--push",
        "--provenance=false",
        "--metadata-file",
        &metadata_file.to_string_lossy(),
    ]);
    assert!(bare.ok(), "{bare:#?}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata_file).expect("the metadata file")).expect("JSON");
    let media_type = meta["containerimage.descriptor"]["mediaType"].as_str().unwrap_or_default();
    assert!(media_type.contains("manifest"), "--provenance=false: a single manifest: {meta}");
    assert!(meta["containerimage.config.digest"].is_string(), "{meta}");

    // --attest is the long form: a max provenance makes an index again.
    let metadata_path = metadata_file.to_string_lossy().to_string();
    let max_attested = || {
        user.command(&[
            "build",
            &context.arg(),
            "--progress",
            "quiet",
            "-t",
            &image,
            "--push",
            "--attest",
            "type=provenance,mode=max",
            "--metadata-file",
            &metadata_path,
        ])
    };
    let attested = assemble_testkit::run_bounded(max_attested());
    assert!(attested.ok(), "{attested:#?}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata_file).expect("the metadata file")).expect("JSON");
    assert_eq!(meta["containerimage.descriptor"]["mediaType"], "application/vnd.oci.image.index.v1+json", "{meta}");
    assert_eq!(
        attested.stdout.trim(),
        meta["containerimage.digest"],
        "--progress quiet prints the digest: {attested:#?}"
    );
    let attested_meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata_file).expect("the metadata file")).expect("JSON");
    assert!(attested_meta["buildx.build.provenance"].get("buildConfig").is_none(), "min by default: {attested_meta}");
    // BUILDX_METADATA_PROVENANCE=max keeps what the max attestation recorded.
    let mut max = max_attested();
    max.env("BUILDX_METADATA_PROVENANCE", "max");
    assert!(assemble_testkit::run_bounded(max).ok());
    let max_meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata_file).expect("the metadata file")).expect("JSON");
    assert!(max_meta["buildx.build.provenance"]["buildConfig"].is_object(), "max keeps buildConfig: {max_meta}");
    user.run(&["backend", "stop"]).expect_ok();
}

/// `--network none` leaves a step only loopback; `--add-host` writes /etc/hosts; named contexts
/// from a registry image and from a folder; `--pull`; an SBOM whose scanner cannot be pulled
/// says so.
#[tokio::test(flavor = "multi_thread")]
async fn network_hosts_named_contexts_pull_and_the_sbom_scanner() {
    let registry = Registry::start();
    let user = TestUser::new("attrs-net");
    let port = registry.port.to_string();
    user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    let base_image = format!("localhost:{port}/e2e/tools:1");
    let tools = Folder::new("attrs-tools", &[("Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\n")]);
    copy_busybox_into(&tools.path);
    user.run(&["build", &tools.arg(), "-t", &base_image, "--push", "--provenance=false"]).expect_ok();

    let dockerfile = r#"FROM tools
COPY --from=assets note.txt /note.txt
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo lines=$(/bin/busybox wc -l < /proc/net/dev); /bin/busybox cat /etc/hosts; /bin/busybox cat /note.txt"]
"#;
    let context = Folder::new("attrs-net", &[("Dockerfile", dockerfile)]);
    let assets = Folder::new("attrs-assets", &[("note.txt", "note-from-a-named-folder")]);
    let built = user.run(&[
        "build",
        &context.arg(),
        "--progress",
        "plain",
        "--no-cache",
        "--pull",
        "--network",
        "none",
        "--add-host",
        "db.example:10.1.2.3",
        "--build-context",
        &format!("tools=docker-image://{base_image}"),
        "--build-context",
        &format!("assets={}", assets.arg()),
    ]);
    assert!(built.ok(), "{built:#?}");
    // Two header lines and loopback: no other interface.
    assert!(built.stderr.contains("lines=3"), "{}", built.stderr);
    assert!(
        built.stderr.contains("10.1.2.3\tdb.example") || built.stderr.contains("10.1.2.3 db.example"),
        "{}",
        built.stderr
    );
    assert!(built.stderr.contains("note-from-a-named-folder"), "{}", built.stderr);
    assert!(built.stderr.contains(&base_image), "the base came from the named image: {}", built.stderr);
    let default_network = user.run(&[
        "build",
        &context.arg(),
        "--progress",
        "plain",
        "--no-cache",
        "--build-context",
        &format!("tools=docker-image://{base_image}"),
        "--build-context",
        &format!("assets={}", assets.arg()),
    ]);
    assert!(default_network.ok(), "{default_network:#?}");
    assert!(
        !default_network.stderr.contains("lines=3"),
        "the default network has more than loopback: {}",
        default_network.stderr
    );

    let sbom = user.run(&["build", &tools.arg(), "--progress", "plain", "--sbom=true", "-t", &base_image, "--push"]);
    assert_eq!(sbom.code, Some(1), "{sbom:#?}");
    let last = sbom.stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Error: --sbom runs the scanner image docker/buildkit-syft-scanner:stable-1")
            && last.contains("--sbom generator=IMAGE"),
        "{last}"
    );

    // A scanner the backend can pull (BuildKit's protocol: write in-toto statements into
    // $BUILDKIT_SCAN_DESTINATION) makes the SBOM, and the image carries it.
    let scan = r#"echo '{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","predicate":{"spdxVersion":"SPDX-2.3","name":"e2e-sbom"}}' > "$BUILDKIT_SCAN_DESTINATION/sbom.spdx.json"
"#;
    let scanner = Folder::new(
        "attrs-scanner",
        &[
            ("Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\nCOPY scan.sh /scan.sh\nENTRYPOINT [\"/bin/busybox\", \"sh\", \"/scan.sh\"]\n"),
            ("scan.sh", scan),
        ],
    );
    copy_busybox_into(&scanner.path);
    let scanner_image = format!("localhost:{port}/e2e/scanner:1");
    user.run(&["build", &scanner.arg(), "-t", &scanner_image, "--push", "--provenance=false"]).expect_ok();
    let sbom = user.run(&[
        "build",
        &tools.arg(),
        "--progress",
        "plain",
        "--sbom",
        &format!("generator={scanner_image}"),
        "-t",
        &base_image,
        "--push",
    ]);
    assert!(sbom.ok(), "{sbom:#?}");
    assert!(sbom.stderr.contains(&format!("generating sbom using {scanner_image}")), "{}", sbom.stderr);
    assert!(sbom.stderr.contains("exporting attestation manifest"), "{}", sbom.stderr);
    user.run(&["backend", "stop"]).expect_ok();
}

/// Bad values get one sentence before the backend is even started.
#[tokio::test(flavor = "multi_thread")]
async fn bad_values_are_refused_before_anything_starts() {
    let user = TestUser::new("attrs-bad");
    let context = Folder::new("attrs-bad", &[("Dockerfile", "FROM scratch\n")]);
    for (flags, says) in [
        (vec!["--cache-to", "type=registry"], "--cache-to \"type=registry\" has no ref"),
        (vec!["--cache-from", "type=gha"], "does not serve"),
        (vec!["--cache-to", "type=local"], "has no dest; add dest=FOLDER"),
        (vec!["--cache-to", "type=local,dest=/tmp/x,colour=red"], "which a local cache export does not take"),
        (vec!["--cache-from", "type=local,src=/tmp,digest=abc"], "write digest=sha256:HEX"),
        (vec!["-o", "type=oci,tar=false"], "needs dest=FOLDER"),
        (vec!["--cache-to", "type=inline"], "add --push or --load"),
        (vec!["--network", "bridge"], "use default, none or host"),
        (vec!["--add-host", "db"], "is not HOST:IP"),
        (vec!["--build-context", "x=target:build"], "bake"),
        (vec!["--provenance", "mode=full"], "mode is min or max"),
        (vec!["--label", "=v"], "has no key"),
    ] {
        let mut args = vec!["build", context.path.to_str().expect("a UTF-8 path")];
        args.extend(flags.iter().copied());
        let refused = user.run(&args);
        assert_eq!(refused.code, Some(1), "{refused:#?}");
        let last = refused.stderr.trim_end().lines().last().unwrap_or_default();
        assert!(last.starts_with("Error: ") && last.contains(says), "{flags:?}: {}", refused.stderr);
        assert!(!refused.stderr.contains("The backend was not running"), "{}", refused.stderr);
    }
    let quiet = user.run(&["build", &context.arg(), "-q", "--progress", "plain"]);
    assert_eq!(quiet.code, Some(2), "clap refuses -q with --progress: {quiet:#?}");
}

/// `--network host` needs the grant the backend is started with: without it, one sentence naming
/// the flag; with it, the step sees the backend's own network. `info` says which.
#[tokio::test(flavor = "multi_thread")]
async fn host_network_is_granted_only_when_the_backend_was_started_to_allow_it() {
    let user = TestUser::new("attrs-host");
    let dockerfile = "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox echo lines=$(/bin/busybox wc -l < /proc/net/dev)\"]\n";
    let context = Folder::new("attrs-host", &[("Dockerfile", dockerfile)]);
    copy_busybox_into(&context.path);
    user.run(&["backend", "start", "--allow-host-port", "0"]).expect_ok();
    let info = user.run(&["backend", "info"]).expect_ok();
    assert!(info.stdout.contains("Host network: not allowed (start with --allow-network-host"), "{}", info.stdout);
    let refused = user.run(&["build", &context.arg(), "--progress", "plain", "--network", "host"]);
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    let last = refused.stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Error: --network host needs the backend to allow it")
            && last.contains("assemble backend start --allow-network-host"),
        "{last}"
    );

    user.run(&["backend", "stop"]).expect_ok();
    let started = user.run(&["backend", "start", "--allow-host-port", "0", "--allow-network-host"]).expect_ok();
    assert!(started.stdout.contains("Host network: allowed"), "{started:#?}");
    let info = user.run(&["backend", "info", "--format", "json"]).expect_ok();
    let info: serde_json::Value = serde_json::from_str(&info.stdout).expect("info as JSON");
    assert_eq!(info["network_host"], true, "{info}");
    let host = user.run(&["build", &context.arg(), "--progress", "plain", "--no-cache", "--network", "host"]);
    assert!(host.ok(), "{host:#?}");
    let lines = host.stderr.lines().find_map(|l| l.split("lines=").nth(1)?.trim().parse::<u32>().ok());
    assert!(lines.is_some_and(|n| n > 3), "the backend's own interfaces, not loopback alone: {}", host.stderr);
    user.run(&["backend", "stop"]).expect_ok();
}

/// `--shm-size` and `--ulimit` reach the `RUN` steps, `--no-cache-filter` runs one stage again
/// while the others stay cached, and `--annotation` lands on the pushed manifest, as buildx sends
/// them; a bad value is one sentence before anything is sent.
#[tokio::test(flavor = "multi_thread")]
async fn step_limits_stage_cache_filters_and_annotations_are_buildx_s() {
    let registry = Registry::start();
    let user = TestUser::new("attrs-steps");
    let port = registry.port.to_string();
    user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    let dockerfile = r#"FROM scratch AS tools
COPY busybox /bin/busybox
FROM tools AS probe
RUN ["/bin/busybox", "sh", "-c", "echo shm-kib=$(/bin/busybox df -k /dev/shm | /bin/busybox tail -1 | /bin/busybox awk '{print $2}') nofile=$(ulimit -n) > /probe; /bin/busybox cat /probe"]
FROM tools
COPY --from=probe /probe /probe
"#;
    let context = Folder::new("attrs-steps", &[("Dockerfile", dockerfile)]);
    copy_busybox_into(&context.path);
    let steps = ["--shm-size", "128m", "--ulimit", "nofile=1024:2048"];
    let build = |extra: &[&str]| {
        let mut args = vec!["build", context.path.to_str().expect("UTF-8"), "--progress", "plain"];
        args.extend_from_slice(&steps);
        args.extend_from_slice(extra);
        user.run(&args)
    };
    let first = build(&[]);
    assert!(first.ok(), "{first:#?}");
    assert!(step_said(&first.stderr, "shm-kib=131072 nofile=1024"), "the step's limits: {}", first.stderr);

    // The probe stage again, the tools stage from the cache.
    let again = build(&["--no-cache-filter", "probe"]);
    assert!(again.ok(), "{again:#?}");
    assert!(step_said(&again.stderr, "shm-kib=131072 nofile=1024"), "the probe ran again: {}", again.stderr);
    assert!(step_cached(&again.stderr, "[tools 1/1] COPY busybox"), "the other stages stay cached: {}", again.stderr);
    assert!(!step_cached(&again.stderr, "[probe 1/1] RUN"), "{}", again.stderr);
    let cached = build(&[]);
    assert!(
        step_cached(&cached.stderr, "[probe 1/1] RUN") && !step_said(&cached.stderr, "shm-kib=131072 nofile=1024"),
        "without the filter the probe is cached: {}",
        cached.stderr
    );

    let image = format!("localhost:{port}/e2e/annotated:1");
    let pushed =
        build(&["-t", &image, "--push", "--provenance=false", "--annotation", "org.example.note=from the flag"]);
    assert!(pushed.ok(), "{pushed:#?}");
    let manifest = registry.manifest("e2e/annotated", "1");
    assert_eq!(manifest["annotations"]["org.example.note"], "from the flag", "{manifest}");

    for (flag, value, words) in [
        ("--shm-size", "12q", "has a unit Docker does not know"),
        ("--ulimit", "files=1", "names no limit"),
        ("--annotation", "layer:k=v", "the types are manifest"),
    ] {
        let refused = user.run(&["build", context.path.to_str().expect("UTF-8"), flag, value]);
        assert!(!refused.ok() && refused.stderr.contains(words), "{flag} {value}: {refused:#?}");
        assert!(!refused.stderr.contains("#1 "), "nothing was sent: {refused:#?}");
    }
    user.run(&["backend", "stop"]).expect_ok();
}
