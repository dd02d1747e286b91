//! `assemble build`'s session services against the real backend, a real registry and a real
//! ssh-agent: `--secret` (the value reaches the step and nothing else: not the image, the history
//! or the progress), `--ssh` (a step lists and uses the agent's key, and may not remove it), and
//! `-o` (a folder, a tar, stdout, OCI and docker tars, one folder per platform, a registry push).
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use assemble_testkit::{copy_busybox_into, run_bounded, Folder, Registry, TestUser};

/// A value no build could make up: it must show up only where the step writes its hash.
fn secret_value() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("s3cr3t-{nanos:x}-{}", std::process::id())
}

fn sha256_hex(text: &str) -> String {
    let out = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().and_then(|mut child| {
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(text.as_bytes())?;
        child.wait_with_output()
    });
    String::from_utf8_lossy(&out.expect("sha256sum runs").stdout).split_whitespace().next().unwrap_or("").to_string()
}

/// Every file under `dir`, read whole (bytes), for a search.
fn all_bytes_under(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("a folder").flatten() {
                stack.push(entry.path());
            }
        } else if meta.is_file() {
            bytes.extend(std::fs::read(&path).expect("a file"));
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

const SECRET_DOCKERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN --mount=type=secret,id=tok ["/bin/busybox", "sh", "-c", "/bin/busybox echo file-hash=$(/bin/busybox sha256sum /run/secrets/tok)"]
RUN --mount=type=secret,id=envtok,env=TOKEN ["/bin/busybox", "sh", "-c", "/bin/busybox echo -n $TOKEN | /bin/busybox sha256sum | /bin/busybox sed s/^/env-hash=/"]
RUN --mount=type=secret,id=absent ["/bin/busybox", "sh", "-c", "/bin/busybox test ! -e /run/secrets/absent && /bin/busybox echo optional-absent-skipped"]
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox ls /run/secrets 2>/dev/null | /bin/busybox wc -l | /bin/busybox sed s/^/left-behind=/"]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_reaches_its_step_and_nothing_else() {
    let user = TestUser::new("secret");
    let value = secret_value();
    let context = Folder::new(
        "secret-context",
        &[("Dockerfile", SECRET_DOCKERFILE), ("required.Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\nRUN --mount=type=secret,id=absent,required=true [\"/bin/busybox\", \"true\"]\n")],
    );
    copy_busybox_into(&context.path);
    let home = Folder::new("secret-home", &[("token", &value)]);
    let token = home.path.join("token");
    let (out, oci) = (home.path.join("out"), home.path.join("image.tar"));

    // Bad input: one sentence each, before the backend is even started.
    for (args, said) in [
        (vec!["--secret", "src=/etc/hostname"], "it has no id"),
        (
            vec!["--secret", "id=tok,src=/no/such/file"],
            "--secret tok: cannot read /no/such/file (No such file or directory)",
        ),
        (vec!["--secret", "id=a,env=HOME", "--secret", "id=a,env=PATH"], "--secret id=a is given twice"),
    ] {
        let mut command = vec!["build", &context.path.to_str().unwrap()];
        command.extend(args);
        let refused = user.run(&command);
        assert_eq!(refused.code, Some(1), "{refused:#?}");
        assert!(refused.stderr.contains(said), "{said:?} not in {}", refused.stderr);
        assert!(!refused.stderr.contains("started container"), "checked before starting: {}", refused.stderr);
    }
    let big = home.path.join("big");
    std::fs::write(&big, vec![b'x'; 500 * 1024 + 1]).unwrap();
    let too_big = user.run(&["build", &context.arg(), "--secret", &format!("id=big,src={}", big.display())]);
    assert!(too_big.stderr.contains("--secret big is 512001 bytes, more than BuildKit takes"), "{too_big:#?}");

    // The dry run says where each secret is read, never its value.
    let token_arg = format!("id=tok,src={}", token.display());
    let planned = user.run(&["build", &context.arg(), "--dry-run", "--secret", &token_arg]).expect_ok();
    assert!(planned.stdout.contains(&format!("Secret:     tok from the file {}", token.display())), "{planned:#?}");
    assert!(!planned.stdout.contains(&value) && !planned.stderr.contains(&value), "{planned:#?}");

    user.run(&["backend", "start", "--allow-host-port", "0"]).expect_ok();
    let mut command = user.command(&[
        "build",
        &context.arg(),
        "--progress",
        "plain",
        "--secret",
        &format!("id=tok,src={}", token.display()),
        "--secret",
        "id=envtok,env=ASSEMBLE_TEST_TOKEN",
        "-o",
        &format!("type=local,dest={}", out.display()),
        "-o",
        &format!("type=oci,dest={},compression=uncompressed", oci.display()),
    ]);
    command.env("ASSEMBLE_TEST_TOKEN", &value);
    let built = run_bounded(command);
    assert!(built.ok(), "{built:#?}");
    let hash = sha256_hex(&value);
    assert!(built.stderr.contains(&format!("file-hash={hash}")), "the step saw another value: {}", built.stderr);
    assert!(built.stderr.contains(&format!("env-hash={hash}")), "the env secret: {}", built.stderr);
    assert!(built.stderr.contains("optional-absent-skipped"), "{}", built.stderr);
    assert!(built.stderr.contains("left-behind=0"), "the mount leaves nothing in the image: {}", built.stderr);

    // The value itself: nowhere in our output, the image (uncompressed layers), the folder
    // exported, or anything BuildKit's history keeps.
    assert!(!built.stderr.contains(&value) && !built.stdout.contains(&value), "in the progress: {built:#?}");
    let image = std::fs::read(&oci).expect("the OCI tar");
    assert!(image.len() > 1000 && contains(&image, "busybox"), "an image with uncompressed layers");
    assert!(!contains(&image, &value), "the secret is in the exported image");
    assert!(out.join("bin/busybox").is_file(), "the folder output");
    assert!(!contains(&all_bytes_under(&out), &value), "the secret is in the exported folder");
    let history = user.run(&["backend", "builds", "--format", "json"]).expect_ok();
    assert!(!history.stdout.contains(&value), "{}", history.stdout);
    let refs: Vec<String> = history
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("ref").and_then(|r| r.as_str()).map(str::to_string))
        .collect();
    assert!(!refs.is_empty(), "{}", history.stdout);
    for reference in &refs {
        let logs = user.run(&["backend", "builds", "logs", reference]);
        assert!(!logs.stdout.contains(&value) && !logs.stderr.contains(&value), "in the history's log of {reference}");
    }
    let logs = refs.iter().map(|r| user.run(&["backend", "builds", "logs", r]).stdout).collect::<String>();
    assert!(logs.contains(&format!("file-hash={hash}")), "the history holds the build: {logs}");

    // A required secret that is not given fails with BuildKit's words.
    let required = context.path.join("required.Dockerfile");
    let failed = user.run(&["build", &context.arg(), "-f", required.to_str().unwrap(), "--progress", "plain"]);
    assert_eq!(failed.code, Some(1), "{failed:#?}");
    assert!(failed.stderr.contains("secret absent: not found"), "{}", failed.stderr);
    user.run(&["backend", "stop"]).expect_ok();
}

