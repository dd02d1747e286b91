//! Bad input and hostile surroundings: a clear sentence, a non-zero exit, nothing left behind.
use assemble_testkit::{
    broken_backend_image, containers_named, docker, run_bounded, test_image, volume_exists, Run, TestUser,
};
use bollard::{models::ContainerCreateBody, query_parameters::CreateContainerOptionsBuilder};

#[track_caller]
fn assert_refused(run: &Run, words: &str) {
    assert_eq!(run.code, Some(1), "expected exit 1: {run:#?}");
    assert!(run.stderr.starts_with("Error: "), "{run:#?}");
    assert!(run.stderr.contains(words), "expected {words:?} in {run:#?}");
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "one sentence, not a stack: {run:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_invalid_port_form_is_refused_before_anything_is_created() {
    let docker = docker().await;
    let user = TestUser::new("ports");
    let cases: &[(&[&str], &str)] = &[
        (&["--allow-host-port", "0,5000"], "cannot be combined"),
        (&["--allow-host-port", "5000", "--allow-host-port", "0"], "cannot be combined"),
        (&["--allow-host-port", "65536"], "out of range"),
        (&["--allow-host-port", "abc"], "not a port number"),
        (&["--allow-host-port", "-1"], "not a port number"),
        (&["--allow-host-port", ""], "empty value"),
        (&["--allow-host-port", "5000,"], "empty value"),
        (&["--cache-volume", "bad/name"], "not a valid volume name"),
        (&["--image", " "], "image reference is empty"),
        (
            &["--image", "moby/BuildKit:v0.25.1"],
            "the backend image \"moby/BuildKit:v0.25.1\" is not a valid image name",
        ),
    ];
    for (flags, words) in cases {
        let mut args = vec!["backend", "start"];
        args.extend_from_slice(flags);
        assert_refused(&user.run(&args), words);
    }
    // The environment's image passes the same check as the flag's.
    let by_env = TestUser::new("ports-env").with_image("moby/buildkit:");
    assert_refused(
        &by_env.run(&["backend", "start"]),
        "the backend image \"moby/buildkit:\" is not a valid image name",
    );
    assert!(containers_named(&docker, &by_env.names.backend()).await.is_empty());
    assert!(containers_named(&docker, &user.names.backend()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_container_with_our_name_is_reported_and_never_touched() {
    let docker = docker().await;
    let user = TestUser::new("foreign");
    for name in [user.names.backend(), user.names.proxy(6010)] {
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let body = ContainerCreateBody { image: Some(test_image()), ..Default::default() };
        let planted = docker.create_container(Some(options), body).await.expect("plant a foreign container").id;

        let refused = user.run(&["backend", "start", "--allow-host-port", "6010"]);
        assert_refused(&refused, "was not created by Assemble Backend");
        assert!(refused.stderr.contains(&name), "{refused:?}");
        let left = containers_named(&docker, &user.names.backend()).await;
        assert_eq!(left, vec![(planted.clone(), name.clone())], "only the planted container may exist");

        if name == user.names.backend() {
            assert_refused(&user.run(&["backend", "stop"]), "was not created by Assemble Backend");
            assert_refused(&user.run(&["backend", "info"]), "was not created by Assemble Backend");
        }
        assert_eq!(docker.inspect_container(&planted, None).await.unwrap().id.unwrap(), planted);
        docker.remove_container(&planted, None).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_unreachable_gives_one_sentence() {
    let user = TestUser::new("nodocker");
    for host in ["unix:///nonexistent/assemble-e2e.sock", "tcp://127.0.0.1:1"] {
        for args in [&["backend", "start"][..], &["backend", "info"], &["backend", "stop"]] {
            let mut command = user.command(args);
            command.env("DOCKER_HOST", host);
            let run = run_bounded(command);
            assert_refused(&run, &format!("Cannot reach the Docker Engine at {host}"));
            assert!(run.stderr.contains("Start Docker"), "{run:?}");
        }
    }
    let mut command = user.command(&["backend", "info"]);
    command.env("DOCKER_HOST", "bogus://x");
    assert_refused(
        &run_bounded(command),
        "\"bogus://x\" is not a Docker Engine address: the scheme bogus:// is not one docker knows",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_image_with_no_registry_is_a_clear_error_and_leaves_nothing() {
    let docker = docker().await;
    let user = TestUser::new("noimage");
    let volume = format!("{}-never", user.user());
    user.own_volume(&volume);
    let run = user.run(&["backend", "start", "--image", "assemble-e2e/not-there:1", "--cache-volume", &volume]);
    assert_refused(&run, "image assemble-e2e/not-there:1 is not present and could not be pulled");
    assert!(containers_named(&docker, &user.names.backend()).await.is_empty());
    assert!(!volume_exists(&docker, &volume).await, "a refused start must not leave a volume");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_that_fails_half_way_removes_what_it_created_and_shows_the_logs() {
    let docker = docker().await;
    let user = TestUser::new("halfway");
    let volume = format!("{}-halfway", user.user());
    user.own_volume(&volume);
    let image = broken_backend_image();
    let run =
        user.run(&["backend", "start", "--image", &image, "--cache-volume", &volume, "--allow-host-port", "6020"]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stderr.contains("stopped while starting; its last log lines:"), "{run:#?}");
    assert!(run.stderr.contains("buildkitd"), "the backend's own words should be shown: {run:#?}");
    assert!(containers_named(&docker, &user.names.backend()).await.is_empty(), "containers left behind");
    assert!(!volume_exists(&docker, &volume).await, "the volume this start created must go too");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_start_removes_what_it_created() {
    let engine = assemble_testkit::engine().await;
    let docker = engine.docker().clone();
    let user = TestUser::new("cancel");
    let backend = assemble_core::Backend::new(engine, user.names.clone());
    let request = assemble_core::StartRequest {
        ports: assemble_core::PortSet::from_ports([6050]),
        cache: assemble_core::CacheSetting::Anonymous,
        image: test_image(),
        ready_timeout: std::time::Duration::from_secs(60),
        cache_limit: None,
        security: Default::default(),
        allow_network_host: false,
        local_images: Default::default(),
    };
    // Cancelled in the middle: once the backend exists and start waits for BuildKit.
    let midway = tokio::sync::Notify::new();
    let report = notify_when_waiting_for_buildkit(&midway);
    let result = backend.start_until(&request, &report, midway.notified()).await;
    assert!(matches!(result, Err(assemble_core::Error::Backend(assemble_core::BackendError::Cancelled))), "{result:?}");
    assert!(containers_named(&docker, &user.names.backend()).await.is_empty(), "an interrupted start left containers");
}

/// A cleanup that fails is told, with what is left and how to remove it: a container of the
/// test's own holds the cache volume the start created when the start is interrupted.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_start_whose_cleanup_fails_says_what_is_left() {
    let engine = assemble_testkit::engine().await;
    let docker = engine.docker().clone();
    let user = TestUser::new("leftover");
    let volume = format!("{}-held", user.user());
    user.own_volume(&volume);
    let backend = assemble_core::Backend::new(engine, user.names.clone());
    let request = assemble_core::StartRequest {
        ports: assemble_core::PortSet::none(),
        cache: assemble_core::CacheSetting::Named(volume.clone()),
        image: test_image(),
        ready_timeout: std::time::Duration::from_secs(60),
        cache_limit: None,
        security: Default::default(),
        allow_network_host: false,
        local_images: Default::default(),
    };
    let midway = tokio::sync::Notify::new();
    let report = notify_when_waiting_for_buildkit(&midway);
    // Named like the backend, so the test user's cleanup removes it too.
    let holder = format!("{}-volume-holder", user.names.backend());
    let cancel = async {
        midway.notified().await;
        let options = bollard::query_parameters::CreateContainerOptionsBuilder::default().name(&holder).build();
        let body = bollard::models::ContainerCreateBody {
            image: Some(test_image()),
            host_config: Some(bollard::models::HostConfig {
                binds: Some(vec![format!("{volume}:/held")]),
                ..Default::default()
            }),
            ..Default::default()
        };
        docker.create_container(Some(options), body).await.expect("the holder container is created");
    };
    let result = backend.start_until(&request, &report, cancel).await;
    let Err(assemble_core::Error::Backend(assemble_core::BackendError::RollbackIncomplete { cause, left, .. })) =
        &result
    else {
        panic!("the failed cleanup must be told: {result:?}");
    };
    assert!(matches!(**cause, assemble_core::Error::Backend(assemble_core::BackendError::Cancelled)), "{cause:?}");
    assert_eq!(left, &vec![assemble_core::Leftover::Volume(volume.clone())]);
    let told = result.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(told.starts_with("the start was interrupted; and removing what the start had created failed: "), "{told}");
    assert!(told.contains(&format!("could not remove volume {volume} (")), "{told}");
    assert!(told.ends_with(&format!("Remove what is left yourself: `docker volume rm {volume}`")), "{told}");
    let left_containers: Vec<String> =
        containers_named(&docker, &user.names.backend()).await.into_iter().map(|(_, name)| name).collect();
    assert_eq!(left_containers, vec![holder.clone()], "the backend itself was removed");
    assert!(volume_exists(&docker, &volume).await, "the held volume is left, as the error says");
}

/// A progress reporter that notifies `midway` once the backend exists and start waits for BuildKit.
fn notify_when_waiting_for_buildkit(midway: &tokio::sync::Notify) -> impl Fn(assemble_core::StartEvent) + '_ {
    move |event| {
        if matches!(event, assemble_core::StartEvent::WaitingForBuildkit) {
            midway.notify_one();
        }
    }
}

/// Run as `nobody`, who may not open the root-owned engine socket.
#[tokio::test(flavor = "multi_thread")]
async fn permission_denied_on_the_socket_gives_one_sentence() {
    // A folder nobody may enter and run from (a scratch folder is its owner's only).
    let folder = tempfile::Builder::new()
        .prefix("assemble-e2e-perm-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir()
        .expect("a folder for the copy");
    let copy = folder.path().join("assemble");
    std::fs::copy(assemble_testkit::assemble_binary(), &copy).expect("copy the binary where nobody can run it");
    let mut command = std::process::Command::new("runuser");
    assemble_testkit::clear_engine_environment(&mut command);
    command
        .args(["-u", "nobody", "--"])
        .arg(&copy)
        .args(["backend", "info"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let run = run_bounded(command);
    assert_refused(&run, "permission denied. Add your user to the `docker` group");
}
