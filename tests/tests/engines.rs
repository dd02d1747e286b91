//! The engine is found as the docker CLI finds it: a Docker-Desktop-style current context, TLS
//! (from the environment and from a context's own files) and ssh, each against a second, private
//! dockerd. The machine's engine must never see the backend meant for the other one.
use std::{path::Path, process::Command};

use assemble_testkit::{
    build_and_push, containers_named, docker, json, native_platform,
    private_engine::{Certificates, EngineSpec, PrivateEngine},
    refused, run_bounded,
    sshd::Sshd,
    test_image, Registry, Run, TestUser, MACHINE_ENGINE,
};

/// Starts the tests' private engine with the backend image loaded.
async fn private_engine(spec: EngineSpec) -> PrivateEngine {
    PrivateEngine::start_with_images(spec, &[&test_image()])
        .await
        .unwrap_or_else(|e| panic!("the private engine with the test image: {e}"))
}

/// The real docker CLI on a docker config folder of the test's own.
fn docker_cli(config: &Path, args: &[&str]) -> Run {
    let mut command = Command::new(std::env::var("ASSEMBLE_TEST_DOCKER_CLI").unwrap_or_else(|_| "docker".into()));
    command
        .args(args)
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    run_bounded(command)
}

/// `assemble ARGS` for `user`, with docker's config in `config` and only the variables in `env`
/// (the test's own DOCKER_* are removed first).
fn assemble(user: &TestUser, config: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = user.command(args);
    command.env("DOCKER_CONFIG", config);
    for name in ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS"] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    run_bounded(command)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_current_context_like_docker_desktops_chooses_the_engine() {
    let engine = private_engine(EngineSpec::engine_tests()).await;
    let private = engine.docker().await.expect("private engine");
    let machine = docker().await;
    let registry = Registry::start();
    let user = TestUser::new("desktop");
    user.also_clean_on(&engine.host);
    let config = user.scratch("docker-config");
    docker_cli(&config, &["context", "create", "desktop-linux", "--docker", &format!("host={}", engine.host)])
        .expect_ok();
    docker_cli(&config, &["context", "use", "desktop-linux"]).expect_ok();
    let context_line = format!("Context: desktop-linux ({})", engine.host);
    let port = registry.port.to_string();

    let started = assemble(&user, &config, &[], &["backend", "start", "--allow-host-port", &port]).expect_ok();
    assert!(started.stdout.contains(&context_line), "{started:#?}");
    let backend = user.names.backend();
    let on_private: Vec<String> = containers_named(&private, &backend).await.into_iter().map(|(_, n)| n).collect();
    // The backend, its sidecar and the local-image mirror's front and store.
    assert_eq!(on_private.len(), 4, "the backend and its containers are on the context's engine: {on_private:?}");
    assert_eq!(containers_named(&machine, &backend).await, vec![], "nothing of ours on the machine's engine");

    let info = assemble(&user, &config, &[], &["backend", "info"]).expect_ok().stdout;
    println!("$ assemble backend info   # currentContext desktop-linux\n{info}");
    assert!(info.lines().any(|l| l == context_line), "{info}");
    let info_json = json(assemble(&user, &config, &[], &["backend", "info", "--format", "json"]));
    assert_eq!(info_json["engine"]["context"], "desktop-linux", "{info_json}");
    assert_eq!(info_json["engine"]["host"], engine.host.as_str(), "{info_json}");

    // A build inside the backend pushes through the sidecar, to the registry on this host, as the
    // private engine's bridge reaches it.
    let reference = format!("localhost:{port}/e2e-desktop:1");
    let (code, output) = build_and_push(&private, &backend, &reference, "desktop").await;
    assert_eq!(code, 0, "{output}");
    assert!(registry.catalog().contains("e2e-desktop"), "{}", registry.catalog());
    let usage = assemble(&user, &config, &[], &["backend", "cache", "usage"]).expect_ok().stdout;
    assert!(usage.lines().count() > 1, "the build left cache records: {usage}");
    let logs = assemble(&user, &config, &[], &["backend", "logs"]).expect_ok();
    assert!(format!("{}{}", logs.stdout, logs.stderr).contains("running server on"), "{logs:#?}");

    // DOCKER_CONTEXT, DOCKER_HOST and --context each beat the current context, as in docker.
    let machine_host = MACHINE_ENGINE;
    for (env, args) in [
        (vec![("DOCKER_CONTEXT", "default")], vec!["backend", "info", "--format", "json"]),
        (vec![("DOCKER_HOST", machine_host)], vec!["backend", "info", "--format", "json"]),
        (vec![], vec!["--context", "default", "backend", "info", "--format", "json"]),
    ] {
        let other = json(assemble(&user, &config, &env, &args));
        assert_eq!(other["state"], "stopped", "{env:?} {args:?}: {other}");
        assert_eq!(other["engine"]["context"], "default", "{other}");
        assert_eq!(other["engine"]["host"], machine_host, "{other}");
    }
    // …and an empty DOCKER_HOST counts as unset.
    let empty = json(assemble(&user, &config, &[("DOCKER_HOST", "")], &["backend", "info", "--format", "json"]));
    assert_eq!(empty["engine"]["context"], "desktop-linux", "{empty}");

    refused(
        assemble(&user, &config, &[], &["--context", "nope", "backend", "info"]),
        &["no docker context named \"nope\"", "the contexts are: default, desktop-linux"],
    );
    refused(
        assemble(&user, &config, &[], &["--context", "desktop-linux", "-H", machine_host, "backend", "info"]),
        &["cannot specify both --host and --context"],
    );

    // Plugin mode: docker passes its global options before the plugin's name.
    let mut install = user.command(&["install-plugin"]);
    install.env("DOCKER_CONFIG", &config);
    run_bounded(install).expect_ok();
    docker_cli(&config, &["context", "use", "default"]).expect_ok();
    let mut plugin = Command::new(std::env::var("ASSEMBLE_TEST_DOCKER_CLI").unwrap_or_else(|_| "docker".into()));
    plugin
        .args(["--context", "desktop-linux", "assemble", "backend", "info"])
        .env("DOCKER_CONFIG", &config)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env("ASSEMBLE_BACKEND_USER", user.user())
        .env("ASSEMBLE_CONFIG_DIR", user.config_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let through_docker = run_bounded(plugin).expect_ok().stdout;
    assert!(through_docker.starts_with("ID: ") && through_docker.contains(&context_line), "{through_docker}");

    let stopped = assemble(&user, &config, &[], &["--context", "desktop-linux", "backend", "stop"]).expect_ok();
    assert!(!stopped.stdout.contains("not running"), "{stopped:#?}");
    assert_eq!(containers_named(&private, &backend).await, vec![], "stop removed ours from the context's engine");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_engines_are_reached_with_dockers_certificate_files() {
    let user = TestUser::new("tls");
    let certs = Certificates::make(&user.scratch("tls-certs")).expect("certificates");
    let port = assemble_testkit::free_port();
    let engine = private_engine(EngineSpec::engine_tests().with_tls(certs.listener(port))).await;
    user.also_clean_on(&engine.host);
    let private = engine.docker().await.expect("private engine");
    let config = user.scratch("docker-config");
    let good = user.scratch("tls-client");
    certs.client_files(&good, "ca.pem").expect("client files");
    let wrong = user.scratch("tls-wrong-ca");
    certs.client_files(&wrong, "other-ca.pem").expect("client files");
    let host = format!("tcp://127.0.0.1:{port}");
    let good_path = good.to_string_lossy().into_owned();
    let by_env = [("DOCKER_HOST", host.as_str()), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", good_path.as_str())];

    let started = assemble(&user, &config, &by_env, &["backend", "start", "--allow-host-port", "6091"]).expect_ok();
    assert!(started.stdout.contains(&format!("Context: default ({host}, TLS)")), "{started:#?}");
    // The machine's default socket is not this engine's: local images are unavailable, and said so.
    assert!(started.stdout.contains("Local images: unavailable: the Docker Engine default"), "{started:#?}");
    assert_eq!(containers_named(&private, &user.names.backend()).await.len(), 2, "backend and sidecar");
    let info = json(assemble(&user, &config, &by_env, &["backend", "info", "--format", "json"]));
    assert_eq!(info["engine"], serde_json::json!({"context": "default", "host": host, "tls": true}), "{info}");
    assert_eq!(
        info["workers"][0]["platforms"][0],
        native_platform(),
        "BuildKit answers through the TLS engine: {info}"
    );

    // A context that holds its own TLS files (docker copies them into its store).
    let files = format!(
        "host={host},ca={},cert={},key={}",
        good.join("ca.pem").display(),
        good.join("cert.pem").display(),
        good.join("key.pem").display()
    );
    docker_cli(&config, &["context", "create", "remote-tls", "--docker", &files]).expect_ok();
    let text = assemble(&user, &config, &[], &["--context", "remote-tls", "backend", "info"]).expect_ok().stdout;
    println!("$ assemble --context remote-tls backend info\n{text}");
    assert!(text.contains(&format!("Context: remote-tls ({host}, TLS)")), "{text}");

    // A CA that did not sign the engine's certificate: one sentence that names the CA file.
    let wrong_path = wrong.to_string_lossy().into_owned();
    let wrong_env =
        [("DOCKER_HOST", host.as_str()), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", wrong_path.as_str())];
    let message = refused(assemble(&user, &config, &wrong_env, &["backend", "info"]), &["not signed by"]);
    println!("$ DOCKER_CERT_PATH=<wrong CA> assemble backend info\n{message}");
    assert!(message.contains(&wrong.join("ca.pem").display().to_string()), "{message}");
    // A missing file is named.
    let empty = user.scratch("tls-empty");
    let empty_path = empty.to_string_lossy().into_owned();
    let missing_env =
        [("DOCKER_HOST", host.as_str()), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", empty_path.as_str())];
    let message = refused(assemble(&user, &config, &missing_env, &["backend", "info"]), &["CA"]);
    assert!(message.contains(&empty.join("ca.pem").display().to_string()), "{message}");
    // Plain HTTP to a TLS port says what to set.
    refused(assemble(&user, &config, &[("DOCKER_HOST", host.as_str())], &["backend", "info"]), &["DOCKER_TLS_VERIFY"]);

    assemble(&user, &config, &by_env, &["backend", "stop"]).expect_ok();
    assert_eq!(containers_named(&private, &user.names.backend()).await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_engines_are_reached_through_the_system_ssh() {
    let engine = private_engine(EngineSpec::engine_tests()).await;
    let private = engine.docker().await.expect("private engine");
    let user = TestUser::new("ssh");
    user.also_clean_on(&engine.host);
    let sshd = Sshd::start(&user.scratch("sshd")).unwrap_or_else(|e| panic!("sshd: {e}"));
    let registry = Registry::start();
    let config = user.scratch("docker-config");
    let url = sshd.url(Some(&engine.socket()));
    let path = sshd.path_env();
    let path = path.to_string_lossy().into_owned();
    let env = [("DOCKER_HOST", url.as_str()), ("PATH", path.as_str())];
    let port = registry.port.to_string();

    let started = assemble(&user, &config, &env, &["backend", "start", "--allow-host-port", &port]).expect_ok();
    println!("$ DOCKER_HOST={url} assemble backend start --allow-host-port {port}\n{}", started.stdout);
    assert!(started.stdout.contains(&format!("Context: default ({url})")), "{started:#?}");
    let info = json(assemble(&user, &config, &env, &["backend", "info", "--format", "json"]));
    assert_eq!(info["engine"]["host"], url.as_str(), "{info}");
    assert_eq!(info["ports"], serde_json::json!([registry.port]), "{info}");
    assert_eq!(info["workers"][0]["platforms"][0], native_platform(), "BuildKit answers over ssh: {info}");
    let reference = format!("localhost:{port}/e2e-ssh:1");
    let (code, output) = build_and_push(&private, &user.names.backend(), &reference, "ssh").await;
    assert_eq!(code, 0, "{output}");
    assert!(registry.catalog().contains("e2e-ssh"), "{}", registry.catalog());

    // ssh's own last line, when ssh cannot get there.
    let closed = format!("ssh://root@127.0.0.1:{}", assemble_testkit::free_port());
    let message = refused(
        assemble(&user, &config, &[("DOCKER_HOST", closed.as_str()), ("PATH", path.as_str())], &["backend", "info"]),
        &["Connection refused"],
    );
    println!("$ DOCKER_HOST={closed} assemble backend info\n{message}");

    assemble(&user, &config, &env, &["backend", "stop"]).expect_ok();
    assert_eq!(containers_named(&private, &user.names.backend()).await, vec![]);
}
