//! The soak's own Docker Engine: a second dockerd with its own socket, data root, exec root and
//! bridge, so that stopping and restarting it touches nothing but the soak. Only the dockerd this
//! module started is ever signalled, by its PID.
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use bollard::Docker;
use futures_util::{StreamExt, TryStreamExt};

const ROOT: &str = "/run/assemble-soak";
/// Kept between runs so the images need loading only once.
const DATA_ROOT: &str = "/var/lib/assemble-soak";
const BRIDGE: &str = "asoak0";
const BRIDGE_ADDRESS: &str = "172.29.0.1/24";
const UP_TIMEOUT: Duration = Duration::from_secs(60);

pub struct PrivateEngine {
    child: Option<Child>,
    pub host: String,
    /// One soak engine per machine at a time: its paths and bridge are fixed.
    _lock: std::fs::File,
}

impl PrivateEngine {
    /// Starts the engine, or says why this machine cannot (not root, no bridge, no dockerd).
    pub async fn start() -> Result<Self, String> {
        std::fs::create_dir_all(ROOT).map_err(|e| format!("creating {ROOT}: {e}"))?;
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(format!("{ROOT}.lock"))
            .map_err(|e| format!("opening {ROOT}.lock: {e}"))?;
        if lock.try_lock().is_err() {
            println!("soak: another soak is using the soak engine; waiting for it to finish");
            lock.lock().map_err(|e| format!("locking {ROOT}.lock: {e}"))?;
        }
        ensure_bridge()?;
        let mut engine = Self { child: None, host: format!("unix://{ROOT}/docker.sock"), _lock: lock };
        engine.launch().await?;
        Ok(engine)
    }

    pub async fn docker(&self) -> Result<Docker, String> {
        let docker = Docker::connect_with_unix(&self.host, 30, bollard::API_DEFAULT_VERSION)
            .map_err(|e| format!("connecting to {}: {e}", self.host))?;
        docker.negotiate_version().await.map_err(|e| format!("negotiating with {}: {e}", self.host))
    }

    async fn launch(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{ROOT}/dockerd.log"))
            .map_err(|e| format!("opening the soak engine's log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("soak engine log: {e}"))?;
        let child = Command::new("dockerd")
            .args(["--data-root", DATA_ROOT, "--exec-root", &format!("{ROOT}/exec")])
            .args(["--pidfile", &format!("{ROOT}/dockerd.pid"), "-H", &self.host])
            .args(["--bridge", BRIDGE, "--iptables=false", "--ip-masq=false"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("starting dockerd: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + UP_TIMEOUT;
        loop {
            if let Ok(docker) = self.docker().await {
                if docker.ping().await.is_ok() {
                    return Ok(());
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!("dockerd exited with {status}; see {ROOT}/dockerd.log"));
            }
            if Instant::now() > deadline {
                return Err(format!("dockerd did not answer within {UP_TIMEOUT:?}; see {ROOT}/dockerd.log"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the engine as a system shutdown would (SIGTERM, containers stopped), then starts it.
    pub async fn restart(&mut self) -> Result<Duration, String> {
        let began = Instant::now();
        self.terminate()?;
        self.launch().await?;
        Ok(began.elapsed())
    }

    fn terminate(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + UP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("dockerd (pid {pid}) did not stop within {UP_TIMEOUT:?}; killed it"));
                }
            }
        }
    }

    /// Copies `images` from the machine's engine when this engine lacks them.
    pub async fn load_images(&self, from: &Docker, images: &[&str]) -> Result<(), String> {
        let docker = self.docker().await?;
        for image in images {
            if docker.inspect_image(image).await.is_ok() {
                continue;
            }
            let tar: Vec<u8> = from
                .export_image(image)
                .map_ok(|bytes| bytes.to_vec())
                .try_concat()
                .await
                .map_err(|e| format!("exporting {image} from the machine's engine: {e}"))?;
            let options = bollard::query_parameters::ImportImageOptionsBuilder::default().build();
            let mut stream = docker.import_image(options, bollard::body_full(tar.into()), None);
            while let Some(step) = stream.next().await {
                step.map_err(|e| format!("loading {image} into the soak engine: {e}"))?;
            }
        }
        Ok(())
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if let Err(message) = self.terminate() {
            eprintln!("assemble-soak: {message}");
        }
        let _ = Command::new("ip").args(["link", "delete", BRIDGE]).status();
    }
}

fn ensure_bridge() -> Result<(), String> {
    let exists = Command::new("ip").args(["link", "show", BRIDGE]).output().is_ok_and(|o| o.status.success());
    let steps: Vec<Vec<&str>> = if exists {
        vec![vec!["link", "set", BRIDGE, "up"]]
    } else {
        vec![
            vec!["link", "add", "name", BRIDGE, "type", "bridge"],
            vec!["addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE],
            vec!["link", "set", BRIDGE, "up"],
        ]
    };
    for step in steps {
        let output = Command::new("ip").args(&step).output().map_err(|e| format!("running ip: {e}"))?;
        if !output.status.success() {
            return Err(format!("ip {} failed: {}", step.join(" "), String::from_utf8_lossy(&output.stderr).trim()));
        }
    }
    Ok(())
}
