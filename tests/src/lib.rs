//! The end-to-end harness: unique users so runs never collide with each other or with a
//! developer's own backend, cleanup that runs even when a test fails, a real registry on the
//! host, and the real `assemble` binary.
use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

pub mod authz;
mod free_port;
pub mod flood;
pub mod network;
pub mod private_engine;
pub mod sshd;

pub use free_port::free_port;

use assemble_core::{
    engine::{Engine, EngineChoice},
    Names, Place,
};
use bollard::{
    exec::{CreateExecOptions, StartExecResults},
    query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder},
    Docker,
};
use futures_util::StreamExt;

/// The BuildKit image the tests run (made by scripts/build-buildkit-image.sh).
pub fn test_image() -> String {
    std::env::var("ASSEMBLE_TEST_IMAGE").unwrap_or_else(|_| "assemble-buildkit:v0.25-debian".into())
}

/// The rootless BuildKit image the tests run (made by scripts/build-buildkit-rootless-image.sh).
pub fn rootless_test_image() -> String {
    std::env::var("ASSEMBLE_TEST_ROOTLESS_IMAGE").unwrap_or_else(|_| "assemble-buildkit:v0.25-debian-rootless".into())
}

/// The test image's repository: its name without the tag (`assemble-buildkit` for
/// `assemble-buildkit:v0.25-debian`).
pub fn test_image_repository() -> String {
    let image = test_image();
    let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[name_start..].rfind(':') {
        Some(colon) => image[..name_start + colon].to_string(),
        None => image,
    }
}

/// The platform this machine runs natively, as BuildKit names it first among a worker's platforms.
pub fn native_platform() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "linux/amd64",
        "aarch64" => "linux/arm64",
        "arm" => "linux/arm/v7",
        "x86" => "linux/386",
        "riscv64" => "linux/riscv64",
        "powerpc64" => "linux/ppc64le",
        "s390x" => "linux/s390x",
        other => panic!("the tests do not know BuildKit's name for the {other} architecture"),
    }
}

/// An image with /bin/sh but no buildkitd: a backend made from it exits at once.
pub fn broken_backend_image() -> String {
    std::env::var("ASSEMBLE_TEST_SOCAT_IMAGE").unwrap_or_else(|_| "assemble-socat:debian".into())
}

/// The engine the tests run on: docker's default socket, the machine's own engine. Never the
/// caller's `DOCKER_HOST`, `DOCKER_CONTEXT` or current context: each test user has a docker config
/// of its own, in which the default context is this engine.
pub const MACHINE_ENGINE: &str = "unix:///var/run/docker.sock";

/// The machine's engine ([`MACHINE_ENGINE`]), or a panic that says how to get one.
pub async fn engine() -> Engine {
    match Engine::connect(&EngineChoice::host(MACHINE_ENGINE)).await {
        Ok(engine) => engine,
        Err(err) => panic!(
            "the end-to-end tests run on docker's default engine, {MACHINE_ENGINE}, which does not answer: {} \
             (scripts/setup.sh starts dockerd)",
            err.sentence(Place::CommandLine)
        ),
    }
}

/// The docker CLI on the machine's engine, whatever the caller's shell says.
pub fn docker_cli() -> Command {
    let mut command = Command::new("docker");
    clear_engine_environment(&mut command);
    command.args(["-H", MACHINE_ENGINE]);
    command
}

/// Removes the variables that would choose another engine or mode than the test asks for.
pub fn clear_engine_environment(command: &mut Command) {
    for name in
        ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS", "ASSEMBLE_BACKEND_SECURITY"]
    {
        command.env_remove(name);
    }
}

/// A scratch folder, removed with everything in it when the value drops.
pub fn scratch_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("assemble-e2e-{tag}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot make a scratch folder in {}: {e}", std::env::temp_dir().display()))
}

pub async fn docker() -> Docker {
    engine().await.docker().clone()
}

