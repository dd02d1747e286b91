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

/// Where a private engine lives. Its paths and bridge name are fixed, so one runs per spec at a
/// time (a file lock waits for the other). The bridge's addresses are chosen when it is made, from
/// a range that nothing on the machine uses (see [`free_bridge_range`]).
#[derive(Debug, Clone)]
pub struct EngineSpec {
    /// Socket, exec root, pidfile, log and lock live here.
    pub root: PathBuf,
    /// Kept between runs, so that images are loaded once; unless `fresh`.
    pub data_root: PathBuf,
    /// Start from an empty data root, removed again when the engine stops: an engine as a fresh
    /// machine has it (no images, networks exactly as dockerd makes them on its first start).
    pub fresh: bool,
    /// The engine's own bridge.
    pub bridge: &'static str,
    /// Also listen on `tcp://127.0.0.1:PORT` with `--tlsverify` and these server files.
    pub tls: Option<TlsListener>,
    /// `--authorization-plugin=NAME`: the engine asks this plugin about every request.
    pub authorization_plugin: Option<String>,
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
            fresh: false,
            bridge: "asoak0",
            tls: None,
            authorization_plugin: None,
        }
    }

    /// The soak's second engine: the engine of its node (`nodes add --context soak2`).
    pub fn soak_node() -> Self {
        Self {
            root: "/run/assemble-soak2".into(),
            data_root: "/var/lib/assemble-soak2".into(),
            fresh: false,
            bridge: "asoak1",
            tls: None,
            authorization_plugin: None,
        }
    }

    /// The engine tests' engine ("another engine": Docker Desktop's, a remote one).
    pub fn engine_tests() -> Self {
        Self {
            root: "/run/assemble-e2e-engine".into(),
            data_root: "/var/lib/assemble-e2e-engine".into(),
            fresh: false,
            bridge: "ae2e0",
            tls: None,
            authorization_plugin: None,
        }
    }

    /// An engine started for the first time, as on a fresh machine: its own data root, made empty
    /// and removed at the end.
    pub fn fresh() -> Self {
        Self {
            root: "/run/assemble-e2e-fresh".into(),
            data_root: "/var/lib/assemble-e2e-fresh".into(),
            fresh: true,
            bridge: "ae2e1",
            tls: None,
            authorization_plugin: None,
        }
    }

    /// An engine whose requests an authorization plugin judges (a policy; see crate::authz).
    pub fn authorized_by(plugin: &str) -> Self {
        Self {
            root: "/run/assemble-e2e-authz".into(),
            data_root: "/var/lib/assemble-e2e-authz".into(),
            fresh: false,
            bridge: "ae2e2",
            tls: None,
            authorization_plugin: Some(plugin.to_string()),
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
    /// The bridge's own address: the host, as containers on this engine see it.
    gateway: String,
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
        if spec.fresh {
            remove_data_root(&spec.data_root)?;
        }
        ensure_bridge(spec.bridge)?;
        let host = format!("unix://{}", root.join("docker.sock").display());
        let mut engine = Self { child: None, spec, host, gateway: String::new(), _lock: lock };
        engine.launch().await?;
        engine.gateway = bridge_address(engine.spec.bridge)?;
        Ok(engine)
    }

    /// [`PrivateEngine::start`], then copies `images` into it from the machine's engine (see
    /// [`PrivateEngine::load_images`]).
    pub async fn start_with_images(spec: EngineSpec, images: &[&str]) -> Result<Self, String> {
        let machine = crate::machine::connect_machine().await?;
        let engine = Self::start(spec).await?;
        engine.load_images(machine.docker(), images).await?;
        Ok(engine)
    }

    /// The socket's path.
    pub fn socket(&self) -> PathBuf {
        self.spec.root.join("docker.sock")
    }

    /// The bridge's gateway address, as containers on this engine see the host.
    pub fn gateway(&self) -> &str {
        &self.gateway
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
            .args(["--bridge", self.spec.bridge, "--iptables=false", "--ip-masq=false"])
            .args(address_bridge(&self.spec)?);
        if let Some(plugin) = &self.spec.authorization_plugin {
            command.arg(format!("--authorization-plugin={plugin}"));
        }
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

    /// Stops the engine as a system shutdown would (SIGTERM), leaving it down until
    /// [`PrivateEngine::restart`]: an engine that does not answer.
    pub fn stop(&mut self) -> Result<(), String> {
        self.terminate()
    }

    /// Freezes the engine's daemon (SIGSTOP): its socket still accepts, and nothing answers, as
    /// an engine that hangs. [`PrivateEngine::resume`] thaws it; so does stopping it.
    pub fn pause(&self) -> Result<(), String> {
        self.signal("-STOP")
    }

    /// Kills the engine's daemon outright (SIGKILL, as a crash or a power cut would): nothing is
    /// stopped in order, and its socket refuses from then on. [`PrivateEngine::restart`] starts
    /// it again.
    pub fn kill(&mut self) -> Result<(), String> {
        self.signal("-KILL")?;
        // Reaped and forgotten, so no later signal can reach another process given its PID.
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        Ok(())
    }

    /// Thaws an engine that [`PrivateEngine::pause`] froze.
    pub fn resume(&self) -> Result<(), String> {
        self.signal("-CONT")
    }

    fn signal(&self, which: &str) -> Result<(), String> {
        let Some(child) = &self.child else { return Err("the engine is not running".into()) };
        let pid = child.id().to_string();
        match Command::new("kill").args([which, &pid]).status() {
            Ok(status) if status.success() => Ok(()),
            other => Err(format!("kill {which} {pid}: {other:?}")),
        }
    }

    fn terminate(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let pid = child.id().to_string();
        // A paused engine hears SIGTERM only once it runs again.
        let _ = Command::new("kill").args(["-CONT", &pid]).status();
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
        let _ = iptables("-D", &forward_rule(self.spec.bridge));
        if self.spec.fresh {
            if let Err(message) = remove_data_root(&self.spec.data_root) {
                eprintln!("private engine: {message}");
            }
        }
    }
}

/// Empties a fresh engine's data root (its engine is stopped: we hold its lock).
fn remove_data_root(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(format!("removing the fresh engine's data root {}: {err}", dir.display())),
    }
}

