//! The headline: a build inside the backend pushes to `localhost:P`, a registry on the host.
use assemble_e2e::{build_and_push, docker, exec, Registry, TestUser};

#[tokio::test(flavor = "multi_thread")]
async fn a_build_pushes_to_a_host_registry_through_the_sidecar_and_not_without_it() {
    let docker = docker().await;
    let registry = Registry::start();
    let user = TestUser::new("headline");
    let port = registry.port.to_string();
    let backend = user.names.backend();

    let started = user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    assert!(started.stdout.contains(&format!("Started container \"{backend}\" (")), "{started:?}");

    let reference = format!("localhost:{port}/e2e/hello:1");
    let (code, output) = build_and_push(&docker, &backend, &reference, "through the sidecar").await;
    assert_eq!(code, 0, "the push through the sidecar failed:\n{output}");
    assert!(registry.catalog().contains("e2e/hello"), "catalog: {}", registry.catalog());

    // The sidecar answers on IPv6 loopback too.
    let v6 = format!("http://[::1]:{port}/v2/_catalog");
    let (code, output) = exec(&docker, &backend, &["wget", "-q", "-O", "-", &v6]).await;
    assert_eq!(code, 0, "no answer on [::1]:{port}: {output}");
    assert!(output.contains("e2e/hello"), "{output}");

    user.run(&["backend", "stop"]).expect_ok();
    user.run(&["backend", "start", "--allow-host-port", "0"]).expect_ok();
    let other = format!("localhost:{port}/e2e/blocked:1");
    let (code, output) = build_and_push(&docker, &backend, &other, "no sidecar").await;
    assert_ne!(code, 0, "with --allow-host-port 0 the push must fail:\n{output}");
    assert!(!registry.catalog().contains("e2e/blocked"), "catalog: {}", registry.catalog());
    user.run(&["backend", "stop"]).expect_ok();
}

/// `RUN` needs cgroups the runtime can write; without `--privileged` start must make them so.
#[tokio::test(flavor = "multi_thread")]
async fn run_steps_work_in_the_backend_whatever_the_security_mode() {
    let docker = docker().await;
    let user = TestUser::new("run");
    let started = user.run(&["backend", "start", "--allow-host-port", "0"]).expect_ok();
    let backend = user.names.backend();
    let labels = docker.inspect_container(&backend, None).await.unwrap().config.unwrap().labels.unwrap();
    let mode = labels["com.docker.assemble.backend.security"].as_str();
    let told = started.stderr.contains("refused a privileged container");
    assert_eq!(mode == "capabilities", told, "the user is told exactly when the fallback is used: {started:?}");

    let script = "set -e; d=$(mktemp -d); cp /bin/busybox $d/; \
        printf 'FROM scratch\\nCOPY busybox /bin/busybox\\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo ran-inside-$((6*7))\"]\\n' > $d/Dockerfile; \
        buildctl build --progress=plain --frontend dockerfile.v0 --local context=$d --local dockerfile=$d";
    let (code, output) = exec(&docker, &backend, &["sh", "-c", script]).await;
    assert_eq!(code, 0, "a RUN step failed in {mode} mode:\n{output}");
    assert!(output.contains("ran-inside-42"), "{output}");
    user.run(&["backend", "stop"]).expect_ok();
}
