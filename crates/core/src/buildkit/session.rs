//! A BuildKit session: the `Control.Session` call, over which BuildKit calls *us*. The call's
//! messages carry the bytes of an HTTP/2 connection on which we are the gRPC server, serving
//! health checks, the build's folders (FileSync), registry credentials (Auth), the exported files
//! (FileSend: `--load`'s image, `-o`), `--secret` (Secrets), `--ssh` (SSH) and the content stores
//! of local caches and OCI layout folders (containerd's Content). BuildKit learns what
//! we serve from the call's metadata.
use std::{
    collections::HashMap,
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use bollard_buildkit_proto::{
    fsutil::types::Packet,
    health::{
        health_check_response::ServingStatus,
        health_server::{Health, HealthServer},
        HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
    },
    moby::{
        buildkit::v1::{control_client::ControlClient, BytesMessage},
        filesync::v1::{
            auth_server::{Auth, AuthServer},
            file_sync_server::{FileSync, FileSyncServer},
            CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse, GetTokenAuthorityRequest,
            GetTokenAuthorityResponse, VerifyTokenAuthorityRequest, VerifyTokenAuthorityResponse,
        },
    },
};
use futures_util::{Stream, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf},
    sync::mpsc,
    task::JoinHandle,
};
use tokio_util::io::ReaderStream;
use tonic::{metadata::MetadataMap, transport::Channel, Request, Response, Status};

use crate::buildkit::error::BuildkitError;
use crate::buildkit::{
    content::{self, ContentServer, LocalStore},
    filesend::{ExportTarget, FileSendServer},
    filesync::{self, SyncDir, TransferCount, TransferFilter},
    registry_auth::Credentials,
    secrets::SecretStore,
    ssh::RunningAgents,
    status_error,
};
use crate::Result;

/// Bytes of the session's HTTP/2 connection per message.
const SESSION_CHUNK: usize = 128 * 1024;

/// The methods we serve, as BuildKit's session expects them listed.
const METHODS: [&str; 10] = [
    "/grpc.health.v1.Health/Check",
    "/moby.filesync.v1.FileSync/DiffCopy",
    "/moby.filesync.v1.Auth/Credentials",
    "/moby.filesync.v1.Auth/FetchToken",
    "/moby.filesync.v1.Auth/GetTokenAuthority",
    "/moby.filesync.v1.Auth/VerifyTokenAuthority",
    "/moby.filesync.v1.FileSend/DiffCopy",
    "/moby.buildkit.secrets.v1.Secrets/GetSecret",
    "/moby.sshforward.v1.SSH/CheckAgent",
    "/moby.sshforward.v1.SSH/ForwardAgent",
];

/// What a session offers BuildKit.
pub struct SessionOffer {
    /// Folders by the name BuildKit asks for (`context`, `dockerfile`).
    pub dirs: HashMap<String, SyncDir>,
    /// Registry credentials, asked per host.
    pub credentials: Credentials,
    /// Where exported files go, by exporter index (`--load`'s image tar, `-o`'s files and folders).
    pub exports: HashMap<usize, ExportTarget>,
    /// `--secret`: the secrets by ID (none: every mount of one is told NotFound).
    pub secrets: SecretStore,
    /// `--ssh`: the agents by ID, kept running as long as the session.
    pub ssh: Arc<RunningAgents>,
    /// Content stores by the ID BuildKit names them with (`local:DIR` for `type=local` caches,
    /// `export` for `-o type=oci|docker,tar=false`); none: the service is not offered.
    pub content: HashMap<String, LocalStore>,
}

/// An open session; it ends when dropped.
pub struct Session {
    /// The ID a solve names to use this session.
    pub id: String,
    /// What the transfers of each folder sent, over the whole session, by folder name.
    pub sent: Arc<HashMap<String, Arc<TransferCount>>>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<JoinHandle<()>>,
    /// Dropped with the session, which ends the call (see `open`).
    _end: tokio::sync::oneshot::Sender<()>,
    /// `--ssh`'s private agents (key files): up as long as the session. (Not the server task's:
    /// it ends once its one connection is accepted, while the connection goes on.)
    _agents: Arc<RunningAgents>,
}

