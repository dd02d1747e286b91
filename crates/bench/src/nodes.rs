//! Several machines as one builder: the same two-platform build (linux/amd64 and linux/arm64, one
//! CPU-bound RUN step each, `--no-cache`, pushed to a local registry as one index) on one node and
//! on two nodes, by (A) `assemble build` and (B) `docker buildx build --builder assemble`, on the
//! same nodes. One node: the local backend builds both platforms (arm64 through its emulator). Two
//! nodes: a second backend on the tests' private dockerd, reached by a docker context (its unix
//! socket) and declared `linux/arm64`, builds that platform (emulated there too: every engine here
//! is amd64). Both engines share this machine's cores, so the figure shows what the split costs or
//! saves here, not what a second machine would add. Paths alternate round by round.
use std::{
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use assemble_testkit::{
    private_engine::{EngineSpec, PrivateEngine},
    Registry,
};

use crate::{
    common::{self, OurCli},
    platforms,
};

const TOOLS: [&str; 2] = ["A. assemble build", "B. docker buildx build --builder assemble"];
/// The node's docker context, in the bench user's docker config.
const NODE: &str = "bench-node";
const PLATFORMS: &str = "linux/amd64,linux/arm64";

pub fn run(args: &[String]) -> Result<(), String> {
    let platforms::LoopBench { rounds, loops, image, foreign } = platforms::LoopBench::from_args(args)?;
    let cli = OurCli::new("nodes")?;
    if !cli.buildx_plugin().is_file() {
        return Err(format!("{} is missing: run scripts/fetch-buildx.sh", cli.buildx_plugin().display()));
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    eprintln!("starting a private engine with {image} for the second node…");
    let engine = runtime.block_on(PrivateEngine::start_with_images(EngineSpec::engine_tests(), &[&image]))?;
    let registry = Registry::start();
    let work = std::env::temp_dir().join(format!("assemble-bench-nodes-{}", std::process::id()));
    let result = platforms::make_context(&work, &foreign, loops, &image)
        .and_then(|_| docker(&cli, &["context", "create", NODE, "--docker", &format!("host={}", engine.host)]))
        .and_then(|_| measure(&cli, &work, &registry, &image, rounds, loops));
    // Whatever happened: the node out of the builder (its container and volume go), the local backend stopped.
    let _ = ours(&cli, &["backend", "nodes", "rm", NODE, "--force"]);
    if let Err(message) = ours(&cli, &["backend", "stop"]) {
        eprintln!("warning: could not stop the bench backend: {message}");
    }
    let _ = std::fs::remove_dir_all(&work);
    drop(engine);
    result
}

fn measure(
    cli: &OurCli,
    work: &Path,
    registry: &Registry,
    image: &str,
    rounds: usize,
    loops: usize,
) -> Result<(), String> {
    let port = registry.port.to_string();
    ours(cli, &["backend", "start", "--image", image, "--allow-host-port", &port])?;
    // [nodes - 1][tool] → seconds of the whole build, index pushed
    let mut seconds = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for nodes in 1..=2 {
        if nodes == 2 {
            ours(cli, &["backend", "nodes", "add", "--context", NODE, "--platform", "linux/arm64"])?;
            // The port reaches the new node as it reaches the local one.
            ours(cli, &["backend", "start", "--image", image, "--allow-host-port", &port])?;
        }
        for round in 0..rounds {
            for tool in common::order(round, 2) {
                let tag = format!("localhost:{port}/bench/nodes:n{nodes}-t{tool}-r{round}");
                let (took, said) = build(cli, tool, work, &tag)?;
                check_split(nodes, tool, &said)?;
                let listed = registry.index_platforms("bench/nodes", &format!("n{nodes}-t{tool}-r{round}"));
                if listed != ["linux/amd64", "linux/arm64"] {
                    return Err(format!("{tag}: the pushed index lists {listed:?}, not linux/amd64 and linux/arm64"));
                }
                eprintln!("{nodes} node(s), round {round}: {} {took:.2}s", TOOLS[tool]);
                seconds[nodes - 1][tool].push(took);
            }
        }
    }
    println!(
        "\nnodes: a two-platform build ({PLATFORMS}), one RUN step each (a busybox shell loop of {loops} \
         iterations; arm64 emulated on either node), --no-cache, pushed as one index, {rounds} rounds (seconds)"
    );
    let one = "one node (the local backend builds both)";
    let two = "two nodes (linux/arm64 on the second engine's backend)";
    let labels = [
        [format!("{} — {one}", TOOLS[0]), format!("{} — {one}", TOOLS[1])],
        [format!("{} — {two}", TOOLS[0]), format!("{} — {two}", TOOLS[1])],
    ];
    common::table(
        "s",
        1.0,
        2,
        &[
            (&labels[0][0], &seconds[0][0]),
            (&labels[0][1], &seconds[0][1]),
            (&labels[1][0], &seconds[1][0]),
            (&labels[1][1], &seconds[1][1]),
        ],
    );
    println!("ratio A/B (median), one node: {:.2}×", common::ratio(&seconds[0][0], &seconds[0][1]));
    println!("ratio A/B (median), two nodes: {:.2}×", common::ratio(&seconds[1][0], &seconds[1][1]));
    println!("ratio two nodes / one node (median), A: {:.2}×", common::ratio(&seconds[1][0], &seconds[0][0]));
    println!("ratio two nodes / one node (median), B: {:.2}×", common::ratio(&seconds[1][1], &seconds[0][1]));
    Ok(())
}

/// `assemble ARGS` as the bench user, on the default context; its stdout.
fn ours(cli: &OurCli, args: &[&str]) -> Result<String, String> {
    let mut command = cli.command(args);
    common::on_default_context(&mut command);
    let output =
        command.stdin(Stdio::null()).output().map_err(|e| format!("running assemble {}: {e}", args.join(" ")))?;
    if !output.status.success() {
        return Err(format!("assemble {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).to_string())
}

/// `docker ARGS` with the bench user's docker config, to its end.
fn docker(cli: &OurCli, args: &[&str]) -> Result<(), String> {
    let mut command = Command::new("docker");
    command.env("DOCKER_CONFIG", cli.docker_config()).args(args).stdin(Stdio::null());
    common::on_default_context(&mut command);
    let output = command.output().map_err(|e| format!("running docker {}: {e}", args.join(" ")))?;
    if !output.status.success() {
        return Err(format!("docker {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()));
    }
    Ok(())
}

/// One two-platform build pushed to `tag`; its seconds and what the tool printed on stdout.
fn build(cli: &OurCli, tool: usize, work: &Path, tag: &str) -> Result<(f64, String), String> {
    let path = work.to_string_lossy();
    let options = ["--platform", PLATFORMS, "--no-cache", "--push", "-t", tag, "--progress", "plain"];
    let mut command = if tool == 0 {
        cli.command(&[&["build"][..], &options].concat())
    } else {
        // DOCKER_CONFIG, not --config: buildx reaches each node with a `docker --context NODE exec`
        // of its own, which reads the contexts from the environment.
        let mut command = Command::new("docker");
        command.env("DOCKER_CONFIG", cli.docker_config()).args(["buildx", "build", "--builder", "assemble"]);
        command.args(options);
        command
    };
    command.arg(path.as_ref());
    common::on_default_context(&mut command);
    let start = Instant::now();
    let output = command.stdin(Stdio::null()).output().map_err(|e| format!("{}: {e}", TOOLS[tool]))?;
    let seconds = start.elapsed().as_secs_f64();
    if !output.status.success() {
        return Err(format!("{} failed: {}", TOOLS[tool], String::from_utf8_lossy(&output.stderr).trim()));
    }
    Ok((seconds, String::from_utf8_lossy(&output.stdout).to_string()))
}

/// Our build says which node built what: with two nodes, the second must have built linux/arm64.
fn check_split(nodes: usize, tool: usize, said: &str) -> Result<(), String> {
    let split = said.contains(&format!("Node {NODE} built linux/arm64"));
    match (tool, nodes) {
        (0, 2) if !split => Err(format!("the build did not split across the two nodes: {said}")),
        (0, 1) if split => Err(format!("the build used the second node before it was added: {said}")),
        _ => Ok(()),
    }
}
