//! One context built on the same backend by (A) `assemble build` and (B) `docker buildx build
//! --builder assemble` (a real buildx, target/buildx/docker-buildx), in three situations: a first
//! build of a folder (default 20,000 files, 200 MiB), the same after one file changed, and a cached
//! rebuild. Each tool builds its own copy of the folder (BuildKit keys what it received by the
//! client's folder, so neither profits from the other's transfer), and each first build has a
//! file of its own, so no step comes from the cache. Rounds alternate which tool goes first.
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use assemble_core::PortSet;

use crate::common::{self, Flags, OurCli};

const TOOLS: [&str; 2] = ["A. assemble build", "B. docker buildx build --builder assemble"];
const SITUATIONS: [&str; 3] = ["first build", "one file changed", "cached rebuild"];
/// Copies the whole context into the image: the same work for both tools, and it makes the
/// first build and the one-file change real builds.
const DOCKERFILE: &str = "FROM scratch\nCOPY . /ctx\n";

struct Options {
    rounds: usize,
    files: usize,
    mib: usize,
    image: String,
    /// `context` (the three context figures), `session` (build_session.rs's), or `all`.
    parts: String,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["--rounds", "--files", "--mib", "--image", "--parts"])?;
    let options = Options {
        rounds: flags.number("--rounds", 3)?,
        files: flags.number("--files", 20_000)?,
        mib: flags.number("--mib", 200)?,
        image: flags.image(),
        parts: flags.text("--parts", "all"),
    };
    if !matches!(options.parts.as_str(), "all" | "context" | "session") {
        return Err(format!("--parts {:?}: give all, context or session", options.parts));
    }
    common::require_image(&options.image)?;
    let cli = OurCli::new("build")?;
    if !cli.buildx_plugin().is_file() {
        return Err(format!("{} is missing: run scripts/fetch-buildx.sh", cli.buildx_plugin().display()));
    }
    let work = std::env::temp_dir().join(format!("assemble-bench-build-{}", std::process::id()));
    let result = common::with_backend(&cli, PortSet::none(), &options.image, |_, _| {
        common::register_builder(&cli, &options.image)?;
        if options.parts != "session" {
            measure(&options, &cli, &work)?;
        }
        if options.parts != "context" {
            crate::build_session::measure(&cli, &work.join("session"), options.rounds)?;
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn measure(options: &Options, cli: &OurCli, work: &Path) -> Result<(), String> {
    // times[situation][tool], seconds
    let mut times = vec![[Vec::new(), Vec::new()]; SITUATIONS.len()];
    let mut sent = [Vec::new(), Vec::new()];
    for round in 0..options.rounds {
        let folders: Vec<PathBuf> = (0..2).map(|tool| work.join(format!("round{round}-tool{tool}"))).collect();
        for (tool, folder) in folders.iter().enumerate() {
            let made = Instant::now();
            make_context(folder, options, &format!("{round}-{tool}-{}", std::process::id()))?;
            eprintln!(
                "round {round}: made {} for {} in {:.1}s",
                folder.display(),
                TOOLS[tool],
                made.elapsed().as_secs_f64()
            );
        }
        for (situation, times) in times.iter_mut().enumerate() {
            for tool in common::order(round, 2) {
                let folder = &folders[tool];
                if situation == 1 {
                    let changed = folder.join("d000").join("f00000.bin");
                    std::fs::write(&changed, format!("changed in round {round}").repeat(100))
                        .map_err(|e| format!("changing {}: {e}", changed.display()))?;
                }
                let (seconds, said) = build(tool, cli, folder)?;
                times[tool].push(seconds);
                if tool == 0 {
                    sent[situation.min(1)].push(said);
                }
                eprintln!("round {round}, {}: {} {seconds:.2}s", SITUATIONS[situation], TOOLS[tool]);
            }
        }
        for folder in &folders {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
    println!(
        "\nbuild: a context of {} files, {} MiB, `{}`, {} rounds (seconds)",
        options.files,
        options.mib,
        DOCKERFILE.replace('\n', "; ").trim_end_matches("; "),
        options.rounds
    );
    for (situation, times) in times.iter().enumerate() {
        println!("\n{}", SITUATIONS[situation]);
        common::table("s", 1.0, 2, &[(TOOLS[0], &times[0]), (TOOLS[1], &times[1])]);
        println!("ratio A/B (median): {:.2}×", common::ratio(&times[0], &times[1]));
    }
    if let (Some(first), Some(changed)) = (sent[0].first(), sent[1].first()) {
        println!("\nassemble build said, first build: {first}\nafter one change: {changed}");
    }
    Ok(())
}

/// `files` files in folders of 100, `mib` MiB in all, each file's bytes its own; `stamp` makes the
/// folder differ from every other one.
fn make_context(folder: &Path, options: &Options, stamp: &str) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(folder);
    let size = options.mib * 1024 * 1024 / options.files.max(1);
    for index in 0..options.files {
        let dir = folder.join(format!("d{:03}", index / 100));
        if index % 100 == 0 {
            std::fs::create_dir_all(&dir).map_err(|e| format!("making {}: {e}", dir.display()))?;
        }
        let seed = (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let bytes: Vec<u8> = (0..size as u64).map(|i| (seed.wrapping_add(i.wrapping_mul(31)) >> 7) as u8).collect();
        let file = dir.join(format!("f{index:05}.bin"));
        std::fs::write(&file, bytes).map_err(|e| format!("writing {}: {e}", file.display()))?;
    }
    std::fs::write(folder.join("stamp"), stamp).map_err(|e| format!("writing the stamp: {e}"))?;
    std::fs::write(folder.join("Dockerfile"), DOCKERFILE).map_err(|e| format!("writing the Dockerfile: {e}"))?;
    Ok(())
}

/// One build to its end; seconds, and our CLI's line about the context.
fn build(tool: usize, cli: &OurCli, folder: &Path) -> Result<(f64, String), String> {
    let path = folder.to_string_lossy();
    let mut command = if tool == 0 {
        cli.command(&["build", &path, "--progress", "plain"])
    } else {
        let mut command = Command::new("docker");
        command.arg("--config").arg(cli.docker_config()).args([
            "buildx",
            "build",
            "--builder",
            "assemble",
            "--progress",
            "plain",
            &path,
        ]);
        command
    };
    common::on_default_context(&mut command);
    let start = Instant::now();
    let output = command.stdin(Stdio::null()).output().map_err(|e| format!("{}: {e}", TOOLS[tool]))?;
    let seconds = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("{} failed: {}", TOOLS[tool], stderr.trim()));
    }
    let said = stderr.lines().find(|l| l.starts_with("Context: ")).unwrap_or_default().to_string();
    Ok((seconds, said))
}
