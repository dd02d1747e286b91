//! `assemble build` against the real backend, a real registry and the real engine: the context's
//! transfer, the Dockerfile frontend, push through the sidecar, load into the engine, failures and
//! cancellation, and a generated Dockerfile built on base images the test pushed.
use std::{
    os::unix::ffi::OsStrExt,
    process::{Command, Stdio},
    time::Duration,
};

use assemble_testkit::{copy_busybox_into, Folder, Registry, TestUser};

/// `FROM scratch` with busybox: every `RUN` names it, as there is no shell in the image.
const CONTEXT_DOCKERFILE: &str = r#"FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "echo", "stage-base-ran"]
FROM base AS final
ARG GREETING=unset
COPY . /ctx
RUN ["/bin/busybox", "sh", "-c", "cd /ctx && /bin/busybox echo greeting=$GREETING && /bin/busybox test ! -e secret.txt && /bin/busybox echo secret-absent && /bin/busybox wc -c < big.bin && /bin/busybox cat sub/inner.txt && /bin/busybox test -d empty && /bin/busybox echo empty-folder-present && /bin/busybox echo link-to=$(/bin/busybox readlink link) && /bin/busybox stat -c mode=%a sub/run.sh"]
"#;

/// A folder whose Dockerfile runs one shell `script` on busybox.
fn one_step_context(tag: &str, script: &str) -> Folder {
    let dockerfile =
        format!("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"{script}\"]\n");
    let context = Folder::new(tag, &[("Dockerfile", &dockerfile)]);
    copy_busybox_into(&context.path);
    context
}