impl Drop for Session {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Session {
    /// Opens the session on `control`. `shared_key` names the folders across builds, so that
    /// BuildKit keeps what it received last time and asks only for what changed.
    pub async fn open(control: &ControlClient<Channel>, shared_key: &str, offer: SessionOffer) -> Result<Self> {
        let id = random_id();
        // The server talks on one end; the other end's bytes are the call's messages.
        let (server_end, call_end) = tokio::io::duplex(SESSION_CHUNK * 2);
        let (call_reader, mut call_writer) = tokio::io::split(call_end);
        // Dropping the session drops `ended`'s sender: the call's request side ends, BuildKit
        // closes the session, and with it the connection and every transfer on it.
        let (end, ended) = tokio::sync::oneshot::channel::<()>();
        let outgoing = ReaderStream::with_capacity(call_reader, SESSION_CHUNK)
            .filter_map(|chunk| std::future::ready(chunk.ok().map(|data| BytesMessage { data: data.to_vec() })))
            .take_until(ended);
        let mut request = Request::new(outgoing);
        let metadata = request.metadata_mut();
        insert(metadata, "x-docker-expose-session-uuid", &id)?;
        insert(metadata, "x-docker-expose-session-name", "assemble")?;
        insert(metadata, "x-docker-expose-session-sharedkey", shared_key)?;
        let content_methods = if offer.content.is_empty() { &[][..] } else { &content::METHODS[..] };
        for method in METHODS.iter().chain(content_methods) {
            let value = method
                .parse()
                .map_err(|_| BuildkitError::Unreachable(format!("the method name {method} is not a header value")))?;
            metadata.append("x-docker-expose-session-grpc-method", value);
        }
        let mut incoming =
            control.clone().session(request).await.map_err(status_error("open a build session"))?.into_inner();
        let feed = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Some(Ok(message)) = incoming.next().await {
                if call_writer.write_all(&message.data).await.is_err() {
                    break;
                }
            }
            let _ = call_writer.shutdown().await;
        });

        let sent: Arc<HashMap<String, Arc<TransferCount>>> =
            Arc::new(offer.dirs.keys().map(|name| (name.clone(), Arc::default())).collect());
        let failures = Arc::new(Mutex::new(Vec::new()));
        let files = FileSyncService { dirs: Arc::new(offer.dirs), sent: sent.clone(), failures: failures.clone() };
        let auth = AuthService { credentials: Arc::new(offer.credentials) };
        let exports = FileSendServer::new(offer.exports);
        let secrets = offer.secrets.server();
        let ssh = offer.ssh.server();
        let agents = offer.ssh.clone();
        let content = ContentServer::new(offer.content);
        let serve = tokio::spawn(async move {
            let router = tonic::transport::Server::builder()
                .add_service(HealthServer::new(HealthService))
                .add_service(FileSyncServer::new(files).max_decoding_message_size(64 * 1024 * 1024))
                .add_service(AuthServer::new(auth))
                .add_service(exports)
                .add_service(secrets)
                .add_service(ssh)
                .add_service(content);
            let connection = futures_util::stream::iter([Ok::<_, io::Error>(SessionStream(server_end))]);
            // The connection ends with the session; nothing is left to report then.
            let _ = router.serve_with_incoming(connection).await;
        });
        Ok(Self { id, sent, failures, tasks: vec![feed, serve], _end: end, _agents: agents })
    }

    /// What went wrong on our side of the session (a folder that could not be read), for the
    /// build's error: BuildKit only sees that the transfer failed.
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

fn insert(metadata: &mut MetadataMap, key: &'static str, value: &str) -> Result<()> {
    let value = value.parse().map_err(|_| BuildkitError::Unreachable(format!("{value:?} cannot be sent as {key}")))?;
    metadata.insert(key, value);
    Ok(())
}

/// A session ID as BuildKit makes them: 25 characters of base 36, from the clock, the process and
/// a counter (it must be unique, not secret).
pub fn random_id() -> String {
    use sha2::{Digest, Sha256};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hash = Sha256::new();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    hash.update(nanos.to_le_bytes());
    hash.update(std::process::id().to_le_bytes());
    hash.update(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_le_bytes());
    hash.update(format!("{:?}", std::thread::current().id()));
    let digest = hash.finalize();
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
    digest.iter().take(25).map(|b| alphabet[usize::from(*b) % alphabet.len()] as char).collect()
}

/// The server's end of the session connection.
struct SessionStream(DuplexStream);

impl tonic::transport::server::Connected for SessionStream {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for SessionStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SessionStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// BuildKit drops a session whose health checks fail.
struct HealthService;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> std::result::Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse { status: ServingStatus::Serving as i32 }))
    }

    async fn list(&self, _: Request<HealthListRequest>) -> std::result::Result<Response<HealthListResponse>, Status> {
        Err(Status::unimplemented("list is not served"))
    }

    type WatchStream = futures_util::stream::Empty<std::result::Result<HealthCheckResponse, Status>>;

    async fn watch(&self, _: Request<HealthCheckRequest>) -> std::result::Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch is not served"))
    }
}

