//! `--ssh`'s session service (`moby.sshforward.v1.SSH`): each connection a build step makes to its
//! `RUN --mount=type=ssh` socket arrives as one `ForwardAgent` stream, which we carry to an
//! ssh-agent's socket. Like buildx, the build may only list keys and sign with them: requests that
//! add, remove or lock keys, and extensions, are answered with the agent protocol's FAILURE and
//! never reach the agent. Key files (`--ssh default=~/.ssh/id_ed25519`) are served by a private
//! `ssh-agent` of ours holding only them, started for the build and stopped after it.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    pin::Pin,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use bollard_buildkit_proto::moby::sshforward::v1::{
    ssh_server::{Ssh, SshServer},
    BytesMessage, CheckAgentRequest, CheckAgentResponse,
};
use futures_util::{Stream, StreamExt};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixStream,
    sync::mpsc,
};
use tonic::{Request, Response, Status};

/// The agent protocol's longest message (as golang.org/x/crypto's agent client allows).
const MAX_AGENT_MESSAGE: usize = 16 << 20;
/// `SSH_AGENT_FAILURE`.
const AGENT_FAILURE: u8 = 5;
/// The requests a build may make: list keys (11, and the SSH1 one, 1) and sign (13).
const ALLOWED_REQUESTS: [u8; 3] = [1, 11, 13];

/// Where one ssh ID's agent is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSource {
    /// A running agent's socket (`$SSH_AUTH_SOCK`, or one named).
    Socket(PathBuf),
    /// Private key files, served by a private agent for the build.
    Keys(Vec<PathBuf>),
}

/// The ssh agents a build offers, by ID (`default` unless named).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshAgents {
    /// Each ID's agent.
    pub agents: HashMap<String, AgentSource>,
}

/// The agents of one build, running: key files are loaded into a private agent, stopped on drop.
pub struct RunningAgents {
    sockets: Arc<HashMap<String, PathBuf>>,
    private: Vec<PrivateAgent>,
}

impl SshAgents {
    /// Starts a private agent for each set of key files and loads them; sockets are used as they
    /// are. Fails with what ssh-add said about a key it could not load.
    pub fn start(&self) -> Result<RunningAgents, String> {
        let mut sockets = HashMap::new();
        let mut private = Vec::new();
        for (id, source) in &self.agents {
            match source {
                AgentSource::Socket(path) => {
                    sockets.insert(id.clone(), path.clone());
                }
                AgentSource::Keys(keys) => {
                    let agent = PrivateAgent::start(keys)?;
                    sockets.insert(id.clone(), agent.socket.clone());
                    private.push(agent);
                }
            }
        }
        Ok(RunningAgents { sockets: Arc::new(sockets), private })
    }
}

impl RunningAgents {
    /// No agents: the session still answers, so that an optional ssh mount is skipped.
    pub fn none() -> Self {
        Self { sockets: Arc::default(), private: Vec::new() }
    }

    /// The session service.
    pub(crate) fn server(&self) -> SshServer<SshService> {
        SshServer::new(SshService { sockets: self.sockets.clone() }).max_decoding_message_size(MAX_AGENT_MESSAGE + 1024)
    }

    /// How many private agents run (for tests).
    pub fn private_count(&self) -> usize {
        self.private.len()
    }
}

/// `ssh-agent -D` on a socket in a folder of ours, holding only the keys given.
struct PrivateAgent {
    child: Child,
    socket: PathBuf,
    dir: PathBuf,
}

