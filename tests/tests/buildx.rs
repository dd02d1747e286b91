//! The backend as a buildx builder, with a real buildx (Debian's docker-buildx, fetched by
//! scripts/fetch-buildx.sh) on each test user's own docker config folder: `start` registers
//! `assemble`, and buildx builds on our backend and pushes through our sidecar.
use std::path::Path;

use assemble_e2e::{buildx_plugin, Registry, Run, TestUser};

fn require_buildx() {
    assert!(
        buildx_plugin().exists(),
        "{} is missing: run scripts/fetch-buildx.sh (scripts/setup.sh --test-images does)",
        buildx_plugin().display()
    );
}

/// A build context with BuildKit's own busybox (no registry serves base images here), a
/// multi-stage Dockerfile and a `RUN` step; `fail` makes the `RUN` step fail.
fn build_context(user: &TestUser, dir: &Path, fail: bool) {
    std::fs::create_dir_all(dir).expect("context folder");
    user.docker(&["cp", &format!("{}:/bin/busybox", user.names.backend()), &dir.display().to_string()]).expect_ok();
    let run = if fail { "echo failing on purpose; exit 3" } else { "echo built-by-assemble > /out" };
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
    build_context(&user, &dir, false);
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
    build_context(&user, &failing_dir, true);
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
    build_context(&user, &dir, false);
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
    let docker = assemble_e2e::docker().await;
    let user = TestUser::new("buildx-limit");
    for (bad, said) in [
        ("lots", "Error: \"lots\" is not a size; give a number and a unit, such as 20GB or 500MiB"),
        ("10MB", "Error: a cache limit of 10MB is too small to build with; give at least 64MiB, such as 20GB"),
    ] {
        let refused = user.run(&["backend", "start", "--allow-host-port", "0", "--cache-limit", bad]);
        assert_eq!((refused.code, refused.stderr.trim()), (Some(1), said), "{refused:#?}");
    }
    assert!(assemble_e2e::containers_named(&docker, &user.names.backend()).await.is_empty(), "nothing was created");

    user.run(&["backend", "start", "--allow-host-port", "0", "--cache-limit", "2GiB"]).expect_ok();
    let inspect = user.docker(&["buildx", "inspect", "--bootstrap", "assemble"]).expect_ok().stdout;
    assert!(inspect.contains("Max Used Space: 2GiB"), "BuildKit's GC policy has the limit:\n{inspect}");
    let info = user.run(&["backend", "info"]).expect_ok().stdout;
    assert!(info.contains("Cache limit: 2.147GB"), "{info}");
    let other = user.run(&["backend", "start", "--allow-host-port", "0", "--cache-limit", "4GiB"]).expect_ok();
    assert!(other.stderr.contains("cache limit: running 2.147GB, asked 4.295GB"), "{other:#?}");
    user.run(&["backend", "stop"]).expect_ok();
}
