//! What the soak acts on: one user's backend on one engine, the CLI that drives it, the registry
//! a push goes to, and the named volumes that must survive.
use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use std::sync::atomic::{AtomicUsize, Ordering};

use assemble_core::{engine::Engine, Backend, Names, PortSet};
use bollard::Docker;

/// How long one CLI run may take before it counts as hung.
const CLI_TIMEOUT: Duration = Duration::from_secs(180);

pub struct World {
    /// The engine the soak runs on.
    pub engine: Engine,
    pub docker: Docker,
    pub names: Names,
    pub cli: PathBuf,
    pub config_dir: PathBuf,
    pub image: String,
    pub host: String,
    pub registry_port: u16,
    /// Other ports that may be proxied (nothing listens there).
    pub spare_ports: [u16; 2],
    /// Named cache volumes in play; none may ever disappear.
    pub named_volumes: Vec<String>,
    /// CLI runs that panicked or hung, ever.
    pub panics: AtomicUsize,
}

/// The end of one CLI run.
#[derive(Debug)]
pub struct CliRun {
    pub args: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl CliRun {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// A Rust panic, or a run that never ended (no exit code).
    pub fn panicked(&self) -> bool {
        self.code == Some(101) || self.code.is_none() || self.stderr.contains("panicked at")
    }

    pub fn describe(&self) -> String {
        format!(
            "`assemble {}` exited {:?} after {:.1}s: {}",
            self.args,
            self.code,
            self.took.as_secs_f64(),
            self.stderr.trim()
        )
    }
}

impl World {
    pub fn backend(&self) -> Backend {
        Backend::new(self.engine.clone(), self.names.clone())
    }

    /// The settings file the CLI and the app read for this user.
    pub fn settings_file(&self) -> PathBuf {
        self.config_dir.join("settings.json")
    }

    /// Runs the real CLI, as a user on this engine would.
    pub async fn cli(&self, args: &[&str]) -> CliRun {
        let began = Instant::now();
        let mut command = tokio::process::Command::new(&self.cli);
        command
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .env("ASSEMBLE_BACKEND_USER", self.names.user())
            .env("ASSEMBLE_BACKEND_IMAGE", &self.image)
            .env("ASSEMBLE_CONFIG_DIR", &self.config_dir)
            // Its own docker config folder: nothing of the soak's lands in the machine's ~/.docker.
            .env("DOCKER_CONFIG", self.config_dir.join("docker"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let args = args.join(" ");
        let output = match command.spawn() {
            Ok(child) => tokio::time::timeout(CLI_TIMEOUT, child.wait_with_output()).await,
            Err(err) => {
                return CliRun {
                    args,
                    code: Some(-1),
                    stdout: String::new(),
                    stderr: err.to_string(),
                    took: began.elapsed(),
                }
            }
        };
        let run = match output {
            Ok(Ok(output)) => CliRun {
                args,
                code: output.status.code(),
                stdout: String::from_utf8_lossy(&output.stdout).into(),
                stderr: String::from_utf8_lossy(&output.stderr).into(),
                took: began.elapsed(),
            },
            Ok(Err(err)) => {
                CliRun { args, code: Some(-1), stdout: String::new(), stderr: err.to_string(), took: began.elapsed() }
            }
            Err(_) => CliRun {
                args,
                code: None,
                stdout: String::new(),
                stderr: format!("no answer within {CLI_TIMEOUT:?}"),
                took: began.elapsed(),
            },
        };
        if run.panicked() {
            self.panics.fetch_add(1, Ordering::SeqCst);
        }
        run
    }

    /// The `--allow-host-port` value for a random choice of ports.
    pub fn ports_argument(ports: &PortSet) -> String {
        if ports.is_empty() {
            "0".into()
        } else {
            ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")
        }
    }
}