impl PrivateAgent {
    fn start(keys: &[PathBuf]) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("assemble-ssh-{}", crate::buildkit::session::random_id()));
        std::fs::create_dir(&dir).map_err(|e| format!("could not make a folder for a private ssh-agent: {e}"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not run ssh-agent to serve the key files ({e}); install OpenSSH's client"))?;
        let agent = Self { child, socket, dir };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !agent.socket.exists() {
            if Instant::now() > deadline {
                return Err("ssh-agent did not open its socket within 5 seconds".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for key in keys {
            agent.add(key)?;
        }
        Ok(agent)
    }

    fn add(&self, key: &Path) -> Result<(), String> {
        // No terminal and no askpass: a key with a passphrase is refused, as buildx refuses it.
        let added = Command::new("ssh-add")
            .arg("-q")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .env("SSH_ASKPASS_REQUIRE", "never")
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("could not run ssh-add to load {} ({e}); install OpenSSH's client", key.display()))?;
        if added.status.success() {
            Ok(())
        } else {
            let said = String::from_utf8_lossy(&added.stderr).trim().to_string();
            Err(format!(
                "{} could not be loaded as an ssh key ({}); give an unencrypted private key, or load it into your \
                 ssh-agent with ssh-add and pass --ssh default",
                key.display(),
                if said.is_empty() { "ssh-add refused it".into() } else { said }
            ))
        }
    }
}

impl Drop for PrivateAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) struct SshService {
    sockets: Arc<HashMap<String, PathBuf>>,
}

fn id_or_default(id: &str) -> String {
    if id.is_empty() {
        "default".to_string()
    } else {
        id.to_string()
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<BytesMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Ssh for SshService {
    async fn check_agent(&self, request: Request<CheckAgentRequest>) -> Result<Response<CheckAgentResponse>, Status> {
        let id = id_or_default(&request.into_inner().id);
        // Not Unimplemented: BuildKit would then blame the client's version, not the missing flag.
        if self.sockets.contains_key(&id) {
            Ok(Response::new(CheckAgentResponse {}))
        } else {
            Err(Status::unknown(format!("unset ssh forward key {id}")))
        }
    }

    type ForwardAgentStream = ByteStream;

    async fn forward_agent(
        &self,
        request: Request<tonic::Streaming<BytesMessage>>,
    ) -> Result<Response<Self::ForwardAgentStream>, Status> {
        let id =
            id_or_default(request.metadata().get("buildkit.ssh.id").and_then(|v| v.to_str().ok()).unwrap_or_default());
        let Some(socket) = self.sockets.get(&id) else {
            return Err(Status::unknown(format!("unset ssh forward key {id}")));
        };
        let agent = UnixStream::connect(socket)
            .await
            .map_err(|e| Status::unavailable(format!("failed to dial agent {id}: {e}")))?;
        let inbound = request.into_inner().map(|m| m.map(|m| m.data));
        let (send, mut receive) = mpsc::channel::<Result<BytesMessage, Status>>(16);
        tokio::spawn(async move {
            if let Err(status) = relay(inbound, agent, &send).await {
                let _ = send.send(Err(status)).await;
            }
        });
        let outbound = futures_util::stream::poll_fn(move |cx| receive.poll_recv(cx));
        Ok(Response::new(Box::pin(outbound)))
    }
}

/// Carries the build's agent requests to `agent` one at a time (the protocol answers each request
/// once, in order), refusing the ones a build may not make; ends when the build closes its side.
async fn relay<S>(
    mut inbound: S,
    mut agent: UnixStream,
    send: &mpsc::Sender<Result<BytesMessage, Status>>,
) -> Result<(), Status>
where
    S: Stream<Item = Result<Vec<u8>, Status>> + Unpin,
{
    let mut pending: Vec<u8> = Vec::new();
    loop {
        // A whole request: a 4-byte big-endian length, then that many bytes.
        while let Some(frame) = take_frame(&mut pending)? {
            let answer = if frame.get(4).is_some_and(|kind| ALLOWED_REQUESTS.contains(kind)) {
                agent.write_all(&frame).await.map_err(|e| Status::unavailable(format!("the ssh agent: {e}")))?;
                read_frame(&mut agent).await?
            } else {
                vec![0, 0, 0, 1, AGENT_FAILURE]
            };
            if send.send(Ok(BytesMessage { data: answer })).await.is_err() {
                return Ok(());
            }
        }
        match inbound.next().await {
            Some(Ok(data)) => pending.extend_from_slice(&data),
            Some(Err(status)) => return Err(status),
            None => return Ok(()),
        }
    }
}

/// Takes one whole agent message off the front of `pending`, if it is all there.
fn take_frame(pending: &mut Vec<u8>) -> Result<Option<Vec<u8>>, Status> {
    let Some(length) = pending.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize) else {
        return Ok(None);
    };
    if length > MAX_AGENT_MESSAGE {
        return Err(Status::invalid_argument("ssh agent message too long"));
    }
    if pending.len() < 4 + length {
        return Ok(None);
    }
    Ok(Some(pending.drain(..4 + length).collect()))
}

async fn read_frame(agent: &mut UnixStream) -> Result<Vec<u8>, Status> {
    let broken = |e: std::io::Error| Status::unavailable(format!("the ssh agent: {e}"));
    let mut header = [0u8; 4];
    agent.read_exact(&mut header).await.map_err(broken)?;
    let length = u32::from_be_bytes(header) as usize;
    if length > MAX_AGENT_MESSAGE {
        return Err(Status::invalid_argument("ssh agent answer too long"));
    }
    let mut frame = vec![0u8; 4 + length];
    frame[..4].copy_from_slice(&header);
    agent.read_exact(&mut frame[4..]).await.map_err(broken)?;
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_taken_whole_across_chunks() {
        let mut pending = vec![0, 0, 0, 1];
        assert_eq!(take_frame(&mut pending).unwrap(), None);
        pending.extend([11, 0, 0, 0, 2, 13]);
        assert_eq!(take_frame(&mut pending).unwrap(), Some(vec![0, 0, 0, 1, 11]));
        assert_eq!(take_frame(&mut pending).unwrap(), None);
        pending.push(7);
        assert_eq!(take_frame(&mut pending).unwrap(), Some(vec![0, 0, 0, 2, 13, 7]));
        assert!(pending.is_empty());
        let mut huge = vec![0xff, 0xff, 0xff, 0xff];
        assert!(take_frame(&mut huge).is_err());
    }

    #[tokio::test]
    async fn listing_is_relayed_and_adding_a_key_is_refused_without_reaching_the_agent() {
        let (ours, mut agent_side) = UnixStream::pair().unwrap();
        let agent = tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let mut header = [0u8; 4];
                if agent_side.read_exact(&mut header).await.is_err() {
                    return seen;
                }
                let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
                agent_side.read_exact(&mut body).await.unwrap();
                seen.push(body[0]);
                // SSH_AGENT_IDENTITIES_ANSWER with no keys.
                agent_side.write_all(&[0, 0, 0, 5, 12, 0, 0, 0, 0]).await.unwrap();
            }
        });
        // An add (17) then a list (11), the list split over two messages.
        let chunks: Vec<Result<Vec<u8>, Status>> =
            vec![Ok(vec![0, 0, 0, 2, 17, 9, 0, 0]), Ok(vec![0, 1]), Ok(vec![11])];
        let (send, mut receive) = mpsc::channel(8);
        relay(futures_util::stream::iter(chunks), ours, &send).await.unwrap();
        drop(send);
        assert_eq!(receive.recv().await.unwrap().unwrap().data, vec![0, 0, 0, 1, AGENT_FAILURE]);
        assert_eq!(receive.recv().await.unwrap().unwrap().data, vec![0, 0, 0, 5, 12, 0, 0, 0, 0]);
        assert!(receive.recv().await.is_none());
        assert_eq!(agent.await.unwrap(), vec![11], "only the listing reached the agent");
    }

    #[tokio::test]
    async fn key_files_are_served_by_a_private_agent_stopped_with_the_build() {
        let dir = std::env::temp_dir().join(format!("assemble-ssh-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("id");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "private-agent-key", "-f"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(made.status.success());
        let agents = SshAgents { agents: HashMap::from([("default".into(), AgentSource::Keys(vec![key.clone()]))]) };
        let running = agents.start().unwrap();
        assert_eq!(running.private_count(), 1);
        let socket = running.sockets["default"].clone();
        let mut agent = UnixStream::connect(&socket).await.unwrap();
        agent.write_all(&[0, 0, 0, 1, 11]).await.unwrap();
        let answer = read_frame(&mut agent).await.unwrap();
        assert_eq!(answer[4], 12, "an identities answer");
        assert_eq!(&answer[5..9], &[0, 0, 0, 1], "one key");
        assert!(String::from_utf8_lossy(&answer).contains("private-agent-key"));
        drop(running);
        assert!(!socket.exists(), "the private agent's folder is gone with it");
        std::fs::write(dir.join("not-a-key"), "hello").unwrap();
        let bad = SshAgents { agents: HashMap::from([("x".into(), AgentSource::Keys(vec![dir.join("not-a-key")]))]) };
        let refused = bad.start().err().unwrap();
        assert!(refused.contains("could not be loaded as an ssh key"), "{refused}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
