//! `scripts/bench.sh build`'s session figures (issue 24), on the same backend as the context
//! figures: (1) a build's 200 MiB result written to a local folder (`-o type=local`; the steps are
//! cached, so the time is the export), and (2) a build whose step uses a secret and an ssh agent
//! (`--secret`, `--ssh default` to a real ssh-agent; `--no-cache`, so the step runs each time).
//! (A) `assemble build`, (B) `docker buildx build --builder assemble`, rounds alternating who goes
//! first.
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::{self, OurCli};

const TOOLS: [&str; 2] = ["A. assemble build", "B. docker buildx build --builder assemble"];

/// 200 files of 1 MiB made in the backend, then copied alone into the result.
const OUTPUT_DOCKERFILE: &str = r#"FROM scratch AS gen
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /out && for i in $(/bin/busybox seq 1 200); do /bin/busybox dd if=/dev/urandom of=/out/f$i.bin bs=1M count=1 2>/dev/null; done"]
FROM scratch
COPY --from=gen /out /
"#;

/// The step lists the agent's keys through the forwarded socket and reads the secret.
const SECRET_SSH_DOCKERFILE: &str = "FROM scratch\nCOPY root/ /\n\
ENV LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu\n\
RUN --mount=type=secret,id=tok,required=true --mount=type=ssh,required=true [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox test -s /run/secrets/tok && /usr/bin/ssh-add -l\"]\n";

pub fn measure(cli: &OurCli, work: &Path, rounds: usize) -> Result<(), String> {
    std::fs::create_dir_all(work).map_err(|e| format!("making {}: {e}", work.display()))?;
    let output_context = work.join("output-context");
    std::fs::create_dir_all(&output_context).map_err(|e| e.to_string())?;
    assemble_testkit::copy_busybox_into(&output_context);
    std::fs::write(output_context.join("Dockerfile"), OUTPUT_DOCKERFILE).map_err(|e| e.to_string())?;
    // Warm: the 200 MiB are made once; both tools then export the cached result.
    build(0, cli, &output_context, &[], &[])?;

    let agent = Agent::start(work)?;
    let ssh_context = work.join("ssh-context");
    copy_ssh_add_into(&ssh_context.join("root"))?;
    std::fs::create_dir_all(ssh_context.join("root/bin")).map_err(|e| e.to_string())?;
    assemble_testkit::copy_busybox_into(&ssh_context.join("root/bin"));
    std::fs::write(ssh_context.join("Dockerfile"), SECRET_SSH_DOCKERFILE).map_err(|e| e.to_string())?;
    let secret = work.join("token");
    std::fs::write(&secret, "bench-token").map_err(|e| e.to_string())?;
    let secret_arg = format!("id=tok,src={}", secret.display());
    let socket = agent.socket.to_string_lossy().to_string();

    let mut output_times = [Vec::new(), Vec::new()];
    let mut session_times = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for tool in common::order(round, 2) {
            let dest = work.join(format!("out-{round}-{tool}"));
            let arg = format!("type=local,dest={}", dest.display());
            let (seconds, _) = build(tool, cli, &output_context, &["-o", &arg], &[])?;
            let written = folder_bytes(&dest);
            if written != 200 << 20 {
                return Err(format!("{} wrote {written} bytes, not 200 MiB", TOOLS[tool]));
            }
            let _ = std::fs::remove_dir_all(&dest);
            output_times[tool].push(seconds);
            eprintln!("round {round}, 200 MiB to a folder: {} {seconds:.2}s", TOOLS[tool]);
        }
        for tool in common::order(round, 2) {
            let args = ["--no-cache", "--secret", &secret_arg, "--ssh", "default"];
            let (seconds, stderr) = build(tool, cli, &ssh_context, &args, &[("SSH_AUTH_SOCK", &socket)])?;
            if !stderr.contains("assemble-bench-key") {
                return Err(format!("{}: the step did not list the agent's key: {stderr}", TOOLS[tool]));
            }
            session_times[tool].push(seconds);
            eprintln!("round {round}, secret + ssh: {} {seconds:.2}s", TOOLS[tool]);
        }
    }
    println!("\n200 MiB (200 files) to a local folder, steps cached, {rounds} rounds (seconds)");
    common::table("s", 1.0, 2, &[(TOOLS[0], &output_times[0]), (TOOLS[1], &output_times[1])]);
    println!("ratio A/B (median): {:.2}×", common::ratio(&output_times[0], &output_times[1]));
    println!("\na step with a secret and an ssh mount (ssh-add -l through a real ssh-agent), --no-cache, {rounds} rounds (seconds)");
    common::table("s", 1.0, 2, &[(TOOLS[0], &session_times[0]), (TOOLS[1], &session_times[1])]);
    println!("ratio A/B (median): {:.2}×", common::ratio(&session_times[0], &session_times[1]));
    Ok(())
}

/// One build of `folder` with `args` to its end; seconds and stderr.
fn build(
    tool: usize,
    cli: &OurCli,
    folder: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(f64, String), String> {
    let path = folder.to_string_lossy();
    let mut command = if tool == 0 {
        let mut all = vec!["build", &path, "--progress", "plain"];
        all.extend(args);
        cli.command(&all)
    } else {
        let mut command = Command::new("docker");
        command
            .arg("--config")
            .arg(cli.docker_config())
            .args(["buildx", "build", "--builder", "assemble", "--progress", "plain"])
            .args(args)
            .arg(&*path);
        command
    };
    common::on_default_context(&mut command);
    for (key, value) in env {
        command.env(key, value);
    }
    let start = Instant::now();
    let output = command.stdin(Stdio::null()).output().map_err(|e| format!("{}: {e}", TOOLS[tool]))?;
    let seconds = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    if !output.status.success() {
        return Err(format!("{} failed: {}", TOOLS[tool], stderr.trim()));
    }
    Ok((seconds, stderr))
}

fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
        })
        .unwrap_or(0)
}

/// The bench's own `ssh-agent` with one new key; stopped (by its PID) on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(work: &Path) -> Result<Self, String> {
        let socket = work.join("agent.sock");
        let child = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("ssh-agent: {e}"))?;
        let agent = Self { child, socket };
        let began = Instant::now();
        while !agent.socket.exists() {
            if began.elapsed() > Duration::from_secs(10) {
                return Err("ssh-agent opened no socket".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let key = work.join("id_bench");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "assemble-bench-key", "-f"])
            .arg(&key)
            .output()
            .map_err(|e| format!("ssh-keygen: {e}"))?;
        let added = Command::new("ssh-add").arg(&key).env("SSH_AUTH_SOCK", &agent.socket).output();
        if !made.status.success() || !added.is_ok_and(|a| a.status.success()) {
            return Err("could not make and add the bench's ssh key".into());
        }
        Ok(agent)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The host's `ssh-add` and the libraries it loads, at their own paths under `root`.
fn copy_ssh_add_into(root: &Path) -> Result<(), String> {
    let ldd = Command::new("ldd").arg("/usr/bin/ssh-add").output().map_err(|e| format!("ldd: {e}"))?;
    let mut files = vec![PathBuf::from("/usr/bin/ssh-add")];
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line.split("=>").last().unwrap_or("").split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            files.push(PathBuf::from(path));
        }
    }
    for file in files {
        let target = root.join(file.strip_prefix("/").map_err(|e| e.to_string())?);
        std::fs::create_dir_all(target.parent().unwrap_or(root)).map_err(|e| e.to_string())?;
        let source = std::fs::canonicalize(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        std::fs::copy(&source, &target).map_err(|e| format!("copying {}: {e}", file.display()))?;
    }
    Ok(())
}
