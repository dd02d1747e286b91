//! What the soak acts on: one user's backend on one engine, the CLI that drives it, the registry
//! a push goes to, and the named volumes that must survive. The engine, the user and the CLI runs
//! are the test kit's (crates/testkit); what the soak does with them is its own.
use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
    time::Duration,
};

use assemble_core::{engine::Engine, Backend, PortSet};
use assemble_testkit::{run_bounded_async, Run, TestUser};
use bollard::Docker;

/// How long one CLI run may take before it counts as hung.
const CLI_TIMEOUT: Duration = Duration::from_secs(180);

/// The docker context the soak's CLI runs in: a context (not `DOCKER_HOST`) so that `start`
/// registers the buildx builder, as it does for a user.
pub const CONTEXT: &str = "soak";

pub struct World {
    /// The engine the soak runs on.
    pub engine: Engine,
    pub docker: Docker,
    /// The soak's user: its name, settings folder and docker config folder (the context
    /// [`CONTEXT`] for the engine, buildx as a CLI plugin, the builders buildx keeps).
    pub user: TestUser,
    pub registry_port: u16,
    /// Other ports that may be proxied (nothing listens there).
    pub spare_ports: [u16; 2],
    /// Named cache volumes in play; none may ever disappear.
    pub named_volumes: Vec<String>,
    /// Where buildx builds' context is written (kept across builds: BuildKit's busybox is copied
    /// there once).
    pub buildx_context: PathBuf,
    /// CLI runs that panicked or hung, ever.
    pub panics: AtomicUsize,
    /// Finished builds seen in the history, by the cache volume that holds them.
    pub history: Mutex<HashMap<String, BTreeSet<String>>>,
    /// The run's secret, random per run: builds get it only through `--secret`, and it must never
    /// appear in a history record, a log line or an exported layer (crate::leaks).
    pub secret: String,
    /// The file `--secret id=soak,src=…` names, outside every build context.
    pub secret_file: PathBuf,
    /// A random word of this run (no secret) that makes its cache builds' steps new.
    pub nonce: String,
    /// The registry's blob storage, scanned for the secret.
    pub registry_blobs: PathBuf,
    /// What the leak scan already read and what it found: registry blobs never change, so each is
    /// read once; the history records of the secret's builds, read again every scan.
    pub scans: Mutex<crate::leaks::Scans>,
    /// A build on the local base ran already (the first one always imports the base).
    pub local_base_made: std::sync::atomic::AtomicBool,
}

impl World {
    pub fn backend(&self) -> Backend {
        Backend::new(self.engine.clone(), self.user.names.clone())
    }

    /// Runs the real CLI, as a user on this engine would: in the docker context [`CONTEXT`].
    pub async fn cli(&self, args: &[&str]) -> Run {
        let run = run_bounded_async(self.user.command(args), CLI_TIMEOUT).await;
        if run.panicked() {
            self.panics.fetch_add(1, Ordering::SeqCst);
        }
        run
    }

    /// Runs `docker ARGS` (buildx among them) in the soak user's docker config folder and context.
    pub async fn docker_cli(&self, args: &[&str]) -> Run {
        run_bounded_async(self.user.docker_command(args), CLI_TIMEOUT).await
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

/// 16 random bytes from the kernel, in hex: the secret and the nonce differ in every run (a seed
/// replays the operations, not these).
pub fn random_hex() -> Result<String, String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

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

/// The live set as the host decides it: the backend's record (read by the kit, not the core),
/// else its label, narrowed to the ports the soak asks for ([`universe`]).
pub async fn live_ports(
    world: &World,
    id: &str,
    label: Option<&str>,
) -> Result<std::collections::BTreeSet<u16>, String> {
    let universe = universe(world);
    let recorded = assemble_testkit::port_record::read_live_ports(&world.docker, id, label).await?;
    Ok(recorded.into_iter().filter(|port| universe.contains(port)).collect())
}
