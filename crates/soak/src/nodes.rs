//! The soak's node: its backend on a second private dockerd, joined to the `assemble` builder
//! through the docker context [`NODE`]. Operations add it, remove it, build for two platforms
//! across it, and kill its engine; the rule: once a node is out of the builder, its engine (when
//! it answers) holds no container of ours.
use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use assemble_core::backend::labels;
use assemble_testkit::{
    private_engine::{EngineSpec, PrivateEngine},
    Registry, Run,
};
use bollard::{query_parameters::ListContainersOptionsBuilder, Docker};

use crate::{ops::Done, rng::Rng, world::World};

/// The node's docker context (and its name in `nodes ls` and in the builder).
pub const NODE: &str = "soak2";

/// The platform the node declares: buildx sends it there.
const NODE_PLATFORM: &str = "linux/arm64";

/// `nodes ls` and a refused `nodes rm` with the node's engine dead: the node's time limit (10 s,
/// docs/nodes.md) and a margin. A dead unix socket refuses at once, so it is far under.
const NODE_ANSWER: Duration = Duration::from_secs(15);

/// Debian's static arm64 busybox (scripts/fetch-foreign-busybox.sh): the arm64 half of the
/// two-platform build runs it, emulated.
fn foreign_busybox() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/foreign/busybox-arm64"))
}

pub struct Node {
    pub engine: PrivateEngine,
    pub docker: Docker,
    /// Its dockerd runs (the fault kills it).
    pub up: bool,
    /// In the builder, as the soak's own `nodes add`/`nodes rm` left it.
    pub joined: bool,
    /// Forgotten with `rm --force` while its engine was dead: what ran there may still be there,
    /// as the command said. Cleared, the way a user would, once the engine is back.
    pub forced: bool,
}

impl Node {
    /// The second engine, with the backend image loaded once (its data root is kept between runs),
    /// and the context [`NODE`] for it in the soak user's docker config.
    pub async fn start(world: &World, image: &str) -> Result<Self, String> {
        let engine = PrivateEngine::start_with_images(EngineSpec::soak_node(), &[image]).await?;
        let docker = engine.docker().await?;
        let context =
            world.docker_cli(&["context", "create", NODE, "--docker", &format!("host={}", engine.host)]).await;
        if !context.ok() {
            return Err(format!("making the docker context {NODE}: {}", context.describe()));
        }
        // Whatever the user leaves there is cleaned when the soak ends, as on the first engine.
        world.user.also_clean_on(&engine.host);
        let node = Self { engine, docker, up: true, joined: false, forced: false };
        // Leftovers of an interrupted run (this engine is the soak's alone).
        for (id, _) in node.ours(world).await? {
            let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default().force(true).build();
            let _ = node.docker.remove_container(&id, Some(options)).await;
        }
        Ok(node)
    }

    /// `(id, name)` of every container on the node's engine named as ours (the backend's name, or
    /// it and `-…`: its sidecars).
    pub async fn ours(&self, world: &World) -> Result<Vec<(String, String)>, String> {
        let backend = world.user.names.backend();
        let filters = std::collections::HashMap::from([("name".to_string(), vec![backend.clone()])]);
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| format!("listing containers on {NODE}: {e}"))?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let name = c.names?.into_iter().next()?.trim_start_matches('/').to_string();
                name.starts_with(&backend).then(|| (c.id.unwrap_or_default(), name))
            })
            .collect())
    }

    /// Starts the killed engine again; after a forced removal, clears what it left the way a user
    /// would (`nodes add`, then `nodes rm`). Says what it did.
    pub async fn bring_up(&mut self, world: &World) -> Result<String, String> {
        if self.up {
            return Ok(String::new());
        }
        let took = self.engine.restart().await?;
        self.docker = self.engine.docker().await?;
        self.up = true;
        let mut said = format!("engine started again in {:.1}s; ", took.as_secs_f64());
        if self.forced {
            let left = self.ours(world).await?.len();
            let add = world.cli(&["backend", "nodes", "add", "--context", NODE, "--platform", NODE_PLATFORM]).await;
            let rm = world.cli(&["backend", "nodes", "rm", NODE]).await;
            if !add.ok() || !rm.ok() {
                return Err(format!(
                    "clearing a forced removal's leftovers ({left} container(s)) with nodes add + rm failed: {} / {}",
                    add.describe(),
                    rm.describe()
                ));
            }
            self.forced = false;
            said.push_str(&format!("{left} container(s) left by the forced removal cleared with nodes add + rm; "));
        }
        Ok(said)
    }
}