/// Makes the bridge when it is missing, and lets containers on it talk to each other, as on any
/// engine's bridge: the machine's dockerd set the FORWARD policy to DROP and bridged traffic passes
/// it, and this engine runs with `--iptables=false`, so it would not add the ACCEPT rule dockerd
/// adds for its own bridge.
fn ensure_bridge(bridge: &str) -> Result<(), String> {
    if ip(&["link", "show", bridge]).is_err() {
        ip(&["link", "add", "name", bridge, "type", "bridge"])?;
    }
    ip(&["link", "set", bridge, "up"])?;
    let rule = forward_rule(bridge);
    if iptables("-C", &rule).is_err() {
        iptables("-I", &rule)?;
    }
    Ok(())
}

/// The rule that lets containers on `bridge` reach each other.
fn forward_rule(bridge: &str) -> [&str; 7] {
    ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]
}

fn iptables(action: &str, rule: &[&str]) -> Result<(), String> {
    let output = Command::new("iptables")
        .arg(action)
        .args(rule)
        .output()
        .map_err(|e| format!("running iptables (apt-get install iptables): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("iptables {action} {} failed: {}", rule.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// How the bridge gets its address, when it has none yet: a /24 nothing on the machine uses
/// ([`free_bridge_range`]). A fresh engine's dockerd picks it itself from that pool, as dockerd
/// does for `docker0` on a fresh machine (the IPAM config then has no gateway); else we give it to
/// the bridge. Never the pool on an engine that ran before: dockerd 20.10 then deletes the
/// interface `docker0`, the machine engine's bridge, when it clears its stale default network.
fn address_bridge(spec: &EngineSpec) -> Result<Vec<String>, String> {
    if bridge_address(spec.bridge).is_ok() {
        return Ok(Vec::new());
    }
    let (network, prefix) = free_bridge_range(&ip(&["-4", "-o", "addr", "show"])?, &ip(&["-4", "route", "show"])?)
        .ok_or("no free /24 in 10.199.0.0/16 for a private engine's bridge: every one is routed")?;
    let first_start = !spec.data_root.join("network").exists();
    if spec.fresh && first_start {
        let pool = format!("base={}/{prefix},size={prefix}", std::net::Ipv4Addr::from(network));
        return Ok(vec!["--default-address-pool".into(), pool]);
    }
    ip(&["addr", "add", &format!("{}/{prefix}", std::net::Ipv4Addr::from(network + 1)), "dev", spec.bridge])?;
    Ok(Vec::new())
}

/// The bridge's IPv4 address, once dockerd has given it one.
fn bridge_address(bridge: &str) -> Result<String, String> {
    first_inet(&ip(&["-4", "-o", "addr", "show", "dev", bridge])?)
        .ok_or_else(|| format!("dockerd gave the bridge {bridge} no IPv4 address"))
}

fn ip(args: &[&str]) -> Result<String, String> {
    let output =
        Command::new("ip").args(args).output().map_err(|e| format!("running ip (apt-get install iproute2): {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// The address in the first `inet A.B.C.D/N` of `ip -o addr` output.
fn first_inet(text: &str) -> Option<String> {
    let cidr = text.split_whitespace().skip_while(|word| *word != "inet").nth(1)?;
    cidr.split('/').next().map(str::to_string)
}

/// A /24 for a private bridge that overlaps no address or route on the machine: from
/// 10.199.0.0/16, outside Docker's default address pools (172.17.0.0/12 and 192.168.0.0/16), so
/// that no network the machine's engine makes later can collide with it either. `addresses` is
/// `ip -4 -o addr show`, `routes` is `ip -4 route show`.
pub fn free_bridge_range(addresses: &str, routes: &str) -> Option<(u32, u8)> {
    let mut used: Vec<(u32, u32)> = Vec::new();
    let words: Vec<&str> = addresses.split_whitespace().collect();
    for pair in words.windows(2) {
        if pair[0] == "inet" {
            used.extend(parse_cidr(pair[1]));
        }
    }
    for line in routes.lines() {
        let Some(destination) = line.split_whitespace().next() else { continue };
        if destination == "default" {
            continue;
        }
        used.extend(parse_cidr(destination));
    }
    (0u32..=255).map(|third| (u32::from_be_bytes([10, 199, third as u8, 0]), 24u8)).find(|&(network, prefix)| {
        let mask = prefix_mask(prefix);
        used.iter().all(|&(other, other_mask)| {
            let common = mask & other_mask;
            network & common != other & common
        })
    })
}

/// `A.B.C.D/N` (or a bare address, /32) as (network, mask).
fn parse_cidr(text: &str) -> Option<(u32, u32)> {
    let (address, prefix) = text.split_once('/').unwrap_or((text, "32"));
    let address: std::net::Ipv4Addr = address.parse().ok()?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
    let mask = prefix_mask(prefix);
    Some((u32::from(address) & mask, mask))
}

fn prefix_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn third_octet(range: Option<(u32, u8)>) -> Option<u8> {
        range.map(|(network, _)| network.to_be_bytes()[2])
    }

    #[test]
    fn a_bridge_range_avoids_every_address_and_route_on_the_machine() {
        let addresses = "1: lo    inet 127.0.0.1/8 scope host lo\n\
                         2: eth0    inet 10.199.0.7/24 brd 10.199.0.255 scope global eth0\n";
        let routes =
            "default via 192.0.2.1 dev eth0\n10.199.1.0/24 dev ae2e0 proto kernel\n10.199.2.0/23 via 1.2.3.4\n";
        assert_eq!(third_octet(free_bridge_range(addresses, routes)), Some(4));
        assert_eq!(third_octet(free_bridge_range("", "")), Some(0));
        // A route that covers the whole /16 leaves nothing.
        assert_eq!(free_bridge_range("", "10.0.0.0/8 via 1.2.3.4\n"), None);
    }
}
