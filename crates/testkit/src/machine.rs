//! The machine's own engine, docker's default socket: the one the tests run on, whatever the
//! caller's `DOCKER_HOST`, `DOCKER_CONTEXT` or current context says.
use std::process::Command;

use assemble_core::{
    engine::{Engine, EngineChoice},
    Place,
};
use bollard::Docker;

/// The engine the tests run on: docker's default socket, the machine's own engine. Never the
/// caller's `DOCKER_HOST`, `DOCKER_CONTEXT` or current context: each test user has a docker config
/// of its own, in which the default context is this engine.
pub const MACHINE_ENGINE: &str = "unix:///var/run/docker.sock";

/// The variables that would choose another engine (or another security mode) than the one a test,
/// the soak or a benchmark asks for; [`clear_engine_environment`] removes them.
pub const ENGINE_VARIABLES: [&str; 6] = [
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS",
    "ASSEMBLE_BACKEND_SECURITY",
];

/// Connects to the machine's engine ([`MACHINE_ENGINE`]), or says in a sentence why it cannot.
pub async fn connect_machine() -> Result<Engine, String> {
    Engine::connect(&EngineChoice::host(MACHINE_ENGINE)).await.map_err(|err| {
        format!(
            "docker's default engine, {MACHINE_ENGINE}, does not answer: {} (scripts/setup.sh starts dockerd)",
            err.sentence(Place::CommandLine)
        )
    })
}

/// The machine's engine ([`MACHINE_ENGINE`]), or a panic that says how to get one.
pub async fn engine() -> Engine {
    match connect_machine().await {
        Ok(engine) => engine,
        Err(reason) => panic!("the end-to-end tests run on the machine's engine: {reason}"),
    }
}

/// The machine engine's bollard client (see [`engine`]).
pub async fn docker() -> Docker {
    engine().await.docker().clone()
}

/// The docker CLI on the machine's engine, whatever the caller's shell says.
pub fn docker_cli() -> Command {
    let mut command = Command::new("docker");
    clear_engine_environment(&mut command);
    command.args(["-H", MACHINE_ENGINE]);
    command
}

/// Removes the variables that would choose another engine or mode than the test asks for
/// ([`ENGINE_VARIABLES`]).
pub fn clear_engine_environment(command: &mut Command) {
    for name in ENGINE_VARIABLES {
        command.env_remove(name);
    }
}
