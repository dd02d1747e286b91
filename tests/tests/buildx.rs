//! The backend as a buildx builder, with a real buildx (Debian's docker-buildx, fetched by
//! scripts/fetch-buildx.sh) on each test user's own docker config folder: `start` registers
//! `assemble`, and buildx builds on our backend and pushes through our sidecar.
use std::path::Path;

use assemble_testkit::{buildx_plugin, Registry, Run, TestUser};

fn require_buildx() {
    assert!(
        buildx_plugin().exists(),
        "{} is missing: run scripts/fetch-buildx.sh (scripts/setup.sh --test-images does)",
        buildx_plugin().display()
    );
}

/// The `RUN` script of a build that succeeds, and of one that fails.
const SUCCEEDS: &str = "echo built-by-assemble > /out";
const FAILS: &str = "echo failing on purpose; exit 3";

/// A build context with BuildKit's own busybox (no registry serves base images here), a
/// multi-stage Dockerfile and a `RUN` step that runs `run` (it must write /out to succeed).
fn build_context(user: &TestUser, dir: &Path, run: &str) {
    std::fs::create_dir_all(dir).expect("context folder");
    user.docker(&["cp", &format!("{}:/bin/busybox", user.names.backend()), &dir.display().to_string()]).expect_ok();
    let dockerfile = format!(
        "FROM scratch AS tools\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"{run}\"]\n\
         FROM scratch\nCOPY --from=tools /out /out\n"
    );
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("Dockerfile");
}

fn buildx_build(user: &TestUser, extra: &[&str], dir: &Path) -> Run {
    let dir = dir.display().to_string();
    let mut args = vec!["buildx", "build", "--builder", "assemble", "--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(&dir);
    user.docker(&args)
}

fn listed_builder(user: &TestUser) -> Option<serde_json::Value> {
    let listing = user.docker(&["buildx", "ls", "--format", "json"]).expect_ok();
    listing
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|builder| builder["Name"] == "assemble")
}

