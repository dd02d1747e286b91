//! A private sshd (Debian's openssh-server) on a high loopback port, with keys made for it, and an
//! `ssh` on a PATH of its own that uses them: what a user's `~/.ssh/config` would give. The
//! remote side of `ssh://…` runs `docker system dial-stdio` as any remote docker host does.
use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct Sshd {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Sshd {
    /// Starts sshd for root on 127.0.0.1 at a free port, with its files in a new folder `dir`.
    pub fn start(dir: &Path) -> Result<Self, String> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("bin")).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        // sshd refuses to start without its privilege separation folder.
        std::fs::create_dir_all("/run/sshd").map_err(|e| format!("creating /run/sshd: {e}"))?;
        for key in ["host_key", "id"] {
            run("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-C", key, "-f", &dir.join(key).to_string_lossy()])?;
        }
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).map_err(|e| format!("reading {name}: {e}"));
        let port = crate::free_port();
        write(&dir.join("authorized_keys"), &read("id.pub")?)?;
        write(&dir.join("known_hosts"), &format!("[127.0.0.1]:{port} {}", read("host_key.pub")?))?;
        let d = dir.display();
        write(
            &dir.join("sshd_config"),
            &format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            ),
        )?;
        write(
            &dir.join("ssh_config"),
            &format!(
                "Host *\n  IdentityFile {d}/id\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking yes\n"
            ),
        )?;
        let wrapper = dir.join("bin/ssh");
        write(&wrapper, &format!("#!/bin/sh\nexec /usr/bin/ssh -F {d}/ssh_config \"$@\"\n"))?;
        run("chmod", &["+x", &wrapper.to_string_lossy()])?;
        let log = std::fs::File::create(dir.join("sshd.log")).map_err(|e| format!("sshd log: {e}"))?;
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting sshd (apt-get install openssh-server): {e}"))?;
        let mut sshd = Self { child, port, dir: dir.to_path_buf() };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                return Err(format!("sshd exited with {status}: {}", read("sshd.log").unwrap_or_default()));
            }
            if Instant::now() > deadline {
                return Err(format!("sshd did not listen on {port}: {}", read("sshd.log").unwrap_or_default()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(sshd)
    }

    /// `PATH` with our `ssh` first.
    pub fn path_env(&self) -> OsString {
        let mut path = OsString::from(self.dir.join("bin"));
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        path
    }

    /// `ssh://root@127.0.0.1:PORT`, with the remote engine's socket as the path when given.
    pub fn url(&self, socket: Option<&Path>) -> String {
        let path = socket.map(|s| s.display().to_string()).unwrap_or_default();
        format!("ssh://root@127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program).args(args).output().map_err(|e| format!("running {program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}
