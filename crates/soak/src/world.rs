//! What the soak acts on: one user's backend on one engine, the CLI that drives it, the registry
//! a push goes to, and the named volumes that must survive.
use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
    process::Stdio,
    sync::Mutex,
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
    pub registry_port: u16,
    /// Other ports that may be proxied (nothing listens there).
    pub spare_ports: [u16; 2],
    /// Named cache volumes in play; none may ever disappear.
    pub named_volumes: Vec<String>,
    /// CLI runs that panicked or hung, ever.
    pub panics: AtomicUsize,
    /// The soak user's own docker config folder: the context `soak` for the engine, buildx as a
    /// CLI plugin, and the builders buildx keeps.
    pub docker_config: PathBuf,
    /// A real buildx is there (scripts/fetch-buildx.sh), so buildx builds run.
    pub buildx: bool,
    /// Finished builds seen in the history, by the cache volume that holds them.
    pub history: Mutex<HashMap<String, BTreeSet<String>>>,
}

/// The docker context the soak's CLI runs in: a context (not `DOCKER_HOST`) so that `start`
/// registers the buildx builder, as it does for a user.
pub const CONTEXT: &str = "soak";

/// Makes the soak's docker config folder: buildx linked in as a CLI plugin when it was fetched,
/// and the context `soak` for the engine at `host`. Returns whether buildx is there.
pub async fn prepare_docker_config(docker_config: &Path, host: &str) -> Result<bool, String> {
    let plugins = docker_config.join("cli-plugins");
    std::fs::create_dir_all(&plugins).map_err(|e| format!("creating {}: {e}", plugins.display()))?;
    let buildx = assemble_e2e::buildx_plugin();
    let present = buildx.exists();
    let link = plugins.join("docker-buildx");
    if present && !link.exists() {
        std::os::unix::fs::symlink(&buildx, &link)
            .map_err(|e| format!("linking buildx into {}: {e}", plugins.display()))?;
    }
    let output = tokio::process::Command::new("docker")
        .arg("--config")
        .arg(docker_config)
        .args(["context", "create", CONTEXT, "--docker", &format!("host={host}")])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("running docker context create: {e}"))?;
    if !output.status.success() {
        return Err(format!("docker context create failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    Ok(present)
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
        format!("`{}` exited {:?} after {:.1}s: {}", self.args, self.code, self.took.as_secs_f64(), self.stderr.trim())
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

    /// Runs the real CLI, as a user on this engine would: in the docker context `soak`.
    pub async fn cli(&self, args: &[&str]) -> CliRun {
        let mut command = tokio::process::Command::new(&self.cli);
        command
            .args(args)
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONTEXT", CONTEXT)
            .env("ASSEMBLE_BACKEND_USER", self.names.user())
            .env("ASSEMBLE_BACKEND_IMAGE", &self.image)
            .env("ASSEMBLE_CONFIG_DIR", &self.config_dir)
            // Its own docker config folder: nothing of the soak's lands in the machine's ~/.docker.
            .env("DOCKER_CONFIG", &self.docker_config);
        let run = self.run(command, format!("assemble {}", args.join(" "))).await;
        if run.panicked() {
            self.panics.fetch_add(1, Ordering::SeqCst);
        }
        run
    }

    /// Runs `docker ARGS` (buildx among them) in the soak's docker config folder and context.
    pub async fn docker_cli(&self, args: &[&str]) -> CliRun {
        let mut command = tokio::process::Command::new("docker");
        command
            .args(args)
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONTEXT", CONTEXT)
            .env("DOCKER_CONFIG", &self.docker_config);
        self.run(command, format!("docker {}", args.join(" "))).await
    }

    async fn run(&self, mut command: tokio::process::Command, args: String) -> CliRun {
        let began = Instant::now();
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
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
        match output {
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
        }
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

/// The ports a backend proxies now, read straight from the engine: its port record
/// (`/etc/assemble-ports`, which `ports add`/`rm` rewrite), else the label it was started with.
/// A port the soak never asks for: the flood fault plants it in the backend's record, as root in the
/// backend could, and it must never be relayed.
pub const PLANTED_PORT: u16 = 7777;

/// The ports the soak ever asks for: its registry's and the spare ones. The host stands behind no
/// other, so the backend's record may only narrow them.
pub fn universe(world: &World) -> Vec<u16> {
    let mut ports = vec![world.registry_port];
    ports.extend(world.spare_ports);
    ports
}

/// The live set as the host decides it: the backend's record, narrowed to the ports the soak asks
/// for (`universe`); the label when there is no record.
pub async fn live_ports(
    docker: &bollard::Docker,
    id: &str,
    label: Option<&String>,
    universe: &[u16],
) -> Option<assemble_core::PortSet> {
    let recorded = recorded_ports(docker, id, label).await?;
    Some(assemble_core::PortSet::from_ports(recorded.iter().filter(|p| universe.contains(p))))
}

async fn recorded_ports(docker: &bollard::Docker, id: &str, label: Option<&String>) -> Option<assemble_core::PortSet> {
    use futures_util::TryStreamExt;
    let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
        .path(assemble_core::backend::sidecars::record::PORT_RECORD)
        .build();
    let archive: Result<Vec<u8>, _> =
        docker.download_from_container(id, Some(options)).map_ok(|chunk| chunk.to_vec()).try_concat().await;
    let Ok(archive) = archive else { return label.and_then(|l| assemble_core::PortSet::from_label(l)) };
    let mut text = String::new();
    let mut tar = tar::Archive::new(archive.as_slice());
    let mut entry = tar.entries().ok()?.next()?.ok()?;
    std::io::Read::read_to_string(&mut entry, &mut text).ok()?;
    // The record's own rule for a whole record (core, pure): the soak reads, the core decides.
    match assemble_core::backend::sidecars::record::parse_record(&text) {
        assemble_core::backend::sidecars::record::RecordText::Complete(ports) => Some(ports),
        _ => None,
    }
}
