//! `info` in the original page's shape, labels as the record of what start decided, and `logs`.
use assemble_testkit::{docker, native_platform, test_image_repository, TestUser, MACHINE_ENGINE};

#[tokio::test(flavor = "multi_thread")]
async fn info_has_the_original_shape_and_labels_record_the_configuration() {
    let docker = docker().await;
    let user = TestUser::new("info");
    user.run(&["backend", "start", "--allow-host-port", "6001,6002"]).expect_ok();
    let backend = user.names.backend();

    let info = user.run(&["backend", "info"]).expect_ok().stdout;
    let lines: Vec<&str> = info.lines().collect();
    let id = docker.inspect_container(&backend, None).await.unwrap().id.unwrap();
    assert_eq!(lines[0], format!("ID: {id} (running)"), "{info}");
    assert!(lines[1].starts_with(&format!("Image: {}@sha256:", test_image_repository())), "{info}");
    assert_eq!(lines[2], format!("Context: default ({MACHINE_ENGINE})"), "info names the engine: {info}");
    assert_eq!(lines[4], "Sidecar containers:", "{info}");
    for (line, port) in lines[5..7].iter().zip([6001, 6002]) {
        let expected = format!(" {}-proxy-port-{port} (running)", backend);
        assert!(line.starts_with(" - ") && line.ends_with(&expected), "{line:?} in {info}");
    }
    assert_eq!(lines[8], "Found 1 worker(s):", "{info}");
    let platform_line = format!("    - {}", native_platform());
    assert!(lines[10].starts_with(" - ") && lines[11] == "   Platforms:" && lines[12] == platform_line, "{info}");
    assert!(info.contains("   Labels:\n    - org.mobyproject.buildkit.worker.executor: oci"), "{info}");
    assert!(info.contains(&format!("    - org.mobyproject.buildkit.worker.hostname: {backend}")), "{info}");
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("Build cache contains ")
            && last.contains(", total size ")
            && last.ends_with(" currently in use)"),
        "{info}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&user.run(&["backend", "info", "--format", "json"]).expect_ok().stdout).unwrap();
    assert_eq!(json["id"], id.as_str());
    assert_eq!(json["ports"], serde_json::json!([6001, 6002]));
    assert_eq!(json["workers"][0]["platforms"][0], native_platform());

    let labels = docker.inspect_container(&backend, None).await.unwrap().config.unwrap().labels.unwrap();
    assert_eq!(labels["com.docker.assemble.backend.owner"], user.user());
    assert_eq!(labels["com.docker.assemble.backend.role"], "backend");
    assert_eq!(labels["com.docker.assemble.backend.ports"], "6001,6002");
    assert_eq!(labels["com.docker.assemble.backend.cache-volume"], "");
    assert_eq!(labels["com.docker.assemble.backend.image"], assemble_testkit::test_image());
    assert_eq!(labels["com.docker.assemble.backend.version"], env!("CARGO_PKG_VERSION"));
    let sidecar = docker.inspect_container(&user.names.proxy(6001), None).await.unwrap();
    let sidecar_labels = sidecar.config.unwrap().labels.unwrap();
    assert_eq!(sidecar_labels["com.docker.assemble.backend.role"], "proxy");
    assert_eq!(sidecar_labels["com.docker.assemble.backend.port"], "6001");
    assert_eq!(sidecar.host_config.unwrap().network_mode.unwrap(), format!("container:{id}"));

    let logs = user.run(&["backend", "logs"]).expect_ok();
    let all = format!("{}{}", logs.stdout, logs.stderr);
    assert!(all.contains("running server on /run/buildkit/buildkitd.sock"), "{all}");
    let tail = user.run(&["backend", "logs", "--tail", "1", "--timestamps"]).expect_ok();
    let tail_all = format!("{}{}", tail.stdout, tail.stderr);
    assert_eq!(tail_all.lines().count(), 1, "{tail_all}");
    assert!(tail_all.starts_with("20"), "a timestamp should lead the line: {tail_all}");

    user.run(&["backend", "stop"]).expect_ok();
    let stopped_again = user.run(&["backend", "stop"]).expect_ok();
    assert_eq!(stopped_again.stdout.trim(), "The backend is not running.");
    let info = user.run(&["backend", "info"]).expect_ok();
    assert!(info.stdout.contains("is not running"), "{info:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn start_on_a_running_backend_leaves_it_and_puts_back_a_lost_sidecar() {
    let docker = docker().await;
    let user = TestUser::new("idem");
    user.run(&["backend", "start", "--allow-host-port", "6003"]).expect_ok();
    let backend = user.names.backend();
    let id = docker.inspect_container(&backend, None).await.unwrap().id.unwrap();
    let sidecar = user.names.proxy(6003);
    let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default().force(true).build();
    docker.remove_container(&sidecar, Some(options)).await.unwrap();

    let again = user.run(&["backend", "start", "--allow-host-port", "6003"]).expect_ok();
    assert!(again.stdout.contains("is already running"), "{again:?}");
    assert_eq!(
        docker.inspect_container(&backend, None).await.unwrap().id.unwrap(),
        id,
        "the backend must be left running"
    );
    let healed = docker.inspect_container(&sidecar, None).await.expect("the lost sidecar is back");
    assert_eq!(healed.state.and_then(|s| s.running), Some(true));

    // Other ports are applied live; every other option that differs is named, and nothing is
    // changed or created for it.
    let volume = format!("{}-other", user.names.default_cache_volume());
    let other = user
        .run(&["backend", "start", "--allow-host-port", "7000", "--cache-volume", &volume, "--image", "other/image:1"])
        .expect_ok();
    assert!(
        other.stdout.contains("Host ports added 7000, removed 6003 (live, no restart): now proxying 7000."),
        "{other:?}"
    );
    for difference in
        [format!("cache volume: running none (lost on stop), asked {volume}"), "asked other/image:1".to_string()]
    {
        assert!(other.stderr.contains(&difference), "{difference:?} missing in {other:?}");
    }
    assert!(!other.stderr.contains("host ports:"), "the ports are no longer a difference: {other:?}");
    assert!(other.stderr.contains("stop it and start again"), "{other:?}");
    assert!(docker.inspect_volume(&volume).await.is_err(), "no volume is made for a start that changes nothing");
    assert_eq!(docker.inspect_container(&backend, None).await.unwrap().id.unwrap(), id);
    user.run(&["backend", "stop"]).expect_ok();
}
