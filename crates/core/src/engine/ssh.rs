//! `ssh://` engines, as the docker CLI reaches them: the system `ssh` runs
//! `docker system dial-stdio` on the remote host and its stdin and stdout carry the connection.
//! Keys, agents, aliases and known hosts are ssh's own (`~/.ssh/config`). When ssh fails, its
//! last line of stderr is the explanation the user needs, so it is kept.
//!
//! Every connection is an `ssh` process, and a request needs one or two (a hijacked BuildKit
//! stream cannot share one), so connections share one ssh session: a master that stays for a
//! minute after the last use (`ControlMaster`/`ControlPersist`, as docker's documentation advises
//! users to set up by hand), with its socket in a folder only this user can enter. Without such a
//! folder, ssh connects as docker does.
use std::{
    future::Future,
    io::IsTerminal,
    pin::Pin,
    process::Stdio,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    process::{ChildStdin, ChildStdout, Command},
    sync::oneshot,
};

use super::{
    address::SshTarget,
    transport::{Dial, Dialing, EngineStream, TransportError},
};

/// How long ssh may take to connect (docker's value).
const CONNECT_TIMEOUT_SECONDS: u32 = 30;
/// After the connection is dropped, how long ssh may take to end before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How much of ssh's stderr is kept for the error message.
const STDERR_TAIL: usize = 4096;

/// How long the shared ssh session stays after its last connection.
const SESSION_PERSIST: &str = "60s";

#[derive(Clone)]
pub(crate) struct SshDial {
    arguments: Vec<String>,
}

impl SshDial {
    pub(crate) fn new(target: &SshTarget) -> Self {
        // Without a terminal nobody can answer a passphrase or host-key prompt: fail at once.
        Self { arguments: arguments(target, !std::io::stdin().is_terminal(), control_dir().as_deref()) }
    }
}

/// A folder for ssh's control sockets that only this user can enter, made when missing; none when
/// that cannot be had (then every connection is a session of its own).
fn control_dir() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    // /proc/self belongs to this process's user: its uid without unsafe code.
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let dir = crate::names::runtime_dir().join(format!("assemble-ssh-{uid}"));
    if let Err(err) = std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        if err.kind() != std::io::ErrorKind::AlreadyExists {
            return None;
        }
    }
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    (meta.is_dir() && meta.uid() == uid && meta.mode() & 0o077 == 0).then_some(dir)
}

/// ssh's arguments, as docker builds them (`-o ConnectTimeout=30 -T [-l user] [-p port] -- host
/// docker [--host=unix://socket] system dial-stdio`), with a shared session when `control` is a
/// folder for its socket.
fn arguments(target: &SshTarget, batch: bool, control: Option<&std::path::Path>) -> Vec<String> {
    let mut args = vec!["-o".to_string(), format!("ConnectTimeout={CONNECT_TIMEOUT_SECONDS}"), "-T".to_string()];
    if batch {
        args.extend(["-o".to_string(), "BatchMode=yes".to_string()]);
    }
    if let Some(dir) = control {
        // %C: a hash of the local host, remote host, port and user, so each target has its own.
        for option in [
            "ControlMaster=auto".to_string(),
            format!("ControlPath={}/%C", dir.display()),
            format!("ControlPersist={SESSION_PERSIST}"),
        ] {
            args.extend(["-o".to_string(), option]);
        }
    }
    if let Some(user) = &target.user {
        args.extend(["-l".to_string(), user.clone()]);
    }
    if let Some(port) = target.port {
        args.extend(["-p".to_string(), port.to_string()]);
    }
    args.extend(["--".to_string(), target.host.clone()]);
    let remote = match &target.socket {
        Some(socket) => format!("docker {} system dial-stdio", shell_quote(&format!("--host=unix://{socket}"))),
        None => "docker system dial-stdio".to_string(),
    };
    args.push(remote);
    args
}

/// Quotes for the remote shell, which sees ssh's command as one line.
fn shell_quote(word: &str) -> String {
    if word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

impl Dial for SshDial {
    fn dial(&self) -> Dialing {
        let arguments = self.arguments.clone();
        Box::pin(async move {
            let mut child = Command::new("ssh")
                .args(&arguments)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|err| match err.kind() {
                    std::io::ErrorKind::NotFound => std::io::Error::other(TransportError::SshMissing),
                    _ => err,
                })?;
            let (Some(stdin), Some(stdout), Some(mut stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(std::io::Error::other("ssh's standard streams were not piped"));
            };
            let (exit_tx, exit_rx) = oneshot::channel();
            let (dropped_tx, dropped_rx) = oneshot::channel::<()>();
            tokio::spawn(async move {
                let tail = tokio::spawn(async move {
                    let mut tail = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while let Ok(n) = stderr.read(&mut chunk).await {
                        if n == 0 {
                            break;
                        }
                        tail.extend_from_slice(&chunk[..n]);
                        let excess = tail.len().saturating_sub(STDERR_TAIL);
                        tail.drain(..excess);
                    }
                    tail
                });
                let status = tokio::select! {
                    status = child.wait() => status,
                    _ = dropped_rx => match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
                        Ok(status) => status,
                        Err(_) => {
                            let _ = child.start_kill();
                            child.wait().await
                        }
                    },
                };
                let tail = tail.await.unwrap_or_default();
                let _ = exit_tx.send(Exit { status, stderr: tail });
            });
            Ok(EngineStream::new(SshStream { stdin, stdout, exit: Some(exit_rx), ended: None, _dropped: dropped_tx }))
        })
    }
}

