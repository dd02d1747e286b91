//! Builds with buildx's flags (issue 24): a secret mount, a cache exported to the registry and
//! imported on an empty cache, an output to a folder. Each checks its own result; the secret's
//! invariant (crate::leaks) reads everything the build left behind.
use assemble_core::PortSet;
use sha2::{Digest, Sha256};

use crate::{
    leaks::{self, SECRET_ID},
    ops::{busybox_into, running_backend, Done},
    world::World,
};

/// How a build's step (its plain-progress lines name `marker`) got its result.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    /// It ran.
    Ran,
    /// `#N CACHED`: BuildKit had it.
    Cached,
    /// Its layers were fetched and extracted (`#N extracting sha256:…`) instead of running it: an
    /// imported cache served it.
    Fetched,
}

/// How the step whose plain-progress line names `marker` got its result; `None` when no line
/// names it.
fn step(output: &str, marker: &str) -> Option<Step> {
    let line = output.lines().find(|line| line.starts_with('#') && line.contains(marker))?;
    let vertex = format!("{} ", line.split_whitespace().next()?);
    let lines = || output.lines().filter_map(|line| line.strip_prefix(vertex.as_str()));
    Some(if lines().any(|rest| rest.trim() == "CACHED") {
        Step::Cached
    } else if lines().any(|rest| rest.starts_with("extracting sha256:")) {
        Step::Fetched
    } else {
        Step::Ran
    })
}