#[tokio::test(flavor = "multi_thread")]
async fn start_registers_the_builder_and_buildx_builds_and_pushes_through_the_sidecar() {
    require_buildx();
    let registry = Registry::start();
    let user = TestUser::new("buildx");
    let port = registry.port.to_string();
    let started = user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    assert!(
        started.stdout.contains("Registered the buildx builder \"assemble\": docker buildx build --builder assemble ."),
        "{started:#?}"
    );
    let endpoint = format!("docker-container://{}?context=default", user.names.backend());
    let builder = listed_builder(&user).expect("buildx lists the builder");
    assert_eq!(builder["Driver"], "remote");
    assert_eq!(builder["Nodes"][0]["Endpoint"], endpoint.as_str());
    assert_eq!(builder["Current"], false, "only --use makes it docker's current builder");

    let dir = user.config_dir().join("context");
    build_context(&user, &dir, SUCCEEDS);
    let image = format!("localhost:{port}/e2e/buildx:1");
    let pushed = buildx_build(&user, &["--push", "-t", &image], &dir);
    assert!(pushed.ok(), "buildx build --push on the backend failed: {pushed:#?}");
    assert!(registry.catalog().contains("e2e/buildx"), "catalog: {}", registry.catalog());

    let again = buildx_build(&user, &["--push", "-t", &image], &dir);
    assert!(again.ok(), "{again:#?}");
    assert!(again.stderr.contains("CACHED"), "the same build again is cached: {}", again.stderr);

    let loaded_tag = format!("e2e-buildx-load-{}:1", user.user());
    let loaded = buildx_build(&user, &["--load", "-t", &loaded_tag], &dir);
    assert!(loaded.ok(), "{loaded:#?}");
    let inspect = user.docker(&["image", "inspect", &loaded_tag]);
    user.docker(&["image", "rm", &loaded_tag]);
    assert!(inspect.ok(), "--load put no image in the engine: {inspect:#?}");

    let failing_dir = user.config_dir().join("failing");
    build_context(&user, &failing_dir, FAILS);
    let failed = buildx_build(&user, &[], &failing_dir);
    assert!(!failed.ok(), "a failing RUN must fail the build: {failed:#?}");
    assert!(failed.stderr.contains("failing on purpose"), "the step's output is shown: {}", failed.stderr);

    // Our history agrees with buildx's on every build: refs, status, total and cached steps.
    let ours = user.run(&["backend", "builds", "--format", "json"]).expect_ok();
    let theirs = user.docker(&["buildx", "history", "ls", "--builder", "assemble", "--format", "json"]).expect_ok();
    let key = |line: &str| {
        let build: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let reference = build["ref"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_string();
        (reference, build["status"].to_string(), build["total_steps"].as_i64(), build["cached_steps"].as_i64())
    };
    let mut ours_keys: Vec<_> = ours.stdout.lines().map(key).collect();
    let mut theirs_keys: Vec<_> = theirs.stdout.lines().filter(|l| l.starts_with('{')).map(key).collect();
    ours_keys.sort();
    theirs_keys.sort();
    assert_eq!(ours_keys.len(), 4, "two pushes, a load and a failure: {}", ours.stdout);
    assert_eq!(ours_keys, theirs_keys, "ours:\n{}\nbuildx's:\n{}", ours.stdout, theirs.stdout);
    let newest: serde_json::Value = serde_json::from_str(ours.stdout.lines().next().unwrap_or_default()).expect("json");
    assert_eq!(newest["status"], "Error", "newest first, and the failure is the newest");
    assert!(newest["error"].as_str().is_some_and(|e| e.contains("exit code: 3")), "{newest}");
    // Its steps and output as --progress plain shows them, the failing step's output again at the end.
    let failed_ref = newest["ref"].as_str().expect("a ref");
    let logs = user.run(&["backend", "builds", "logs", failed_ref]).expect_ok().stdout;
    assert!(logs.starts_with("#1 "), "{logs}");
    assert!(logs.contains("failing on purpose") && logs.contains(" ERROR: process "), "{logs}");
    assert!(logs.trim_end().ends_with("exit code: 3"), "the error comes last: {logs}");
    let buildx_ref = format!("assemble/assemble0/{failed_ref}");
    assert_eq!(
        user.run(&["backend", "builds", "logs", &buildx_ref]).expect_ok().stdout,
        logs,
        "buildx's refs work too"
    );
    let unknown = user.run(&["backend", "builds", "logs", "nosuchbuild"]);
    assert_eq!(unknown.code, Some(1), "{unknown:#?}");
    assert_eq!(
        unknown.stderr.trim(),
        "Error: there is no build \"nosuchbuild\" on the backend; `assemble backend builds` lists them"
    );
    let table = user.run(&["backend", "builds"]).expect_ok().stdout;
    assert!(table.starts_with("REF ") && table.contains("Error") && table.contains(&image), "{table}");

    // A second start finds it registered; stop keeps it (buildx shows it inactive).
    let second = user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    assert!(second.stdout.contains("The buildx builder \"assemble\" builds here"), "{second:#?}");
    user.run(&["backend", "stop"]).expect_ok();
    let kept = listed_builder(&user).expect("stop keeps the registration");
    assert_eq!(kept["Nodes"][0]["Endpoint"], endpoint.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn use_makes_it_the_current_builder_and_someone_elses_builder_is_left_alone() {
    require_buildx();
    let user = TestUser::new("buildx-use");
    let theirs = "tcp://127.0.0.1:1";
    user.docker(&["buildx", "create", "--name", "assemble", "--driver", "remote", theirs]).expect_ok();
    let started = user.run(&["backend", "start", "--allow-host-port", "0", "--use"]).expect_ok();
    assert!(
        started.stderr.contains(&format!(
            "Note: A buildx builder named \"assemble\" already exists for {theirs}, so it was left as it is"
        )),
        "{started:#?}"
    );
    let builder = listed_builder(&user).expect("their builder is still there");
    assert_eq!(builder["Nodes"][0]["Endpoint"], theirs, "a builder that is not ours is never changed");
    assert_eq!(builder["Current"], false, "nor made current");

    user.docker(&["buildx", "rm", "assemble"]).expect_ok();
    let again = user.run(&["backend", "start", "--allow-host-port", "0", "--use"]).expect_ok();
    assert!(again.stdout.contains("It is docker's current builder now."), "{again:#?}");
    let builder = listed_builder(&user).expect("registered now");
    assert_eq!(builder["Current"], true);
    user.run(&["backend", "stop"]).expect_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn history_and_cache_survive_a_restart_on_a_named_volume() {
    require_buildx();
    let user = TestUser::new("buildx-keep");
    let volume = format!("{}-cache", user.user());
    user.own_volume(&volume);
    user.run(&["backend", "start", "--allow-host-port", "0", "--cache-volume", &volume]).expect_ok();
    let dir = user.config_dir().join("context");
    build_context(&user, &dir, SUCCEEDS);
    let first = buildx_build(&user, &[], &dir);
    assert!(first.ok(), "{first:#?}");
    let before = user.run(&["backend", "builds", "--format", "json"]).expect_ok().stdout;
    assert_eq!(before.lines().count(), 1, "{before}");

    user.run(&["backend", "stop"]).expect_ok();
    user.run(&["backend", "start", "--allow-host-port", "0", "--cache-volume", &volume]).expect_ok();
    let after = user.run(&["backend", "builds", "--format", "json"]).expect_ok().stdout;
    assert_eq!(after, before, "the history is kept in the volume");
    let again = buildx_build(&user, &[], &dir);
    assert!(again.ok(), "{again:#?}");
    assert!(again.stderr.contains("CACHED"), "the cache is kept in the volume: {}", again.stderr);
    user.run(&["backend", "stop"]).expect_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_limit_is_buildkits_gc_policy_and_bad_sizes_are_refused_first() {
    require_buildx();
    let docker = assemble_testkit::docker().await;
    let user = TestUser::new("buildx-limit");
    for (bad, said) in [
        ("lots", "Error: \"lots\" is not a size; give a number and a unit, such as 20GB or 500MiB"),
        ("10MB", "Error: a cache limit of 10MB is too small to build with; give at least 64MiB, such as 20GB"),
    ] {
        let refused = user.run(&["backend", "start", "--allow-host-port", "0", "--cache-limit", bad]);
        assert_eq!((refused.code, refused.stderr.trim()), (Some(1), said), "{refused:#?}");
    }
    assert!(assemble_testkit::containers_named(&docker, &user.names.backend()).await.is_empty(), "nothing was created");

    user.run(&["backend", "start", "--allow-host-port", "0", "--cache-limit", "2GiB"]).expect_ok();
    let inspect = user.docker(&["buildx", "inspect", "--bootstrap", "assemble"]).expect_ok().stdout;
    assert!(inspect.contains("Max Used Space: 2GiB"), "BuildKit's GC policy has the limit:\n{inspect}");
    let info = user.run(&["backend", "info"]).expect_ok().stdout;
    assert!(info.contains("Cache limit: 2GiB"), "{info}");
    let other = user.run(&["backend", "start", "--allow-host-port", "0", "--cache-limit", "4GiB"]).expect_ok();
    assert!(other.stderr.contains("cache limit: running 2GiB, asked 4GiB"), "{other:#?}");
    user.run(&["backend", "stop"]).expect_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_is_listed_while_it_runs_and_its_logs_wait_for_its_end() {
    require_buildx();
    let user = TestUser::new("running-build");
    user.run(&["backend", "start"]).expect_ok();
    let dir = user.config_dir().join("slow");
    build_context(&user, &dir, "echo started-running; sleep 8; echo built > /out");
    let mut buildx = std::process::Command::new("docker");
    assemble_testkit::clear_engine_environment(&mut buildx);
    let mut buildx = buildx
        .arg("--config")
        .arg(user.docker_config())
        .args(["buildx", "build", "--builder", "assemble", "--progress", "plain"])
        .arg(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("docker buildx build runs");

    // It shows as Running, with no end, while buildx still builds.
    let began = std::time::Instant::now();
    let running = loop {
        let listed = user.run(&["backend", "builds", "--format", "json"]).expect_ok();
        let running = listed
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|b| b["status"] == "Running");
        if let Some(running) = running {
            break running;
        }
        assert!(began.elapsed().as_secs() < 60, "no Running build appeared: {}", listed.stdout);
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(buildx.try_wait().expect("buildx"), None, "listed as Running only while buildx builds");
    assert!(running["completed_at"].is_null(), "{running}");
    let reference = running["ref"].as_str().expect("a ref").to_string();
    let table = user.run(&["backend", "builds"]).expect_ok().stdout;
    assert!(table.lines().any(|l| l.starts_with(&reference) && l.contains("Running")), "{table}");

    // `builds logs` of a running build follows it to its end, then prints all of it.
    let logs = user.run(&["backend", "builds", "logs", &reference]).expect_ok().stdout;
    let output = buildx.wait_with_output().expect("buildx ends");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(logs.contains("started-running") && logs.contains("DONE"), "{logs}");

    let listed = user.run(&["backend", "builds", "--format", "json"]).expect_ok();
    let finished = listed
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|b| b["ref"] == reference.as_str())
        .expect("the build is still listed");
    assert_eq!(finished["status"], "Completed", "{finished}");
    assert!(finished["completed_at"].is_string(), "{finished}");
}
