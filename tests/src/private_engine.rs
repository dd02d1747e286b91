//! A Docker Engine of the tests' own: a second dockerd with its own socket, data root, exec root,
//! pidfile and bridge (`--iptables=false`), beside the machine's engine. The soak restarts it; the
//! engine tests reach it through contexts, TLS and ssh. Only the dockerd started here is ever
//! signalled, by its PID.
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use bollard::Docker;
use futures_util::{StreamExt, TryStreamExt};

const UP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a private engine lives. Its paths and bridge are fixed, so one runs per spec at a time
/// (a file lock waits for the other).
#[derive(Debug, Clone)]
pub struct EngineSpec {
    /// Socket, exec root, pidfile, log and lock live here.
    pub root: PathBuf,
    /// Kept between runs, so that images are loaded once.
    pub data_root: PathBuf,
    /// The engine's own bridge and its address.
    pub bridge: &'static str,
    pub bridge_address: &'static str,
    /// Also listen on `tcp://127.0.0.1:PORT` with `--tlsverify` and these server files.
    pub tls: Option<TlsListener>,
}

/// A TLS listener: the port and the CA, certificate and key the engine serves and checks with.
#[derive(Debug, Clone)]
pub struct TlsListener {
    pub port: u16,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl EngineSpec {
    /// The soak's engine.
    pub fn soak() -> Self {
        Self {
            root: "/run/assemble-soak".into(),
            data_root: "/var/lib/assemble-soak".into(),
            bridge: "asoak0",
            bridge_address: "172.29.0.1/24",
            tls: None,
        }
    }

    /// The engine tests' engine ("another engine": Docker Desktop's, a remote one).
    pub fn engine_tests() -> Self {
        Self {
            root: "/run/assemble-e2e-engine".into(),
            data_root: "/var/lib/assemble-e2e-engine".into(),
            bridge: "ae2e0",
            bridge_address: "172.30.0.1/24",
            tls: None,
        }
    }

    /// The same engine, also listening on TCP with TLS.
    pub fn with_tls(mut self, tls: TlsListener) -> Self {
        self.tls = Some(tls);
        self
    }
}

pub struct PrivateEngine {
    child: Option<Child>,
    spec: EngineSpec,
    /// `unix://…/docker.sock`.
    pub host: String,
    _lock: std::fs::File,
}

impl PrivateEngine {
    /// Starts the engine, or says why this machine cannot (not root, no bridge, no dockerd).
    pub async fn start(spec: EngineSpec) -> Result<Self, String> {
        let root = spec.root.clone();
        std::fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
        let lock_path = root.with_extension("lock");
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
        if lock.try_lock().is_err() {
            println!("another run is using the engine at {}; waiting for it to finish", root.display());
            lock.lock().map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
        }
        ensure_bridge(spec.bridge, spec.bridge_address)?;
        let host = format!("unix://{}", root.join("docker.sock").display());
        let mut engine = Self { child: None, spec, host, _lock: lock };
        engine.launch().await?;
        Ok(engine)
    }

    /// The socket's path.
    pub fn socket(&self) -> PathBuf {
        self.spec.root.join("docker.sock")
    }

    /// The bridge's gateway address, as containers on this engine see the host.
    pub fn gateway(&self) -> &str {
        self.spec.bridge_address.split('/').next().unwrap_or(self.spec.bridge_address)
    }

    pub async fn docker(&self) -> Result<Docker, String> {
        let docker = Docker::connect_with_unix(&self.host, 30, bollard::API_DEFAULT_VERSION)
            .map_err(|e| format!("connecting to {}: {e}", self.host))?;
        docker.negotiate_version().await.map_err(|e| format!("negotiating with {}: {e}", self.host))
    }

    fn log_path(&self) -> PathBuf {
        self.spec.root.join("dockerd.log")
    }

    async fn launch(&mut self) -> Result<(), String> {
        let log_path = self.log_path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
        let log_err = log.try_clone().map_err(|e| format!("{}: {e}", log_path.display()))?;
        let root = &self.spec.root;
        let mut command = Command::new("dockerd");
        command
            .arg("--data-root")
            .arg(&self.spec.data_root)
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .args(["-H", &self.host])
            .args(["--bridge", self.spec.bridge, "--iptables=false", "--ip-masq=false"]);
        if let Some(tls) = &self.spec.tls {
            command
                .args(["-H", &format!("tcp://127.0.0.1:{}", tls.port), "--tlsverify"])
                .arg("--tlscacert")
                .arg(&tls.ca)
                .arg("--tlscert")
                .arg(&tls.cert)
                .arg("--tlskey")
                .arg(&tls.key);
        }
        let child = command
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
                return Err(format!("dockerd exited with {status}; see {}", log_path.display()));
            }
            if Instant::now() > deadline {
                return Err(format!("dockerd did not answer within {UP_TIMEOUT:?}; see {}", log_path.display()));
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
                step.map_err(|e| format!("loading {image} into the engine at {}: {e}", self.host))?;
            }
        }
        Ok(())
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if let Err(message) = self.terminate() {
            eprintln!("private engine: {message}");
        }
        let _ = Command::new("ip").args(["link", "delete", self.spec.bridge]).status();
    }
}

