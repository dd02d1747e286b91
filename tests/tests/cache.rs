//! The cache volume: chosen by the rules, kept across stop/start, emptied by purge.
use assemble_testkit::{build_and_push, docker, volume_exists, Registry, TestUser};
use bollard::models::VolumeCreateRequest;

fn cache_summary(info: &str) -> String {
    info.lines().find(|l| l.starts_with("Build cache contains")).unwrap_or_default().to_string()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_volume_keeps_the_cache_across_stop_and_start_and_purge_takes_buildx_prunes_options() {
    let docker = docker().await;
    let registry = Registry::start();
    let user = TestUser::new("cache");
    let volume = user.names.default_cache_volume();
    user.own_volume(&volume);
    docker
        .create_volume(VolumeCreateRequest { name: Some(volume.clone()), ..Default::default() })
        .await
        .expect("create the default cache volume");

    let port = registry.port.to_string();
    user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    let backend = user.names.backend();
    let (code, output) = build_and_push(&docker, &backend, &format!("localhost:{port}/e2e/cache:1"), "cached").await;
    assert_eq!(code, 0, "{output}");

    let before = user.run(&["backend", "info"]).expect_ok().stdout;
    let summary_before = cache_summary(&before);
    assert!(!summary_before.contains("contains 0 entries"), "the build left no cache: {before}");
    let labels = docker.inspect_container(&backend, None).await.unwrap().config.unwrap().labels.unwrap();
    assert_eq!(labels.get("com.docker.assemble.backend.cache-volume"), Some(&volume));

    let stopped = user.run(&["backend", "stop"]).expect_ok();
    assert!(stopped.stdout.contains(&volume), "{stopped:?}");
    assert!(volume_exists(&docker, &volume).await, "stop must never remove a named cache volume");

    user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    let after = user.run(&["backend", "info"]).expect_ok().stdout;
    assert_eq!(cache_summary(&after), summary_before, "the cache did not survive the restart");

    let usage = json(&user.run(&["backend", "cache", "usage", "--format", "json"]).expect_ok().stdout);
    assert!(usage["totals"]["entries"].as_u64().unwrap() > 0, "{usage}");

    // buildx prune's options: only a type, only what was unused for a day, then --all.
    let types = |usage: &serde_json::Value| -> Vec<String> {
        usage["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| r["record_type"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let locals = json(
        &user
            .run(&["backend", "cache", "usage", "--format", "json", "--filter", "type=source.local"])
            .expect_ok()
            .stdout,
    );
    assert!(!types(&locals).is_empty() && types(&locals).iter().all(|t| t == "source.local"), "{locals}");
    let purged = user.run(&["backend", "cache", "purge", "--filter", "type=source.local"]).expect_ok();
    assert!(!purged.stdout.starts_with("Deleted 0 "), "purge removed nothing: {purged:?}");
    let usage = json(&user.run(&["backend", "cache", "usage", "--format", "json"]).expect_ok().stdout);
    assert!(
        !types(&usage).is_empty() && !types(&usage).iter().any(|t| t == "source.local"),
        "only source.local went: {usage}"
    );
    let recent = user.run(&["backend", "cache", "purge", "--filter", "until=24h"]).expect_ok();
    assert!(recent.stdout.starts_with("Deleted 0 "), "everything was used within a day, so nothing goes: {recent:?}");
    let refused = user.run(&["backend", "cache", "purge", "--filter", "size=1"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stderr.starts_with("Error: \"size=1\" is not a cache filter; use until=DURATION"), "{refused:?}");

    let purged = user.run(&["backend", "cache", "purge", "--all"]).expect_ok();
    assert!(purged.stdout.contains("Total reclaimed space:"), "{purged:?}");
    assert!(!purged.stdout.starts_with("Deleted 0 "), "purge removed nothing: {purged:?}");

    let usage = json(&user.run(&["backend", "cache", "usage", "--format", "json"]).expect_ok().stdout);
    assert_eq!(usage["totals"]["entries"], 0, "cache usage after purge --all: {usage}");
    let text_usage = user.run(&["backend", "cache", "usage"]).expect_ok().stdout;
    assert!(text_usage.contains("Total:\t\t0B"), "{text_usage}");
    let info = user.run(&["backend", "info"]).expect_ok().stdout;
    assert_eq!(cache_summary(&info), "Build cache contains 0 entries, total size 0B (0B currently in use)");

    user.run(&["backend", "stop"]).expect_ok();
    assert!(volume_exists(&docker, &volume).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_volume_flag_wins_and_without_any_the_cache_is_anonymous_and_goes_with_the_backend() {
    let docker = docker().await;
    let user = TestUser::new("cachevol");
    let named = format!("{}-assemble-cache", user.user());
    user.own_volume(&named);
    let backend = user.names.backend();

    // A missing --cache-volume is created (with our labels) and kept after stop.
    let started = user.run(&["backend", "start", "--allow-host-port", "0", "--cache-volume", &named]).expect_ok();
    assert!(started.stderr.contains(&format!("Created cache volume \"{named}\"")), "{started:?}");
    let inspect = docker.inspect_container(&backend, None).await.unwrap();
    let mounts = inspect.mounts.unwrap_or_default();
    assert!(mounts.iter().any(|m| m.name.as_deref() == Some(named.as_str()) && m.destination.as_deref() == Some("/var/lib/buildkit")), "{mounts:?}");
    user.run(&["backend", "stop"]).expect_ok();
    assert!(volume_exists(&docker, &named).await);

    // No flag and no default volume: an anonymous cache, removed with the backend.
    let started = user.run(&["backend", "start", "--allow-host-port", "0"]).expect_ok();
    assert!(started.stderr.contains("not kept"), "the user must be told the cache is lost on stop: {started:?}");
    let inspect = docker.inspect_container(&backend, None).await.unwrap();
    let anonymous = inspect
        .mounts
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.destination.as_deref() == Some("/var/lib/buildkit"))
        .and_then(|m| m.name)
        .expect("cache mount");
    assert_ne!(anonymous, named);
    assert!(volume_exists(&docker, &anonymous).await);
    user.run(&["backend", "stop"]).expect_ok();
    assert!(!volume_exists(&docker, &anonymous).await, "the anonymous cache volume should go with the backend");
    assert!(volume_exists(&docker, &named).await);
}
