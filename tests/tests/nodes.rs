//! Nodes: the backend on another engine, reached over ssh through a docker context, joined to the
//! `assemble` buildx builder beside the local backend. Real parts: the machine's engine, the
//! tests' private dockerd behind a private sshd (the system ssh), and a real buildx.
use std::time::{Duration, Instant};

use assemble_testkit::{
    buildx_plugin, containers_named, copy_busybox_into, copy_foreign_busybox_into, json, native_platform,
    private_engine::{EngineSpec, PrivateEngine},
    refused, run_bounded,
    sshd::Sshd,
    test_image, volume_exists, Folder, Registry, Run, TestUser,
};

/// The node's context name in the user's docker config.
const NODE: &str = "armbox";

/// Each platform's own busybox; the step prints its machine (`x86_64`, `aarch64`), so a node's
/// build log tells which platform it built.
const DOCKERFILE: &str = r#"FROM scratch
ARG TARGETARCH
COPY busybox-$TARGETARCH /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "arch=built-for-$(uname -m) && echo $arch && echo $arch > /arch"]
"#;

/// The arm64 step fails after a while (a loop of the shell's own: under the emulator only the step's
/// first program is emulated, so `sleep`, which busybox runs as a new process, is not found there);
/// the amd64 step sleeps for 300 s unless it is canceled.
const FAILING_DOCKERFILE: &str = r#"FROM scratch
ARG TARGETARCH
COPY busybox-$TARGETARCH /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "if [ $(uname -m) = aarch64 ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo broken-on-aarch64; exit 3; fi; echo waiting-on-x86_64; sleep 300"]
"#;

/// Every build log a backend keeps (`assemble [--context C] backend builds logs` of each build).
fn build_logs(user: &TestUser, path: &str, context: &[&str]) -> String {
    let list = assemble(user, path, &[context, &["backend", "builds", "--format", "json"]].concat()).expect_ok();
    let mut logs = String::new();
    for line in list.stdout.lines().filter(|l| l.starts_with('{')) {
        let build: serde_json::Value = serde_json::from_str(line).expect("a build as JSON");
        let reference = build["ref"].as_str().expect("a ref");
        logs +=
            &assemble(user, path, &[context, &["backend", "builds", "logs", reference]].concat()).expect_ok().stdout;
    }
    logs
}

/// `assemble ARGS` for `user`, with `path` (our ssh first) so the product and the buildx it drives
/// reach the node through the tests' sshd.
fn assemble(user: &TestUser, path: &str, args: &[&str]) -> Run {
    let mut command = user.command(args);
    command.env("PATH", path);
    run_bounded(command)
}

/// `docker ARGS` for `user`, with `path` as for [`assemble`].
fn docker(user: &TestUser, path: &str, args: &[&str]) -> Run {
    let mut command = user.docker_command(args);
    command.env("PATH", path);
    run_bounded(command)
}

/// The `assemble` builder as `docker buildx ls --format json` lists it.
fn listed_builder(user: &TestUser, path: &str) -> serde_json::Value {
    let listing = docker(user, path, &["buildx", "ls", "--format", "json"]).expect_ok();
    listing
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|builder| builder["Name"] == "assemble")
        .unwrap_or_else(|| panic!("buildx lists no builder \"assemble\": {}", listing.stdout))
}