/// A private `ssh-agent` of the test's, with one new key in it; stopped (by its PID) on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
    key: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Self {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent runs");
        let began = Instant::now();
        while !socket.exists() {
            assert!(began.elapsed() < Duration::from_secs(10), "ssh-agent opened no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        let key = dir.join("id_test");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "assemble-e2e-key", "-f"])
            .arg(&key)
            .output()
            .expect("ssh-keygen runs");
        assert!(made.status.success(), "{made:?}");
        let agent = Self { child, socket, key };
        let added = agent.ssh_add(&[agent.key.to_str().unwrap()]);
        assert!(added.status.success(), "{added:?}");
        agent
    }

    fn ssh_add(&self, args: &[&str]) -> std::process::Output {
        Command::new("ssh-add").args(args).env("SSH_AUTH_SOCK", &self.socket).output().expect("ssh-add runs")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The host's `ssh-add` with the libraries it loads, at their own paths under `root`: the image
/// has no package manager and no registry is reachable.
fn copy_ssh_add_into(root: &Path) {
    let ldd = Command::new("ldd").arg("/usr/bin/ssh-add").output().expect("ldd runs");
    let mut files = vec![PathBuf::from("/usr/bin/ssh-add")];
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line.split("=>").last().unwrap_or("").split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            files.push(PathBuf::from(path));
        }
    }
    for file in files {
        let target = root.join(file.strip_prefix("/").unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(std::fs::canonicalize(&file).unwrap(), &target).expect("copy a library");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ssh_mount_uses_the_agent_and_key_files_and_may_not_change_the_agent() {
    let user = TestUser::new("ssh");
    let home = Folder::new("ssh-home", &[]);
    let agent = Agent::start(&home.path);
    let dockerfile = "FROM scratch\nCOPY root/ /\nCOPY id_test.pub /key.pub\nENV LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu\n\
        RUN --mount=type=ssh [\"/usr/bin/ssh-add\", \"-l\"]\n\
        RUN --mount=type=ssh [\"/bin/busybox\", \"sh\", \"-c\", \"/usr/bin/ssh-add -T /key.pub && /bin/busybox echo key-signs\"]\n\
        RUN --mount=type=ssh [\"/bin/busybox\", \"sh\", \"-c\", \"/usr/bin/ssh-add -D; /bin/busybox echo remove-all-exit=$?\"]\n";
    let context = Folder::new("ssh-context", &[("Dockerfile", dockerfile)]);
    copy_ssh_add_into(&context.path.join("root"));
    std::fs::create_dir_all(context.path.join("root/bin")).unwrap();
    copy_busybox_into(&context.path.join("root/bin"));
    std::fs::copy(agent.key.with_extension("pub"), context.path.join("id_test.pub")).unwrap();

    // Without an agent: a sentence, before anything starts.
    let mut command = user.command(&["build", &context.arg(), "--ssh", "default"]);
    command.env_remove("SSH_AUTH_SOCK");
    let refused = run_bounded(command);
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    assert!(
        refused.stderr.contains("--ssh default needs a running ssh-agent, and SSH_AUTH_SOCK is not set"),
        "{refused:#?}"
    );

    user.run(&["backend", "start", "--allow-host-port", "0"]).expect_ok();
    let mut command = user.command(&["build", &context.arg(), "--progress", "plain", "--no-cache", "--ssh", "default"]);
    command.env("SSH_AUTH_SOCK", &agent.socket);
    let built = run_bounded(command);
    assert!(built.ok(), "{built:#?}");
    assert!(built.stderr.contains("assemble-e2e-key (ED25519)"), "ssh-add -l in the step: {}", built.stderr);
    assert!(built.stderr.contains("key-signs"), "the key signs through the agent: {}", built.stderr);
    assert!(built.stderr.contains("remove-all-exit=1"), "removing keys is refused: {}", built.stderr);
    let listed = agent.ssh_add(&["-l"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("assemble-e2e-key"), "the agent still has its key");

    // A key file: served by a private agent of ours, with SSH_AUTH_SOCK unset.
    let mut command = user.command(&[
        "build",
        &context.arg(),
        "--progress",
        "plain",
        "--no-cache",
        "--ssh",
        &format!("default={}", agent.key.display()),
    ]);
    command.env_remove("SSH_AUTH_SOCK");
    let from_file = run_bounded(command);
    assert!(from_file.ok(), "{from_file:#?}");
    assert!(from_file.stderr.contains("assemble-e2e-key (ED25519)"), "{}", from_file.stderr);
    assert!(from_file.stderr.contains("key-signs"), "{}", from_file.stderr);

    // No --ssh: the optional mount is skipped and ssh-add finds no agent.
    let without = user.run(&["build", &context.arg(), "--progress", "plain", "--no-cache"]);
    assert_eq!(without.code, Some(1), "{without:#?}");
    user.run(&["backend", "stop"]).expect_ok();
}

const OUTPUT_DOCKERFILE: &str = r#"FROM scratch AS build
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /out/sub/deeper /out/empty && /bin/busybox echo hello > /out/sub/hello.txt && /bin/busybox touch /out/zero && /bin/busybox printf '#!/bin/sh\\n' > /out/run.sh && /bin/busybox chmod 750 /out/run.sh && /bin/busybox ln -s sub/hello.txt /out/link && /bin/busybox dd if=/dev/zero of=/out/sub/deeper/big.bin bs=1M count=3 2>/dev/null"]
FROM scratch
COPY --from=build /out /
"#;

#[tokio::test(flavor = "multi_thread")]
async fn outputs_go_to_a_folder_a_tar_stdout_and_a_registry() {
    let registry = Registry::start();
    let user = TestUser::new("output");
    let port = registry.port.to_string();
    let context = Folder::new(
        "output-context",
        &[("Dockerfile", OUTPUT_DOCKERFILE), ("plat.Dockerfile", "FROM scratch\nCOPY busybox /bb\n")],
    );
    copy_busybox_into(&context.path);
    let home = Folder::new("output-home", &[("kept/old.txt", "kept")]);

    for (value, said) in
        [("type=local", "a local output needs dest=FOLDER"), ("type=zip,dest=x", "\"zip\" is not an output type")]
    {
        let refused = user.run(&["build", &context.arg(), "-o", value]);
        assert_eq!(refused.code, Some(1), "{refused:#?}");
        assert!(refused.stderr.contains(said), "{said:?}: {}", refused.stderr);
    }

    user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    let folder = home.path.join("kept");
    let tar = home.path.join("out.tar");
    let built = user.run(&[
        "build",
        &context.arg(),
        "--progress",
        "plain",
        "-o",
        &folder.to_string_lossy(),
        "-o",
        &format!("type=tar,dest={}", tar.display()),
    ]);
    assert!(built.ok(), "{built:#?}");
    assert!(built.stdout.contains(&format!("Wrote the result to the folder {}", folder.display())), "{built:#?}");
    assert!(!built.stderr.contains("stays in the build cache"), "{}", built.stderr);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::read_to_string(folder.join("sub/hello.txt")).unwrap(), "hello\n");
    assert_eq!(std::fs::metadata(folder.join("sub/deeper/big.bin")).unwrap().len(), 3 << 20);
    assert_eq!(std::fs::metadata(folder.join("zero")).unwrap().len(), 0);
    assert!(folder.join("empty").is_dir());
    assert_eq!(std::fs::metadata(folder.join("run.sh")).unwrap().permissions().mode() & 0o777, 0o750);
    assert_eq!(std::fs::read_link(folder.join("link")).unwrap(), Path::new("sub/hello.txt"));
    assert_eq!(std::fs::read_to_string(folder.join("old.txt")).unwrap(), "kept", "merged into, as buildx");
    let listed = Command::new("tar").arg("tvf").arg(&tar).output().expect("tar runs");
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && listing.contains("sub/deeper/big.bin") && listing.contains("link -> sub/hello.txt"),
        "{listing}"
    );

    // `-o -`: the tar is stdout, whole, and our sentences go to stderr.
    let mut command = user.command(&["build", &context.arg(), "--progress", "plain", "-o", "-"]);
    command.stdout(Stdio::piped());
    let piped = command.output().expect("assemble runs");
    assert!(piped.status.success(), "{}", String::from_utf8_lossy(&piped.stderr));
    let on_disk = home.path.join("stdout.tar");
    std::fs::write(&on_disk, &piped.stdout).unwrap();
    let listed = Command::new("tar").arg("tf").arg(&on_disk).output().expect("tar runs");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("sub/hello.txt"), "{listed:?}");

    // Several platforms to a folder: one folder per platform (no step runs, so no emulator).
    let platforms = home.path.join("platforms");
    let plat = context.path.join("plat.Dockerfile");
    let split = user.run(&[
        "build",
        &context.arg(),
        "-f",
        plat.to_str().unwrap(),
        "--platform",
        "linux/amd64,linux/arm64",
        "-o",
        &format!("type=local,dest={}", platforms.display()),
    ]);
    assert!(split.ok(), "{split:#?}");
    assert!(platforms.join("linux_amd64/bb").is_file() && platforms.join("linux_arm64/bb").is_file(), "{split:#?}");

    // OCI and docker tars, and a push through -o type=registry.
    let (oci, docker) = (home.path.join("oci.tar"), home.path.join("docker.tar"));
    let image = format!("localhost:{port}/e2e/output:1");
    let images = user.run(&[
        "build",
        &context.arg(),
        "-t",
        &image,
        "-o",
        &format!("type=oci,dest={}", oci.display()),
        "-o",
        &format!("type=docker,dest={}", docker.display()),
        "-o",
        "type=registry",
    ]);
    assert!(images.ok(), "{images:#?}");
    let oci_list = Command::new("tar").arg("tf").arg(&oci).output().unwrap();
    assert!(String::from_utf8_lossy(&oci_list.stdout).contains("index.json"), "{oci_list:?}");
    let docker_list = Command::new("tar").arg("tf").arg(&docker).output().unwrap();
    assert!(String::from_utf8_lossy(&docker_list.stdout).contains("manifest.json"), "{docker_list:?}");
    assert!(registry.catalog().contains("e2e/output"), "{}", registry.catalog());
    user.run(&["backend", "stop"]).expect_ok();
}