struct Exit {
    status: std::io::Result<std::process::ExitStatus>,
    stderr: Vec<u8>,
}

/// ssh's stdout (read) and stdin (write). At the end of stdout, or when stdin is closed under us,
/// the connection's fate is ssh's exit: a failure there becomes the error, with ssh's last line.
struct SshStream {
    stdin: ChildStdin,
    stdout: ChildStdout,
    exit: Option<oneshot::Receiver<Exit>>,
    /// Why ssh ended, once it has ended badly.
    ended: Option<TransportError>,
    /// Dropped with the stream: tells the reaper to end ssh.
    _dropped: oneshot::Sender<()>,
}

impl SshStream {
    /// Waits for ssh to end: `None` for a clean exit, else the reason.
    fn poll_ended(&mut self, cx: &mut Context<'_>) -> Poll<Option<TransportError>> {
        if let Some(exit) = self.exit.as_mut() {
            let outcome = match Pin::new(exit).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(exit)) => failure(exit),
                Poll::Ready(Err(_)) => None,
            };
            self.exit = None;
            self.ended = outcome;
        }
        Poll::Ready(self.ended.clone())
    }
}

fn failure(exit: Exit) -> Option<TransportError> {
    let status = match exit.status {
        Ok(status) if status.success() => return None,
        Ok(status) => match status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        },
        Err(err) => format!("could not be waited for: {err}"),
    };
    let text = String::from_utf8_lossy(&exit.stderr);
    let last_line = text.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("(ssh printed nothing)").to_string();
    Some(TransportError::SshExited { status, last_line })
}

impl AsyncRead for SshStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stdout).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                // End of stream: clean if ssh ended cleanly.
                self.poll_ended(cx).map(|failed| failed.map_or(Ok(()), |e| Err(std::io::Error::other(e))))
            }
            other => other,
        }
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.stdin).poll_write(cx, buf) {
            Poll::Ready(Err(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                self.poll_ended(cx).map(|failed| Err(failed.map_or(err, std::io::Error::other)))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(user: Option<&str>, port: Option<u16>, socket: Option<&str>) -> SshTarget {
        SshTarget { user: user.map(String::from), host: "box".into(), port, socket: socket.map(String::from) }
    }

    #[test]
    fn arguments_are_dockers() {
        assert_eq!(
            arguments(&target(Some("me"), Some(2222), None), false, None),
            ["-o", "ConnectTimeout=30", "-T", "-l", "me", "-p", "2222", "--", "box", "docker system dial-stdio"]
        );
        assert_eq!(
            arguments(&target(None, None, None), false, Some(std::path::Path::new("/run/user/7/assemble-ssh-7"))),
            [
                "-o",
                "ConnectTimeout=30",
                "-T",
                "-o",
                "ControlMaster=auto",
                "-o",
                "ControlPath=/run/user/7/assemble-ssh-7/%C",
                "-o",
                "ControlPersist=60s",
                "--",
                "box",
                "docker system dial-stdio"
            ]
        );
        assert_eq!(
            arguments(&target(None, None, Some("/run/my docker.sock")), true, None),
            [
                "-o",
                "ConnectTimeout=30",
                "-T",
                "-o",
                "BatchMode=yes",
                "--",
                "box",
                "docker '--host=unix:///run/my docker.sock' system dial-stdio"
            ]
        );
    }

    #[test]
    fn a_failed_ssh_is_explained_by_its_last_line() {
        use std::os::unix::process::ExitStatusExt;
        let exit = Exit {
            status: Ok(std::process::ExitStatus::from_raw(255 << 8)),
            stderr: b"Warning: Permanently added 'x'.\r\nroot@127.0.0.1: Permission denied (publickey).\r\n\n".to_vec(),
        };
        let Some(TransportError::SshExited { status, last_line }) = failure(exit) else { panic!("not a failure") };
        assert_eq!(status, "exit status 255");
        assert_eq!(last_line, "root@127.0.0.1: Permission denied (publickey).");
        let clean = Exit { status: Ok(std::process::ExitStatus::from_raw(0)), stderr: b"bye".to_vec() };
        assert!(failure(clean).is_none());
    }
}