/// The node's line in `nodes ls --format json`, and how long the listing took.
async fn listed(world: &World) -> Result<(serde_json::Value, Duration), String> {
    let began = Instant::now();
    let run = world.cli(&["backend", "nodes", "ls", "--format", "json"]).await;
    let took = began.elapsed();
    if !run.ok() {
        return Err(format!("nodes ls failed: {}", run.describe()));
    }
    let listing: serde_json::Value =
        serde_json::from_str(&run.stdout).map_err(|e| format!("nodes ls printed no JSON ({e}): {}", run.stdout))?;
    Ok((listing, took))
}

fn entry<'a>(listing: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    listing.as_array()?.iter().find(|n| n["name"] == name)
}

/// `nodes add --context soak2 --platform linux/arm64` (the engine started again first if the
/// fault killed it): the node runs and is listed; a second add is refused.
pub async fn add(world: &World, node: &mut Node) -> Done {
    let mut detail = match node.bring_up(world).await {
        Ok(said) => said,
        Err(err) => return Done::broken("node engine", err),
    };
    let run = world.cli(&["backend", "nodes", "add", "--context", NODE, "--platform", NODE_PLATFORM]).await;
    if node.joined {
        return if !run.ok() && run.stderr.contains("already exists") {
            Done::note(format!("{detail}refused: {}", run.stderr.trim()))
        } else {
            Done::broken("added twice", format!("a second `nodes add` of {NODE} was not refused: {}", run.describe()))
        };
    }
    if !run.ok() {
        return Done::broken("nodes add", run.describe());
    }
    node.joined = true;
    detail.push_str("added");
    match listed(world).await {
        Ok((listing, _)) => match entry(&listing, NODE) {
            Some(listed) if listed["state"] == "running" => Done::note(detail),
            other => Done::broken(detail, format!("after `nodes add`, nodes ls shows {NODE} as {other:?}")),
        },
        Err(err) => Done::broken(detail, err),
    }
}

/// `nodes rm soak2`: with its engine up it must work (the invariant then checks the engine); with
/// its engine dead it must be refused in bounded time, pointing at `--force`, and `--force` works.
pub async fn remove(world: &World, node: &mut Node) -> Done {
    if !node.joined {
        let run = world.cli(&["backend", "nodes", "rm", NODE]).await;
        return if !run.ok() && run.stderr.contains("no node named") {
            Done::note(format!("refused: {}", run.stderr.trim()))
        } else {
            Done::broken("rm of no node", format!("`nodes rm` of a node not in the builder: {}", run.describe()))
        };
    }
    if node.up {
        let run = world.cli(&["backend", "nodes", "rm", NODE]).await;
        if !run.ok() {
            return Done::broken("nodes rm", run.describe());
        }
        node.joined = false;
        return Done::note(run.stdout.trim().to_string());
    }
    let began = Instant::now();
    let refused = world.cli(&["backend", "nodes", "rm", NODE]).await;
    let took = began.elapsed();
    if refused.ok() || !refused.stderr.contains("--force") {
        return Done::broken(
            "rm with its engine dead",
            format!(
                "`nodes rm` of a node whose engine is dead was not refused with a word on --force: {}",
                refused.describe()
            ),
        );
    }
    let forced = world.cli(&["backend", "nodes", "rm", NODE, "--force"]).await;
    if !forced.ok() {
        return Done::broken("rm --force", forced.describe());
    }
    node.joined = false;
    node.forced = true;
    let mut done = Done::note(format!(
        "engine dead: refused in {:.1}s, then --force: {}",
        took.as_secs_f64(),
        forced.stdout.trim()
    ));
    if took > NODE_ANSWER {
        done.violations.push(format!("`nodes rm` took {took:?} to refuse with the node's engine dead"));
    }
    done
}

