//! The operations: what users do (CLI and app), and the faults the world does to them.
use std::collections::{BTreeSet, HashMap};

use assemble_core::{
    backend::{labels, sidecars::record::PortEdit},
    settings, CacheSetting, PortSet, Settings, StartFlags, StartRequest,
};
use bollard::query_parameters::{KillContainerOptions, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder};

use assemble_testkit::Run;

use crate::{rng::Rng, world::World};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `assemble backend start` (ports from a flag or from the settings).
    Start,
    /// `assemble backend stop`.
    Stop,
    /// The app's Restart.
    Restart,
    /// The app's settings window: new ports saved and applied live.
    ChangePorts,
    /// `assemble backend ports add P` / `ports rm P`.
    CliPorts,
    /// `assemble backend cache purge`.
    Purge,
    /// `assemble backend info`.
    Info,
    /// A build inside the backend pushes to the host registry as `localhost:P`.
    Push,
    /// `docker buildx build --builder assemble --push` (a real buildx) to the host registry.
    BuildxPush,
    /// `assemble backend builds --format json`.
    Builds,
    /// Two clients at once: two CLI processes, or the CLI and the app.
    TwoClients,
    /// Faults: `docker kill` / `docker stop` of the backend, `docker rm -f` of a sidecar, and the
    /// engine itself stopped and started again.
    KillBackend,
    StopBackend,
    RemoveSidecar,
    RestartEngine,
    /// Root in the backend plants a port in its record, and a step floods a sidecar with held
    /// connections: no sidecar may exceed its pids limit, and the planted port is never relayed.
    Flood,
    /// `assemble build --load` of `FROM` an image only the engine has (local images; made with
    /// `assemble build --load`, a random marker in it): the result's layers must be the engine's
    /// image's, read just before; with no such image the build fails; with the image removed while
    /// the build runs, it is built on the image the engine had, or fails with a sentence.
    LocalBase,
    /// Fault: the engine's local base removed, and half the time a different image imported under
    /// its name (a re-tag).
    RemoveLocalBase,
    /// `assemble build --secret id=soak,src=FILE --load` of a `RUN --mount=type=secret`: the
    /// secret reaches the step, and never a history record, a log line or an exported layer.
    SecretBuild,
    /// `--cache-to type=registry,…,mode=max`, `cache purge`, then `--cache-from` with
    /// `-o type=local,dest=DIR`: the step comes back CACHED and its file arrives in the folder.
    CacheRoundTrip,
    /// `assemble backend nodes add --context soak2 --platform linux/arm64`: the backend on the
    /// second engine joins the builder (crate::nodes).
    AddNode,
    /// `assemble backend nodes rm soak2` (`--force` when its engine is dead): nothing of ours may
    /// stay on that engine.
    RemoveNode,
    /// linux/amd64 and linux/arm64 pushed as one index: buildx across both nodes, or
    /// `assemble build` on the local one.
    TwoPlatforms,
    /// Fault: the second engine's dockerd is killed (SIGKILL); node operations start it again.
    KillNodeEngine,
}

impl Op {
    pub const ALL: [Op; 24] = [
        Op::Start,
        Op::Stop,
        Op::Restart,
        Op::ChangePorts,
        Op::CliPorts,
        Op::Purge,
        Op::Info,
        Op::Push,
        Op::BuildxPush,
        Op::Builds,
        Op::TwoClients,
        Op::KillBackend,
        Op::StopBackend,
        Op::RemoveSidecar,
        Op::RestartEngine,
        Op::Flood,
        Op::LocalBase,
        Op::RemoveLocalBase,
        Op::SecretBuild,
        Op::CacheRoundTrip,
        Op::AddNode,
        Op::RemoveNode,
        Op::TwoPlatforms,
        Op::KillNodeEngine,
    ];

    /// The operations on the second engine (none without one).
    pub const NODE_OPS: [Op; 4] = [Op::AddNode, Op::RemoveNode, Op::TwoPlatforms, Op::KillNodeEngine];

