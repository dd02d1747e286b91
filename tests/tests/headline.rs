//! The headline: a build inside the backend pushes to `localhost:P`, a registry on the host.
use assemble_testkit::{build_and_push, docker, exec, network, run_bounded, Registry, TestUser};

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
    assert!(
        code != 0 && network::push_was_refused(&output),
        "with --allow-host-port 0 nothing relays the port, so the push is refused:\n{output}"
    );
    assert!(!registry.catalog().contains("e2e/blocked"), "catalog: {}", registry.catalog());
    user.run(&["backend", "stop"]).expect_ok();
}

/// `RUN` needs cgroups the runtime can write; without `--privileged` start must make them so.
#[tokio::test(flavor = "multi_thread")]
async fn run_steps_work_in_the_backend_whatever_the_security_mode() {
    let docker = docker().await;
    let user = TestUser::new("run");
    let started = user.run(&["backend", "start", "--allow-host-port", "0"]).expect_ok();
    let mode = security_mode(&docker, &user).await;
    let told = started.stderr.contains("refused a privileged container");
    assert_eq!(mode == "capabilities", told, "the user is told exactly when the fallback is used: {started:?}");
    assert_run_step_works(&docker, &user, &mode).await;
    user.run(&["backend", "stop"]).expect_ok();
}

/// The capability mode on demand, so that it is covered on hosts that grant `--privileged` too.
#[tokio::test(flavor = "multi_thread")]
async fn the_capability_mode_can_be_asked_for_and_runs_steps() {
    let docker = docker().await;
    let user = TestUser::new("caps");
    let mut command = user.command(&["backend", "start", "--allow-host-port", "0"]);
    command.env("ASSEMBLE_BACKEND_SECURITY", "capabilities");
    let started = run_bounded(command).expect_ok();
    assert!(!started.stderr.contains("refused a privileged container"), "nothing was refused: {started:?}");
    assert_eq!(security_mode(&docker, &user).await, "capabilities");
    assert_run_step_works(&docker, &user, "capabilities").await;
    user.run(&["backend", "stop"]).expect_ok();
}

async fn security_mode(docker: &bollard::Docker, user: &TestUser) -> String {
    let inspect = docker.inspect_container(&user.names.backend(), None).await.expect("the backend exists");
    let labels = inspect.config.and_then(|c| c.labels).expect("the backend has labels");
    labels["com.docker.assemble.backend.security"].clone()
}

async fn assert_run_step_works(docker: &bollard::Docker, user: &TestUser, mode: &str) {
    let script = "set -e; d=$(mktemp -d); cp /bin/busybox $d/; \
        printf 'FROM scratch\\nCOPY busybox /bin/busybox\\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo ran-inside-$((6*7))\"]\\n' > $d/Dockerfile; \
        buildctl build --progress=plain --frontend dockerfile.v0 --local context=$d --local dockerfile=$d";
    let (code, output) = exec(docker, &user.names.backend(), &["sh", "-c", script]).await;
    assert_eq!(code, 0, "a RUN step failed in {mode} mode:\n{output}");
    assert!(output.contains("ran-inside-42"), "{output}");
}