fn node<'a>(listing: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    listing
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("no node {name:?} in {listing:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_engine_over_ssh_becomes_a_node_of_the_builder_and_leaves_nothing_when_removed() {
    assert!(buildx_plugin().exists(), "{} is missing: run scripts/fetch-buildx.sh", buildx_plugin().display());
    let mut engine = PrivateEngine::start_with_images(EngineSpec::engine_tests(), &[&test_image()])
        .await
        .unwrap_or_else(|e| panic!("the private engine with the test image: {e}"));
    let user = TestUser::new("nodes");
    user.also_clean_on(&engine.host);
    let sshd = Sshd::start(&user.scratch("sshd")).unwrap_or_else(|e| panic!("sshd: {e}"));
    let path = sshd.path_env().to_string_lossy().into_owned();
    let url = sshd.url(Some(&engine.socket()));
    docker(&user, &path, &["context", "create", NODE, "--docker", &format!("host={url}")]).expect_ok();
    let backend = user.names.backend();

    // Bad input first: one sentence each, before anything is made.
    refused(assemble(&user, &path, &["backend", "nodes", "add"]), &["--context NAME"]);
    refused(
        assemble(&user, &path, &["backend", "nodes", "add", "--context", "nosuch"]),
        &["no docker context named \"nosuch\"", "default", NODE],
    );
    refused(
        assemble(&user, &path, &["backend", "nodes", "add", "--context", NODE, "--platform", "linux//x"]),
        &["\"linux//x\" is not a platform"],
    );
    refused(assemble(&user, &path, &["backend", "nodes", "add", "--context", "default"]), &["is the local node"]);
    let mut by_address = user.command(&["backend", "nodes", "add", "--context", NODE]);
    by_address.env("PATH", &path).env("DOCKER_HOST", assemble_testkit::MACHINE_ENGINE);
    refused(run_bounded(by_address), &["names engines by context", "docker context create NAME"]);
    refused(assemble(&user, &path, &["backend", "nodes", "rm", "default"]), &["is the local node"]);
    refused(assemble(&user, &path, &["backend", "nodes", "rm", NODE]), &["there is no node named \"armbox\""]);

    assemble(&user, &path, &["backend", "start", "--allow-host-port", "0"]).expect_ok();
    let added = assemble(&user, &path, &["backend", "nodes", "add", "--context", NODE, "--platform", "linux/arm64"]);
    println!("$ assemble backend nodes add --context {NODE} --platform linux/arm64\n{}", added.stdout);
    let added = added.expect_ok();
    assert!(added.stdout.contains(&format!("Added node \"{NODE}\" ({url})")), "{added:#?}");
    let private = engine.docker().await.expect("private engine");
    let there = containers_named(&private, &backend).await;
    assert!(there.iter().any(|(_, name)| *name == backend), "the node's backend runs on the private engine: {there:?}");
    assert!(volume_exists(&private, &user.names.default_cache_volume()).await, "the node has its own cache volume");
    refused(
        assemble(&user, &path, &["backend", "nodes", "add", "--context", NODE]),
        &["the node \"armbox\" already exists"],
    );

    let listing = json(assemble(&user, &path, &["backend", "nodes", "ls", "--format", "json"]));
    println!("$ assemble backend nodes ls --format json\n{listing:#}");
    assert_eq!(listing.as_array().map(Vec::len), Some(2), "{listing:#}");
    let local = node(&listing, "default");
    assert_eq!((local["local"].as_bool(), local["state"].as_str()), (Some(true), Some("running")), "{listing:#}");
    assert_eq!(local["platforms"][0], native_platform(), "{listing:#}");
    let remote = node(&listing, NODE);
    assert_eq!(remote["state"], "running", "{listing:#}");
    assert_eq!(remote["host"], url.as_str(), "{listing:#}");
    assert_eq!(remote["declared_platforms"], serde_json::json!(["linux/arm64"]), "{listing:#}");
    assert_eq!(remote["platforms"][0], native_platform(), "ListWorkers on the node: {listing:#}");

    let builder = listed_builder(&user, &path);
    let endpoints: Vec<&str> =
        builder["Nodes"].as_array().expect("nodes").iter().filter_map(|n| n["Endpoint"].as_str()).collect();
    assert_eq!(
        endpoints,
        vec![
            format!("docker-container://{backend}?context=default"),
            format!("docker-container://{backend}?context={NODE}")
        ],
        "{builder:#}"
    );
    // buildx itself reaches both nodes (the second through ssh) and sees the declared platform.
    let inspected = docker(&user, &path, &["buildx", "inspect", "--bootstrap", "assemble"]).expect_ok();
    println!("$ docker buildx inspect --bootstrap assemble\n{}", inspected.stdout);
    let lines: Vec<Vec<&str>> = inspected.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert!(lines.contains(&vec!["Name:", NODE]), "{}", inspected.stdout);
    assert_eq!(lines.iter().filter(|l| l.as_slice() == ["Status:", "running"]).count(), 2, "{}", inspected.stdout);
    assert!(
        lines.iter().any(|l| l.first() == Some(&"Platforms:") && l.get(1) == Some(&"linux/arm64*,")),
        "{}",
        inspected.stdout
    );
    assert!(!inspected.stdout.contains("Error:"), "{}", inspected.stdout);

    // buildx splits a two-platform build across the nodes: linux/arm64, declared on the node,
    // is built there (emulated: both engines are amd64), linux/amd64 on the local node; one
    // index is pushed. The port reaches the node live through `start`.
    assert_eq!(native_platform(), "linux/amd64", "the node's arm64 is told apart from the local amd64");
    let registry = Registry::start();
    let port = registry.port.to_string();
    let ported = assemble(&user, &path, &["backend", "start", "--allow-host-port", &port]).expect_ok();
    assert!(ported.stdout.contains(&format!("Node \"{NODE}\" ({url}): container")), "{ported:#?}");
    let context = Folder::new("nodes-two-platforms", &[("Dockerfile", DOCKERFILE)]);
    copy_busybox_into(&context.path);
    std::fs::rename(context.path.join("busybox"), context.path.join("busybox-amd64")).expect("busybox-amd64");
    copy_foreign_busybox_into(&context.path, "arm64");
    let image = format!("localhost:{port}/e2e/nodes:1");
    let dir = context.path.display().to_string();
    let built = docker(
        &user,
        &path,
        &["buildx", "build", "--builder", "assemble", "--progress", "plain", "--platform", "linux/amd64,linux/arm64"]
            .into_iter()
            .chain(["--push", "-t", &image, &dir])
            .collect::<Vec<_>>(),
    );
    assert!(built.ok(), "{built:#?}");
    let platforms = registry.index_platforms("e2e/nodes", "1");
    assert_eq!(platforms, vec!["linux/amd64", "linux/arm64"]);
    let on_local = build_logs(&user, &path, &[]);
    let on_node = build_logs(&user, &path, &["--context", NODE]);
    assert!(on_local.contains("built-for-x86_64") && !on_local.contains("built-for-aarch64"), "local:\n{on_local}");
    assert!(on_node.contains("built-for-aarch64") && !on_node.contains("built-for-x86_64"), "{NODE}:\n{on_node}");

    // `assemble build` splits the same way: each node pushes its platform by digest, then one
    // index goes to the tag. Its step prints other words, so each node's history shows our build.
    let ours =
        Folder::new("nodes-assemble-split", &[("Dockerfile", &DOCKERFILE.replace("built-for-", "assembled-for-"))]);
    copy_busybox_into(&ours.path);
    std::fs::rename(ours.path.join("busybox"), ours.path.join("busybox-amd64")).expect("busybox-amd64");
    copy_foreign_busybox_into(&ours.path, "arm64");
    let tagged = format!("localhost:{port}/e2e/nodes:2");
    let ours_dir = ours.path.display().to_string();
    let split = assemble(
        &user,
        &path,
        &["build", "--progress", "plain", "--platform", "linux/amd64,linux/arm64", "--push", "-t", &tagged, &ours_dir],
    );
    println!("$ assemble build --progress plain --platform linux/amd64,linux/arm64 --push -t {tagged}\n{split:#?}");
    let split = split.expect_ok();
    assert!(split.stdout.contains("Node default built linux/amd64\n"), "{split:#?}");
    assert!(split.stdout.contains(&format!("Node {NODE} built linux/arm64 (emulated)\n")), "{split:#?}");
    assert!(split.stdout.contains(&format!("Pushed {tagged}")), "{split:#?}");
    assert!(split.stderr.contains(&format!("[linux/arm64 @ {NODE}] #")), "each line says whose it is: {split:#?}");
    assert!(split.stderr.contains("[linux/amd64 @ default] #"), "{split:#?}");
    assert!(
        split.stderr.lines().filter(|l| l.starts_with('#')).count() == 0,
        "no line of a split build goes without its node: {split:#?}"
    );
    let platforms = registry.index_platforms("e2e/nodes", "2");
    assert_eq!(platforms, vec!["linux/amd64", "linux/arm64"]);
    // Each node's own cache holds what it built: `nodes ls` reads it on each node.
    let listing = json(assemble(&user, &path, &["backend", "nodes", "ls", "--format", "json"]));
    for name in ["default", NODE] {
        let bytes = node(&listing, name)["cache_bytes"].as_i64().unwrap_or_default();
        assert!(bytes > 0, "{name} lists no cache after building its part: {listing:#}");
        assert!(node(&listing, name)["cache_text"].as_str().is_some_and(|t| t.ends_with('B')), "{listing:#}");
    }
    let on_local = build_logs(&user, &path, &[]);
    let on_node = build_logs(&user, &path, &["--context", NODE]);
    assert!(
        on_local.contains("assembled-for-x86_64") && !on_local.contains("assembled-for-aarch64"),
        "local:\n{on_local}"
    );
    assert!(
        on_node.contains("assembled-for-aarch64") && !on_node.contains("assembled-for-x86_64"),
        "{NODE}:\n{on_node}"
    );

    // One node failing fails the build with that node's step and error, and cancels the other
    // node's part: the local node's step would sleep for 300 s; the node's fails after 5 s (time
    // for the local solve to begin, so that its record exists to show the cancel).
    let failing = Folder::new("nodes-assemble-split-fails", &[("Dockerfile", FAILING_DOCKERFILE)]);
    copy_busybox_into(&failing.path);
    std::fs::rename(failing.path.join("busybox"), failing.path.join("busybox-amd64")).expect("busybox-amd64");
    copy_foreign_busybox_into(&failing.path, "arm64");
    let failing_dir = failing.path.display().to_string();
    let began = Instant::now();
    let failed = assemble(
        &user,
        &path,
        &["build", "--progress", "plain", "--platform", "linux/amd64,linux/arm64", "--push", "-t", &tagged]
            .into_iter()
            .chain([failing_dir.as_str()])
            .collect::<Vec<_>>(),
    );
    let took = began.elapsed();
    println!(
        "$ assemble build --platform linux/amd64,linux/arm64 --push (the arm64 step fails)   # {took:?}\n{failed:#?}"
    );
    assert_eq!(failed.code, Some(1), "{failed:#?}");
    let sentence = failed.stderr.lines().last().unwrap_or_default();
    for part in [
        &format!("the build failed on the node \"{NODE}\" (linux/arm64)"),
        "exit code: 3",
        "the other nodes' builds were canceled",
    ] {
        assert!(sentence.contains(part), "expected {part:?} in the last line, {sentence:?}");
    }
    assert!(failed.stderr.contains(&format!("[linux/arm64 @ {NODE}] ")), "{failed:#?}");
    assert!(failed.stderr.contains("broken-on-aarch64"), "the failing step's output is shown: {failed:#?}");
    assert!(took < Duration::from_secs(200), "the local node's 300 s step was not canceled: the build took {took:?}");
    let statuses = |context: &[&str]| -> Vec<(String, String)> {
        let list = assemble(&user, &path, &[context, &["backend", "builds", "--format", "json"]].concat()).expect_ok();
        list.stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .map(|b| (b["status"].as_str().unwrap_or_default().to_string(), b["error"].to_string()))
            .collect()
    };
    // BuildKit ends a canceled build's record after its stream is reset, which may come after our
    // exit: wait (bounded) for it to leave Running, then it must say Canceled.
    let waited = Instant::now();
    let mut local_records = statuses(&[]);
    while local_records.iter().any(|(status, _)| status == "Running") && waited.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(250));
        local_records = statuses(&[]);
    }
    println!("the local record left Running after {:?}", waited.elapsed());
    assert!(local_records.iter().any(|(status, _)| status == "Canceled"), "local records: {local_records:?}");
    let node_records = statuses(&["--context", NODE]);
    assert!(
        node_records.iter().any(|(status, error)| status == "Error" && error.contains("exit code: 3")),
        "{NODE}'s records: {node_records:?}"
    );
    assert_eq!(registry.index_platforms("e2e/nodes", "2"), vec!["linux/amd64", "linux/arm64"], "the tag is as before");

    // A start on a running backend keeps the builder ours, with both nodes.
    let again = assemble(&user, &path, &["backend", "start", "--allow-host-port", "0"]).expect_ok();
    assert!(again.stdout.contains("The buildx builder \"assemble\" builds here"), "{again:#?}");
    assert!(again.stdout.contains(&format!("Node \"{NODE}\" ({url}): container")), "{again:#?}");

    // stop and start act on every node and say which did what.
    let stopped = assemble(&user, &path, &["backend", "stop"]).expect_ok();
    assert!(stopped.stdout.contains(&format!("Node \"{NODE}\" ({url}): stopped container")), "{stopped:#?}");
    assert_eq!(containers_named(&private, &backend).await, vec![]);
    let started = assemble(&user, &path, &["backend", "start", "--allow-host-port", "0"]).expect_ok();
    assert!(started.stdout.contains(&format!("Node \"{NODE}\" ({url}): started container")), "{started:#?}");
    let info = json(assemble(&user, &path, &["backend", "info", "--format", "json"]));
    assert_eq!(info["nodes"][0]["name"], NODE, "{info:#}");
    assert_eq!(info["nodes"][0]["outcome"], "done", "{info:#}");
    assert_eq!(info["nodes"][0]["result"]["workers"][0]["platforms"][0], native_platform(), "{info:#}");

    // The node's engine hangs (its socket accepts, nothing answers): after the node's time
    // limit it is unreachable, and the local node is not held up past it.
    engine.pause().expect("pausing the private engine");
    let began = Instant::now();
    let listing = assemble(&user, &path, &["backend", "nodes", "ls", "--format", "json"]);
    let took = began.elapsed();
    engine.resume().expect("resuming the private engine");
    let listing = json(listing);
    println!("$ assemble backend nodes ls --format json   # node engine paused, {took:?}\n{listing:#}");
    assert_eq!(node(&listing, "default")["state"], "running", "{listing:#}");
    assert_eq!(node(&listing, NODE)["state"], "unreachable", "{listing:#}");
    assert!(
        node(&listing, NODE)["reason"].as_str().unwrap_or_default().contains("did not answer within 10 s"),
        "{listing:#}"
    );
    assert!(took < Duration::from_secs(15), "nodes ls took {took:?}");

    // The node's engine goes away: it is unreachable, and the local node answers at once.
    engine.stop().expect("stopping the private engine");
    let began = Instant::now();
    let listing = json(assemble(&user, &path, &["backend", "nodes", "ls", "--format", "json"]));
    let took = began.elapsed();
    println!("$ assemble backend nodes ls --format json   # node engine stopped, {took:?}\n{listing:#}");
    assert_eq!(node(&listing, "default")["state"], "running", "{listing:#}");
    assert_eq!(node(&listing, NODE)["state"], "unreachable", "{listing:#}");
    assert!(took < Duration::from_secs(15), "nodes ls took {took:?}");
    let began = Instant::now();
    let info = assemble(&user, &path, &["backend", "info"]).expect_ok();
    let took = began.elapsed();
    println!("$ assemble backend info   # node engine stopped, {took:?}\n{}", info.stdout);
    assert!(info.stdout.starts_with("ID: "), "the local backend's info comes first: {info:#?}");
    assert!(info.stdout.contains(&format!("Node \"{NODE}\" ({url}): unreachable")), "{info:#?}");
    assert!(took < Duration::from_secs(15), "info took {took:?}");
    refused(assemble(&user, &path, &["backend", "nodes", "rm", NODE]), &["does not answer", "--force"]);

    // Back up: removing the node leaves no container of ours there, and its cache volume goes too.
    engine.restart().await.expect("restarting the private engine");
    let private = engine.docker().await.expect("private engine");
    let removed = assemble(&user, &path, &["backend", "nodes", "rm", NODE]).expect_ok();
    println!("$ assemble backend nodes rm {NODE}\n{}", removed.stdout);
    assert!(removed.stdout.contains("Removed node \"armbox\" from the buildx builder"), "{removed:#?}");
    assert_eq!(containers_named(&private, &backend).await, vec![], "no node container is left on its engine");
    assert!(!volume_exists(&private, &user.names.default_cache_volume()).await, "its cache volume was removed");
    let builder = listed_builder(&user, &path);
    assert_eq!(builder["Nodes"].as_array().map(Vec::len), Some(1), "{builder:#}");
    let listing = json(assemble(&user, &path, &["backend", "nodes", "ls", "--format", "json"]));
    assert_eq!(listing.as_array().map(Vec::len), Some(1), "{listing:#}");
    assemble(&user, &path, &["backend", "stop"]).expect_ok();
}
