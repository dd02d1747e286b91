//! Sidecars follow the backend: a backend that restarts gets a new network namespace, and its
//! sidecars must be put back into it, or pushes through `localhost:P` stop working.
use assemble_testkit::{build_and_push, docker, network, wait_for_buildkit, Registry, TestUser};
use bollard::query_parameters::RestartContainerOptions;

#[tokio::test(flavor = "multi_thread")]
async fn after_the_backend_restarts_start_puts_the_sidecars_into_its_new_namespace() {
    let docker = docker().await;
    let registry = Registry::start();
    let user = TestUser::new("repair");
    let port = registry.port.to_string();
    let backend = user.names.backend();
    let sidecar = user.names.proxy(registry.port);
    user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    let policy = docker.inspect_container(&backend, None).await.unwrap().host_config.unwrap().restart_policy;
    assert_eq!(policy.and_then(|p| p.name).map(|n| n.to_string()).as_deref(), Some("unless-stopped"));

    docker.restart_container(&backend, None::<RestartContainerOptions>).await.unwrap();
    // Only a push that BuildKit runs can show what the sidecar does.
    wait_for_buildkit(&docker, &backend).await;
    // The old sidecar still runs, but in the namespace the backend had before: the push fails.
    let reference = format!("localhost:{port}/e2e/repair:1");
    let (code, output) = build_and_push(&docker, &backend, &reference, "stale").await;
    assert!(
        code != 0 && network::push_was_refused(&output),
        "a sidecar in the old namespace cannot carry the push, so it is refused:\n{output}"
    );

    let old_id = docker.inspect_container(&sidecar, None).await.unwrap().id;
    let again = user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    assert!(again.stdout.contains("already running"), "{again:?}");
    let new_id = docker.inspect_container(&sidecar, None).await.unwrap().id;
    assert_ne!(old_id, new_id, "the stale sidecar was not replaced");
    let (code, output) = build_and_push(&docker, &backend, &reference, "repaired").await;
    assert_eq!(code, 0, "the push through the repaired sidecar failed:\n{output}");
    assert!(registry.catalog().contains("e2e/repair"), "catalog: {}", registry.catalog());
    user.run(&["backend", "stop"]).expect_ok();
}