fn docker(args: &[&str]) -> std::process::Output {
    assemble_testkit::docker_cli().args(args).stdin(Stdio::null()).output().expect("docker runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_is_built_pushed_loaded_and_rebuilt_sending_only_what_changed() {
    let registry = Registry::start();
    let user = TestUser::new("build");
    let port = registry.port.to_string();
    let big = "x".repeat(3 * 1024 * 1024);
    let context = Folder::new(
        "build-context",
        &[
            ("Dockerfile", CONTEXT_DOCKERFILE),
            (".dockerignore", "# the secret stays home\nsecret.txt\n"),
            ("secret.txt", "do not send"),
            ("big.bin", &big),
            ("sub/inner.txt", "inner-file-present"),
            ("empty/", ""),
        ],
    );
    copy_busybox_into(&context.path);
    std::os::unix::fs::symlink("sub/inner.txt", context.path.join("link")).expect("a symlink");
    std::fs::write(context.path.join("sub/run.sh"), "#!/bin/sh\n").expect("a script");
    std::fs::set_permissions(context.path.join("sub/run.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o750))
        .expect("its mode");
    user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();

    let image = format!("localhost:{port}/e2e/built:1");
    // As with buildx, every name is pushed: the loaded image carries the registry's name.
    let local = image.clone();
    let built = user.run(&[
        "build",
        &context.arg(),
        "--progress",
        "plain",
        "--build-arg",
        "GREETING=hello",
        "-t",
        &image,
        "--push",
        "--load",
    ]);
    assert!(built.ok(), "{built:#?}");
    for expected in [
        "greeting=hello",
        "secret-absent",
        &big.len().to_string(),
        "inner-file-present",
        "empty-folder-present",
        "link-to=sub/inner.txt",
        "mode=750",
    ] {
        assert!(built.stderr.contains(expected), "the RUN step did not print {expected:?}:\n{}", built.stderr);
    }
    assert!(built.stderr.contains("#1 [internal] load build definition from Dockerfile"), "{}", built.stderr);
    assert!(built.stdout.contains(&format!("Pushed {image}")), "{built:#?}");
    assert!(registry.catalog().contains("e2e/built"), "catalog: {}", registry.catalog());
    assert!(built.stdout.contains(&format!("Loaded image {local}")), "{built:#?}");
    let ran = docker(&["run", "--rm", &local, "/bin/busybox", "cat", "/ctx/sub/inner.txt"]);
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "inner-file-present", "{ran:?}");

    // One file changes: BuildKit asks for it (and the .dockerignore it reads each time), not the rest.
    std::fs::write(context.path.join("sub/inner.txt"), "inner-file-changed").expect("change a file");
    let rebuilt = user.run(&["build", &context.arg(), "--progress", "plain"]);
    assert!(rebuilt.ok(), "{rebuilt:#?}");
    assert!(rebuilt.stderr.contains("inner-file-changed"), "{}", rebuilt.stderr);
    assert!(
        rebuilt.stderr.contains("Context: sent 2 of"),
        "only the changed file and .dockerignore: {}",
        rebuilt.stderr
    );
    assert!(rebuilt.stderr.contains("the result stays in the build cache"), "{}", rebuilt.stderr);

    // --target stops at the stage asked for: the final stage's step does not run.
    let target = user.run(&["build", &context.arg(), "--progress", "plain", "--target", "base", "--no-cache"]);
    assert!(target.ok(), "{target:#?}");
    assert!(target.stderr.contains("stage-base-ran"), "{}", target.stderr);
    assert!(!target.stderr.contains("greeting="), "the final stage ran: {}", target.stderr);

    let _ = docker(&["rmi", "-f", &local]);
    user.run(&["backend", "stop"]).expect_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_step_shows_its_output_and_a_stopped_backend_is_started_first() {
    let user = TestUser::new("build-fail");
    let context = one_step_context("build-fail", "echo the-step-says-why; exit 3");
    let failed = user.run(&["build", &context.arg(), "--progress", "plain"]);
    assert_eq!(failed.code, Some(1), "{failed:#?}");
    assert!(failed.stderr.contains("The backend was not running: started container"), "{}", failed.stderr);
    assert!(failed.stderr.contains(" > [3/3] RUN") || failed.stderr.contains(" > [2/2] RUN"), "{}", failed.stderr);
    assert!(failed.stderr.contains("the-step-says-why"), "{}", failed.stderr);
    let last = failed.stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("Error: the build failed: ") && last.contains("exit code: 3"), "{last}");

    // A name BuildKit's transfer cannot carry is refused with the way out, unless it is left out
    // (a build that copies the whole folder asks for every name).
    let copy_all = context.path.join("copy-all.Dockerfile");
    std::fs::write(&copy_all, "FROM scratch\nCOPY . /ctx\n").expect("a second Dockerfile");
    let name = std::ffi::OsStr::from_bytes(b"bad-\xff-name");
    std::fs::write(context.path.join(name), "x").expect("a file with a non-UTF-8 name");
    let copy_all = copy_all.to_string_lossy();
    let refused = user.run(&["build", &context.arg(), "-f", &copy_all, "--progress", "plain"]);
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    let said = refused.stderr.trim_end().lines().last().unwrap_or_default();
    assert!(said.contains("has a name that is not UTF-8") && said.contains(".dockerignore"), "{}", refused.stderr);
    std::fs::write(context.path.join(".dockerignore"), "bad-*\n").expect("a .dockerignore");
    user.run(&["build", &context.arg(), "-f", &copy_all, "--progress", "plain"]).expect_ok();
    user.run(&["backend", "stop"]).expect_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_cancels_the_build_on_the_backend() {
    let user = TestUser::new("build-cancel");
    let context = one_step_context("build-cancel", "echo waiting-now; /bin/busybox sleep 120");
    user.run(&["backend", "start", "--allow-host-port", "0"]).expect_ok();
    let mut command = user.command(&["build", &context.arg(), "--progress", "plain", "--no-cache"]);
    let child = command.spawn().expect("assemble build starts");
    let pid = child.id().to_string();
    let waiter = std::thread::spawn(move || child.wait_with_output().expect("assemble build ends"));
    // Interrupt once the step runs.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (_, output) =
            assemble_testkit::exec(&assemble_testkit::docker().await, &user.names.backend(), &["ps"]).await;
        if output.contains("sleep 120") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the step never started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(Command::new("kill").args(["-INT", &pid]).status().expect("kill").success());
    let output = waiter.join().expect("the waiter");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("Error: the build was canceled"), "{stderr}");
    // BuildKit ended the step: its process is gone and the history says Canceled.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, output) =
            assemble_testkit::exec(&assemble_testkit::docker().await, &user.names.backend(), &["ps"]).await;
        if !output.contains("sleep 120") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the step still runs after the cancel:\n{output}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let builds = user.run(&["backend", "builds"]).expect_ok();
    assert!(builds.stdout.contains("Canceled"), "{}", builds.stdout);
    user.run(&["backend", "stop"]).expect_ok();
}

/// A Spring Boot project without a Dockerfile, built on stand-ins for Maven and Java that the test
/// builds and pushes to the local registry with `assemble build` itself.
#[tokio::test(flavor = "multi_thread")]
async fn a_generated_dockerfile_builds_on_base_images_from_the_local_registry() {
    let registry = Registry::start();
    let user = TestUser::new("build-boot");
    let port = registry.port.to_string();
    let bases = Folder::new(
        "build-bases",
        &[
            (
                "Dockerfile",
                "FROM scratch AS tools\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
                 FROM tools AS maven\nCOPY --chmod=755 mvn /usr/bin/mvn\nFROM tools AS jre\nCOPY --chmod=755 java /usr/bin/java\n",
            ),
            (
                "mvn",
                "#!/bin/sh\ncase \"$*\" in\n  *go-offline*) mkdir -p /cache/maven && echo fetched > /cache/maven/deps;;\n  \
                 *package*) mkdir -p target && { ls -R src; cat /cache/maven/deps; } > target/demo-1.0.jar;;\nesac\n",
            ),
            ("java", "#!/bin/sh\necho \"java as $(id -u) runs $2\"; cat \"$2\"\n"),
        ],
    );
    copy_busybox_into(&bases.path);
    user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    let maven = format!("localhost:{port}/e2e/maven:1");
    let jre = format!("localhost:{port}/e2e/jre:1");
    user.run(&["build", &bases.arg(), "--target", "maven", "-t", &maven, "--push"]).expect_ok();
    // The live view, asked for although stderr is not a terminal here.
    let live =
        user.run(&["build", &bases.arg(), "--target", "jre", "-t", &jre, "--push", "--progress", "tty"]).expect_ok();
    assert!(live.stderr.contains("[+] Building"), "{}", live.stderr);
    assert!(live.stderr.contains(" => [jre 1/1] COPY --chmod=755 java /usr/bin/java"), "{}", live.stderr);
    assert!(live.stderr.contains("\x1b["), "the view redraws itself: {}", live.stderr);

    let project = Folder::new(
        "build-boot",
        &[
            (
                "pom.xml",
                "<project><parent><groupId>org.springframework.boot</groupId><artifactId>spring-boot-starter-parent</artifactId>\
                 <version>3.3.0</version></parent><artifactId>demo</artifactId><version>1.0</version></project>",
            ),
            ("src/main/java/App.java", "class App {}"),
        ],
    );
    let name = format!("e2e-boot-{}", user.user());
    let built = user.run(&[
        "build",
        &project.arg(),
        "--build-image",
        &maven,
        "--runtime-image",
        &jre,
        "--name",
        &name,
        "--load",
        "--progress",
        "plain",
    ]);
    assert!(built.ok(), "{built:#?}");
    assert!(built.stdout.contains(&format!("Loaded image {name}:1.0")), "{built:#?}");
    let ran = docker(&["run", "--rm", &format!("{name}:1.0")]);
    let said = String::from_utf8_lossy(&ran.stdout);
    // The runtime stage runs the jar the build stage made, as the non-root user, and the
    // dependency step's cache mount was there for the package step.
    assert!(said.contains("java as 10001 runs /app/app.jar"), "{said}");
    assert!(said.contains("App.java") && said.contains("fetched"), "{said}");
    let _ = docker(&["rmi", "-f", &format!("{name}:1.0")]);
    user.run(&["backend", "stop"]).expect_ok();
}

/// Credentials come from the docker config, through the session's Auth service: a registry that
/// asks for a password refuses the push without them and takes it with them.
#[tokio::test(flavor = "multi_thread")]
async fn a_registry_that_asks_for_a_password_gets_the_one_in_the_docker_config() {
    let registry = Registry::with_password("builder", "s3cret-pass");
    let user = TestUser::new("build-auth");
    let port = registry.port.to_string();
    let context =
        Folder::new("build-auth", &[("Dockerfile", "FROM scratch\nCOPY hello.txt /\n"), ("hello.txt", "hi\n")]);
    user.run(&["backend", "start", "--allow-host-port", &port]).expect_ok();
    let image = format!("localhost:{port}/e2e/private:1");

    let refused = user.run(&["build", &context.arg(), "-t", &image, "--push", "--progress", "plain"]);
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    assert!(refused.stderr.to_lowercase().contains("unauthorized"), "{}", refused.stderr);
    assert!(!registry.repository_dir("e2e/private").exists());

    // As `docker login localhost:PORT` writes it.
    let config = serde_json::json!({"auths": {format!("localhost:{port}"): {"auth": "YnVpbGRlcjpzM2NyZXQtcGFzcw=="}}});
    std::fs::write(user.docker_config().join("config.json"), config.to_string()).expect("the docker config");
    let pushed = user.run(&["build", &context.arg(), "-t", &image, "--push", "--progress", "plain"]);
    assert!(pushed.ok(), "{pushed:#?}");
    assert!(pushed.stdout.contains(&format!("Pushed {image}")), "{pushed:#?}");
    assert!(registry.repository_dir("e2e/private").exists(), "nothing reached the registry");
    user.run(&["backend", "stop"]).expect_ok();
}

/// Files served over HTTP on the host's loopback, recording the paths asked for: a remote context
/// the backend fetches itself, through its sidecars, as `localhost:PORT`.
struct FileServer {
    port: u16,
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FileServer {
    fn start(files: Vec<(&'static str, Vec<u8>)>) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let port = assemble_testkit::free_port();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the file server listens");
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = asked.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                let path = request.split_whitespace().nth(1).unwrap_or_default().to_string();
                // The rest of the head, up to the empty line.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0 && line != "\r\n") {
                    line.clear();
                }
                record.lock().expect("the record").push(path.clone());
                let mut stream = &stream;
                let _ = match files.iter().find(|(name, _)| *name == path) {
                    Some((_, body)) => stream
                        .write_all(
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                                .as_bytes(),
                        )
                        .and_then(|_| stream.write_all(body)),
                    None => {
                        stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    }
                };
            }
        });
        Self { port, asked }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("the record").clone()
    }
}

