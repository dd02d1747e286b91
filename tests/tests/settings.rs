//! The CLI reads the settings file the app writes; flags win; a corrupt file is kept aside.
use assemble_testkit::{containers_named, docker, TestUser};

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_starts_with_the_settings_ports_and_flags_win() {
    let docker = docker().await;
    let user = TestUser::new("settings");
    std::fs::create_dir_all(user.config_dir()).unwrap();
    let file = user.config_dir().join("settings.json");
    std::fs::write(&file, r#"{"ports":[6061,6062],"cache":{"kind":"anonymous"}}"#).unwrap();

    // The names as the README gives them, not as the code under test makes them.
    let backend = format!("docker-assemble-backend-{}", user.user());
    let proxy = |port: u16| format!("docker-assemble-backend-{}-proxy-port-{port}", user.user());
    // The local-image mirror's front and store (README, "Local images"), used by default.
    let mirror = [format!("{backend}-mirror"), format!("{backend}-mirror-store")];

    user.run(&["backend", "start"]).expect_ok();
    let names: Vec<String> = containers_named(&docker, &backend).await.into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, vec![backend.clone(), mirror[0].clone(), mirror[1].clone(), proxy(6061), proxy(6062)]);
    user.run(&["backend", "stop"]).expect_ok();

    user.run(&["backend", "start", "--allow-host-port", "6063"]).expect_ok();
    let names: Vec<String> = containers_named(&docker, &backend).await.into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, vec![backend.clone(), mirror[0].clone(), mirror[1].clone(), proxy(6063)]);
    user.run(&["backend", "stop"]).expect_ok();

    std::fs::write(&file, "{ broken").unwrap();
    let run = user.run(&["backend", "start", "--allow-host-port", "0"]).expect_ok();
    assert!(run.stderr.contains("was not used") && run.stderr.contains("kept as"), "{run:?}");
    let kept: Vec<_> = std::fs::read_dir(user.config_dir()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].to_string_lossy().starts_with("settings.json.bad-"));
    user.run(&["backend", "stop"]).expect_ok();
}

/// The app's Save, as the core does it: the file, then the ports of a running backend live (the
/// same container); a stopped backend takes them at its next start.
#[tokio::test(flavor = "multi_thread")]
async fn saving_the_settings_changes_a_running_backends_ports_live_and_a_stopped_ones_at_its_next_start() {
    use assemble_core::{
        settings::{self, Applied},
        Backend, Settings,
    };
    use assemble_testkit::{engine, free_port};
    let docker = docker().await;
    let user = TestUser::new("save-live");
    let (p1, p2) = (free_port(), free_port());
    let proxy = |port: u16| format!("docker-assemble-backend-{}-proxy-port-{port}", user.user());
    user.run(&["backend", "start", "--allow-host-port", &p1.to_string()]).expect_ok();
    let before = containers_named(&docker, &user.names.backend()).await;
    let backend_id = before.iter().find(|(_, name)| *name == user.names.backend()).expect("the backend").0.clone();

    let wanted = Settings { ports: vec![p2], ..Settings::default() };
    let backend = || async { Ok(Backend::new(engine().await, user.names.clone())) };
    let applied = settings::save_and_apply_to(&user.settings_file(), &wanted, backend()).await.expect("saved");
    let Applied::PortsLive(change) = applied else { panic!("a running backend takes the ports live: {applied:?}") };
    assert_eq!((change.added, change.removed), (vec![p2], vec![p1]));
    assert_eq!(change.backend_id, backend_id, "the same backend container");
    let names: Vec<String> =
        containers_named(&docker, &user.names.backend()).await.into_iter().map(|(_, n)| n).collect();
    // With the local-image mirror's front and store (used by default), which a port change leaves be.
    assert_eq!(names, vec![user.names.backend(), user.names.mirror(), user.names.mirror_store(), proxy(p2)]);
    assert_eq!(settings::load_from(&user.settings_file()).settings.ports, vec![p2]);

    user.run(&["backend", "stop"]).expect_ok();
    let stopped = Settings { ports: vec![p1], ..Settings::default() };
    let applied = settings::save_and_apply_to(&user.settings_file(), &stopped, backend()).await.expect("saved");
    assert_eq!(applied, Applied::AtNextStart);
    assert!(containers_named(&docker, &user.names.backend()).await.is_empty(), "nothing started");
    assert_eq!(settings::load_from(&user.settings_file()).settings.ports, vec![p1]);
}
