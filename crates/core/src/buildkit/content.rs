//! The session's content store (`containerd.services.content.v1.Content`), served by us as
//! BuildKit's Go client serves it (`session/content`, containerd's `contentserver`): BuildKit
//! writes `--cache-to type=local` and `-o type=oci|docker,tar=false` into it, and reads
//! `--cache-from type=local` from it. Each store is a folder laid out as containerd's local store
//! and the OCI image layout (`blobs/sha256/HEX`, an `ingest/` folder for unfinished writes), plus
//! `index.json` and `oci-layout` as BuildKit's `client/ociindex` writes them, so a folder written by
//! buildx is read by us and the other way round. A call names its store with the
//! `buildkit-attachable-store-id` metadata (`local:DIR` as typed, or `export`).
//!
//! The crate of generated protos lacks containerd's content API: its messages are written here
//! (`api/services/content/v1/content.proto`), and the service reads raw messages as FileSend does.
use std::{
    collections::{HashMap, HashSet},
    convert::Infallible,
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::SystemTime,
};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tonic::Status;

use crate::buildkit::filesend::RawCodec;

/// The metadata naming the store a call is for.
pub const STORE_ID_HEADER: &str = "buildkit-attachable-store-id";
/// The service's methods, as the session lists them.
pub const METHODS: [&str; 9] = [
    "/containerd.services.content.v1.Content/Info",
    "/containerd.services.content.v1.Content/Update",
    "/containerd.services.content.v1.Content/List",
    "/containerd.services.content.v1.Content/Delete",
    "/containerd.services.content.v1.Content/Read",
    "/containerd.services.content.v1.Content/Status",
    "/containerd.services.content.v1.Content/ListStatuses",
    "/containerd.services.content.v1.Content/Write",
    "/containerd.services.content.v1.Content/Abort",
];
/// BuildKit sends messages of up to 16 MiB on the session (a write's data: up to 8 MiB).
const MAX_MESSAGE: usize = 16 << 20;
/// Bytes per read answer, as containerd's server sends them.
const READ_CHUNK: usize = 1 << 20;
/// The OCI index annotations of a name and a tag.
const IMAGE_NAME: &str = "io.containerd.image.name";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// containerd's `content.proto` messages (package `containerd.services.content.v1`).
#[allow(missing_docs)]
pub mod proto {
    use std::collections::HashMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Info {
        #[prost(string, tag = "1")]
        pub digest: String,
        #[prost(int64, tag = "2")]
        pub size: i64,
        #[prost(message, optional, tag = "3")]
        pub created_at: Option<prost_types::Timestamp>,
        #[prost(message, optional, tag = "4")]
        pub updated_at: Option<prost_types::Timestamp>,
        #[prost(map = "string, string", tag = "5")]
        pub labels: HashMap<String, String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct InfoRequest {
        #[prost(string, tag = "1")]
        pub digest: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct InfoResponse {
        #[prost(message, optional, tag = "1")]
        pub info: Option<Info>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct UpdateRequest {
        #[prost(message, optional, tag = "1")]
        pub info: Option<Info>,
        #[prost(message, optional, tag = "2")]
        pub update_mask: Option<prost_types::FieldMask>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListContentRequest {
        #[prost(string, repeated, tag = "1")]
        pub filters: Vec<String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListContentResponse {
        #[prost(message, repeated, tag = "1")]
        pub info: Vec<Info>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DeleteContentRequest {
        #[prost(string, tag = "1")]
        pub digest: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ReadContentRequest {
        #[prost(string, tag = "1")]
        pub digest: String,
        #[prost(int64, tag = "2")]
        pub offset: i64,
        #[prost(int64, tag = "3")]
        pub size: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ReadContentResponse {
        #[prost(int64, tag = "1")]
        pub offset: i64,
        #[prost(bytes = "vec", tag = "2")]
        pub data: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(message, optional, tag = "1")]
        pub started_at: Option<prost_types::Timestamp>,
        #[prost(message, optional, tag = "2")]
        pub updated_at: Option<prost_types::Timestamp>,
        #[prost(string, tag = "3")]
        pub r#ref: String,
        #[prost(int64, tag = "4")]
        pub offset: i64,
        #[prost(int64, tag = "5")]
        pub total: i64,
        #[prost(string, tag = "6")]
        pub expected: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StatusRequest {
        #[prost(string, tag = "1")]
        pub r#ref: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StatusResponse {
        #[prost(message, optional, tag = "1")]
        pub status: Option<Status>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListStatusesResponse {
        #[prost(message, repeated, tag = "1")]
        pub statuses: Vec<Status>,
    }
    /// `WriteAction`: STAT = 0, WRITE = 1, COMMIT = 2.
    pub const STAT: i32 = 0;
    pub const WRITE: i32 = 1;
    pub const COMMIT: i32 = 2;
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteContentRequest {
        #[prost(int32, tag = "1")]
        pub action: i32,
        #[prost(string, tag = "2")]
        pub r#ref: String,
        #[prost(int64, tag = "3")]
        pub total: i64,
        #[prost(string, tag = "4")]
        pub expected: String,
        #[prost(int64, tag = "5")]
        pub offset: i64,
        #[prost(bytes = "vec", tag = "6")]
        pub data: Vec<u8>,
        #[prost(map = "string, string", tag = "7")]
        pub labels: HashMap<String, String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteContentResponse {
        #[prost(int32, tag = "1")]
        pub action: i32,
        #[prost(message, optional, tag = "2")]
        pub started_at: Option<prost_types::Timestamp>,
        #[prost(message, optional, tag = "3")]
        pub updated_at: Option<prost_types::Timestamp>,
        #[prost(int64, tag = "4")]
        pub offset: i64,
        #[prost(int64, tag = "5")]
        pub total: i64,
        #[prost(string, tag = "6")]
        pub digest: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AbortRequest {
        #[prost(string, tag = "1")]
        pub r#ref: String,
    }
}

/// A digest as containerd validates it: `ALGORITHM:HEX`, lower-case hex of the algorithm's length.
pub fn valid_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else { return false };
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == length && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn sha256_digest(hasher: &Sha256) -> String {
    format!("sha256:{}", hex(&hasher.clone().finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(time)
}

/// A content store in a folder (containerd's local store layout).
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
    /// Refs being written: a second writer of one ref waits (Unavailable, which BuildKit retries).
    writing: Arc<Mutex<HashSet<String>>>,
}

impl LocalStore {
    /// The store in `root` (made when first written to).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), writing: Arc::default() }
    }

    /// Where a blob lives; `None` for a digest containerd would refuse.
    pub fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let (algorithm, hex) = digest.split_once(':').filter(|_| valid_digest(digest))?;
        Some(self.root.join("blobs").join(algorithm).join(hex))
    }

    fn ingest_dir(&self, reference: &str) -> PathBuf {
        // Keyed by the ref's digest, as containerd keys it: constant length, any ref.
        self.root.join("ingest").join(hex(&Sha256::digest(reference.as_bytes())))
    }

    fn info(&self, digest: &str) -> Result<proto::Info, Status> {
        let path = self.blob_path(digest).ok_or_else(|| invalid_digest(digest))?;
        let meta = std::fs::metadata(&path).map_err(|_| Status::not_found(format!("content {digest}: not found")))?;
        let modified = meta.modified().ok().map(timestamp);
        Ok(proto::Info {
            digest: digest.to_string(),
            size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
            created_at: modified,
            updated_at: modified,
            labels: HashMap::new(),
        })
    }

    fn status(&self, dir: &Path) -> Result<proto::Status, Status> {
        let reference = std::fs::read_to_string(dir.join("ref"))
            .map_err(|_| Status::not_found(format!("ingest {}: not found", dir.display())))?;
        let data = std::fs::metadata(dir.join("data")).ok();
        let total = std::fs::read_to_string(dir.join("total")).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
        let started = std::fs::metadata(dir.join("ref")).and_then(|m| m.modified()).ok().map(timestamp);
        Ok(proto::Status {
            started_at: started,
            updated_at: data.as_ref().and_then(|m| m.modified().ok()).map(timestamp).or(started),
            r#ref: reference,
            offset: data.map_or(0, |m| i64::try_from(m.len()).unwrap_or(i64::MAX)),
            total,
            expected: String::new(),
        })
    }

    /// Opens a writer of `reference`, resuming what an earlier writer of it left.
    fn writer(&self, reference: &str, total: i64, expected: &str) -> Result<IngestWriter, Status> {
        if reference.is_empty() {
            return Err(Status::invalid_argument("first message must have a reference"));
        }
        if !expected.is_empty() && self.blob_path(expected).is_some_and(|p| p.exists()) {
            return Err(Status::already_exists(format!("content {expected}: already exists")));
        }
        {
            let mut writing = self.writing.lock().map_err(|_| Status::internal("the store's locks broke"))?;
            if !writing.insert(reference.to_string()) {
                return Err(Status::unavailable(format!("ref {reference} locked")));
            }
        }
        let lock = RefLock { writing: self.writing.clone(), reference: reference.to_string() };
        let dir = self.ingest_dir(reference);
        let io = |e: std::io::Error| Status::internal(format!("could not write into {}: {e}", self.root.display()));
        std::fs::create_dir_all(self.root.join("ingest")).map_err(io)?;
        let mut hasher = Sha256::new();
        let mut offset = 0i64;
        let mut total = total;
        let resumed = std::fs::read_to_string(dir.join("ref")).is_ok_and(|r| r == reference);
        if resumed {
            // containerd resumes by hashing what was written so far.
            let mut data = std::fs::File::open(dir.join("data")).map_err(io)?;
            offset =
                i64::try_from(std::io::copy(&mut data, &mut HashWriter(&mut hasher)).map_err(io)?).unwrap_or(i64::MAX);
            if let Some(saved) = std::fs::read_to_string(dir.join("total")).ok().and_then(|t| t.trim().parse().ok()) {
                total = saved;
            }
        } else {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).map_err(io)?;
            std::fs::write(dir.join("ref"), reference).map_err(io)?;
            if total > 0 {
                std::fs::write(dir.join("total"), total.to_string()).map_err(io)?;
            }
        }
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(dir.join("data")).map_err(io)?;
        file.seek(SeekFrom::Start(u64::try_from(offset).unwrap_or(0))).map_err(io)?;
        let now = SystemTime::now();
        Ok(IngestWriter { store: self.clone(), dir, file, hasher, offset, total, started: now, _lock: lock })
    }
}

/// Releases a ref when its writer goes.
struct RefLock {
    writing: Arc<Mutex<HashSet<String>>>,
    reference: String,
}

impl Drop for RefLock {
    fn drop(&mut self) {
        if let Ok(mut writing) = self.writing.lock() {
            writing.remove(&self.reference);
        }
    }
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One blob being written (containerd's local writer).
struct IngestWriter {
    store: LocalStore,
    dir: PathBuf,
    file: std::fs::File,
    hasher: Sha256,
    offset: i64,
    total: i64,
    started: SystemTime,
    _lock: RefLock,
}

impl IngestWriter {
    fn failed(&self, e: std::io::Error) -> Status {
        Status::internal(format!("could not write into {}: {e}", self.store.root.display()))
    }

    fn truncate(&mut self) -> Result<(), Status> {
        self.file.set_len(0).map_err(|e| self.failed(e))?;
        self.file.seek(SeekFrom::Start(0)).map_err(|e| self.failed(e))?;
        self.hasher = Sha256::new();
        self.offset = 0;
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), Status> {
        self.file.write_all(data).map_err(|e| self.failed(e))?;
        self.hasher.update(data);
        self.offset += i64::try_from(data.len()).unwrap_or(i64::MAX);
        Ok(())
    }

    /// Checks size and digest, then moves the data to its blob (read-only, as containerd leaves it).
    fn commit(&mut self, size: i64, expected: &str) -> Result<(), Status> {
        self.file.flush().map_err(|e| self.failed(e))?;
        if size > 0 && size != self.offset {
            return Err(Status::failed_precondition(format!(
                "unexpected commit size {}, expected {size}",
                self.offset
            )));
        }
        let digest = sha256_digest(&self.hasher);
        if !expected.is_empty() && expected != digest {
            return Err(Status::failed_precondition(format!("unexpected commit digest {digest}, expected {expected}")));
        }
        let target = self.store.blob_path(&digest).ok_or_else(|| invalid_digest(&digest))?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| self.failed(e))?;
        }
        if target.exists() {
            let _ = std::fs::remove_dir_all(&self.dir);
            return Err(Status::already_exists(format!("content {digest}: already exists")));
        }
        std::fs::rename(self.dir.join("data"), &target).map_err(|e| self.failed(e))?;
        let _ = std::fs::remove_dir_all(&self.dir);
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o444));
        Ok(())
    }
}

fn invalid_digest(digest: &str) -> Status {
    Status::invalid_argument(format!("{digest:?} failed validation"))
}

/// The session service: store ID → store.
#[derive(Clone, Default)]
pub(crate) struct ContentServer {
    stores: Arc<HashMap<String, LocalStore>>,
}

impl ContentServer {
    pub(crate) fn new(stores: HashMap<String, LocalStore>) -> Self {
        Self { stores: Arc::new(stores) }
    }

    fn choose(&self, metadata: &tonic::metadata::MetadataMap) -> Result<LocalStore, Status> {
        // The first value: BuildKit puts its store's ID first.
        let Some(id) = metadata.get(STORE_ID_HEADER).and_then(|v| v.to_str().ok()) else {
            return Err(Status::invalid_argument(format!("request lacks metadata {STORE_ID_HEADER:?}")));
        };
        self.stores.get(id).cloned().ok_or_else(|| Status::not_found(format!("unknown store {id}")))
    }
}

impl tonic::server::NamedService for ContentServer {
    const NAME: &'static str = "containerd.services.content.v1.Content";
}

type RawStream = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

impl<B> tower_service::Service<http::Request<B>> for ContentServer
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let method = request.uri().path().rsplit('/').next().unwrap_or_default().to_string();
            let mut grpc = tonic::server::Grpc::new(RawCodec).apply_max_message_size_config(Some(MAX_MESSAGE), None);
            // Every method as a stream of raw messages: a unary answer is a stream of one, the same
            // on the wire.
            Ok(grpc.streaming(Call { server: this, method }, request).await)
        })
    }
}

struct Call {
    server: ContentServer,
    method: String,
}

impl tonic::server::StreamingService<Bytes> for Call {
    type Response = Bytes;
    type ResponseStream = RawStream;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<tonic::Response<RawStream>, Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<tonic::Streaming<Bytes>>) -> Self::Future {
        let (server, method) = (self.server.clone(), self.method.clone());
        Box::pin(async move {
            let store = server.choose(request.metadata())?;
            let mut inbound = request.into_inner();
            if method == "Write" {
                let (send, mut receive) = mpsc::channel::<Result<Bytes, Status>>(4);
                tokio::spawn(async move {
                    if let Err(status) = write(&store, &mut inbound, &send).await {
                        let _ = send.send(Err(status)).await;
                    }
                });
                let outbound = futures_util::stream::poll_fn(move |cx| receive.poll_recv(cx));
                return Ok(tonic::Response::new(Box::pin(outbound) as RawStream));
            }
            let first = inbound.next().await.ok_or_else(|| Status::invalid_argument("no request message"))??;
            let one = |message: Vec<u8>| {
                Ok(tonic::Response::new(
                    Box::pin(futures_util::stream::once(async move { Ok(Bytes::from(message)) })) as RawStream
                ))
            };
            let bad = |e: prost::DecodeError| Status::invalid_argument(e.to_string());
            match method.as_str() {
                "Info" => {
                    let request = proto::InfoRequest::decode(first).map_err(bad)?;
                    let info = store.info(&request.digest)?;
                    one(proto::InfoResponse { info: Some(info) }.encode_to_vec())
                }
                "Read" => {
                    let request = proto::ReadContentRequest::decode(first).map_err(bad)?;
                    read(&store, request)
                }
                "Status" => {
                    let request = proto::StatusRequest::decode(first).map_err(bad)?;
                    let status = store.status(&store.ingest_dir(&request.r#ref)).map_err(|_| {
                        Status::not_found(format!("could not get status for ref {:?}: not found", request.r#ref))
                    })?;
                    one(proto::StatusResponse { status: Some(status) }.encode_to_vec())
                }
                "ListStatuses" => {
                    let dirs = std::fs::read_dir(store.root.join("ingest")).into_iter().flatten().flatten();
                    let statuses = dirs.filter_map(|d| store.status(&d.path()).ok()).collect();
                    one(proto::ListStatusesResponse { statuses }.encode_to_vec())
                }
                "Abort" => {
                    let request = proto::AbortRequest::decode(first).map_err(bad)?;
                    std::fs::remove_dir_all(store.ingest_dir(&request.r#ref))
                        .map_err(|_| Status::not_found(format!("ingest ref {:?}: not found", request.r#ref)))?;
                    one(Vec::new())
                }
                "Delete" => {
                    let request = proto::DeleteContentRequest::decode(first).map_err(bad)?;
                    let path = store.blob_path(&request.digest).ok_or_else(|| invalid_digest(&request.digest))?;
                    std::fs::remove_file(path)
                        .map_err(|_| Status::not_found(format!("content {}: not found", request.digest)))?;
                    one(Vec::new())
                }
                "List" => {
                    let algorithms = std::fs::read_dir(store.root.join("blobs")).into_iter().flatten().flatten();
                    let mut infos = Vec::new();
                    for algorithm in algorithms {
                        let name = algorithm.file_name().to_string_lossy().into_owned();
                        for blob in std::fs::read_dir(algorithm.path()).into_iter().flatten().flatten() {
                            let digest = format!("{name}:{}", blob.file_name().to_string_lossy());
                            if let Ok(info) = store.info(&digest) {
                                infos.push(info);
                            }
                        }
                    }
                    // containerd answers in blocks of 100.
                    let blocks: Vec<Result<Bytes, Status>> = infos
                        .chunks(100)
                        .map(|block| {
                            Ok(Bytes::from(proto::ListContentResponse { info: block.to_vec() }.encode_to_vec()))
                        })
                        .collect();
                    Ok(tonic::Response::new(Box::pin(futures_util::stream::iter(blocks)) as RawStream))
                }
                // The blobs carry no labels here (containerd's local store without a label store).
                "Update" => Err(Status::failed_precondition("update not supported on immutable content store")),
                other => Err(Status::unimplemented(format!("{other} is not a content store method"))),
            }
        })
    }
}

/// `Read`: the blob's bytes from `offset`, never more than `size` (BuildKit copies the answer into
/// a buffer of that size), in chunks of 1 MiB.
fn read(store: &LocalStore, request: proto::ReadContentRequest) -> Result<tonic::Response<RawStream>, Status> {
    let info = store.info(&request.digest)?;
    let offset = request.offset.max(0);
    if offset > info.size {
        return Err(Status::out_of_range(format!("read past object length {} bytes", info.size)));
    }
    let size = if request.size <= 0 || offset + request.size > info.size { info.size - offset } else { request.size };
    let path = store.blob_path(&request.digest).ok_or_else(|| invalid_digest(&request.digest))?;
    let mut file =
        std::fs::File::open(&path).map_err(|e| Status::internal(format!("could not read {}: {e}", path.display())))?;
    file.seek(SeekFrom::Start(u64::try_from(offset).unwrap_or(0)))
        .map_err(|e| Status::internal(format!("could not read {}: {e}", path.display())))?;
    let (send, mut receive) = mpsc::channel::<Result<Bytes, Status>>(4);
    tokio::task::spawn_blocking(move || {
        let mut left = u64::try_from(size).unwrap_or(0);
        // containerd numbers the answers from the start of the section read.
        let mut sent = 0i64;
        let mut buffer = vec![0u8; READ_CHUNK];
        while left > 0 {
            let want = usize::try_from(left.min(READ_CHUNK as u64)).unwrap_or(READ_CHUNK);
            let answer = match file.read(&mut buffer[..want]) {
                Ok(0) => break,
                Ok(n) => {
                    let message = proto::ReadContentResponse { offset: sent, data: buffer[..n].to_vec() };
                    left -= n as u64;
                    sent += n as i64;
                    Ok(Bytes::from(message.encode_to_vec()))
                }
                Err(e) => Err(Status::internal(format!("could not read {}: {e}", path.display()))),
            };
            let failed = answer.is_err();
            if send.blocking_send(answer).is_err() || failed {
                break;
            }
        }
    });
    let outbound = futures_util::stream::poll_fn(move |cx| receive.poll_recv(cx));
    Ok(tonic::Response::new(Box::pin(outbound) as RawStream))
}

/// `Write`, as containerd's server runs it: the first message names the ref (and the expected
/// digest: a blob the store has already answers AlreadyExists, which BuildKit takes as done); then
/// STAT, WRITE and COMMIT, each answered with the offset and the running digest.
async fn write<S>(store: &LocalStore, inbound: &mut S, send: &mpsc::Sender<Result<Bytes, Status>>) -> Result<(), Status>
where
    S: Stream<Item = Result<Bytes, Status>> + Unpin,
{
    let decode =
        |bytes: Bytes| proto::WriteContentRequest::decode(bytes).map_err(|e| Status::invalid_argument(e.to_string()));
    let Some(first) = inbound.next().await else { return Ok(()) };
    let mut request = decode(first?)?;
    let reference = request.r#ref.clone();
    let mut total = request.total;
    let mut expected = request.expected.clone();
    let mut writer = store.writer(&reference, total, &expected)?;
    if writer.total > 0 && total <= 0 {
        total = writer.total;
    }
    loop {
        let mut answer =
            proto::WriteContentResponse { action: request.action, offset: writer.offset, ..Default::default() };
        if !request.expected.is_empty() {
            expected = request.expected.clone();
            if store.blob_path(&expected).is_some_and(|p| p.exists()) {
                let dir = writer.dir.clone();
                drop(writer);
                let _ = std::fs::remove_dir_all(dir);
                return Err(Status::already_exists(format!("blob with expected digest {expected} exists")));
            }
        }
        if request.total > 0 {
            total = request.total;
        }
        match request.action {
            proto::STAT => {
                answer.digest = sha256_digest(&writer.hasher);
                answer.started_at = Some(timestamp(writer.started));
                answer.updated_at = Some(timestamp(SystemTime::now()));
                answer.total = total;
            }
            proto::WRITE | proto::COMMIT => {
                if request.offset > 0 && request.offset != writer.offset {
                    return Err(Status::out_of_range(format!(
                        "write @{} must occur at current offset {}",
                        request.offset, writer.offset
                    )));
                }
                if request.offset == 0 && writer.offset > 0 {
                    writer.truncate()?;
                    answer.offset = 0;
                }
                if !request.data.is_empty() {
                    writer.write(&request.data)?;
                    answer.offset = writer.offset;
                }
                if request.action == proto::COMMIT {
                    writer.commit(total, &expected)?;
                }
                answer.digest = sha256_digest(&writer.hasher);
            }
            other => return Err(Status::invalid_argument(format!("unknown write action {other}"))),
        }
        if send.send(Ok(Bytes::from(answer.encode_to_vec()))).await.is_err() {
            return Ok(());
        }
        if request.action == proto::COMMIT {
            return Ok(());
        }
        let Some(next) = inbound.next().await else { return Ok(()) };
        request = decode(next?)?;
    }
}

/// A name an `index.json` entry is given (BuildKit's `ociindex.NameOrTag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexName {
    /// A tag: the `org.opencontainers.image.ref.name` annotation alone (a cache's `tag`, default `latest`).
    Tag(String),
    /// An image name: `io.containerd.image.name`, and its tag as the ref name.
    Name(String),
}

/// Why `index.json` could not be read or written, as a sentence's end.
pub type IndexError = String;

/// The OCI reference name of an image name, as containerd's `reference.Parse` gives its object:
/// what follows the first `:` or `@` after the host (`localhost:5000/app:1` → `1`); the name
/// itself when it has no host.
fn reference_object(name: &str) -> String {
    let Some((_, path)) = name.split_once('/').filter(|(host, _)| !host.is_empty()) else {
        return name.to_string();
    };
    match path.find([':', '@']) {
        Some(at) => path[at..].strip_prefix(':').unwrap_or(&path[at..]).to_string(),
        None => String::new(),
    }
}

/// Puts `descriptor` into `dir/index.json` once per name, replacing an entry of the same name, and
/// writes `oci-layout`, as BuildKit's client does after a build (`ociindex.Put`), under the same
/// lock file (`index.json.lock`).
pub fn put_index(dir: &Path, descriptor: &serde_json::Value, names: &[IndexName]) -> Result<(), IndexError> {
    let index_path = dir.join("index.json");
    let lock_path = dir.join("index.json.lock");
    let lock = std::fs::File::create(&lock_path).map_err(|e| format!("could not lock {}: {e}", lock_path.display()))?;
    lock.try_lock().map_err(|e| format!("could not lock {}: {e}", lock_path.display()))?;
    let result = (|| {
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .map_err(|e| format!("could not write {}: {e}", dir.join("oci-layout").display()))?;
        let text = match std::fs::read(&index_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("could not read {}: {e}", index_path.display())),
        };
        let mut index: serde_json::Value = if text.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_slice(&text).map_err(|e| format!("could not read {}: {e}", index_path.display()))?
        };
        let updated = updated_index(&mut index, descriptor, names)
            .map_err(|reason| format!("could not update {}: {reason}", index_path.display()))?;
        std::fs::write(&index_path, updated).map_err(|e| format!("could not write {}: {e}", index_path.display()))
    })();
    let _ = lock.unlock();
    let _ = std::fs::remove_file(&lock_path);
    result
}

/// The index with `descriptor` put in under each name (ociindex's `insertDesc`), as JSON text.
fn updated_index(
    index: &mut serde_json::Value,
    descriptor: &serde_json::Value,
    names: &[IndexName],
) -> Result<String, String> {
    let object = index.as_object_mut().ok_or("it is not a JSON object")?;
    if object.get("schemaVersion").and_then(|v| v.as_i64()).unwrap_or(0) == 0 {
        object.insert("schemaVersion".into(), 2.into());
    }
    if object.get("mediaType").and_then(|v| v.as_str()).unwrap_or("").is_empty() {
        object.insert("mediaType".into(), "application/vnd.oci.image.index.v1+json".into());
    }
    let mut manifests = match object.remove("manifests") {
        Some(serde_json::Value::Array(list)) => list,
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(_) => return Err("its manifests are not a list".into()),
    };
    let all_names: Vec<Option<&IndexName>> =
        if names.is_empty() { vec![None] } else { names.iter().map(Some).collect() };
    for name in all_names {
        let mut entry = descriptor.clone();
        if let Some(name) = name {
            let (image, reference) = match name {
                IndexName::Tag(tag) => (String::new(), tag.clone()),
                IndexName::Name(image) => (image.clone(), reference_object(image)),
            };
            let annotations = entry
                .as_object_mut()
                .ok_or("the descriptor is not a JSON object")?
                .entry("annotations")
                .or_insert_with(|| serde_json::json!({}));
            let annotations = annotations.as_object_mut().ok_or("the descriptor's annotations are not an object")?;
            if !image.is_empty() {
                annotations.insert(IMAGE_NAME.into(), image.clone().into());
            }
            annotations.insert(REF_NAME.into(), reference.clone().into());
            let text = |m: &serde_json::Value, key: &str| m["annotations"][key].as_str().unwrap_or("").to_string();
            manifests.retain(|m| text(m, REF_NAME) != reference || text(m, IMAGE_NAME) != image);
        }
        manifests.push(entry);
    }
    object.insert("manifests".into(), serde_json::Value::Array(manifests));
    serde_json::to_string(index).map_err(|e| e.to_string())
}

/// The descriptor `dir/index.json` names `tag` (an image name first, then a ref name), as
/// BuildKit's client looks a local cache up; `Ok(None)` when no entry has it.
pub fn lookup_index(dir: &Path, tag: &str) -> Result<Option<serde_json::Value>, IndexError> {
    let path = dir.join("index.json");
    let text = std::fs::read(&path).map_err(|e| format!("could not read {}: {e}", path.display()))?;
    let index: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("could not read {}: {e}", path.display()))?;
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    for key in [IMAGE_NAME, REF_NAME] {
        if let Some(found) = manifests.iter().find(|m| m["annotations"][key].as_str() == Some(tag)) {
            return Ok(Some(found.clone()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("assemble-content-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn request(action: i32, reference: &str, total: i64, expected: &str, offset: i64, data: &[u8]) -> Bytes {
        let message = proto::WriteContentRequest {
            action,
            r#ref: reference.into(),
            total,
            expected: expected.into(),
            offset,
            data: data.to_vec(),
            labels: HashMap::new(),
        };
        Bytes::from(message.encode_to_vec())
    }

    async fn run_write(store: &LocalStore, messages: Vec<Bytes>) -> (Vec<proto::WriteContentResponse>, Option<Status>) {
        let mut inbound = futures_util::stream::iter(messages.into_iter().map(Ok));
        let (send, mut receive) = mpsc::channel(16);
        let result = write(store, &mut inbound, &send).await;
        drop(send);
        let mut answers = Vec::new();
        while let Some(Ok(bytes)) = receive.recv().await {
            answers.push(proto::WriteContentResponse::decode(bytes).unwrap());
        }
        (answers, result.err())
    }

    #[tokio::test]
    async fn a_write_is_checked_committed_to_its_blob_and_a_second_one_is_already_there() {
        let dir = temp("write");
        let store = LocalStore::new(&dir);
        let data = b"hello content";
        let digest = format!("sha256:{}", hex(&Sha256::digest(data)));
        let size = data.len() as i64;
        let (answers, error) = run_write(
            &store,
            vec![
                request(proto::STAT, "layer-1", size, &digest, 0, b""),
                request(proto::STAT, "", 0, "", 0, b""),
                request(proto::WRITE, "", 0, "", 0, &data[..5]),
                request(proto::WRITE, "", 0, "", 5, &data[5..]),
                request(proto::COMMIT, "", size, &digest, size, b""),
            ],
        )
        .await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(answers.iter().map(|a| a.offset).collect::<Vec<_>>(), [0, 0, 5, size, size]);
        assert_eq!(answers[0].total, size);
        assert_eq!(answers[4].digest, digest);
        let blob = dir.join("blobs/sha256").join(&digest[7..]);
        assert_eq!(std::fs::read(&blob).unwrap(), data);
        assert_eq!(std::fs::read_dir(dir.join("ingest")).unwrap().count(), 0, "the ingest is cleaned");
        assert!(store.writing.lock().unwrap().is_empty(), "the ref is released");

        let (_, again) = run_write(&store, vec![request(proto::STAT, "layer-1", size, &digest, 0, b"")]).await;
        assert_eq!(again.map(|s| s.code()), Some(tonic::Code::AlreadyExists), "BuildKit takes it as done");

        let wrong = format!("sha256:{}", "0".repeat(64));
        let (_, bad) = run_write(
            &store,
            vec![request(proto::WRITE, "layer-2", 0, "", 0, b"abc"), request(proto::COMMIT, "", 3, &wrong, 3, b"")],
        )
        .await;
        let bad = bad.unwrap();
        assert_eq!(bad.code(), tonic::Code::FailedPrecondition);
        assert!(bad.message().starts_with("unexpected commit digest sha256:ba7816bf"), "{}", bad.message());
        let (_, size_bad) = run_write(&store, vec![request(proto::COMMIT, "layer-3", 9, "", 0, b"abc")]).await;
        assert!(size_bad.unwrap().message().contains("unexpected commit size 3, expected 9"));
        let (_, gap) = run_write(&store, vec![request(proto::WRITE, "layer-4", 0, "", 7, b"abc")]).await;
        assert_eq!(gap.unwrap().code(), tonic::Code::OutOfRange);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_broken_write_resumes_at_its_offset_and_one_ref_has_one_writer() {
        let dir = temp("resume");
        let store = LocalStore::new(&dir);
        let (answers, _) = run_write(&store, vec![request(proto::WRITE, "config-1", 6, "", 0, b"abc")]).await;
        assert_eq!(answers[0].offset, 3);
        let held = store.writer("config-1", 6, "").unwrap();
        assert_eq!(held.offset, 3, "resumed from what the first writer left");
        assert_eq!(store.writer("config-1", 6, "").err().map(|s| s.code()), Some(tonic::Code::Unavailable));
        drop(held);
        let (answers, error) = run_write(
            &store,
            vec![
                request(proto::STAT, "config-1", 6, "", 0, b""),
                request(proto::WRITE, "", 0, "", 3, b"def"),
                request(proto::COMMIT, "", 6, "", 6, b""),
            ],
        )
        .await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(answers[0].offset, 3);
        assert_eq!(answers[2].digest, format!("sha256:{}", hex(&Sha256::digest(b"abcdef"))));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn digests_are_validated_as_containerd_validates_them() {
        assert!(valid_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!valid_digest(&format!("sha256:{}", "A".repeat(64))));
        assert!(!valid_digest("sha256:abc"));
        assert!(!valid_digest(&format!("md5:{}", "a".repeat(64))));
        assert!(LocalStore::new("/x").blob_path("sha256:../../etc").is_none());
        assert_eq!(store_info_error("sha256:zz").code(), tonic::Code::InvalidArgument);
        assert_eq!(store_info_error(&format!("sha256:{}", "a".repeat(64))).code(), tonic::Code::NotFound);
    }

    fn store_info_error(digest: &str) -> Status {
        LocalStore::new(std::env::temp_dir().join("assemble-no-such-store")).info(digest).unwrap_err()
    }

    #[test]
    fn index_json_is_updated_and_read_as_buildkit_s_ociindex_does() {
        let dir = temp("index");
        let cache = serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:1", "size": 10});
        put_index(&dir, &cache, &[IndexName::Tag("latest".into())]).unwrap();
        let newer = serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:2", "size": 11});
        put_index(&dir, &newer, &[IndexName::Tag("latest".into())]).unwrap();
        put_index(&dir, &cache, &[IndexName::Tag("old".into())]).unwrap();
        let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
        assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "the same tag is replaced");
        assert_eq!(index["manifests"][0]["annotations"][REF_NAME], "latest");
        assert_eq!(index["manifests"][0]["digest"], "sha256:2");
        assert_eq!(std::fs::read_to_string(dir.join("oci-layout")).unwrap(), r#"{"imageLayoutVersion":"1.0.0"}"#);
        assert!(!dir.join("index.json.lock").exists());
        assert_eq!(lookup_index(&dir, "latest").unwrap().unwrap()["digest"], "sha256:2");
        assert_eq!(lookup_index(&dir, "old").unwrap().unwrap()["digest"], "sha256:1");
        assert_eq!(lookup_index(&dir, "none").unwrap(), None);
        put_index(&dir, &cache, &[IndexName::Name("docker.io/library/app:1".into())]).unwrap();
        let named = lookup_index(&dir, "docker.io/library/app:1").unwrap().unwrap();
        assert_eq!(named["annotations"][REF_NAME], "1");
        let empty = temp("empty");
        assert!(lookup_index(&empty, "latest").unwrap_err().contains("could not read"));
        std::fs::remove_dir_all(empty).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_image_name_s_reference_object_is_containerd_s() {
        assert_eq!(reference_object("docker.io/library/app:latest"), "latest");
        assert_eq!(reference_object("localhost:5000/app:1"), "1");
        assert_eq!(reference_object("localhost:5000/app@sha256:ab"), "@sha256:ab");
        assert_eq!(reference_object("app"), "app");
    }
}