    /// How often each is drawn, out of the sum. Starts outweigh stops so that the faults mostly
    /// meet a running backend.
    pub fn weight(self) -> u32 {
        match self {
            Op::Start => 16,
            Op::Stop => 7,
            Op::Restart => 7,
            Op::ChangePorts => 7,
            Op::CliPorts => 7,
            Op::Purge => 5,
            Op::Info => 7,
            Op::Push => 8,
            Op::BuildxPush => 9,
            Op::Builds => 5,
            Op::TwoClients => 9,
            Op::KillBackend => 8,
            Op::StopBackend => 6,
            Op::RemoveSidecar => 10,
            Op::RestartEngine => 3,
            Op::Flood => 4,
            Op::LocalBase => 6,
            Op::RemoveLocalBase => 3,
            Op::SecretBuild => 4,
            Op::CacheRoundTrip => 3,
            Op::AddNode => 4,
            Op::RemoveNode => 3,
            Op::TwoPlatforms => 4,
            Op::KillNodeEngine => 2,
        }
    }

    pub fn is_fault(self) -> bool {
        matches!(
            self,
            Op::KillBackend
                | Op::StopBackend
                | Op::RemoveSidecar
                | Op::RestartEngine
                | Op::Flood
                | Op::RemoveLocalBase
                | Op::KillNodeEngine
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Restart => "restart (app)",
            Op::ChangePorts => "change ports (app)",
            Op::CliPorts => "ports add/rm",
            Op::Purge => "cache purge",
            Op::Info => "info",
            Op::Push => "push through the proxy",
            Op::BuildxPush => "buildx build --push",
            Op::Builds => "builds",
            Op::TwoClients => "two clients at once",
            Op::KillBackend => "docker kill backend",
            Op::StopBackend => "docker stop backend",
            Op::RemoveSidecar => "docker rm -f sidecar",
            Op::RestartEngine => "dockerd restart",
            Op::Flood => "connection flood + planted port",
            Op::LocalBase => "build on a local base",
            Op::RemoveLocalBase => "local base removed",
            Op::SecretBuild => "build with a secret",
            Op::CacheRoundTrip => "cache to/from registry",
            Op::AddNode => "nodes add",
            Op::RemoveNode => "nodes rm",
            Op::TwoPlatforms => "build for two platforms",
            Op::KillNodeEngine => "node's dockerd killed",
        }
    }
}

/// What one operation did.
#[derive(Default)]
pub struct Done {
    /// A short account for the log line.
    pub detail: String,
    /// It hit something (a fault on nothing injects nothing).
    pub injected: bool,
    pub violations: Vec<String>,
    pub pushed: Option<bool>,
}

impl Done {
    pub fn note(detail: impl Into<String>) -> Self {
        Self { detail: detail.into(), ..Self::default() }
    }

    pub fn broken(detail: impl Into<String>, violation: String) -> Self {
        Self { detail: detail.into(), violations: vec![violation], ..Self::default() }
    }

    /// A CLI run that must succeed: its first line of output, or the failure as a violation.
    fn from_run(run: &Run) -> Self {
        if run.ok() {
            Self::note(run.stdout.lines().next().unwrap_or_default().to_string())
        } else {
            Self::broken(run.command.clone(), run.describe())
        }
    }
}

/// The backend's id and the ports it proxies now (its port record, read by the kit, not by the
/// core), if it runs.
pub async fn running_backend(world: &World) -> Option<(String, BTreeSet<u16>)> {
    let inspect = world.docker.inspect_container(&world.user.names.backend(), None).await.ok()?;
    if !inspect.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
        return None;
    }
    let id = inspect.id?;
    let label = inspect.config.and_then(|c| c.labels).and_then(|mut l| l.remove(labels::PORTS));
    let ports = crate::world::live_ports(world, &id, label.as_deref()).await.ok()?;
    Some((id, ports))
}

pub fn random_ports(world: &World, rng: &mut Rng) -> PortSet {
    if rng.chance(1, 10) {
        return PortSet::none();
    }
    let mut ports = Vec::new();
    if rng.chance(4, 5) {
        ports.push(world.registry_port);
    }
    for port in world.spare_ports {
        if rng.chance(1, 2) {
            ports.push(port);
        }
    }
    if ports.is_empty() {
        ports.push(world.registry_port);
    }
    PortSet::from_ports(ports)
}

