//! Least privilege (issue 26), on the real engine: the sidecar has only what it needs and runs as
//! nobody; a connection flood is bounded; a port only the backend's record names is not relayed;
//! a policy's refusal is told and never worked around; the rootless mode builds, pushes, keeps its
//! cache and history.
use std::time::{Duration, Instant};

use assemble_testkit::{
    authz::AuthzPlugin,
    build_and_push, containers_named, docker, exec,
    flood::{self, Sampler},
    network,
    private_engine::{EngineSpec, PrivateEngine},
    run_bounded, Registry, TestUser,
};

/// What the core gives a sidecar (crates/core/src/backend/sidecars/spec.rs).
use assemble_core::backend::sidecars::spec::{CAPABILITIES, MAX_CONNECTIONS, PIDS_LIMIT};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sidecar_has_only_what_it_needs_and_relays_as_nobody() {
    let docker = docker().await;
    let registry = Registry::loopback();
    let user = TestUser::new("least");
    let port = registry.port.to_string();
    user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    let sidecar = user.names.proxy(registry.port);

    let inspect = docker.inspect_container(&sidecar, None).await.expect("the sidecar exists");
    let host = inspect.host_config.expect("a host config");
    assert_eq!(host.cap_drop.clone().unwrap_or_default(), ["ALL"], "every capability dropped");
    let added = host.cap_add.clone().unwrap_or_default();
    assert_eq!(added, CAPABILITIES, "only what the namespace switch needs");
    assert_eq!(host.privileged, Some(false), "never privileged");
    assert_eq!(host.pids_limit, Some(PIDS_LIMIT), "a pids limit");
    assert!(host.memory.unwrap_or(0) > 0 && host.nano_cpus.unwrap_or(0) > 0, "memory and CPU limits: {host:?}");
    assert!(host.security_opt.clone().unwrap_or_default().contains(&"no-new-privileges".to_string()));
    assert_eq!(host.readonly_rootfs, Some(true));

    // On the host: the relay's process is not root, holds no capability and can gain none.
    let pid = flood::host_pid(&docker, &sidecar).await;
    let uids = flood::status_field(pid, "Uid");
    assert!(uids.split_whitespace().all(|uid| uid == "65534"), "the relay runs as {uids}, not as nobody");
    assert!(flood::status_field(pid, "Gid").split_whitespace().all(|gid| gid == "65534"));
    assert_eq!(flood::status_field(pid, "Groups"), "", "no supplementary groups");
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(flood::status_field(pid, set), "0000000000000000", "{set} of the relay");
    }
    assert_eq!(flood::status_field(pid, "NoNewPrivs"), "1");
    // And it relays: a push through it.
    let (code, output) =
        build_and_push(&docker, &user.names.backend(), &format!("localhost:{port}/least/one:1"), "least").await;
    assert_eq!(code, 0, "{output}");
    user.run(&["backend", "stop"]).expect_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_flood_is_bounded_and_a_push_works_afterwards() {
    let docker = docker().await;
    let registry = Registry::loopback();
    let user = TestUser::new("flood");
    let port = registry.port.to_string();
    user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    let (backend, sidecar) = (user.names.backend(), user.names.proxy(registry.port));
    let pid = flood::host_pid(&docker, &sidecar).await;
    let (threads_before, host_before) = (flood::threads(pid), flood::host_threads());
    let (pids_before, limit) = flood::pids(pid);
    assert_eq!(limit, PIDS_LIMIT.to_string(), "the kernel enforces the sidecar's pids limit");

    let sampler = Sampler::start(pid);
    let count = 3000;
    let (code, output) = flood::flood_from_a_run_step(&docker, &backend, registry.port, count).await;
    let (threads_max, pids_max) = sampler.finish();
    println!(
        "flood of {count}: build exit {code}; relay threads {threads_before} before, at most {threads_max}; \
         sidecar pids {pids_before} before, at most {pids_max} (limit {limit}); host threads {host_before} before"
    );
    assert!(output.contains(&format!("opened {count}")), "the RUN step did not open its connections: {output}");
    assert!(pids_max <= PIDS_LIMIT as u64, "the sidecar went over its pids limit: {pids_max}");
    assert!(
        threads_max <= 2 * MAX_CONNECTIONS + 8,
        "the relay ran {threads_max} threads: more than two per connection at the cap of {MAX_CONNECTIONS}"
    );
    assert!(threads_max > threads_before, "the flood never reached the relay ({threads_max} threads)");
    let logs = docker_logs(&sidecar);
    assert!(
        logs.contains(&format!("connection(s) to localhost:{port}: {MAX_CONNECTIONS} connections are open")),
        "the refusals are not in the sidecar's log: {logs}"
    );
    assert_eq!(flood::host_pid(&docker, &sidecar).await, pid, "the relay survived the flood (same process)");

    // Its threads end when idle (10 s); the host's count comes back with them.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (threads, pids, host) = (flood::threads(pid), flood::pids(pid).0, flood::host_threads());
        // Others share this machine: its count may move by their work, never by the relay's cap.
        if threads == threads_before && pids == pids_before && host < host_before + MAX_CONNECTIONS {
            println!("after: relay threads {threads}, sidecar pids {pids}, host threads {host}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a minute after the flood the relay has {threads} threads (before {threads_before}), its container {pids} \
             pids (before {pids_before}), the host {host} threads (before {host_before})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let (code, output) = build_and_push(&docker, &backend, &format!("localhost:{port}/flood/after:1"), "after").await;
    assert_eq!(code, 0, "a push on the same port after the flood: {output}");
    assert!(registry.catalog().contains("flood/after"), "{}", registry.catalog());
    user.run(&["backend", "stop"]).expect_ok();
}

fn docker_logs(container: &str) -> String {
    let output = assemble_testkit::docker_cli().args(["logs", container]).output().expect("docker logs");
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_only_the_backends_record_names_is_never_relayed() {
    let docker = docker().await;
    let (allowed, planted) = (Registry::start(), Registry::start());
    let user = TestUser::new("record");
    user.run(&["backend", "start", "--allow-host-port", &allowed.port.to_string()]).expect_ok();
    let backend = user.names.backend();

    // Root in the backend writes another port into its record.
    let record = format!("{},{}\n", allowed.port.min(planted.port), allowed.port.max(planted.port));
    let (code, output) =
        exec(&docker, &backend, &["sh", "-c", &format!("printf '{record}' > /etc/assemble-ports")]).await;
    assert_eq!(code, 0, "{output}");
    // A start on the running backend repairs its sidecars by the live set: still none for it.
    user.run(&["backend", "start", "--allow-host-port", &allowed.port.to_string()]).expect_ok();

    let info = json(&user.run(&["backend", "info", "--format", "json"]).expect_ok().stdout);
    assert_eq!(info["ports"], serde_json::json!([allowed.port]), "{info}");
    assert_eq!(info["unrelayed_ports"], serde_json::json!([planted.port]), "{info}");
    let notice = format!("port {} is named only inside the backend; not relayed", planted.port);
    assert_eq!(info["port_notices"], serde_json::json!([notice]), "{info}");
    let text = user.run(&["backend", "info"]).expect_ok().stdout;
    assert!(text.contains(&notice), "info says why: {text}");
    let ports = user.run(&["backend", "ports"]).expect_ok().stdout;
    assert!(ports.contains(&format!("Note: {notice}")), "ports says why: {ports}");
    let names: Vec<String> = containers_named(&docker, &backend).await.into_iter().map(|(_, name)| name).collect();
    let (mirror, store) = (user.names.mirror(), user.names.mirror_store());
    assert_eq!(
        names,
        vec![backend.clone(), mirror, store, user.names.proxy(allowed.port)],
        "no sidecar for the planted port"
    );
    let (code, output) =
        build_and_push(&docker, &backend, &format!("localhost:{}/planted/no:1", planted.port), "planted").await;
    assert!(code != 0 && network::push_was_refused(&output), "the planted port was relayed: {output}");
    let (code, output) =
        build_and_push(&docker, &backend, &format!("localhost:{}/allowed/yes:1", allowed.port), "allowed").await;
    assert_eq!(code, 0, "{output}");
    user.run(&["backend", "stop"]).expect_ok();
}

/// A real policy: an authorization plugin that refuses privileged containers, on an engine of the
/// test's own. The start says so, names the way out, creates nothing and never tries another mode.
#[tokio::test(flavor = "multi_thread")]
async fn a_policy_that_refuses_privileged_containers_is_told_and_never_worked_around() {
    let user = TestUser::new("policy");
    let log = user.scratch("authz").join("requests.log");
    let plugin = AuthzPlugin::start("assemble-e2e-authz", log);
    let engine = PrivateEngine::start(EngineSpec::authorized_by(&plugin.name))
        .await
        .unwrap_or_else(|e| panic!("the engine with the authorization plugin: {e}"));
    user.also_clean_on(&engine.host);
    engine.load_images(&docker().await, &[&assemble_testkit::test_image()]).await.expect("loading the test image");
    let run = |args: &[&str]| {
        let mut command = user.command(args);
        command.env("DOCKER_HOST", &engine.host);
        run_bounded(command)
    };
    for attempt in ["first", "second"] {
        let started = run(&["backend", "start", "--allow-host-port", "0"]);
        assert_eq!(started.code, Some(1), "{attempt} start: {started:#?}");
        // The error's line (the first start also says it made the local-image mirror's image).
        let sentence = started.stderr.lines().find(|l| l.starts_with("Error:")).unwrap_or_default().trim();
        assert!(
            sentence.starts_with("Error: the Docker Engine's policy refused a privileged container for the backend")
                && sentence.contains("authorization denied by plugin assemble-e2e-authz")
                && sentence.contains("privileged containers are not allowed on this engine")
                && sentence.contains("does not work around a policy")
                && sentence.ends_with("docker assemble backend start --security rootless"),
            "{attempt} start: {sentence}"
        );
        assert!(!started.stderr.contains("remembered"), "a policy is never remembered as a runtime's refusal");
    }
    // The engine was asked for one privileged container per start, and for nothing else but the
    // local-image mirror's store (no privilege, made before the backend and removed with it).
    let creates = plugin.creates();
    let store = format!("name={}", user.names.mirror_store());
    let (stores, backends): (Vec<&String>, Vec<&String>) = creates.iter().partition(|c| c.contains(&store));
    assert_eq!(backends.len(), 2, "{creates:?}");
    assert!(backends.iter().all(|c| c.starts_with("create privileged=true ")), "a fallback was tried: {creates:?}");
    assert!(stores.iter().all(|c| c.starts_with("create privileged=false ")), "{creates:?}");
    let other = engine.docker().await.expect("the engine answers");
    assert!(containers_named(&other, &user.names.backend()).await.is_empty(), "the refused start left something");
}

/// BuildKit's rootless mode: no added capability, a user namespace; builds, pushes through the
/// sidecars, the cache volume and the history work in it.
#[tokio::test(flavor = "multi_thread")]
async fn the_rootless_mode_builds_pushes_and_keeps_its_cache_and_history() {
    let docker = docker().await;
    let image = assemble_testkit::rootless_test_image();
    let registry = Registry::loopback();
    let user = TestUser::new("rootless");
    let volume = format!("{}-rootless-cache", user.names.backend());
    user.own_volume(&volume);
    let port = registry.port.to_string();
    let start = [
        "backend",
        "start",
        "--security",
        "rootless",
        "--image",
        &image,
        "--allow-host-port",
        &port,
        "--cache-volume",
        &volume,
    ];
    let started = user.run(&start).expect_ok();
    assert!(started.stdout.contains("Security: rootless: asked for"), "{started:#?}");
    let backend = user.names.backend();
    let inspect = docker.inspect_container(&backend, None).await.expect("the backend");
    let host = inspect.host_config.expect("a host config");
    assert_eq!((host.privileged, host.cap_add.clone()), (Some(false), None), "no added capability: {host:?}");
    // BuildKit runs as the image's user on the host, in a user namespace of its own.
    let pid = flood::host_pid(&docker, &backend).await;
    assert_eq!(flood::status_field(pid, "Uid").split_whitespace().next(), Some("1000"));
    let (code, namespaces) = exec(&docker, &backend, &["sh", "-c", "cat /proc/$(pidof buildkitd)/uid_map"]).await;
    assert!(code == 0 && namespaces.contains("100000"), "buildkitd is not in a mapped user namespace: {namespaces}");

    let (code, output) =
        build_and_push(&docker, &backend, &format!("localhost:{port}/rootless/app:1"), "rootless").await;
    assert_eq!(code, 0, "a push from the rootless backend through the sidecar: {output}");
    assert!(registry.catalog().contains("rootless/app"), "{}", registry.catalog());
    let run_step = "set -e; d=$(mktemp -d); cp /bin/busybox $d/; \
        printf 'FROM scratch\\nCOPY busybox /bin/busybox\\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo rootless-$((6*7))\"]\\n' > $d/Dockerfile; \
        buildctl build --progress=plain --frontend dockerfile.v0 --local context=$d --local dockerfile=$d";
    let (code, output) = exec(&docker, &backend, &["sh", "-c", run_step]).await;
    assert!(code == 0 && output.contains("rootless-42"), "a RUN step in the rootless mode: {output}");
    let info = json(&user.run(&["backend", "info", "--format", "json"]).expect_ok().stdout);
    assert_eq!(info["security"], "rootless", "{info}");
    let builds = user.run(&["backend", "builds", "--format", "json"]).expect_ok().stdout;
    assert!(builds.lines().filter(|l| !l.trim().is_empty()).count() >= 2, "the history lists both builds: {builds}");
    let records = |user: &TestUser| {
        json(&user.run(&["backend", "cache", "usage", "--format", "json"]).expect_ok().stdout)["records"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let before = records(&user);
    assert!(before > 0, "the build cache is empty");

    // The cache and the history live in the volume: a new backend on it has both.
    user.run(&["backend", "stop"]).expect_ok();
    user.run(&start).expect_ok();
    assert!(records(&user) >= before, "the cache volume lost records");
    let again = user.run(&["backend", "builds", "--format", "json"]).expect_ok().stdout;
    assert!(again.lines().filter(|l| !l.trim().is_empty()).count() >= 2, "the history was lost: {again}");
    user.run(&["backend", "stop"]).expect_ok();
}

/// Where the engine cannot run the rootless mode (here: an image without rootlesskit, which stops
/// at once, as a rootlesskit refused a user namespace would), the user gets a sentence that says
/// why and what to do, and nothing is left behind.
#[tokio::test(flavor = "multi_thread")]
async fn a_rootless_backend_that_cannot_run_is_a_sentence_and_leaves_nothing() {
    let docker = docker().await;
    let user = TestUser::new("rootless-refused");
    let image = assemble_testkit::broken_backend_image();
    let started =
        user.run(&["backend", "start", "--security", "rootless", "--image", &image, "--allow-host-port", "0"]);
    assert_eq!(started.code, Some(1), "{started:#?}");
    let sentence = started.stderr.trim();
    assert!(
        sentence.starts_with(&format!(
            "Error: the Docker Engine cannot run the backend \"{}\" in rootless mode: the backend stopped while starting",
            user.names.backend()
        )) && sentence.contains("start it in the default mode instead (--security auto)"),
        "{sentence}"
    );
    assert!(containers_named(&docker, &user.names.backend()).await.is_empty(), "the failed start left something");
}