/// A gzip tar of `folder`'s contents, made by the system's tar.
fn gzip_tar_of(folder: &Folder) -> Vec<u8> {
    let made = Command::new("tar").args(["-C", &folder.arg(), "-czf", "-", "."]).output().expect("tar runs");
    assert!(made.status.success(), "{made:?}");
    made.stdout
}

/// PATH and -f as buildx reads them: `-` with a Dockerfile (no context) or a tar of the context on
/// standard input, `-f -` with a folder, and HTTP URLs (a tar, a bare Dockerfile) that the backend
/// fetches itself through the sidecars, never the CLI.
#[tokio::test(flavor = "multi_thread")]
async fn standard_input_and_urls_are_build_contexts_as_in_buildx() {
    let user = TestUser::new("build-inputs");
    let remote = Folder::new(
        "inputs-remote",
        &[("Dockerfile", "FROM scratch\nCOPY . /ctx/\n"), ("remote.txt", "fetched-by-the-backend")],
    );
    let bare_dockerfile = "FROM scratch\nCOPY <<EOF /bare.txt\nbare-dockerfile-from-a-url\nEOF\n";
    let server = FileServer::start(vec![
        ("/ctx.tgz", gzip_tar_of(&remote)),
        ("/Dockerfile", bare_dockerfile.as_bytes().to_vec()),
    ]);
    user.run(&["backend", "start", "--allow-host-port", &server.port.to_string()]).expect_ok();
    let inputs = user.scratch("stdin");
    let with_stdin = |what: &str, args: &[&str], bytes: &[u8]| {
        let file = inputs.join(what);
        std::fs::write(&file, bytes).expect("standard input's file");
        let mut command = user.command(args);
        command.stdin(std::fs::File::open(&file).expect("standard input"));
        assemble_testkit::run_bounded(command)
    };
    // Each output's folder, made once (scratch empties it).
    let outs: std::collections::HashMap<&str, std::path::PathBuf> =
        ["piped", "tar", "file-piped", "url", "bare"].into_iter().map(|what| (what, user.scratch(what))).collect();
    let out = |what: &str| format!("type=local,dest={}", outs[what].display());
    let read = |what: &str, file: &str| std::fs::read_to_string(outs[what].join(file));

    // `-`: a Dockerfile and an empty context.
    let piped = with_stdin(
        "piped",
        &["build", "-", "--progress", "plain", "-o", &out("piped")],
        b"FROM scratch\nCOPY . /ctx/\nCOPY <<EOF /from-stdin.txt\npiped-dockerfile\nEOF\n",
    );
    assert!(piped.ok(), "{piped:#?}");
    assert_eq!(read("piped", "from-stdin.txt").expect("the file"), "piped-dockerfile\n");
    let sent = std::fs::read_dir(outs["piped"].join("ctx")).expect("the context's copy").count();
    assert_eq!(sent, 0, "no context was sent");

    // `-`: a gzip tar of the context, its .dockerignore obeyed.
    let tarred = Folder::new(
        "inputs-tar",
        &[
            ("Dockerfile", "FROM scratch\nCOPY . /ctx/\n"),
            (".dockerignore", "secret.txt\n"),
            ("secret.txt", "stays home"),
            ("sub/in.txt", "from-the-tar"),
        ],
    );
    let from_tar = with_stdin("tar", &["build", "-", "-o", &out("tar")], &gzip_tar_of(&tarred));
    assert!(from_tar.ok(), "{from_tar:#?}");
    assert_eq!(read("tar", "ctx/sub/in.txt").expect("the file"), "from-the-tar");
    assert!(!outs["tar"].join("ctx/secret.txt").exists(), "the tar's .dockerignore is obeyed");

    // `-f -`: standard input's Dockerfile, the folder's files (its own Dockerfile would fail).
    let folder = Folder::new(
        "inputs-folder",
        &[("Dockerfile", "FROM scratch\nCOPY not-here.txt /\n"), ("a.txt", "from-the-folder")],
    );
    let file_piped = with_stdin(
        "file-piped",
        &["build", &folder.arg(), "-f", "-", "-o", &out("file-piped")],
        b"FROM scratch\nCOPY a.txt /a.txt\n",
    );
    assert!(file_piped.ok(), "{file_piped:#?}");
    assert_eq!(read("file-piped", "a.txt").expect("the file"), "from-the-folder");

    // A URL: the backend fetches the tar (or the bare Dockerfile); the CLI sends no files.
    let url = format!("http://localhost:{}/ctx.tgz", server.port);
    let fetched = user.run(&["build", &url, "--progress", "plain", "-o", &out("url")]);
    assert!(fetched.ok(), "{fetched:#?}");
    assert_eq!(read("url", "ctx/remote.txt").expect("the file"), "fetched-by-the-backend");
    let bare = user.run(&["build", &format!("http://localhost:{}/Dockerfile", server.port), "-o", &out("bare")]);
    assert!(bare.ok(), "{bare:#?}");
    assert_eq!(read("bare", "bare.txt").expect("the file"), "bare-dockerfile-from-a-url\n");
    let asked = server.asked();
    assert!(asked.iter().any(|p| p == "/ctx.tgz") && asked.iter().any(|p| p == "/Dockerfile"), "{asked:?}");
    let missing = user.run(&["build", &format!("http://localhost:{}/nothing.tgz", server.port)]);
    assert_eq!(missing.code, Some(1), "{missing:#?}");
    let last = missing.stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("Error: ") && last.contains("404"), "{last}");

    // Bad uses of standard input: one sentence, nothing built.
    let both = with_stdin("both", &["build", "-", "-f", "-"], b"FROM scratch\n");
    assert_eq!(both.code, Some(1), "{both:#?}");
    assert!(both
        .stderr
        .contains("standard input can be the build context (PATH -) or the Dockerfile (-f -), not both"));
    let empty = with_stdin("empty", &["build", "-"], b"");
    assert_eq!(empty.code, Some(1), "{empty:#?}");
    assert!(empty.stderr.contains("PATH - reads standard input, but it is empty"), "{}", empty.stderr);
    user.run(&["backend", "stop"]).expect_ok();
}

