//! The tests' authorization plugin (src/bin/authz_plugin.rs), running for as long as the value
//! lives: a real policy for a private engine started with `--authorization-plugin`.
use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct AuthzPlugin {
    child: Child,
    pub name: String,
    log: PathBuf,
    socket: PathBuf,
}

impl AuthzPlugin {
    /// Starts the plugin `name` and waits until its socket answers.
    pub fn start(name: &str, log: PathBuf) -> Self {
        let binary = crate::assemble_binary().with_file_name("assemble-test-authz");
        assert!(binary.exists(), "{} is missing: run `cargo build --workspace --bins`", binary.display());
        let socket = PathBuf::from(format!("/run/docker/plugins/{name}.sock"));
        let _ = std::fs::remove_file(&socket);
        let child = Command::new(&binary)
            .arg(name)
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "the authorization plugin did not listen on {}", socket.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, name: name.to_string(), log, socket }
    }

    /// The container creates it judged, one line each: `create privileged=BOOL URI`.
    pub fn creates(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(String::from).collect()
    }
}

impl Drop for AuthzPlugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}
