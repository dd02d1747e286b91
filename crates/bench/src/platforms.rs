//! What emulation costs: the same one-step build, `--no-cache`, for (A) linux/arm64, run by the
//! backend's qemu emulator (buildkit-qemu-aarch64), and (B) linux/amd64, run natively, on one
//! backend. The step is a busybox shell loop (CPU only, one process: the emulators of the Debian
//! test image emulate the step's first program), on each platform's own static busybox. Figures:
//! the step's own time (`#N DONE` of the RUN in `--progress plain`) and the whole `assemble build`.
use std::{path::Path, process::Stdio, time::Instant};

use assemble_core::PortSet;

use crate::common::{self, Flags, OurCli};

const PLATFORMS: [(&str, &str); 2] =
    [("A. linux/arm64 (emulated)", "linux/arm64"), ("B. linux/amd64 (native)", "linux/amd64")];

fn dockerfile(loops: usize) -> String {
    format!(
        "FROM scratch\nARG TARGETARCH\nCOPY busybox-$TARGETARCH /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"i=0; while [ $i -lt {loops} ]; do i=$((i+1)); done; uname -m\"]\n"
    )
}

/// The flags of a benchmark of the shell-loop step (`platforms`, `nodes`), checked: the image is
/// there, and so is the arm64 busybox.
pub struct LoopBench {
    pub rounds: usize,
    pub loops: usize,
    pub image: String,
    /// The arm64 busybox the tests fetch (scripts/fetch-foreign-busybox.sh arm64).
    pub foreign: std::path::PathBuf,
}

impl LoopBench {
    pub fn from_args(args: &[String]) -> Result<Self, String> {
        let flags = Flags::parse(args, &["--rounds", "--loops", "--image"])?;
        let image = flags.image();
        common::require_image(&image)?;
        Ok(Self {
            rounds: flags.number("--rounds", 3)?,
            loops: flags.number("--loops", 200_000)?,
            image,
            foreign: foreign_busybox()?,
        })
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let LoopBench { rounds, loops, image, foreign } = LoopBench::from_args(args)?;
    let cli = OurCli::new("platforms")?;
    let work = std::env::temp_dir().join(format!("assemble-bench-platforms-{}", std::process::id()));
    let result = make_context(&work, &foreign, loops, &image)
        .and_then(|_| common::with_backend(&cli, PortSet::none(), &image, |_, _| measure(&cli, &work, rounds, loops)));
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn foreign_busybox() -> Result<std::path::PathBuf, String> {
    let foreign = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/foreign/busybox-arm64");
    if !foreign.is_file() {
        return Err(format!("{} is missing: run scripts/fetch-foreign-busybox.sh arm64", foreign.display()));
    }
    Ok(foreign)
}

/// The context: the Dockerfile (one RUN step, a shell loop of `loops` iterations) and each
/// platform's busybox (the amd64 one from the image).
pub fn make_context(work: &Path, foreign: &Path, loops: usize, image: &str) -> Result<(), String> {
    std::fs::create_dir_all(work).map_err(|e| format!("making {}: {e}", work.display()))?;
    std::fs::write(work.join("Dockerfile"), dockerfile(loops)).map_err(|e| format!("writing the Dockerfile: {e}"))?;
    std::fs::copy(foreign, work.join("busybox-arm64")).map_err(|e| format!("copying {}: {e}", foreign.display()))?;
    let id = common::docker(&["create", image, "true"])?.trim().to_string();
    let copied = common::docker(&["cp", &format!("{id}:/bin/busybox"), &work.join("busybox-amd64").to_string_lossy()]);
    common::remove_containers(&[id]);
    copied.map(|_| ())
}

fn measure(cli: &OurCli, work: &Path, rounds: usize, loops: usize) -> Result<(), String> {
    // [platform] → seconds: the step's, the whole build's
    let mut steps = [Vec::new(), Vec::new()];
    let mut builds = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for which in common::order(round, 2) {
            let (build, step, printed) = build(cli, work, PLATFORMS[which].1)?;
            eprintln!("round {round}: {} step {step:.2}s, build {build:.2}s, uname -m: {printed}", PLATFORMS[which].0);
            steps[which].push(step);
            builds[which].push(build);
        }
    }
    println!(
        "\nplatforms: one RUN step, a busybox shell loop of {loops} iterations, --no-cache, {rounds} rounds (seconds)"
    );
    println!("\nthe step (`#N DONE`)");
    common::table("s", 1.0, 2, &[(PLATFORMS[0].0, &steps[0]), (PLATFORMS[1].0, &steps[1])]);
    println!("ratio A/B (median): {:.1}×", common::ratio(&steps[0], &steps[1]));
    println!("\nthe whole `assemble build`");
    common::table("s", 1.0, 2, &[(PLATFORMS[0].0, &builds[0]), (PLATFORMS[1].0, &builds[1])]);
    println!("ratio A/B (median): {:.1}×", common::ratio(&builds[0], &builds[1]));
    Ok(())
}

/// One build for `platform`: the whole build's seconds, the RUN step's, and what `uname -m` printed.
fn build(cli: &OurCli, work: &Path, platform: &str) -> Result<(f64, f64, String), String> {
    let path = work.to_string_lossy();
    let mut command = cli.command(&["build", &path, "--platform", platform, "--no-cache", "--progress", "plain"]);
    common::on_default_context(&mut command);
    let start = Instant::now();
    let output = command.stdin(Stdio::null()).output().map_err(|e| format!("assemble build: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("assemble build --platform {platform} failed: {}", stderr.trim()));
    }
    let (step, printed) = run_step(&stderr).ok_or_else(|| format!("no RUN step's DONE line in: {stderr}"))?;
    Ok((seconds, step, printed))
}

/// The RUN step's `#N DONE 1.23s` time and its last output line (`#N 0.456 aarch64`).
fn run_step(plain: &str) -> Option<(f64, String)> {
    let number = plain.lines().find(|l| l.contains("] RUN ")).and_then(|l| l.split_whitespace().next())?.to_string();
    let prefix = format!("{number} ");
    let mut printed = String::new();
    for line in plain.lines().filter_map(|l| l.strip_prefix(&prefix)) {
        if let Some(done) = line.strip_prefix("DONE ") {
            return done.trim_end_matches('s').parse().ok().map(|s| (s, printed));
        }
        if let Some((_, text)) = line.split_once(' ').filter(|(t, _)| t.parse::<f64>().is_ok()) {
            printed = text.to_string();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_run_step_s_time_and_output_are_read_from_plain_progress() {
        let plain = "#5 [2/2] RUN [\"/bin/busybox\"]\n#5 1.234 aarch64\n#5 DONE 3.5s\n#6 exporting\n#6 DONE 0.1s\n";
        assert_eq!(super::run_step(plain), Some((3.5, "aarch64".to_string())));
        assert_eq!(super::run_step("#1 [internal] x\n#1 DONE 0.1s\n"), None);
    }
}
