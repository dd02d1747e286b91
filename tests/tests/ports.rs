//! Host ports change live: `ports add`/`rm`, and `start` with other ports on a running backend,
//! keep the same backend container and its cache. Real engine, real registries, real pushes.
use assemble_testkit::{
    build_and_push, containers_named, docker,
    network::{self, Reach},
    private_engine::{EngineSpec, PrivateEngine},
    run_bounded, Registry, Run, TestUser, MACHINE_ENGINE,
};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn info(user: &TestUser) -> serde_json::Value {
    json(&user.run(&["backend", "info", "--format", "json"]).expect_ok().stdout)
}

fn info_ports(user: &TestUser) -> Vec<u64> {
    info(user)["ports"].as_array().expect("ports").iter().filter_map(|p| p.as_u64()).collect()
}

fn cache_ids(user: &TestUser) -> Vec<String> {
    let usage = json(&user.run(&["backend", "cache", "usage", "--format", "json"]).expect_ok().stdout);
    let mut ids: Vec<String> = usage["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect();
    ids.sort();
    ids
}

/// Our containers for this user, by name.
async fn our_containers(user: &TestUser) -> Vec<String> {
    containers_named(&docker().await, &user.names.backend()).await.into_iter().map(|(_, name)| name).collect()
}

fn refused(run: &Run, sentence: &str) {
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert_eq!(run.stderr.trim(), format!("Error: {sentence}"), "{run:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ports_change_live_with_the_same_backend_and_cache() {
    let docker = docker().await;
    let (first, second) = (Registry::start(), Registry::start());
    let (p1, p2) = (first.port.to_string(), second.port.to_string());
    let user = TestUser::new("live-ports");
    let backend = user.names.backend();
    user.run(&["backend", "start", "--allow-host-port", &p1]).expect_ok();
    let id = info(&user)["id"].as_str().expect("id").to_string();
    let (code, output) = build_and_push(&docker, &backend, &format!("localhost:{p1}/live/one:1"), "one").await;
    assert_eq!(code, 0, "{output}");
    let cache_before = cache_ids(&user);
    assert!(!cache_before.is_empty());
    let listed = user.run(&["backend", "ports"]).expect_ok().stdout;
    assert!(listed.starts_with("PORT "), "{listed}");
    assert!(
        listed.lines().any(|l| l.split_whitespace().take(2).eq([p1.as_str(), "running"])),
        "ports lists the port and its running sidecar: {listed}"
    );

    // Add: the same container, a push through the new port, and the cache from before.
    let added = user.run(&["backend", "ports", "add", &p2]).expect_ok();
    assert_eq!(
        added.stdout.trim(),
        format!("Host ports added {p2} (live, no restart): now proxying {}.", sorted_label(&[&p1, &p2]))
    );
    assert_eq!(info(&user)["id"].as_str(), Some(id.as_str()), "ports add kept the backend");
    let (code, output) = build_and_push(&docker, &backend, &format!("localhost:{p2}/live/two:1"), "two").await;
    assert_eq!(code, 0, "a push through the added port: {output}");
    assert!(second.catalog().contains("live/two"), "{}", second.catalog());
    let cache_after = cache_ids(&user);
    assert!(cache_before.iter().all(|id| cache_after.contains(id)), "before {cache_before:?}, after {cache_after:?}");

    // Remove: the port is unreachable, the same container, and info lists exactly the rest.
    user.run(&["backend", "ports", "rm", &p1]).expect_ok();
    assert_eq!(info(&user)["id"].as_str(), Some(id.as_str()), "ports rm kept the backend");
    let (code, output) = build_and_push(&docker, &backend, &format!("localhost:{p1}/live/three:1"), "three").await;
    assert!(code != 0 && network::push_was_refused(&output), "a push through a removed port is refused: {output}");
    let sidecars: Vec<String> = info(&user)["sidecars"]
        .as_array()
        .expect("sidecars")
        .iter()
        .filter_map(|s| s["name"].as_str().map(String::from))
        .collect();
    assert_eq!(sidecars, vec![user.names.proxy(second.port)]);
    assert_eq!(info_ports(&user), vec![second.port as u64]);

    // Bad input: one clear sentence each, and nothing changed.
    let before = our_containers(&user).await;
    refused(
        &user.run(&["backend", "ports", "add", "0"]),
        "0 is not a port to add; give ports from 1 to 65535 (to proxy none, remove each with `ports rm`)",
    );
    refused(&user.run(&["backend", "ports", "add", "70000"]), "70000 is out of range; ports go from 1 to 65535");
    refused(
        &user.run(&["backend", "ports", "add", "abc"]),
        "\"abc\" is not a port number; give numbers from 1 to 65535",
    );
    refused(&user.run(&["backend", "ports", "add", ""]), "`ports add` needs port numbers such as 5000 or 6000,7000");
    refused(
        &user.run(&["backend", "ports", "rm", &p1]),
        &format!(
            "port {p1} is not proxied, so there is nothing to remove; `docker assemble backend ports` lists the proxied \
             ports"
        ),
    );
    assert_eq!(our_containers(&user).await, before, "a refused change touched nothing");
    assert_eq!(info_ports(&user), vec![second.port as u64]);

    // A start with other ports applies them live too.
    let started = user.run(&["backend", "start", "--allow-host-port", &format!("{p1},{p2}")]).expect_ok();
    assert!(started.stdout.contains("is already running"), "{started:#?}");
    assert!(started.stdout.contains(&format!("Host ports added {p1} (live, no restart)")), "{started:#?}");
    assert!(!started.stderr.contains("stop it and start again"), "{started:#?}");
    assert_eq!(info(&user)["id"].as_str(), Some(id.as_str()));
    let (code, output) = build_and_push(&docker, &backend, &format!("localhost:{p1}/live/four:1"), "four").await;
    assert_eq!(code, 0, "{output}");

    user.run(&["backend", "stop"]).expect_ok();
    refused(
        &user.run(&["backend", "ports", "add", &p1]),
        "the backend is not running, so its ports cannot change live; start it with the ports you want: docker \
         assemble backend start --allow-host-port P",
    );
    assert!(our_containers(&user).await.is_empty());
}

fn sorted_label(ports: &[&str]) -> String {
    let mut numbers: Vec<u16> = ports.iter().filter_map(|p| p.parse().ok()).collect();
    numbers.sort();
    numbers.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_at_once_give_one_consistent_result_and_no_orphan_sidecar() {
    let user = TestUser::new("ports-race");
    user.run(&["backend", "start", "--allow-host-port", "0"]).expect_ok();

    // Two adds at once: both land, one sidecar each.
    let adds: Vec<_> = ["6141", "6142"]
        .into_iter()
        .map(|port| {
            let command = user.command(&["backend", "ports", "add", port]);
            std::thread::spawn(move || run_bounded(command))
        })
        .collect();
    for add in adds {
        let run = add.join().expect("add thread");
        assert!(run.ok(), "{run:#?}");
    }
    assert_eq!(info_ports(&user), vec![6141, 6142]);
    let (backend, mirror, store) = (user.names.backend(), user.names.mirror(), user.names.mirror_store());
    assert_eq!(
        our_containers(&user).await,
        vec![backend, mirror, store, user.names.proxy(6141), user.names.proxy(6142)]
    );

    // An add racing a stop: whichever comes first, nothing of ours is left after both.
    let add = {
        let command = user.command(&["backend", "ports", "add", "6143"]);
        std::thread::spawn(move || run_bounded(command))
    };
    let stop = {
        let command = user.command(&["backend", "stop"]);
        std::thread::spawn(move || run_bounded(command))
    };
    let (add, stop) = (add.join().expect("add thread"), stop.join().expect("stop thread"));
    assert!(stop.ok(), "{stop:#?}");
    assert!(
        add.ok() || add.stderr.contains("the backend is not running, so its ports cannot change live"),
        "the add either ran before the stop or was refused after it: {add:#?}"
    );
    assert!(our_containers(&user).await.is_empty(), "an orphan was left: {:?}", our_containers(&user).await);
}

/// A build on the backend at `engine` pushes to a registry on the host's loopback, and nothing
/// else reaches that registry through us: a container on the engine's bridge is refused at the
/// host's bridge address and at the backend's own address, where the same probe reaches a registry
/// that listens on all addresses (so the probe can tell).
async fn loopback_registry_reached_from_builds_and_from_nowhere_else(engine_host: &str, docker: &bollard::Docker) {
    let private = Registry::loopback();
    let open = Registry::start();
    let user = TestUser::new("loopback");
    user.also_clean_on(engine_host);
    let run = |args: &[&str]| {
        let mut command = user.command(args);
        command.env("DOCKER_HOST", engine_host);
        run_bounded(command)
    };
    let ports = format!("{},{}", private.port, open.port);
    run(&["backend", "start", "--allow-host-port", &ports]).expect_ok();
    let backend = user.names.backend();
    let (code, output) =
        build_and_push(docker, &backend, &format!("localhost:{}/loop/app:1", private.port), "loop").await;
    assert_eq!(code, 0, "a build pushes to a registry bound to 127.0.0.1 only: {output}");
    assert!(private.catalog().contains("loop/app"), "{}", private.catalog());

    let image = assemble_testkit::test_image();
    let probe = |address: &str, port: u16| network::probe_from_bridge(engine_host, &image, address, port);
    let gateway = network::backend_gateway(docker, &backend).await;
    assert_eq!(
        probe(&gateway, open.port),
        Reach::Registry,
        "the probe must reach the registry that listens on all addresses at the host's address {gateway}"
    );
    assert_eq!(
        probe(&gateway, private.port),
        Reach::Refused,
        "the loopback-only registry answers a container on the bridge at the host's address {gateway}: something \
         relays it beyond the backend"
    );
    let backend_ip = network::container_address(docker, &backend).await;
    for port in [private.port, open.port] {
        assert_eq!(
            probe(&backend_ip, port),
            Reach::Refused,
            "port {port} answers at the backend's own address {backend_ip}: a sidecar listens beyond the backend's \
             loopback"
        );
    }
    run(&["backend", "stop"]).expect_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_on_the_hosts_loopback_is_reached_from_builds_and_from_nowhere_else() {
    loopback_registry_reached_from_builds_and_from_nowhere_else(MACHINE_ENGINE, &docker().await).await;
}

/// The same on an engine started for the first time, as a fresh machine has it: dockerd 20.10 then
/// leaves the gateway out of the default bridge's IPAM config, which the test must not rely on.
#[tokio::test(flavor = "multi_thread")]
async fn the_same_holds_on_a_freshly_started_engine() {
    let engine = PrivateEngine::start_with_images(EngineSpec::fresh(), &[&assemble_testkit::test_image()])
        .await
        .unwrap_or_else(|e| panic!("the fresh engine with the test image: {e}"));
    let fresh = engine.docker().await.expect("the fresh engine answers");
    let ipam = fresh
        .inspect_network("bridge", None::<bollard::query_parameters::InspectNetworkOptions>)
        .await
        .expect("the fresh engine's bridge")
        .ipam
        .and_then(|ipam| ipam.config)
        .unwrap_or_default();
    assert!(
        ipam.iter().all(|config| config.gateway.is_none()),
        "the fresh engine should leave the gateway out of its bridge's IPAM config, as a fresh machine's does: {ipam:?}"
    );
    loopback_registry_reached_from_builds_and_from_nowhere_else(&engine.host, &fresh).await;

    // A second dockerd must leave the machine engine's own bridge alone (dockerd 20.10 deletes
    // `docker0` when it clears a stale default network while given an address pool).
    drop(engine);
    let machine_bridge = docker()
        .await
        .inspect_network("bridge", None::<bollard::query_parameters::InspectNetworkOptions>)
        .await
        .expect("the machine's bridge network")
        .options
        .and_then(|options| options.get("com.docker.network.bridge.name").cloned())
        .unwrap_or_else(|| "docker0".into());
    let link = std::process::Command::new("ip").args(["link", "show", &machine_bridge]).output().expect("ip");
    assert!(link.status.success(), "the machine engine's bridge {machine_bridge} is gone after the fresh engine ran");
}
