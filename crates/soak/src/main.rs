//! `assemble-soak`: a chaos soak. N random operations (users' and faults), and after every one the
//! invariants. It stops by itself and prints what it ran, what it injected, and what broke.
//!
//!   assemble-soak [--ops N] [--seed S] [--image REF] [--shared-engine]
//!
//! By default it runs its own dockerd (own socket, data root and bridge), so that it may stop and
//! restart the engine without touching anyone else's containers. `--shared-engine` (or a machine
//! where a second dockerd cannot run) uses the machine's engine (docker's default socket, as the
//! tests do), without engine restarts. Beside its own dockerd it runs a second one, the engine of
//! its node (crate::nodes), which it kills as a fault. The engine, the user, the registry and the ports come from
//! the test kit (crates/testkit); the operations and the invariants are the soak's own.
mod buildflags;
mod flood;
mod invariants;
mod keeper;
mod leaks;
mod nodes;
mod ops;
mod rng;
mod world;

use std::{
    collections::BTreeMap,
    process::ExitCode,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use assemble_core::engine::{Engine, EngineChoice};
use assemble_testkit::{
    cli::find_assemble_binary,
    free_port,
    private_engine::{EngineSpec, PrivateEngine},
    Registry, TestUser, MACHINE_ENGINE,
};
use ops::{Done, Op};
use rng::Rng;
use world::World;

/// How long the app's repairs (and the engine's restart policy) may take to heal a fault.
const SETTLE: Duration = Duration::from_secs(60);

struct Args {
    ops: usize,
    seed: u64,
    image: String,
    shared_engine: bool,
}

fn parse_args() -> Result<Args, String> {
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let mut args = Args { ops: 100, seed, image: assemble_testkit::test_image(), shared_engine: false };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--ops" => args.ops = value()?.parse().map_err(|e| format!("--ops: {e}"))?,
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--image" => args.image = value()?,
            "--shared-engine" => args.shared_engine = true,
            other => {
                return Err(format!(
                "unknown argument {other}; usage: assemble-soak [--ops N] [--seed S] [--image REF] [--shared-engine]"
            ))
            }
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("assemble-soak: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("assemble-soak: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(soak(args)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("assemble-soak: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The soak's own dockerd, with the test image copied in from the machine's engine; `None`, with a
/// sentence, where it cannot run (or `--shared-engine` asks for the machine's engine).
async fn private_engine(args: &Args) -> Option<PrivateEngine> {
    if args.shared_engine {
        return None;
    }
    match PrivateEngine::start_with_images(EngineSpec::soak(), &[&args.image]).await {
        Ok(engine) => Some(engine),
        Err(reason) => {
            println!("soak: engine restarts are not possible here ({reason}); using the machine's engine");
            None
        }
    }
}

async fn soak(args: Args) -> Result<usize, String> {
    find_assemble_binary()?;
    let mut engine = private_engine(&args).await;
    // Every engine client of the soak's, in-process (its core calls, the keeper) and in its
    // commands (a docker context), names this engine: nothing is taken from the environment.
    let host = engine.as_ref().map_or_else(|| MACHINE_ENGINE.to_string(), |engine| engine.host.clone());
    let connected = Engine::connect(&EngineChoice::host(&host)).await.map_err(|e| e.to_string())?;
    let docker = connected.docker().clone();
    let user_name = if engine.is_some() { "soak".to_string() } else { format!("soak-{}", std::process::id()) };
    // Its folders are removed when the soak ends, however it ends; its containers and volumes too.
    let user = TestUser::named(&user_name, &host)?.with_image(&args.image).with_context(world::CONTEXT, &host)?;
    // On the host's loopback only: every push also proves that nothing but the sidecar reaches it.
    let registry = Registry::loopback();
    let named_volumes = vec![user.names.default_cache_volume(), format!("assemble-soak-extra-cache-{user_name}")];
    for volume in &named_volumes {
        user.own_volume(volume);
    }
    let buildx_context = user.scratch("buildx-context");
    let secret = world::random_hex()?;
    let secret_file = user.scratch("secret").join("token");
    std::fs::write(&secret_file, &secret).map_err(|e| format!("writing the secret's file: {e}"))?;
    let mut world = World {
        engine: connected,
        docker,
        user,
        registry_port: registry.port,
        spare_ports: [free_port(), free_port()],
        named_volumes,
        buildx_context,
        panics: Default::default(),
        history: Default::default(),
        secret,
        secret_file,
        nonce: world::random_hex()?,
        registry_blobs: registry.blobs_dir(),
        scans: Default::default(),
        local_base_made: Default::default(),
    };
    // Leftovers of an interrupted run are ours: clear them, then make the volumes a user would.
    world.cli(&["backend", "stop"]).await;
    for volume in &world.named_volumes {
        let options = bollard::models::VolumeCreateRequest { name: Some(volume.clone()), ..Default::default() };
        world.docker.create_volume(options).await.map_err(|e| format!("creating volume {volume}: {e}"))?;
    }
    // The settings a plain `start` and the app use: the registry's port, so pushes can be checked.
    let wished = assemble_core::Settings {
        ports: vec![world.registry_port],
        cache: assemble_core::CacheSetting::Auto,
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
    assemble_core::settings::save_to(&world.user.settings_file(), &wished).map_err(|e| e.to_string())?;
    println!(
        "soak: {} operations, seed {}, engine {}, user {user_name}, registry on 127.0.0.1:{} (loopback only)",
        args.ops,
        args.seed,
        if engine.is_some() { "private dockerd (restarts allowed)" } else { "shared (no restarts)" },
        world.registry_port
    );
    if !world.user.has_buildx() {
        println!(
            "soak: no buildx at {} (scripts/fetch-buildx.sh): buildx builds are skipped",
            assemble_testkit::buildx_plugin().display()
        );
    }

    // The node's engine: a second private dockerd, only beside the soak's own.
    let mut node = match &engine {
        Some(_) => match nodes::Node::start(&world, &args.image).await {
            Ok(node) => Some(node),
            Err(reason) => {
                println!("soak: no second engine here ({reason}); node operations are skipped");
                None
            }
        },
        None => None,
    };
    let keeper = keeper::Keeper::spawn(world.user.names.clone(), host.clone());
    let interrupted = interruption();
    let mut rng = Rng::new(args.seed);
    let schedule = schedule(&mut rng, args.ops, engine.is_some(), node.is_some());
    let mut tally = Tally::default();
    let began = Instant::now();
    for (serial, op) in schedule.into_iter().enumerate() {
        if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            println!("soak: interrupted after {serial} operations; cleaning up");
            break;
        }
        let started = Instant::now();
        let panics_before = world.panics.load(std::sync::atomic::Ordering::SeqCst);
        let mut done = match op {
            Op::Start => ops::cli_start(&world, &mut rng).await,
            Op::Stop => ops::cli_stop(&world).await,
            Op::Restart => ops::app_restart(&world).await,
            Op::ChangePorts => ops::change_ports(&world, &mut rng).await,
            Op::CliPorts => ops::cli_ports(&world, &mut rng).await,
            Op::Purge => ops::purge(&world).await,
            Op::Info => ops::info(&world).await,
            Op::Push => ops::push(&world, serial).await,
            Op::BuildxPush => ops::buildx_push(&world, serial).await,
            Op::Builds => ops::builds(&world).await,
            Op::TwoClients => ops::two_clients(&world, &mut rng).await,
            Op::KillBackend => ops::kill_backend(&world, false).await,
            Op::StopBackend => ops::kill_backend(&world, true).await,
            Op::RemoveSidecar => ops::remove_sidecar(&world, &mut rng).await,
            Op::RestartEngine => restart_engine(&mut world, engine.as_mut(), serial).await,
            Op::Flood => ops::flood(&world, &mut rng).await,
            Op::LocalBase => ops::local_base_build(&world, &mut rng, serial).await,
            Op::RemoveLocalBase => ops::remove_local_base(&world, &mut rng, serial).await,
            Op::SecretBuild => buildflags::secret_build(&world, serial).await,
            Op::CacheRoundTrip => buildflags::cache_round_trip(&world, serial).await,
            Op::AddNode | Op::RemoveNode | Op::TwoPlatforms | Op::KillNodeEngine => match node.as_mut() {
                None => Done::note("no second engine: skipped"),
                Some(node) => match op {
                    Op::AddNode => nodes::add(&world, node).await,
                    Op::RemoveNode => nodes::remove(&world, node).await,
                    Op::TwoPlatforms => nodes::two_platforms(&world, node, &registry, &mut rng, serial).await,
                    _ => nodes::kill_engine(&world, node).await,
                },
            },
        };
        // Users' operations must leave the rules true when they return; faults get the time the
        // app's repair and the restart policy need.
        if op.is_fault() {
            match invariants::settle(&world, SETTLE).await {
                Ok(took) if done.injected => tally.settle_times.push(took),
                Ok(_) => {}
                Err(broken) => done.violations.extend(broken),
            }
        } else {
            done.violations.extend(invariants::broken(&world).await);
        }
        if let Some(node) = &node {
            done.violations.extend(nodes::leftovers(&world, node).await);
        }
        if world.panics.load(std::sync::atomic::Ordering::SeqCst) != panics_before {
            done.violations.push("a CLI run panicked or hung (see the lines above)".into());
        }
        if keeper.died() {
            done.violations.push("the app's repair task ended: it panicked".into());
        }
        println!(
            "[{:>4}/{}] {:<24} {:>6.2}s  {}",
            serial + 1,
            args.ops,
            op.name(),
            started.elapsed().as_secs_f64(),
            done.detail
        );
        for violation in &done.violations {
            println!("           VIOLATION: {violation}");
        }
        tally.add(op, &done);
    }
    // The secret's invariant once more over everything, as the last operation left it.
    let leaked = leaks::everywhere(&world).await;
    for violation in &leaked {
        println!("           VIOLATION (end of soak, secret scan): {violation}");
    }
    tally.violations += leaked.len();
    // The node's engine back for the end (a forced removal's leftovers cleared as a user would),
    // so its rule is checked once more and the user's cleanup reaches it.
    if let Some(node) = node.as_mut() {
        let mut end = match node.bring_up(&world).await {
            Ok(_) => Vec::new(),
            Err(err) => vec![err],
        };
        end.extend(nodes::leftovers(&world, node).await);
        for violation in &end {
            println!("           VIOLATION (end of soak, node): {violation}");
        }
        tally.violations += end.len();
    }
    let elapsed = began.elapsed();
    let repairs = keeper.counts.repairs.load(std::sync::atomic::Ordering::SeqCst);
    keeper.stop().await;

    let stop = world.cli(&["backend", "stop"]).await;
    if !stop.ok() {
        println!("soak: the final stop failed: {}", stop.describe());
    }
    let history = world.history.lock().map(|h| h.clone()).unwrap_or_default();
    // The user goes first (its containers and named volumes, on the engine while it still runs),
    // then the registry, then the engine.
    drop(world);
    drop(registry);
    drop(node);
    drop(engine);
    tally.print(elapsed, repairs);
    println!(
        "soak: finished builds kept in the history: {} on {} cache volume(s), every one checked after every step",
        history.values().map(|refs| refs.len()).sum::<usize>(),
        history.len()
    );
    Ok(tally.violations)
}

/// Set on Ctrl-C or SIGTERM: the soak finishes the operation under way, then cleans up (its
/// engine, registry and volumes) instead of leaving them behind.
fn interruption() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use tokio::signal::unix::{signal, SignalKind};
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for kind in [SignalKind::interrupt(), SignalKind::terminate()] {
        let flag = flag.clone();
        if let Ok(mut stream) = signal(kind) {
            tokio::spawn(async move {
                stream.recv().await;
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            });
        }
    }
    flag
}

/// Builds that only mean something on a running backend: the first of each runs right after the
/// first start, so even a short run does each one for real.
const BUILDS_FIRST: [Op; 3] = [Op::SecretBuild, Op::CacheRoundTrip, Op::LocalBase];

/// The node's story, right after: joined, a build across both nodes, a removal its engine sees,
/// joined again, its engine killed (unreachable), a removal that needs `--force`, and a build on
/// the local node alone. Each node operation thus runs for real in even a short run.
const NODES_FIRST: [Op; 7] =
    [Op::AddNode, Op::TwoPlatforms, Op::RemoveNode, Op::AddNode, Op::KillNodeEngine, Op::RemoveNode, Op::TwoPlatforms];

/// Every kind once first (so even a short run covers them all), starting with a start and the
/// builds, then weighted draws.
fn schedule(rng: &mut Rng, count: usize, engine_restarts: bool, node: bool) -> Vec<Op> {
    let allowed: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|op| engine_restarts || *op != Op::RestartEngine)
        .filter(|op| node || !Op::NODE_OPS.contains(op))
        .collect();
    let mut cover: Vec<Op> = allowed
        .iter()
        .copied()
        .filter(|op| *op != Op::Start && !BUILDS_FIRST.contains(op) && !Op::NODE_OPS.contains(op))
        .collect();
    rng.shuffle(&mut cover);
    let mut schedule = vec![Op::Start];
    schedule.extend(BUILDS_FIRST);
    if node {
        schedule.extend(NODES_FIRST);
    }
    schedule.extend(cover);
    let total: u32 = allowed.iter().map(|op| op.weight()).sum();
    while schedule.len() < count {
        let mut pick = rng.below(total as u64) as u32;
        for op in &allowed {
            if pick < op.weight() {
                schedule.push(*op);
                break;
            }
            pick -= op.weight();
        }
    }
    schedule.truncate(count);
    schedule
}

/// Stops and starts the soak's own dockerd. The backend must come back by itself (restart
/// policy), its sidecars must join its new network namespace, and a push must work again.
async fn restart_engine(world: &mut World, engine: Option<&mut PrivateEngine>, serial: usize) -> Done {
    let Some(engine) = engine else { return Done { detail: "not possible here".into(), ..Done::default() } };
    let before = ops::running_backend(world).await;
    let took = match engine.restart().await {
        Ok(took) => took,
        Err(err) => return Done { detail: "failed".into(), violations: vec![err], ..Done::default() },
    };
    match engine.docker().await {
        Ok(docker) => world.docker = docker,
        Err(err) => return Done { detail: "no engine".into(), violations: vec![err], ..Done::default() },
    }
    let mut done = Done { injected: true, ..Done::default() };
    let settled = match invariants::settle(world, SETTLE).await {
        Ok(settled) => settled,
        Err(broken) => {
            done.violations = broken;
            return done;
        }
    };
    let after = ops::running_backend(world).await;
    done.detail = format!("engine back in {:.1}s, settled in {:.1}s", took.as_secs_f64(), settled.as_secs_f64());
    match (&before, &after) {
        (Some((id, _)), Some((again, _))) if id == again => {}
        (Some((id, _)), other) => done
            .violations
            .push(format!("backend {} did not come back after the engine restart (now {other:?})", &id[..12])),
        (None, Some(_)) => done.violations.push("a backend appeared after the engine restart".into()),
        (None, None) => {}
    }
    if let Some((_, ports)) = after {
        if ports.contains(&world.registry_port) {
            let push = ops::push(world, serial).await;
            done.detail.push_str(&format!(", {}", push.detail));
            done.pushed = push.pushed;
            done.violations.extend(push.violations);
        }
    }
    done
}

#[derive(Default)]
struct Tally {
    ran: BTreeMap<Op, usize>,
    injected: BTreeMap<Op, usize>,
    settle_times: Vec<Duration>,
    pushes: (usize, usize),
    violations: usize,
}

impl Tally {
    fn add(&mut self, op: Op, done: &Done) {
        *self.ran.entry(op).or_default() += 1;
        if done.injected {
            *self.injected.entry(op).or_default() += 1;
        }
        match done.pushed {
            Some(true) => self.pushes.0 += 1,
            Some(false) => self.pushes.1 += 1,
            None => {}
        }
        self.violations += done.violations.len();
    }

    fn print(&mut self, elapsed: Duration, repairs: usize) {
        let list = |map: &BTreeMap<Op, usize>| {
            map.iter().map(|(op, n)| format!("{} {n}", op.name())).collect::<Vec<_>>().join(", ")
        };
        println!();
        println!(
            "soak: {} operations in {:.0}s: {}",
            self.ran.values().sum::<usize>(),
            elapsed.as_secs_f64(),
            list(&self.ran)
        );
        println!("soak: faults injected: {} ({})", self.injected.values().sum::<usize>(), list(&self.injected));
        self.settle_times.sort();
        if let (Some(first), Some(last)) = (self.settle_times.first(), self.settle_times.last()) {
            let median = self.settle_times[self.settle_times.len() / 2];
            println!(
                "soak: healed after faults in {:.2}s median, {:.2}–{:.2}s range; repairs by the app's keeper: {repairs}",
                median.as_secs_f64(),
                first.as_secs_f64(),
                last.as_secs_f64()
            );
        }
        println!("soak: pushes through the proxy: {} ok, {} failed", self.pushes.0, self.pushes.1);
        println!("soak: invariant violations: {}", self.violations);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_story_comes_right_after_the_builds_and_only_with_a_second_engine() {
        let with = schedule(&mut Rng::new(1), 35, true, true);
        assert_eq!(&with[..4], &[Op::Start, Op::SecretBuild, Op::CacheRoundTrip, Op::LocalBase]);
        assert_eq!(&with[4..4 + NODES_FIRST.len()], &NODES_FIRST);
        // Every other kind still comes once before the weighted draws.
        let covered: std::collections::BTreeSet<Op> = with[..4 + NODES_FIRST.len() + 16].iter().copied().collect();
        assert_eq!(covered.len(), Op::ALL.len(), "{with:?}");

        let without = schedule(&mut Rng::new(1), 200, false, false);
        assert!(without.iter().all(|op| !Op::NODE_OPS.contains(op) && *op != Op::RestartEngine), "{without:?}");
    }
}