/// `--check` and `--call` ask the Dockerfile frontend instead of building, through BuildKit's
/// gateway as buildx asks it: the answer on stdout is the same as real buildx's on the same
/// backend, a check with warnings fails (unless ignorestatus), a clean one says so, a call builds
/// nothing and leaves no history record, and a call with an output is refused.
#[tokio::test(flavor = "multi_thread")]
async fn check_and_call_answer_as_buildx_does_and_build_nothing() {
    let user = TestUser::new("build-call");
    assert!(
        user.has_buildx(),
        "{} is missing: run scripts/fetch-buildx.sh",
        assemble_testkit::buildx_plugin().display()
    );
    let warned = Folder::new(
        "call-warned",
        &[
            ("Dockerfile", "FROM scratch as base\nCOPY a.txt /\nFROM base AS final\nCOPY a.txt /b.txt\n"),
            ("a.txt", "a"),
        ],
    );
    let clean = Folder::new("call-clean", &[("Dockerfile", "FROM scratch\nCOPY a.txt /\n"), ("a.txt", "a")]);
    user.run(&["backend", "start"]).expect_ok();
    let ours = |folder: &Folder, call: &[&str]| user.run(&[&["build", &folder.arg()], call].concat());
    let theirs = |folder: &Folder, call: &[&str]| {
        user.docker(&[&["buildx", "build", "--builder", "assemble"], call, &[&folder.arg()]].concat())
    };

    let checked = ours(&warned, &["--check"]);
    assert_eq!(checked.code, Some(1), "{checked:#?}");
    assert!(checked.stdout.starts_with("Check complete, 1 warning has been found!\n"), "{checked:#?}");
    assert!(checked.stdout.contains("WARNING: FromAsCasing"), "{checked:#?}");
    let buildx_checked = theirs(&warned, &["--check"]);
    assert_eq!(buildx_checked.code, Some(1), "{buildx_checked:#?}");
    assert_eq!(checked.stdout, buildx_checked.stdout, "the same answer as buildx's");
    let last = checked.stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Error: --call check answered with status 1") && last.contains("ignorestatus=true"),
        "{last}"
    );
    let ignored = ours(&warned, &["--call", "check,ignorestatus=true"]);
    assert!(ignored.ok() && ignored.stdout == checked.stdout, "{ignored:#?}");
    let as_json = ours(&warned, &["--call", "check,format=json"]);
    let json: serde_json::Value = serde_json::from_str(&as_json.stdout).expect("the check's JSON");
    assert_eq!(json["warnings"][0]["ruleName"], "FromAsCasing", "{json}");

    let clean_check = ours(&clean, &["--check"]);
    assert!(clean_check.ok(), "{clean_check:#?}");
    assert_eq!(clean_check.stdout, "Check complete, no warnings found.\n");
    let targets = ours(&warned, &["--call", "targets"]);
    assert!(targets.ok(), "{targets:#?}");
    assert!(targets.stdout.contains("base") && targets.stdout.contains("final (default)"), "{targets:#?}");
    assert_eq!(targets.stdout, theirs(&warned, &["--call", "targets"]).expect_ok().stdout);

    // Nothing was built or recorded: calls are internal, as buildx's.
    let history = user.run(&["backend", "builds", "--format", "json"]).expect_ok();
    assert_eq!(history.stdout.lines().filter(|l| l.starts_with('{')).count(), 0, "{history:#?}");
    let refused = ours(&clean, &["--check", "--load"]);
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    assert!(refused.stderr.contains("builds nothing, so it has no image to push or load"), "{refused:#?}");
    // A Dockerfile the frontend cannot read: one sentence, not a hang (the held build is dropped).
    let broken = Folder::new("call-broken", &[("Dockerfile", "FROM scratch\nFORM x\n")]);
    let broken_check = ours(&broken, &["--check"]);
    let last = broken_check.stderr.trim_end().lines().last().unwrap_or_default();
    assert_eq!(broken_check.code, Some(1), "{broken_check:#?}");
    assert!(last.contains("could not read the Dockerfile") && last.contains("unknown instruction: FORM"), "{last}");
    let broken_targets = ours(&broken, &["--call", "targets"]);
    let last = broken_targets.stderr.trim_end().lines().last().unwrap_or_default();
    assert_eq!(broken_targets.code, Some(1), "{broken_targets:#?}");
    assert!(last.contains("unknown instruction: FORM"), "{last}");
    let unknown = ours(&clean, &["--call", "tests"]);
    assert!(unknown.stderr.contains("give build, check, outline or targets"), "{unknown:#?}");
    user.run(&["backend", "stop"]).expect_ok();
}