fn ensure_bridge(bridge: &str, address: &str) -> Result<(), String> {
    let exists = Command::new("ip").args(["link", "show", bridge]).output().is_ok_and(|o| o.status.success());
    let steps: Vec<Vec<&str>> = if exists {
        vec![vec!["link", "set", bridge, "up"]]
    } else {
        vec![
            vec!["link", "add", "name", bridge, "type", "bridge"],
            vec!["addr", "add", address, "dev", bridge],
            vec!["link", "set", bridge, "up"],
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

/// Certificates made with the openssl CLI, as a user makes them for a TLS engine
/// (docs.docker.com "Protect the Docker daemon socket"): a CA, a server certificate for 127.0.0.1
/// and localhost, and a client certificate, all signed by the CA. Plus a second, unrelated CA.
pub struct Certificates {
    pub dir: PathBuf,
}

impl Certificates {
    /// Makes them in `dir` (emptied first).
    pub fn make(dir: &Path) -> Result<Self, String> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let certs = Self { dir: dir.to_path_buf() };
        certs.ca("ca")?;
        certs.ca("other-ca")?;
        certs.signed("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")?;
        certs.signed("client", "extendedKeyUsage=clientAuth\n")?;
        Ok(certs)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The server side, for [`EngineSpec::with_tls`].
    pub fn listener(&self, port: u16) -> TlsListener {
        TlsListener {
            port,
            ca: self.path("ca.pem"),
            cert: self.path("server-cert.pem"),
            key: self.path("server-key.pem"),
        }
    }

    /// Writes docker's client file names (`ca.pem`, `cert.pem`, `key.pem`) into `dir`, with the CA
    /// file `ca` (`ca.pem` or `other-ca.pem`).
    pub fn client_files(&self, dir: &Path, ca: &str) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        for (from, to) in [(ca, "ca.pem"), ("client-cert.pem", "cert.pem"), ("client-key.pem", "key.pem")] {
            std::fs::copy(self.path(from), dir.join(to)).map_err(|e| format!("copying {from}: {e}"))?;
        }
        Ok(())
    }

    fn ca(&self, name: &str) -> Result<(), String> {
        let key = self.path(&format!("{name}-key.pem"));
        self.openssl(&["genrsa", "-out", &key.to_string_lossy(), "2048"])?;
        self.openssl(&[
            "req",
            "-new",
            "-x509",
            "-days",
            "2",
            "-key",
            &key.to_string_lossy(),
            "-subj",
            &format!("/CN=assemble e2e {name}"),
            "-out",
            &self.path(&format!("{name}.pem")).to_string_lossy(),
        ])
    }

    fn signed(&self, name: &str, extensions: &str) -> Result<(), String> {
        let key = self.path(&format!("{name}-key.pem")).to_string_lossy().into_owned();
        let csr = self.path(&format!("{name}.csr")).to_string_lossy().into_owned();
        let ext = self.path(&format!("{name}.ext"));
        std::fs::write(&ext, extensions).map_err(|e| format!("writing {}: {e}", ext.display()))?;
        self.openssl(&["genrsa", "-out", &key, "2048"])?;
        self.openssl(&["req", "-new", "-key", &key, "-subj", &format!("/CN={name}"), "-out", &csr])?;
        self.openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &csr,
            "-CA",
            &self.path("ca.pem").to_string_lossy(),
            "-CAkey",
            &self.path("ca-key.pem").to_string_lossy(),
            "-CAcreateserial",
            "-extfile",
            &ext.to_string_lossy(),
            "-out",
            &self.path(&format!("{name}-cert.pem")).to_string_lossy(),
        ])
    }

    fn openssl(&self, args: &[&str]) -> Result<(), String> {
        let output = Command::new("openssl")
            .args(args)
            .output()
            .map_err(|e| format!("running openssl (apt-get install openssl): {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
        }
    }
}
