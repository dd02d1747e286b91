//! Local images (backend/mirror): a `FROM` of an image that only the engine has, built on the
//! backend by `assemble build` and by a real buildx, takes the engine's image, layer for layer. The
//! mirror that serves it listens only inside the backend's network namespace and only reads.
use std::path::Path;

use assemble_testkit::{
    buildx_plugin, copy_busybox_into, docker, docker_cli, exec, network, network::Reach, test_image, TestUser,
};

/// Where the front listens inside the backend's namespace (backend/mirror/config.rs).
const FRONT: &str = "127.0.0.2:49500";
const FRONT_PORT: u16 = 49500;

/// Removes the test's images when it ends, pass or fail.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = docker_cli().args(["image", "rm", "-f", image]).output();
        }
    }
}

fn layers(image: &str) -> Vec<String> {
    let out = docker_cli()
        .args(["image", "inspect", "-f", "{{json .RootFS.Layers}}", image])
        .output()
        .expect("the docker CLI runs");
    assert!(out.status.success(), "inspecting {image}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("RootFS.Layers is a JSON list")
}

fn write(dir: &Path, dockerfile: &str) {
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("Dockerfile");
}

/// Runs `image`'s busybox and returns what it printed.
fn run_image(image: &str) -> String {
    let out = docker_cli()
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "/bin/busybox",
            image,
            "cat",
            "/base.txt",
            "/app.txt",
        ])
        .output()
        .expect("the docker CLI runs");
    assert!(out.status.success(), "running {image}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_from_of_an_image_only_the_engine_has_takes_the_engines_image_for_assemble_build_and_buildx() {
    let docker = docker().await;
    let user = TestUser::new("local");
    let base = format!("e2e-local-base-{}:1", user.user());
    let app = format!("e2e-local-app-{}:1", user.user());
    let buildx_app = format!("e2e-local-buildx-{}:1", user.user());
    let _images = Images(vec![base.clone(), app.clone(), buildx_app.clone()]);
    let started = user.run(&["backend", "start", "--allow-host-port", "0"]).expect_ok();
    assert!(started.stdout.contains("Local images: used: a FROM of an image the engine has"), "{started:#?}");

    // A base image that exists only in the engine: built and loaded by `assemble build --load`.
    let base_dir = user.scratch("base");
    copy_busybox_into(&base_dir);
    write(&base_dir, "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo from-the-engine > /base.txt\"]\n");
    user.run(&["build", "--load", "-t", &base, "--progress", "plain", &base_dir.display().to_string()]).expect_ok();
    let base_layers = layers(&base);

    // An image on top of it, by the native build.
    let app_dir = user.scratch("app");
    write(&app_dir, &format!("FROM {base}\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo app > /app.txt\"]\n"));
    let built = user.run(&["build", "--load", "-t", &app, "--progress", "plain", &app_dir.display().to_string()]);
    assert!(built.ok(), "a FROM of a local image failed: {built:#?}");
    assert_eq!(run_image(&app), "from-the-engine\napp\n");
    let app_layers = layers(&app);
    assert_eq!(app_layers[..base_layers.len()], base_layers[..], "the base layers are the engine's: {app_layers:?}");
    assert_eq!(app_layers.len(), base_layers.len() + 1);

    // And by a real buildx on the builder `start` registered.
    assert!(
        buildx_plugin().exists(),
        "{} is missing: run scripts/fetch-buildx.sh (scripts/setup.sh --test-images does)",
        buildx_plugin().display()
    );
    let app_arg = app_dir.display().to_string();
    let by_buildx = user.docker(&[
        "buildx",
        "build",
        "--builder",
        "assemble",
        "--progress",
        "plain",
        "--load",
        "-t",
        &buildx_app,
        &app_arg,
    ]);
    assert!(by_buildx.ok(), "buildx on a local base failed: {by_buildx:#?}");
    assert_eq!(run_image(&buildx_app), "from-the-engine\napp\n");
    assert_eq!(layers(&buildx_app)[..base_layers.len()], base_layers[..]);

    // `--pull` skips local images, and says so: here no registry has the image, so it fails.
    let pulled = user.run(&["build", "--pull", "--progress", "plain", &app_arg]);
    assert!(!pulled.ok(), "--pull must not take the engine's image: {pulled:#?}");
    assert!(
        pulled.stderr.contains("--pull: base images come from their registries, not from the engine"),
        "{pulled:#?}"
    );

    // The engine no longer has the base: its registry is asked (none here), never an old copy.
    docker_cli().args(["image", "rm", &base]).output().expect("the docker CLI runs");
    let gone = user.run(&["build", "--no-cache", "--progress", "plain", &app_arg]);
    assert!(!gone.ok(), "a base the engine removed was still served: {gone:#?}");

    // Nothing of it but the front in the backend's namespace; stop removes all of it.
    let front = docker.inspect_container(&user.names.mirror(), None).await.expect("the front");
    let backend_id = docker.inspect_container(&user.names.backend(), None).await.expect("the backend").id.unwrap();
    let host = front.host_config.expect("a host config");
    assert_eq!(host.network_mode, Some(format!("container:{backend_id}")));
    let store = docker.inspect_container(&user.names.mirror_store(), None).await.expect("the store");
    let store_host = store.host_config.expect("a host config");
    assert_eq!(store_host.network_mode.as_deref(), Some("none"));
    for host in [&host, &store_host] {
        assert_eq!(host.cap_drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert_eq!((host.readonly_rootfs, host.privileged), (Some(true), Some(false)));
        assert!(host.port_bindings.as_ref().is_none_or(|b| b.is_empty()), "{host:?}");
    }
    user.run(&["backend", "stop"]).expect_ok();
    for name in [user.names.mirror(), user.names.mirror_store()] {
        assert!(docker.inspect_container(&name, None).await.is_err(), "{name} outlived stop");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mirror_is_reachable_only_inside_the_backend_and_refuses_pushes() {
    let docker = docker().await;
    let user = TestUser::new("localnet");
    user.run(&["backend", "start", "--allow-host-port", "0"]).expect_ok();
    let backend = user.names.backend();

    // Inside the backend's namespace it answers, as a registry does.
    let (code, output) = exec(&docker, &backend, &["wget", "-q", "-O", "-", &format!("http://{FRONT}/v2/")]).await;
    assert_eq!((code, output.trim()), (0, "{}"), "the front does not answer inside the backend");

    // Not from the host: nothing listens there.
    let from_host = std::net::TcpStream::connect_timeout(&FRONT.parse().unwrap(), std::time::Duration::from_secs(5));
    assert!(
        from_host.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
        "the host reached the mirror: {from_host:?}"
    );
    // Not from another container on the bridge, at the backend's own address.
    let address = network::container_address(&docker, &backend).await;
    assert_eq!(
        network::probe_from_bridge(assemble_testkit::MACHINE_ENGINE, &test_image(), &address, FRONT_PORT),
        Reach::Refused
    );

    // Read only: a push is refused by the front itself.
    let reference = format!("{FRONT}/e2e/pushed:1");
    let (code, output) = assemble_testkit::build_and_push(&docker, &backend, &reference, "pushed").await;
    assert!(
        code != 0 && output.contains("this registry is read-only"),
        "a push to the mirror was not refused: {output}"
    );
    let (code, output) =
        exec(&docker, &backend, &["wget", "-q", "-O", "-", &format!("http://{FRONT}/v2/_catalog")]).await;
    assert!(code != 0 && !output.contains("repositories"), "the mirror lists images: {output}");
    user.run(&["backend", "stop"]).expect_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn local_images_turned_off_start_no_mirror_and_say_so() {
    let docker = docker().await;
    let user = TestUser::new("localoff");
    let started = user.run(&["backend", "start", "--allow-host-port", "0", "--no-local-images"]).expect_ok();
    assert!(started.stdout.contains("Local images: off (--no-local-images)"), "{started:#?}");
    let info = user.run(&["backend", "info"]).expect_ok();
    assert!(info.stdout.contains("Local images: off (--no-local-images)"), "{info:#?}");
    for name in [user.names.mirror(), user.names.mirror_store()] {
        assert!(docker.inspect_container(&name, None).await.is_err(), "{name} runs with local images off");
    }
    // A plain start asks for local images: the difference is named, not applied live.
    let again = user.run(&["backend", "start", "--allow-host-port", "0"]).expect_ok();
    assert!(again.stderr.contains("local images: running off, asked used (docker.io)"), "{again:#?}");
    user.run(&["backend", "stop"]).expect_ok();
}

/// A name both in the engine and in a registry the settings list: the engine's image wins, as
/// with `docker build`; `--pull` takes the registry's and says so.
#[tokio::test(flavor = "multi_thread")]
async fn local_wins_over_the_registry_and_pull_takes_the_registrys() {
    let registry = assemble_testkit::Registry::start();
    let user = TestUser::new("localwins");
    let port = registry.port;
    std::fs::create_dir_all(user.config_dir()).expect("settings folder");
    let settings = format!("{{\"ports\": [{port}], \"local_image_registries\": [\"localhost:{port}\"]}}");
    std::fs::write(user.settings_file(), settings).expect("settings");
    let name = format!("localhost:{port}/e2e/ambiguous:1");
    let out = format!("e2e-local-wins-{}:1", user.user());
    let _images = Images(vec![name.clone(), out.clone()]);
    let started = user.run(&["backend", "start"]).expect_ok();
    assert!(started.stdout.contains(&format!("for docker.io, localhost:{port}")), "{started:#?}");

    // The registry's image and, under the same name, a different one in the engine.
    let dir = user.scratch("ambiguous");
    copy_busybox_into(&dir);
    let make = |token: &str| {
        write(
            &dir,
            &format!("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo {token} > /base.txt\"]\n"),
        )
    };
    make("from-the-registry");
    user.run(&["build", "--push", "-t", &name, "--progress", "plain", &dir.display().to_string()]).expect_ok();
    make("from-the-engine");
    user.run(&["build", "--load", "-t", &name, "--progress", "plain", &dir.display().to_string()]).expect_ok();
    let engine_layers = layers(&name);

    let app = user.scratch("ambiguous-app");
    write(&app, &format!("FROM {name}\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo app > /app.txt\"]\n"));
    let app_arg = app.display().to_string();
    user.run(&["build", "--load", "-t", &out, "--progress", "plain", &app_arg]).expect_ok();
    assert_eq!(run_image(&out), "from-the-engine\napp\n", "the engine's image wins");
    assert_eq!(layers(&out)[..engine_layers.len()], engine_layers[..]);

    let pulled = user.run(&["build", "--pull", "--load", "-t", &out, "--progress", "plain", &app_arg]);
    assert!(pulled.ok(), "{pulled:#?}");
    assert!(
        pulled.stderr.contains("--pull: base images come from their registries, not from the engine"),
        "{pulled:#?}"
    );
    assert_eq!(run_image(&out), "from-the-registry\napp\n", "--pull takes the registry's image");
    user.run(&["backend", "stop"]).expect_ok();
}

/// An image removed while a build takes it from the engine: the build fails with the mirror's
/// sentence first, never with a stale copy. The removal lands while the mirror exports the image
/// (it logs when it starts), so the image the build resolved is gone when BuildKit asks again.
#[tokio::test(flavor = "multi_thread")]
async fn an_image_removed_during_the_build_fails_it_with_the_mirrors_sentence() {
    let _docker = docker().await;
    let user = TestUser::new("localgone");
    let base = format!("e2e-local-gone-{}:1", user.user());
    let _images = Images(vec![base.clone()]);
    user.run(&["backend", "start", "--allow-host-port", "0"]).expect_ok();

    // A base large enough that its export takes a while (about 200 MB of random bytes).
    let base_dir = user.scratch("base");
    copy_busybox_into(&base_dir);
    write(
        &base_dir,
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox head -c 200000000 /dev/urandom > /big && echo gone > /base.txt\"]\n",
    );
    user.run(&["build", "--load", "-t", &base, "--progress", "plain", &base_dir.display().to_string()]).expect_ok();

    let app_dir = user.scratch("app");
    write(&app_dir, &format!("FROM {base}\nRUN [\"/bin/busybox\", \"cat\", \"/base.txt\"]\n"));
    let store = format!("docker-assemble-backend-{}-mirror-store", user.user());
    let mut logs = docker_cli()
        .args(["logs", "-f", "--since", "0s", &store])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("docker logs runs");
    let build = user.command(&["build", "--progress", "plain", &app_dir.display().to_string()]);
    let build = std::thread::spawn(move || {
        let mut build = build;
        build.output().expect("assemble build runs")
    });

    // The store writes its lines to stderr; remove the image as soon as its export starts.
    let exporting = format!("exporting {base}");
    let stderr = logs.stderr.take().expect("piped");
    let seen = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr).lines().map_while(Result::ok).any(|line| line.contains(&exporting))
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !seen.is_finished() {
        assert!(std::time::Instant::now() < deadline, "the mirror never logged the start of {base}'s export");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = logs.kill();
    let _ = logs.wait();
    assert!(seen.join().expect("the log reader ends"), "the mirror's log ended before the export of {base} began");
    let removed = docker_cli().args(["image", "rm", &base]).output().expect("the docker CLI runs");
    assert!(removed.status.success(), "removing {base}: {}", String::from_utf8_lossy(&removed.stderr));

    let built = build.join().expect("the build thread ends");
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(!built.status.success(), "the build used an image the engine no longer has: {stderr}");
    assert!(
        stderr.contains(&format!("Error: the build failed: the engine no longer has the image {base}")),
        "the mirror's sentence comes first: {stderr}"
    );
    assert!(stderr.contains("build again to use what the engine (or the registry) has now"), "{stderr}");
    assert!(stderr.contains(&format!("`docker logs {store}` says more")), "{stderr}");
}