/// Fault: the node's dockerd is killed (SIGKILL, by the PID the soak started it with) and left
/// dead until a node operation starts it again. `nodes ls` must answer in bounded time, show the
/// node unreachable, and the local node as the engine has it.
pub async fn kill_engine(world: &World, node: &mut Node) -> Done {
    if !node.up {
        return Done::note("the node's engine is already dead");
    }
    if let Err(err) = node.engine.kill() {
        return Done::broken("kill", err);
    }
    node.up = false;
    let mut done = Done { injected: true, ..Done::default() };
    let (listing, took) = match listed(world).await {
        Ok(listed) => listed,
        Err(err) => {
            done.violations.push(err);
            return done;
        }
    };
    done.detail = format!("dockerd killed; nodes ls in {:.1}s", took.as_secs_f64());
    if took > NODE_ANSWER {
        done.violations.push(format!("nodes ls took {took:?} with the node's engine dead"));
    }
    let local_running = crate::ops::running_backend(world).await.is_some();
    // The local node is listed by its context's name (the soak's `soak`), marked `local`.
    let local = listing.as_array().and_then(|l| l.iter().find(|n| n["local"] == true)).map(|n| n["state"].clone());
    if local != Some(serde_json::json!(if local_running { "running" } else { "stopped" })) {
        done.violations
            .push(format!("with the node's engine dead, nodes ls shows the local node as {local:?}: {listing}"));
    }
    match (node.joined, entry(&listing, NODE)) {
        (true, Some(listed)) if listed["state"] == "unreachable" => {
            done.detail.push_str(&format!(", {NODE} unreachable: {}", listed["reason"].as_str().unwrap_or_default()))
        }
        (false, None) => {}
        (joined, other) => done
            .violations
            .push(format!("with its engine dead, nodes ls shows {NODE} (in the builder: {joined}) as {other:?}")),
    }
    done
}

/// The ports the node's backend proxies now, if it runs (read from its engine by the kit).
async fn node_ports(world: &World, node: &Node) -> Option<std::collections::BTreeSet<u16>> {
    let inspect = node.docker.inspect_container(&world.user.names.backend(), None).await.ok()?;
    if !inspect.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
        return None;
    }
    let id = inspect.id?;
    let label = inspect.config.and_then(|c| c.labels).and_then(|mut l| l.remove(labels::PORTS));
    assemble_testkit::port_record::read_live_ports(&node.docker, &id, label.as_deref()).await.ok()
}