/// `assemble build --secret id=soak,src=FILE --load` of a `RUN --mount=type=secret` that writes
/// the secret's sha256 into the image. The image must hold that hash (the build had the secret);
/// and the secret itself must be nowhere: not in the progress output, not in any file of the
/// image as `docker save` exports it, and not in the history, the logs, BuildKit's state or the
/// registry (crate::leaks).
pub async fn secret_build(world: &World, serial: usize) -> Done {
    let Some((_, ports)) = running_backend(world).await else { return Done::note("no backend running: skipped") };
    let dir = world.user.scratch("secret-build");
    if let Err(err) = busybox_into(world, &dir).await {
        return Done::broken("busybox", err);
    }
    let dockerfile = format!(
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN --mount=type=secret,id={SECRET_ID},required=true [\"/bin/busybox\", \"sh\", \"-c\", \
         \"/bin/busybox sha256sum /run/secrets/{SECRET_ID} > /seen && echo secret step {serial} {}\"]\n",
        world.nonce
    );
    if let Err(err) = std::fs::write(dir.join("Dockerfile"), dockerfile) {
        return Done::broken("Dockerfile", format!("writing the Dockerfile: {err}"));
    }
    let meta_dir = world.user.scratch("secret-meta");
    let metadata = meta_dir.join("metadata.json").display().to_string();
    let secret = format!("id={SECRET_ID},src={}", world.secret_file.display());
    let image = format!("soak-secret-{}:{serial}", world.user.user());
    let context = dir.display().to_string();
    let mut args = vec!["build", "--secret", &secret, "--load", "-t", &image, "--progress", "plain"];
    args.extend(["--metadata-file", &metadata]);
    // Every layer of the build, exported to the registry too when its port is proxied: the
    // registry scan then reads them.
    let cache_to = format!("type=registry,ref=localhost:{}/soak/secret-cache,mode=max", world.registry_port);
    let exported = ports.contains(&world.registry_port);
    if exported {
        args.extend(["--cache-to", &cache_to]);
    }
    args.push(&context);
    let run = world.cli(&args).await;
    let mut done =
        Done::note(if exported { "built with the secret, its cache exported" } else { "built with the secret" });
    done.violations.extend(leaks::in_text(world, "the build's progress output", run.stdout.as_bytes()));
    done.violations.extend(leaks::in_text(world, "the build's progress output", run.stderr.as_bytes()));
    if !run.ok() {
        done.detail = "failed".into();
        done.violations.push(format!("a build with a secret failed: {}", run.describe()));
        return done;
    }
    // Its history record is read again at every later scan.
    let reference = std::fs::read_to_string(&metadata)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|meta| meta["buildx.build.ref"].as_str().and_then(|r| r.rsplit('/').next()).map(String::from));
    match reference {
        Some(reference) => {
            if let Ok(mut scans) = world.scans.lock() {
                scans.secret_refs.push(reference);
            }
        }
        None => done.violations.push(format!("--metadata-file {metadata} has no buildx.build.ref")),
    }
    let archive = meta_dir.join("image.tar");
    let saved = world.docker_cli(&["save", "-o", &archive.display().to_string(), &image]).await;
    let _ = world.docker_cli(&["image", "rm", "-f", &image]).await;
    if !saved.ok() {
        done.violations.push(format!("docker save of the loaded image failed: {}", saved.describe()));
        return done;
    }
    done.violations.extend(leaks::in_archive(world, &format!("the loaded image {image} (docker save)"), &archive));
    // The build had the secret: its hash is in a layer (and the secret itself is not, above).
    let hash: String = Sha256::digest(world.secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let hashed = std::fs::read(&archive).map(|bytes| leaks::find(&bytes, hash.as_bytes()).is_some()).unwrap_or(false);
    if !hashed {
        done.violations.push(format!(
            "the image {image} lacks /seen with the secret's sha256 {hash}: the RUN step did not get the secret"
        ));
    }
    done.violations.extend(leaks::everywhere(world).await);
    done
}

/// A cache round trip through the registry, and an output to a folder: a build with a step new to
/// this run exports its cache (`--cache-to type=registry,…,mode=max`), the backend moves to the
/// other named cache volume (one that never had the step), and the same build with `--cache-from`
/// must get that step's layers from the registry (not run it) and write its file into
/// `-o type=local,dest=DIR`. When the registry's port is not proxied, the export must fail.
pub async fn cache_round_trip(world: &World, serial: usize) -> Done {
    let Some((_, ports)) = running_backend(world).await else { return Done::note("no backend running: skipped") };
    let dir = world.user.scratch("cache-build");
    if let Err(err) = busybox_into(world, &dir).await {
        return Done::broken("busybox", err);
    }
    let made = format!("cache {} {serial}", world.nonce);
    let dockerfile = format!(
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo {made} > /made\"]\n"
    );
    if let Err(err) = std::fs::write(dir.join("Dockerfile"), dockerfile) {
        return Done::broken("Dockerfile", format!("writing the Dockerfile: {err}"));
    }
    let reference = format!("localhost:{}/soak/cache", world.registry_port);
    let cache_to = format!("type=registry,ref={reference},mode=max");
    let context = dir.display().to_string();
    let export = world.cli(&["build", "--cache-to", &cache_to, "--progress", "plain", &context]).await;
    let proxied = ports.contains(&world.registry_port);
    match (proxied, export.ok()) {
        (false, false) => return Done::note("refused, the registry's port is not proxied"),
        (false, true) => {
            return Done::broken("exported", "a cache export reached a port that is not proxied".into());
        }
        (true, false) => {
            return Done::broken(
                "export failed",
                format!("a cache export to the registry failed: {}", export.describe()),
            )
        }
        (true, true) => {}
    }
    let mut done = Done::note("");
    let progress = format!("{}{}", export.stdout, export.stderr);
    if step(&progress, &made) != Some(Step::Ran) {
        done.violations.push(format!("the new step `{made}` was not run by the export build: {progress}"));
    }
    // A cache that never saw the step: the backend moves to the other named cache volume (a purge
    // leaves records BuildKit still holds, so it proves less), with the same ports.
    let Some(other) = other_volume(world).await else {
        done.violations.push("the running backend's cache volume is none of the soak's".into());
        return done;
    };
    let live = World::ports_argument(&PortSet::from_ports(ports.iter().copied()));
    let stop = world.cli(&["backend", "stop"]).await;
    let start = world.cli(&["backend", "start", "--cache-volume", &other, "--allow-host-port", &live]).await;
    if !stop.ok() || !start.ok() {
        done.violations.push(format!(
            "moving the backend to volume {other} failed: {} / {}",
            stop.describe(),
            start.describe()
        ));
        return done;
    }
    let out = world.user.scratch("cache-out");
    let output = format!("type=local,dest={}", out.display());
    let cache_from = format!("type=registry,ref={reference}");
    let import =
        world.cli(&["build", "--cache-from", &cache_from, "-o", &output, "--progress", "plain", &context]).await;
    if !import.ok() {
        done.detail = "import failed".into();
        done.violations.push(format!("a build with --cache-from on a fresh cache failed: {}", import.describe()));
        return done;
    }
    let progress = format!("{}{}", import.stdout, import.stderr);
    // That cache never had the step: it must come from the registry's cache (shown CACHED, or
    // its layers fetched and extracted), not from a run.
    match step(&progress, &made) {
        Some(Step::Cached | Step::Fetched) => {}
        other => done.violations.push(format!(
            "on a cache volume that never had it, --cache-from {reference} did not serve the step `{made}` \
             ({other:?}): {progress}"
        )),
    }
    match std::fs::read_to_string(out.join("made")) {
        Ok(text) if text == format!("{made}\n") => {}
        Ok(text) => done.violations.push(format!("-o {output} wrote made = {text:?}, the step wrote {made:?}")),
        Err(err) => done.violations.push(format!("-o {output} did not deliver the file made: {err}")),
    }
    if !out.join("bin/busybox").is_file() {
        done.violations.push(format!("-o {output} did not deliver bin/busybox"));
    }
    done.detail = format!("exported; on volume {other} its layers imported, the result in a folder");
    // Its own exports; the history and the logs are read after each secret build and at the end.
    done.violations.extend(leaks::in_output(world, &out));
    done.violations.extend(leaks::in_registry(world));
    done
}

/// The soak's named cache volume the running backend does not use.
async fn other_volume(world: &World) -> Option<String> {
    let inspect = world.docker.inspect_container(&world.user.names.backend(), None).await.ok()?;
    let current = inspect
        .mounts?
        .into_iter()
        .find(|m| m.destination.as_deref() == Some(assemble_core::backend::spec::STATE_DIR))
        .and_then(|m| m.name)?;
    world.named_volumes.contains(&current).then(|| world.named_volumes.iter().find(|v| **v != current).cloned())?
}
