//! Builds with buildx's flags (issue 24): a secret mount, a cache exported to the registry and
//! imported on an empty cache, an output to a folder. Each checks its own result; the secret's
//! invariant (crate::leaks) reads everything the build left behind.
use sha2::{Digest, Sha256};

use crate::{
    leaks::{self, SECRET_ID},
    ops::{busybox_into, running_backend, Done},
    world::World,
};

/// The vertex (`#N`) of the first plain-progress line that names `marker`, and whether that
/// vertex says `CACHED`; `None` when no line names it.
fn step_cached(output: &str, marker: &str) -> Option<bool> {
    let line = output.lines().find(|line| line.starts_with('#') && line.contains(marker))?;
    let vertex = line.split_whitespace().next()?;
    let cached = format!("{vertex} CACHED");
    Some(output.lines().any(|line| line.trim() == cached))
}

/// `assemble build --secret id=soak,src=FILE --load` of a `RUN --mount=type=secret` that writes
/// the secret's sha256 into the image. The image must hold that hash (the build had the secret);
/// and the secret itself must be nowhere: not in the progress output, not in any file of the
/// image as `docker save` exports it, and not in the history, the logs, BuildKit's state or the
/// registry (crate::leaks).
pub async fn secret_build(world: &World, serial: usize) -> Done {
    if running_backend(world).await.is_none() {
        return Done::note("no backend running: skipped");
    }
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
    let run = world
        .cli(&[
            "build",
            "--secret",
            &secret,
            "--load",
            "-t",
            &image,
            "--progress",
            "plain",
            "--metadata-file",
            &metadata,
            &context,
        ])
        .await;
    let mut done = Done::note("built with the secret");
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
/// this run exports its cache (`--cache-to type=registry,…,mode=max`), the backend's cache is
/// purged, and the same build with `--cache-from` must find that step CACHED and write its file
/// into `-o type=local,dest=DIR`. When the registry's port is not proxied, the export must fail.
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
    if step_cached(&progress, &made) != Some(false) {
        done.violations.push(format!("the new step `{made}` was not run by the export build: {progress}"));
    }
    let purge = world.cli(&["backend", "cache", "purge"]).await;
    if !purge.ok() {
        done.violations.push(format!("purge between the export and the import failed: {}", purge.describe()));
        return done;
    }
    let out = world.user.scratch("cache-out");
    let output = format!("type=local,dest={}", out.display());
    let cache_from = format!("type=registry,ref={reference}");
    let import =
        world.cli(&["build", "--cache-from", &cache_from, "-o", &output, "--progress", "plain", &context]).await;
    if !import.ok() {
        done.detail = "import failed".into();
        done.violations.push(format!("a build with --cache-from after a purge failed: {}", import.describe()));
        return done;
    }
    let progress = format!("{}{}", import.stdout, import.stderr);
    match step_cached(&progress, &made) {
        Some(true) => {}
        other => done.violations.push(format!(
            "after a purge, --cache-from {reference} did not serve the step `{made}` (cached: {other:?}): {progress}"
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
    done.detail = "exported, purged, imported CACHED into a folder".into();
    done.violations.extend(leaks::in_output(world, &out));
    done.violations.extend(leaks::everywhere(world).await);
    done
}