pub async fn cli_start(world: &World, rng: &mut Rng) -> Done {
    let ports = World::ports_argument(&random_ports(world, rng));
    let mut args = vec!["backend", "start"];
    // Half the starts take their ports from the settings file, as a plain `start` does.
    if rng.chance(1, 2) {
        args.extend(["--allow-host-port", &ports]);
    }
    let extra = world.named_volumes.last().cloned().unwrap_or_default();
    if rng.chance(1, 5) {
        args.extend(["--cache-volume", &extra]);
    }
    Done::from_run(&world.cli(&args).await)
}

pub async fn cli_stop(world: &World) -> Done {
    Done::from_run(&world.cli(&["backend", "stop"]).await)
}

/// What the app does for Restart and for "Apply now": stop, then start from the settings.
pub async fn app_restart(world: &World) -> Done {
    let loaded = settings::load_from(&world.user.settings_file());
    let flags = StartFlags { image: Some(world.user.image().to_string()), ..StartFlags::default() };
    let result = match StartRequest::resolve(&flags, &loaded.settings) {
        Ok(request) => {
            world.backend().restart(&request, &assemble_core::backend::progress::silent).await.map(|_| request)
        }
        Err(err) => Err(err),
    };
    match result {
        Ok(request) => Done::note(format!("restarted with ports {}", World::ports_argument(&request.ports))),
        Err(err) => Done::broken("restart", format!("the app's restart failed: {err}")),
    }
}

/// The app's settings window: new ports saved, and applied live to a running backend (the same
/// core call the app makes on save).
pub async fn change_ports(world: &World, rng: &mut Rng) -> Done {
    let ports = random_ports(world, rng);
    let wished = Settings {
        ports: ports.iter().collect(),
        cache: CacheSetting::Auto,
        image: Some(world.user.image().to_string()),
        context: None,
        use_builder: false,
        cache_limit: None,
        base_images: Default::default(),
        security: Default::default(),
        allow_network_host: false,
        local_images: true,
        local_image_registries: Vec::new(),
    };
    if let Err(err) = settings::save_to(&world.user.settings_file(), &wished) {
        return Done::broken("save settings", format!("saving the settings failed: {err}"));
    }
    let before = running_backend(world).await.map(|(id, _)| id);
    match world.backend().change_ports(&PortEdit::Set(ports.clone())).await {
        Ok(change) if Some(&change.backend_id) == before.as_ref() => Done::note(change.sentence()),
        Ok(change) => Done::broken(
            "changed",
            format!("a live change of ports ran on backend {} but {before:?} was running", change.backend_id),
        ),
        Err(assemble_core::Error::Backend(assemble_core::BackendError::PortsNeedARunningBackend)) => {
            Done::note("saved; no backend running")
        }
        Err(err) => Done::broken("change ports", format!("the live change of ports failed: {err}")),
    }
}

/// `assemble backend ports add P` or `ports rm P`: applied live while a backend runs (the same
/// container), refused plainly when none does or when the port to remove is not proxied.
pub async fn cli_ports(world: &World, rng: &mut Rng) -> Done {
    let before = running_backend(world).await;
    let candidates: Vec<u16> = std::iter::once(world.registry_port).chain(world.spare_ports).collect();
    let port = candidates[rng.below(candidates.len() as u64) as usize];
    let verb = if rng.chance(1, 2) { "add" } else { "rm" };
    let run = world.cli(&["backend", "ports", verb, &port.to_string()]).await;
    let after = running_backend(world).await;
    match (&before, run.ok()) {
        (None, false) => Done::note(format!("refused: {}", run.stderr.trim())),
        (Some((_, ports)), false) if verb == "rm" && !ports.contains(&port) => {
            Done::note(format!("refused: {}", run.stderr.trim()))
        }
        (Some(_), false) => Done::broken(run.command.clone(), run.describe()),
        (None, true) => Done::broken(run.command.clone(), "a change of ports succeeded with no backend running".into()),
        (Some((id, _)), true) => match after {
            Some((again, ports)) if again == *id && ports.contains(&port) == (verb == "add") => {
                Done::note(run.stdout.trim().to_string())
            }
            other => Done::broken(
                run.command.clone(),
                format!("after `ports {verb} {port}` on backend {id} the engine shows {other:?}"),
            ),
        },
    }
}