type PacketStream = Pin<Box<dyn Stream<Item = std::result::Result<Packet, Status>> + Send>>;

struct FileSyncService {
    dirs: Arc<HashMap<String, SyncDir>>,
    sent: Arc<HashMap<String, Arc<TransferCount>>>,
    failures: Arc<Mutex<Vec<String>>>,
}

/// A metadata key's values, decoded as BuildKit encodes them (`KEY-encoded: true`, then each value
/// URL-query-escaped) when they are not plain ASCII.
fn metadata_values(metadata: &MetadataMap, key: &str) -> Vec<String> {
    let encoded = metadata
        .get(format!("{key}-encoded").as_str())
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"));
    metadata
        .get_all(key)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| if encoded { query_unescape(v) } else { v.to_string() })
        .collect()
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; a malformed escape stays as it is.
fn query_unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[tonic::async_trait]
impl FileSync for FileSyncService {
    type DiffCopyStream = PacketStream;

    async fn diff_copy(
        &self,
        request: Request<tonic::Streaming<Packet>>,
    ) -> std::result::Result<Response<Self::DiffCopyStream>, Status> {
        let metadata = request.metadata();
        let name = metadata_values(metadata, "dir-name").into_iter().next().unwrap_or_default();
        let Some(dir) = self.dirs.get(&name).cloned() else {
            return Err(Status::not_found(format!("no access allowed to dir {name:?}")));
        };
        let filter = TransferFilter {
            include: metadata_values(metadata, "include-patterns"),
            exclude: metadata_values(metadata, "exclude-patterns"),
            follow: metadata_values(metadata, "followpaths"),
        };
        let walked = tokio::task::spawn_blocking(move || filesync::walk(&dir, &filter))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let entries = match walked {
            Ok(entries) => entries,
            Err(err) => {
                let sentence = err.to_string();
                if let Ok(mut failures) = self.failures.lock() {
                    failures.push(sentence.clone());
                }
                return Err(Status::failed_precondition(sentence));
            }
        };
        let inbound = request.into_inner().map(|p| p.map_err(|status| status.message().to_string()));
        let (send, mut packets) = mpsc::channel::<Packet>(64);
        let (sent, failures) = (self.sent.clone(), self.failures.clone());
        tokio::spawn(async move {
            let Some(count) = sent.get(&name).cloned() else { return };
            if let Err(failure) = filesync::send_entries(entries, inbound, send, count).await {
                if let Ok(mut failures) = failures.lock() {
                    failures.push(failure.0);
                }
            }
        });
        let outbound = futures_util::stream::poll_fn(move |cx| packets.poll_recv(cx)).map(Ok);
        Ok(Response::new(Box::pin(outbound)))
    }

    type TarStreamStream = PacketStream;

    async fn tar_stream(
        &self,
        _: Request<tonic::Streaming<Packet>>,
    ) -> std::result::Result<Response<Self::TarStreamStream>, Status> {
        Err(Status::unimplemented("only diffcopy is served"))
    }
}

struct AuthService {
    credentials: Arc<Credentials>,
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn credentials(
        &self,
        request: Request<CredentialsRequest>,
    ) -> std::result::Result<Response<CredentialsResponse>, Status> {
        let host = request.into_inner().host;
        let credentials = self.credentials.clone();
        // A credential helper is a program we run: off the async threads.
        let found = tokio::task::spawn_blocking(move || credentials.for_host(&host)).await.ok().flatten();
        let (username, secret) = found.unwrap_or_default();
        Ok(Response::new(CredentialsResponse { username, secret }))
    }

    async fn fetch_token(
        &self,
        _: Request<FetchTokenRequest>,
    ) -> std::result::Result<Response<FetchTokenResponse>, Status> {
        // Without a token authority BuildKit fetches tokens itself with the credentials above.
        Err(Status::unimplemented("tokens are fetched by BuildKit"))
    }

    async fn get_token_authority(
        &self,
        _: Request<GetTokenAuthorityRequest>,
    ) -> std::result::Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }

    async fn verify_token_authority(
        &self,
        _: Request<VerifyTokenAuthorityRequest>,
    ) -> std::result::Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_escapes_are_decoded_as_go_does() {
        assert_eq!(query_unescape("a+b%2Fc%C3%A9"), "a b/cé");
        assert_eq!(query_unescape("100%"), "100%");
        assert_eq!(query_unescape("%zz"), "%zz");
    }

    #[test]
    fn ids_are_25_base36_characters_and_differ() {
        let (a, b) = (random_id(), random_id());
        assert_eq!(a.len(), 25);
        assert!(a.chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        assert_ne!(a, b);
    }
}