/// The output of one CLI run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    #[track_caller]
    pub fn expect_ok(self) -> Self {
        assert!(self.ok(), "command failed: {self:#?}");
        self
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A throw-away user: everything named after it is removed when it drops, pass or fail.
pub struct TestUser {
    pub names: Names,
    /// Holds the user's settings folder and docker config folder; removed on drop.
    home: tempfile::TempDir,
    volumes: Mutex<Vec<String>>,
    /// Other engines (unix sockets) the user's containers may be on, cleaned too.
    engines: Mutex<Vec<String>>,
}

impl TestUser {
    pub fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let user = format!("e2e-{tag}-{}-{n}", std::process::id());
        Self {
            names: Names::for_user(&user),
            home: scratch_dir(&user),
            volumes: Mutex::new(Vec::new()),
            engines: Mutex::new(Vec::new()),
        }
    }

    pub fn user(&self) -> &str {
        self.names.user()
    }

    /// A new, empty folder of this user's (`what` names it), removed with the user.
    pub fn scratch(&self, what: &str) -> PathBuf {
        let dir = self.home.path().join("scratch").join(what);
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(err) = std::fs::create_dir_all(&dir) {
            panic!("cannot make {}: {err}", dir.display());
        }
        dir
    }

    /// Volumes to remove at the end (ones the test or the product created for this user).
    pub fn own_volume(&self, name: &str) {
        self.volumes.lock().expect("volume list").push(name.to_string());
    }

    /// Cleans the engine at `host` (`unix://…`) too when the user drops.
    pub fn also_clean_on(&self, host: &str) {
        self.engines.lock().expect("engine list").push(host.to_string());
    }

    /// This user's own settings folder, so no test reads a developer's settings. Not made here:
    /// the product makes it when it saves.
    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join("settings")
    }

    /// This user's own docker config folder (contexts, buildx builders), with the tests' buildx
    /// as its CLI plugin when it was fetched (scripts/fetch-buildx.sh): the product registers
    /// builders there, never in the developer's `~/.docker`.
    pub fn docker_config(&self) -> PathBuf {
        // Beside the settings folder, not in it, because tests count what the product writes there.
        let dir = self.home.path().join("docker");
        let plugins = dir.join("cli-plugins");
        if let Err(err) = std::fs::create_dir_all(&plugins) {
            panic!("cannot make {}: {err}", plugins.display());
        }
        let link = plugins.join("docker-buildx");
        if buildx_plugin().exists() && !link.exists() {
            if let Err(err) = std::os::unix::fs::symlink(buildx_plugin(), &link) {
                panic!("cannot link buildx into {}: {err}", plugins.display());
            }
        }
        dir
    }

    /// `docker ARGS` on this user's docker config folder, bounded in time.
    pub fn docker(&self, args: &[&str]) -> Run {
        let mut command = Command::new("docker");
        clear_engine_environment(&mut command);
        command.arg("--config").arg(self.docker_config()).args(args).stdin(Stdio::null());
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        run_bounded(command)
    }

    /// `assemble ARGS` as this user, on the machine's engine (the default context of the user's own
    /// docker config), whatever the caller's shell says.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(assemble_binary());
        clear_engine_environment(&mut command);
        command
            .args(args)
            .env("ASSEMBLE_BACKEND_USER", self.user())
            .env("ASSEMBLE_BACKEND_IMAGE", test_image())
            .env("ASSEMBLE_CONFIG_DIR", self.config_dir())
            .env("DOCKER_CONFIG", self.docker_config())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `assemble ARGS` for this user, bounded in time.
    pub fn run(&self, args: &[&str]) -> Run {
        run_bounded(self.command(args))
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let prefix = self.names.backend();
        let volumes = self.volumes.lock().map(|v| v.clone()).unwrap_or_default();
        let engines = self.engines.lock().map(|e| e.clone()).unwrap_or_default();
        // Drop may run while a test's runtime unwinds: clean up on a runtime of our own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("cleanup runtime");
            runtime.block_on(async move {
                let docker = docker().await;
                remove_containers_named(&docker, &prefix).await;
                for volume in &volumes {
                    let _ = docker.remove_volume(volume, None::<bollard::query_parameters::RemoveVolumeOptions>).await;
                }
                for host in engines {
                    if let Ok(other) = Docker::connect_with_unix(&host, 30, bollard::API_DEFAULT_VERSION) {
                        remove_containers_named(&other, &prefix).await;
                        for volume in &volumes {
                            let _ = other
                                .remove_volume(volume, None::<bollard::query_parameters::RemoveVolumeOptions>)
                                .await;
                        }
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Removes every container whose name starts with `prefix` (tests only: ours or planted).
pub async fn remove_containers_named(docker: &Docker, prefix: &str) {
    for (id, _) in containers_named(docker, prefix).await {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        let _ = docker.remove_container(&id, Some(options)).await;
    }
}

/// `(id, name)` of every container, running or not, named `prefix` or `prefix-…` (any name after
/// a `prefix` that ends in `-`).
pub async fn containers_named(docker: &Docker, prefix: &str) -> Vec<(String, String)> {
    let filters = std::collections::HashMap::from([("name".to_string(), vec![prefix.to_string()])]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let list = docker.list_containers(Some(options)).await.expect("listing containers");
    let mut found: Vec<(String, String)> = list
        .into_iter()
        .filter_map(|c| {
            let name = c.names?.into_iter().next()?.trim_start_matches('/').to_string();
            // `prefix` or `prefix-…`: never another user's whose name only starts the same (…-1 and …-12).
            let ours = name == prefix
                || name.starts_with(&format!("{prefix}-"))
                || prefix.ends_with('-') && name.starts_with(prefix);
            ours.then(|| (c.id.unwrap_or_default(), name))
        })
        .collect();
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found
}

/// Whether the engine has the volume; any answer but "here it is" or "no such volume" fails the test.
pub async fn volume_exists(docker: &Docker, name: &str) -> bool {
    match docker.inspect_volume(name).await {
        Ok(_) => true,
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => false,
        Err(err) => panic!("cannot tell whether volume {name} exists: {err}"),
    }
}

/// The real buildx the tests use (scripts/fetch-buildx.sh puts it there).
pub fn buildx_plugin() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target").join("buildx").join("docker-buildx")
}

/// The `assemble` binary of this build (`cargo build --bins` makes it).
pub fn assemble_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let target_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    let binary = target_dir.join("assemble");
    assert!(binary.exists(), "{} is missing: run `cargo build --workspace --bins` before the tests", binary.display());
    binary
}

const COMMAND_TIMEOUT: Duration = Duration::from_secs(240);

/// Runs a command to its end, killing it if it outlives [`COMMAND_TIMEOUT`].
pub fn run_bounded(mut command: Command) -> Run {
    let mut child = command.spawn().expect("spawning a command");
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let readers =
        (std::thread::spawn(move || read_all(out.as_mut())), std::thread::spawn(move || read_all(err.as_mut())));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a command") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.and_then(|s| s.code()),
        stdout: readers.0.join().unwrap_or_default(),
        stderr: readers.1.join().unwrap_or_default(),
    }
}

fn read_all(stream: Option<&mut impl Read>) -> String {
    let mut text = String::new();
    if let Some(stream) = stream {
        let _ = stream.read_to_string(&mut text);
    }
    text
}

/// Runs a command in a container; returns its exit code and combined output.
pub async fn exec(docker: &Docker, container: &str, cmd: &[&str]) -> (i64, String) {
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("create exec");
    let mut output = String::new();
    if let StartExecResults::Attached { output: mut stream, .. } =
        docker.start_exec(&exec.id, None).await.expect("start exec")
    {
        while let Some(Ok(chunk)) = stream.next().await {
            output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
    }
    let code = docker.inspect_exec(&exec.id).await.expect("inspect exec").exit_code.unwrap_or(-1);
    (code, output)
}

/// Waits until BuildKit answers in `backend` (after a restart, say), or fails the test.
pub async fn wait_for_buildkit(docker: &Docker, backend: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, output) = exec(docker, backend, &["buildctl", "debug", "workers"]).await;
        if code == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "BuildKit in {backend} did not answer within 60 s: {output}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Builds `FROM scratch` + `COPY` inside the backend and pushes it to `reference`.
pub async fn build_and_push(docker: &Docker, backend: &str, reference: &str, content: &str) -> (i64, String) {
    let script = format!(
        "set -e; d=$(mktemp -d); echo '{content}' > $d/hello.txt; printf 'FROM scratch\\nCOPY hello.txt /\\n' > $d/Dockerfile; \
         buildctl build --progress=plain --frontend dockerfile.v0 --local context=$d --local dockerfile=$d \
         --output type=image,name={reference},push=true"
    );
    exec(docker, backend, &["sh", "-c", &script]).await
}

/// A real registry (Debian's docker-registry) on the host at 0.0.0.0:<free port>.
pub struct Registry {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// On all the host's addresses (0.0.0.0).
    pub fn start() -> Self {
        Self::start_on("0.0.0.0")
    }

    /// On the host's loopback only (127.0.0.1), as many local registries and dev servers are.
    pub fn loopback() -> Self {
        Self::start_on("127.0.0.1")
    }

    fn start_on(address: &str) -> Self {
        Self::start_with(address, None)
    }

    /// On all addresses, asking for this user and password (basic auth, an htpasswd file).
    pub fn with_password(user: &str, password: &str) -> Self {
        Self::start_with("0.0.0.0", Some((user, password)))
    }

    /// Where the registry keeps a repository's data: present once something was pushed to it.
    pub fn repository_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("data/docker/registry/v2/repositories").join(name)
    }

    fn start_with(address: &str, login: Option<(&str, &str)>) -> Self {
        let port = free_port();
        let folder = scratch_dir("registry");
        let dir = folder.path();
        let auth = match login {
            Some((user, password)) => {
                let hash = bcrypt::hash(password, 4).expect("bcrypt");
                let htpasswd = dir.join("htpasswd");
                std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("htpasswd");
                format!("auth:\n  htpasswd:\n    realm: assemble-e2e\n    path: {}\n", htpasswd.display())
            }
            None => String::new(),
        };
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}:{port}\n{auth}",
                dir.join("data").display()
            ),
        )
        .expect("registry config");
        let binary = std::env::var("ASSEMBLE_TEST_REGISTRY").unwrap_or_else(|_| "docker-registry".into());
        let child = Command::new(&binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary} (apt-get install docker-registry): {e}"));
        let registry = Self { child, port, dir: folder };
        let deadline = Instant::now() + Duration::from_secs(15);
        while registry.get("/v2/").is_none() {
            assert!(Instant::now() < deadline, "the registry on port {port} did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// The registry's catalog; a registry that does not answer with its catalog fails the test (so
    /// "not in the catalog" always means the registry said so).
    pub fn catalog(&self) -> String {
        match self.get("/v2/_catalog") {
            Some((200, body)) => body,
            other => panic!("the registry on port {} did not give its catalog: {other:?}", self.port),
        }
    }

    /// A plain HTTP/1.0 GET on loopback; the status and body, if the registry answered.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, body.to_string()))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the BuildKit image's static busybox into `dir`: a base for test images (`FROM scratch`
/// plus it), since no public registry is reachable here.
pub fn copy_busybox_into(dir: &std::path::Path) {
    let created = docker_cli().args(["create", &test_image(), "true"]).output().expect("docker create");
    assert!(created.status.success(), "docker create: {}", String::from_utf8_lossy(&created.stderr));
    let id = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let copied = docker_cli()
        .args(["cp", &format!("{id}:/bin/busybox"), &dir.join("busybox").to_string_lossy()])
        .output()
        .expect("docker cp");
    let _ = docker_cli().args(["rm", "-f", &id]).output();
    assert!(copied.status.success(), "docker cp: {}", String::from_utf8_lossy(&copied.stderr));
}

/// A folder of files made by a test (`name` → text; a name ending in `/` is an empty folder),
/// removed when it drops.
pub struct Folder {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Folder {
    pub fn new(tag: &str, files: &[(&str, &str)]) -> Self {
        let dir = scratch_dir(tag);
        let path = dir.path().to_path_buf();
        for (name, text) in files {
            let file = path.join(name);
            if let Some(folder) = name.strip_suffix('/') {
                std::fs::create_dir_all(path.join(folder)).expect("make a folder");
            } else {
                std::fs::create_dir_all(file.parent().expect("a parent")).expect("make a folder");
                std::fs::write(&file, text).expect("write a file");
            }
        }
        Self { path, _dir: dir }
    }

    pub fn arg(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}