/// One image for linux/amd64 and linux/arm64, pushed as one index. With the node in the builder,
/// running and relaying the registry's port: `docker buildx build --builder assemble` (buildx
/// sends arm64 to the node, which declares it). Otherwise `assemble build` on the local backend
/// (arm64 emulated there). Each platform's step records `uname -m`; the registry must then hold
/// an index with both platforms.
pub async fn two_platforms(world: &World, node: &mut Node, registry: &Registry, rng: &mut Rng, serial: usize) -> Done {
    let mut detail = String::new();
    if !node.up && rng.chance(1, 2) {
        match node.bring_up(world).await {
            Ok(said) => detail = said,
            Err(err) => return Done::broken("node engine", err),
        }
    }
    let Some((_, ports)) = crate::ops::running_backend(world).await else {
        return Done::note(format!("{detail}no backend running: skipped"));
    };
    if !ports.contains(&world.registry_port) {
        return Done::note(format!("{detail}the registry's port is not proxied: skipped"));
    }
    if !foreign_busybox().exists() {
        return Done::note(format!("{detail}no arm64 busybox (scripts/fetch-foreign-busybox.sh): skipped"));
    }
    let dir = world.user.scratch("two-platforms");
    if let Err(err) = context(world, &dir, serial).await {
        return Done::broken("context", err);
    }
    let on_node = node.joined
        && node.up
        && world.user.has_buildx()
        && node_ports(world, node).await.is_some_and(|p| p.contains(&world.registry_port));
    let repository = "soak/multi";
    let tag = format!("step{serial}");
    let reference = format!("localhost:{}/{repository}:{tag}", world.registry_port);
    let dir = dir.display().to_string();
    let platforms = "linux/amd64,linux/arm64";
    let run: Run = if on_node {
        detail.push_str("buildx on both nodes: ");
        world
            .docker_cli(&[
                "buildx",
                "build",
                "--builder",
                "assemble",
                "--progress",
                "plain",
                "--platform",
                platforms,
                "--push",
                "-t",
                &reference,
                &dir,
            ])
            .await
    } else {
        detail.push_str("assemble build on the local node: ");
        world.cli(&["build", "--progress", "plain", "--platform", platforms, "--push", "-t", &reference, &dir]).await
    };
    if !run.ok() {
        return Done {
            detail: format!("{detail}failed"),
            violations: vec![format!("a two-platform build with push failed: {}", run.describe())],
            pushed: Some(false),
            ..Done::default()
        };
    }
    let index = match registry.try_manifest(repository, &tag) {
        Ok(index) => index,
        Err(err) => return Done::broken(format!("{detail}no index"), err),
    };
    let found = assemble_testkit::registry::listed_platforms(&index);
    if found != ["linux/amd64", "linux/arm64"] {
        return Done::broken(
            format!("{detail}pushed"),
            format!("{reference} was pushed, but the registry's index lists {found:?}, not linux/amd64 and linux/arm64: {index}"),
        );
    }
    Done { detail: format!("{detail}index with linux/amd64 and linux/arm64"), pushed: Some(true), ..Done::default() }
}

/// `FROM scratch`, each platform's own busybox, a step that differs per build and records the
/// machine it ran on.
async fn context(world: &World, dir: &std::path::Path, serial: usize) -> Result<(), String> {
    crate::ops::busybox_into(world, dir).await?;
    std::fs::rename(dir.join("busybox"), dir.join("busybox-amd64"))
        .map_err(|e| format!("naming busybox-amd64: {e}"))?;
    std::fs::copy(foreign_busybox(), dir.join("busybox-arm64"))
        .map_err(|e| format!("copying the arm64 busybox: {e}"))?;
    let dockerfile = format!(
        "FROM scratch\nARG TARGETARCH\nCOPY busybox-$TARGETARCH /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo soak step {serial} on $(uname -m) > /arch\"]\n"
    );
    std::fs::write(dir.join("Dockerfile"), dockerfile).map_err(|e| format!("writing the Dockerfile: {e}"))
}

/// The node's rule: once it is out of the builder (and not forgotten with `--force` while its
/// engine was dead), its engine, when it answers, holds no container of ours.
pub async fn leftovers(world: &World, node: &Node) -> Vec<String> {
    if node.joined || node.forced || !node.up {
        return Vec::new();
    }
    match node.ours(world).await {
        Ok(left) if left.is_empty() => Vec::new(),
        Ok(left) => vec![format!(
            "{NODE} is out of the builder, but its engine still has container(s) of ours: {}",
            left.iter()
                .map(|(id, name)| format!("{name} ({})", &id[..id.len().min(12)]))
                .collect::<Vec<_>>()
                .join(", ")
        )],
        Err(err) => vec![err],
    }
}