pub async fn purge(world: &World) -> Done {
    let running = running_backend(world).await.is_some();
    let run = world.cli(&["backend", "cache", "purge"]).await;
    match (running, run.ok()) {
        (true, false) => Done::broken("purge", run.describe()),
        (false, false) => Done::note(format!("refused: {}", run.stderr.trim())),
        (_, true) => Done::note(run.stdout.lines().last().unwrap_or_default().to_string()),
    }
}

pub async fn info(world: &World) -> Done {
    Done::from_run(&world.cli(&["backend", "info"]).await)
}

/// Through the sidecar when the registry's port is proxied; refused when it is not.
pub async fn push(world: &World, serial: usize) -> Done {
    let Some((_, ports)) = running_backend(world).await else { return Done::note("no backend running: skipped") };
    let reference = format!("localhost:{}/soak/step{serial}:1", world.registry_port);
    let (code, output) = assemble_testkit::build_and_push(
        &world.docker,
        &world.user.names.backend(),
        &reference,
        &format!("step {serial}"),
    )
    .await;
    let proxied = ports.contains(&world.registry_port);
    let tail = output.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
    match (proxied, code == 0) {
        (true, true) => Done { detail: "pushed".into(), pushed: Some(true), ..Done::default() },
        (false, false) => Done::note("refused, the port is not proxied"),
        (true, false) => Done {
            detail: "push failed".into(),
            violations: vec![format!("a push through the proxy failed: {tail}")],
            pushed: Some(false),
            ..Done::default()
        },
        (false, true) => Done::broken("pushed", "a push reached a port that is not proxied".into()),
    }
}

/// A real buildx builds on the registered builder `assemble` and pushes through the sidecar when
/// the registry's port is proxied; the push is refused when it is not.
pub async fn buildx_push(world: &World, serial: usize) -> Done {
    if !world.user.has_buildx() {
        return Done::note("no buildx here (scripts/fetch-buildx.sh): skipped");
    }
    let Some((_, ports)) = running_backend(world).await else { return Done::note("no backend running: skipped") };
    let context = &world.buildx_context;
    if let Err(err) = buildx_context(world, context, serial).await {
        return Done::broken("buildx context", err);
    }
    let reference = format!("localhost:{}/soak/buildx{serial}:1", world.registry_port);
    let context = context.display().to_string();
    let run = world
        .docker_cli(&[
            "buildx",
            "build",
            "--builder",
            "assemble",
            "--progress",
            "plain",
            "--push",
            "-t",
            &reference,
            &context,
        ])
        .await;
    let proxied = ports.contains(&world.registry_port);
    match (proxied, run.ok()) {
        (true, true) => Done { detail: "built and pushed".into(), pushed: Some(true), ..Done::default() },
        (false, false) if run.stderr.contains("failed to push") => {
            Done::note("built; the push was refused, the port is not proxied")
        }
        (false, false) => Done::broken("failed", format!("the build failed before its push: {}", run.describe())),
        (true, false) => Done {
            detail: "failed".into(),
            violations: vec![format!("a buildx build with push through the proxy failed: {}", run.describe())],
            pushed: Some(false),
            ..Done::default()
        },
        (false, true) => Done::broken("pushed", "a buildx push reached a port that is not proxied".into()),
    }
}

/// A multi-stage Dockerfile with a `RUN` step that differs per build (so each one runs), on
/// BuildKit's own busybox: no registry serves base images here.
async fn buildx_context(world: &World, dir: &std::path::Path, serial: usize) -> Result<(), String> {
    busybox_into(world, dir).await?;
    let dockerfile = format!(
        "FROM scratch AS tools\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo soak step {serial} > /out\"]\n\
         FROM scratch\nCOPY --from=tools /out /out\n"
    );
    std::fs::write(dir.join("Dockerfile"), dockerfile).map_err(|e| format!("writing the Dockerfile: {e}"))
}

/// BuildKit's busybox, copied from the backend into `dir` (once): the one tool the soak's
/// Dockerfiles run, `FROM scratch`, since no registry serves base images here.
pub async fn busybox_into(world: &World, dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if !dir.join("busybox").exists() {
        let source = format!("{}:/bin/busybox", world.user.names.backend());
        let copy = world.docker_cli(&["cp", &source, &dir.display().to_string()]).await;
        if !copy.ok() {
            return Err(format!("copying BuildKit's busybox: {}", copy.describe()));
        }
    }
    Ok(())
}

