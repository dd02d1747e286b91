//! A real registry (Debian's docker-registry) on the host, on a port of the kit's own.
use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{folders::scratch_dir, free_port::free_port};

/// A registry process, stopped (and its storage removed) when the value drops.
pub struct Registry {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// On all the host's addresses (0.0.0.0).
    pub fn start() -> Self {
        Self::start_with("0.0.0.0", None)
    }

    /// On the host's loopback only (127.0.0.1), as many local registries and dev servers are.
    pub fn loopback() -> Self {
        Self::start_with("127.0.0.1", None)
    }

    /// On all addresses, asking for this user and password (basic auth, an htpasswd file).
    pub fn with_password(user: &str, password: &str) -> Self {
        Self::start_with("0.0.0.0", Some((user, password)))
    }

    /// Where the registry keeps a repository's data: present once something was pushed to it.
    pub fn repository_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("data/docker/registry/v2/repositories").join(name)
    }

    /// Where the registry keeps every blob (layers, configs, manifests, cache records), by digest:
    /// what a scan of everything ever pushed reads.
    pub fn blobs_dir(&self) -> PathBuf {
        self.dir.path().join("data/docker/registry/v2/blobs")
    }

    fn start_with(address: &str, login: Option<(&str, &str)>) -> Self {
        let port = free_port();
        let folder = scratch_dir("registry");
        let dir = folder.path();
        let write = |path: &std::path::Path, text: &str| {
            if let Err(err) = std::fs::write(path, text) {
                panic!("cannot write the registry's {}: {err}", path.display());
            }
        };
        let auth = match login {
            Some((user, password)) => {
                let hash = bcrypt::hash(password, 4).unwrap_or_else(|e| panic!("hashing the registry's password: {e}"));
                let htpasswd = dir.join("htpasswd");
                write(&htpasswd, &format!("{user}:{hash}\n"));
                format!("auth:\n  htpasswd:\n    realm: assemble-e2e\n    path: {}\n", htpasswd.display())
            }
            None => String::new(),
        };
        let config = dir.join("config.yml");
        write(
            &config,
            &format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}:{port}\n{auth}",
                dir.join("data").display()
            ),
        );
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

    /// A manifest or an image index of repository `name` by tag or digest, as the registry serves
    /// it to a client that takes both OCI's and Docker's media types; a missing one fails the test.
    pub fn manifest(&self, name: &str, reference: &str) -> serde_json::Value {
        const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
        match self.get_bytes(&format!("/v2/{name}/manifests/{reference}"), ACCEPT) {
            Some((200, body)) => serde_json::from_slice(&body).unwrap_or_else(|e| {
                panic!("{name}:{reference}'s manifest is not JSON ({e}): {}", String::from_utf8_lossy(&body))
            }),
            other => panic!("the registry has no manifest {name}:{reference}: {:?}", other.map(|(s, _)| s)),
        }
    }

    /// The platforms image index `name:reference` lists, `os/architecture`, sorted, without the
    /// attestation manifests (`unknown/unknown`); a missing index fails the test.
    pub fn index_platforms(&self, name: &str, reference: &str) -> Vec<String> {
        let index = self.manifest(name, reference);
        assert!(index["manifests"].is_array(), "{name}:{reference} is not an index: {index:#}");
        listed_platforms(&index)
    }

    /// [`Registry::manifest`], for a caller that reports a missing or broken one itself (the
    /// soak, which must not stop on it): the index or manifest, or what the registry answered.
    pub fn try_manifest(&self, name: &str, reference: &str) -> Result<serde_json::Value, String> {
        const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
        match self.get_bytes(&format!("/v2/{name}/manifests/{reference}"), ACCEPT) {
            Some((200, body)) => serde_json::from_slice(&body).map_err(|e| {
                format!("{name}:{reference}'s manifest is not JSON ({e}): {}", String::from_utf8_lossy(&body))
            }),
            other => Err(format!("the registry has no manifest {name}:{reference}: {:?}", other.map(|(s, _)| s))),
        }
    }

    /// A blob of repository `name`, by digest; a missing one fails the test.
    pub fn blob(&self, name: &str, digest: &str) -> Vec<u8> {
        match self.get_bytes(&format!("/v2/{name}/blobs/{digest}"), "*/*") {
            Some((200, body)) => body,
            other => panic!("the registry has no blob {digest} in {name}: {:?}", other.map(|(s, _)| s)),
        }
    }

    /// A plain HTTP/1.0 GET on loopback; the status and body, if the registry answered.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let (status, body) = self.get_bytes(path, "*/*")?;
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    }

    fn get_bytes(&self, path: &str, accept: &str) -> Option<(u16, Vec<u8>)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\nAccept: {accept}\r\n\r\n").ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).ok()?;
        let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, response[split + 4..].to_vec()))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The platforms an image index lists (`os/arch`), sorted, without BuildKit's attestation
/// manifests (`unknown/unknown`); none when it is not an index.
pub fn listed_platforms(index: &serde_json::Value) -> Vec<String> {
    let mut platforms: Vec<String> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap_or("?"),
                m["platform"]["architecture"].as_str().unwrap_or("?")
            )
        })
        .filter(|p| p != "unknown/unknown")
        .collect();
    platforms.sort();
    platforms
}
