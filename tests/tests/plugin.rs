//! `docker assemble …` through the real docker CLI.
use std::process::Command;

use assemble_testkit::{run_bounded, TestUser};

#[test]
fn docker_assemble_backend_info_works_through_the_docker_cli() {
    let user = TestUser::new("plugin");
    let config = user.scratch("docker-config");

    let mut install = user.command(&["install-plugin"]);
    install.env("DOCKER_CONFIG", &config);
    let installed = run_bounded(install).expect_ok();
    assert!(installed.stdout.contains("docker-assemble"), "{installed:?}");

    let docker_cli = |args: &[&str]| {
        let mut command = Command::new(std::env::var("ASSEMBLE_TEST_DOCKER_CLI").unwrap_or_else(|_| "docker".into()));
        assemble_testkit::clear_engine_environment(&mut command);
        command
            .args(args)
            .env("DOCKER_CONFIG", &config)
            .env("ASSEMBLE_BACKEND_USER", user.user())
            .env("ASSEMBLE_BACKEND_IMAGE", assemble_testkit::test_image())
            .env("ASSEMBLE_CONFIG_DIR", user.config_dir())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        run_bounded(command)
    };
    let help = docker_cli(&["--help"]).expect_ok();
    assert!(help.stdout.contains("assemble"), "docker does not list the plugin: {help:?}");

    docker_cli(&["assemble", "backend", "start", "--allow-host-port", "6040"]).expect_ok();
    let info = docker_cli(&["assemble", "backend", "info"]).expect_ok();
    assert!(info.stdout.starts_with("ID: "), "{info:?}");
    assert!(info.stdout.contains(&format!("{}-proxy-port-6040 (running)", user.names.backend())), "{info:?}");
    docker_cli(&["assemble", "backend", "stop"]).expect_ok();
}