/// The history listing: it must work while a backend runs, and refuse plainly when none does.
pub async fn builds(world: &World) -> Done {
    let running = running_backend(world).await.is_some();
    let run = world.cli(&["backend", "builds", "--format", "json"]).await;
    match (running, run.ok()) {
        (true, true) => Done::note(format!("builds listed: {}", run.stdout.lines().count())),
        (true, false) => Done::broken("builds", run.describe()),
        (false, false) if !run.stderr.trim().is_empty() => Done::note(format!("refused: {}", run.stderr.trim())),
        (false, false) => Done::broken("builds", format!("refused without a word: {}", run.describe())),
        (false, true) => Done::note("no backend, yet it listed (it may have just come back)"),
    }
}

pub async fn two_clients(world: &World, rng: &mut Rng) -> Done {
    let first = rng.below(3);
    let second = rng.below(3);
    let (a, b) = tokio::join!(client(world, first, rng.next()), client(world, second, rng.next()));
    let mut done = Done::note(format!("{} + {}", a.detail, b.detail));
    done.violations = a.violations.into_iter().chain(b.violations).collect();
    done
}

async fn client(world: &World, which: u64, seed: u64) -> Done {
    let mut rng = Rng::new(seed);
    match which {
        0 => cli_start(world, &mut rng).await,
        1 => cli_stop(world).await,
        _ => app_restart(world).await,
    }
}

pub async fn kill_backend(world: &World, stop: bool) -> Done {
    if running_backend(world).await.is_none() {
        return Done::note("no backend running");
    }
    let name = world.user.names.backend();
    let result = if stop {
        world.docker.stop_container(&name, Some(StopContainerOptionsBuilder::default().t(10).build())).await
    } else {
        world.docker.kill_container(&name, None::<KillContainerOptions>).await
    };
    match result {
        Ok(()) => Done { detail: "done".into(), injected: true, ..Done::default() },
        Err(err) => Done::note(format!("the engine refused: {err}")),
    }
}

pub async fn remove_sidecar(world: &World, rng: &mut Rng) -> Done {
    let filters = HashMap::from([("label".to_string(), labels::filter(&world.user.names, labels::Role::Proxy))]);
    let options =
        bollard::query_parameters::ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let sidecars = world.docker.list_containers(Some(options)).await.unwrap_or_default();
    if sidecars.is_empty() {
        return Done::note("no sidecar");
    }
    let victim = &sidecars[rng.below(sidecars.len() as u64) as usize];
    let name = victim.names.as_ref().and_then(|n| n.first()).cloned().unwrap_or_default();
    let id = victim.id.clone().unwrap_or_default();
    match world.docker.remove_container(&id, Some(RemoveContainerOptionsBuilder::default().force(true).build())).await {
        Ok(()) => Done { detail: name.trim_start_matches('/').to_string(), injected: true, ..Done::default() },
        Err(err) => Done::note(format!("the engine refused: {err}")),
    }
}

/// The flood fault: root in the backend writes [`crate::world::PLANTED_PORT`] into its port record,
/// then a shell in the backend opens 1,200 connections to one relayed port and holds them; the
/// sidecar's pids are sampled all along. Over its limit is a violation; the planted port's fate
/// is the invariants' to judge.
pub async fn flood(world: &World, rng: &mut Rng) -> Done {
    let Some((_, ports)) = running_backend(world).await else { return Done::note("no backend running") };
    let backend = world.user.names.backend();
    let planted = PortSet::from_ports(ports.iter().copied().chain([crate::world::PLANTED_PORT]));
    let plant =
        format!("printf '{}\\n' > {}", planted.to_label(), assemble_core::backend::sidecars::record::PORT_RECORD);
    if let Err(err) = crate::flood::exec(world, &backend, &plant).await {
        return Done::note(format!("could not plant a port: {err}"));
    }
    let relayed: Vec<u16> = ports.iter().copied().collect();
    if relayed.is_empty() {
        return Done { detail: "planted a port; no port to flood".into(), injected: true, ..Done::default() };
    }
    let port = relayed[rng.below(relayed.len() as u64) as usize];
    match crate::flood::flood(world, port, 1200).await {
        Ok(seen) => {
            let mut done = Done {
                detail: format!(
                    "planted {}; flooded {port}: sidecar pids at most {}",
                    crate::world::PLANTED_PORT,
                    seen.max_pids
                ),
                injected: true,
                ..Done::default()
            };
            if seen.max_pids > assemble_core::backend::sidecars::spec::PIDS_LIMIT as u64 {
                done.violations.push(format!(
                    "the sidecar of port {port} ran {} pids, over its limit of {}",
                    seen.max_pids,
                    assemble_core::backend::sidecars::spec::PIDS_LIMIT
                ));
            }
            done
        }
        Err(err) => Done::note(format!("no flood: {err}")),
    }
}

/// The soak's local base: one file, `/token`, imported into the engine (no registry has it).
pub fn local_base(world: &World) -> String {
    format!("soak-local-base-{}:1", world.user.user())
}

/// The layers (`RootFS.Layers`) of `image` in the engine; `None` when it has no such image.
async fn layers_of(world: &World, image: &str) -> Option<Vec<String>> {
    let run = world.docker_cli(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", image]).await;
    if !run.ok() {
        return None;
    }
    serde_json::from_str(run.stdout.trim()).ok()
}

/// Imports a new local base whose `/token` holds `token` and a random marker (so no two bases of
/// a run, or of two runs, are alike).
async fn import_local_base(world: &World, token: &str) -> Result<(), String> {
    let dir = world.user.scratch("local-base");
    std::fs::write(dir.join("token"), format!("{token} {}\n", crate::world::random_hex()?))
        .map_err(|e| format!("writing the base's file: {e}"))?;
    let tar = dir.join("base.tar");
    let packed = std::process::Command::new("tar")
        .args(["-C", &dir.display().to_string(), "-cf", &tar.display().to_string(), "token"])
        .status()
        .map_err(|e| format!("running tar: {e}"))?;
    if !packed.success() {
        return Err("tar could not pack the base's file".into());
    }
    let imported = world.docker_cli(&["import", &tar.display().to_string(), &local_base(world)]).await;
    if imported.ok() {
        Ok(())
    } else {
        Err(format!("docker import: {}", imported.describe()))
    }
}

/// Builds a new local base, as a user makes one: `assemble build --load` of a Dockerfile that puts
/// `/token` (with a random marker) into an image only the engine then has.
async fn build_local_base(world: &World, token: &str) -> Result<(), String> {
    let dir = world.user.scratch("local-base");
    std::fs::write(dir.join("token"), format!("{token} {}\n", crate::world::random_hex()?))
        .and_then(|()| std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY token /token\n"))
        .map_err(|e| format!("writing the base's files: {e}"))?;
    let base = local_base(world);
    let run = world.cli(&["build", "--load", "-t", &base, "--progress", "plain", &dir.display().to_string()]).await;
    if run.ok() {
        Ok(())
    } else {
        Err(format!("building the local base: {}", run.describe()))
    }
}

/// Builds `FROM` the local base with `assemble build --load`. The invariant: a build never uses a
/// base other than the one the engine has (no registry has this one): its layers are the engine's
/// base's, read just before; and with no base in the engine it fails. A missing base is built
/// anew (`assemble build --load`) two times in three, so both cases come up. One build in three
/// on a base has the base removed while it runs (`docker image rm -f` after 0–1.5 s): it may
/// succeed, on the base the engine had when it began and no other, or fail with a sentence.
pub async fn local_base_build(world: &World, rng: &mut Rng, serial: usize) -> Done {
    if running_backend(world).await.is_none() {
        return Done::note("no backend running: skipped");
    }
    let base = local_base(world);
    let mut before = layers_of(world, &base).await;
    // The run's first local-base build always makes a new one (the engine keeps images across
    // runs), so a short run builds on a base of its own for real.
    let first = !world.local_base_made.swap(true, std::sync::atomic::Ordering::SeqCst);
    let mut made = "";
    if first || (before.is_none() && rng.chance(2, 3)) {
        if let Err(err) = build_local_base(world, &format!("step {serial}")).await {
            return Done::broken("build the local base", err);
        }
        made = "base built with --load; ";
        before = layers_of(world, &base).await;
    }
    let during = before.is_some() && !first && rng.chance(1, 3);
    let mut done = build_on_base(world, rng, serial, before.clone(), during).await;
    done.detail = format!("{made}{}", done.detail);
    // The run's first one also has its base removed while a second build runs, so even a short
    // run meets that fault.
    if first && before.is_some() && done.violations.is_empty() {
        let again = build_on_base(world, rng, serial, before, true).await;
        done.detail = format!("{}; then {}", done.detail, again.detail);
        done.violations = again.violations;
        // A base again, imported, for the fault "local base removed" to meet.
        if let Err(err) = import_local_base(world, &format!("imported at step {serial}")).await {
            done.violations.push(err);
        }
    }
    done
}

/// One build `FROM` the local base, whose layers were `before` just before (`None`: the engine
/// had none); `during`: the base is removed while it runs.
async fn build_on_base(world: &World, rng: &mut Rng, serial: usize, before: Option<Vec<String>>, during: bool) -> Done {
    let base = local_base(world);
    let dir = world.user.scratch("local-build");
    if let Err(err) = std::fs::write(dir.join("Dockerfile"), format!("FROM {base}\n")) {
        return Done::broken("Dockerfile", format!("writing the Dockerfile: {err}"));
    }
    let out = format!("soak-local-out-{}:{serial}", world.user.user());
    let context = dir.display().to_string();
    let args = ["build", "--load", "-t", &out, "--progress", "plain", &context];
    let build = world.cli(&args);
    let run = if during {
        let delay = std::time::Duration::from_millis(rng.below(1500));
        let remove = async {
            tokio::time::sleep(delay).await;
            world.docker_cli(&["image", "rm", "-f", &base]).await
        };
        let (run, removed) = tokio::join!(build, remove);
        if !removed.ok() {
            return Done::broken(
                "remove during the build",
                format!("removing the base failed: {}", removed.describe()),
            );
        }
        run
    } else {
        build.await
    };
    let built = layers_of(world, &out).await;
    let _ = world.docker_cli(&["image", "rm", "-f", &out]).await;
    let sentence = run.stderr.lines().rev().find(|line| line.starts_with("Error: ")).unwrap_or_default().to_string();
    match (before, run.ok()) {
        (Some(before), true) if built.as_ref() == Some(&before) && during => {
            Done::note("base removed during the build; built on the base the engine had")
        }
        (Some(before), true) if built.as_ref() == Some(&before) => Done::note("built on the engine's base"),
        (Some(before), true) => Done::broken(
            "built on another base",
            format!("a build FROM {base} used layers {built:?}, but the engine's image had {before:?}"),
        ),
        (Some(_), false) if during && !sentence.is_empty() => {
            Done::note(format!("base removed during the build; it failed: {sentence}"))
        }
        (Some(_), false) if during => Done::broken(
            "failed without a sentence",
            format!(
                "a build whose base was removed while it ran failed without an `Error: ` sentence: {}",
                run.describe()
            ),
        ),
        // The user's build fails (no registry to fall back on): a violation of its own, since the
        // engine had the image.
        (Some(_), false) => {
            Done::broken("build failed", format!("a build FROM the local base failed: {}", run.describe()))
        }
        (None, false) => Done::note(format!("refused: the engine has no such base and no registry does: {sentence}")),
        (None, true) => Done::broken(
            "built on a removed base",
            format!("a build FROM {base} succeeded with layers {built:?} while the engine had no such image"),
        ),
    }
}

/// Fault: the engine's local base is removed; half the time another image takes its name.
pub async fn remove_local_base(world: &World, rng: &mut Rng, serial: usize) -> Done {
    let base = local_base(world);
    if layers_of(world, &base).await.is_none() {
        return Done::note("no local base");
    }
    let removed = world.docker_cli(&["image", "rm", "-f", &base]).await;
    if !removed.ok() {
        return Done::note(format!("the engine refused: {}", removed.describe()));
    }
    if rng.chance(1, 2) {
        if let Err(err) = import_local_base(world, &format!("re-tagged at step {serial}")).await {
            return Done::broken("re-import the local base", err);
        }
        return Done { detail: "removed and re-tagged".into(), injected: true, ..Done::default() };
    }
    Done { detail: "removed".into(), injected: true, ..Done::default() }
}
