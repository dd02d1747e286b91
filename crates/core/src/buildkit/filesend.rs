//! The exporters' way back to us (`moby.filesync.v1.FileSend/DiffCopy`): BuildKit calls it once per
//! exported file (`--load`'s image tar, `-o type=tar|oci|docker`), as a stream of raw bytes, and
//! once per platform for `-o type=local`, as fsutil's packets with us as the receiver. Both come on
//! the same method, told apart only by the exporter they are for (the
//! `buildkit-attachable-exporter-id` metadata), so the service reads the messages as bytes and
//! decodes them itself, as BuildKit's Go client does.
use std::{
    collections::HashMap,
    convert::Infallible,
    fs::File,
    io::Write,
    path::{Component, Path, PathBuf},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, UNIX_EPOCH},
};

use bollard_buildkit_proto::{
    fsutil::types::{packet::PacketType, Packet, Stat},
    moby::filesync::v1::BytesMessage,
};
use bytes::{Buf, BufMut, Bytes};
use futures_util::{Stream, StreamExt};
use prost::Message;
use tokio::sync::mpsc;
use tonic::{
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    Status,
};

/// Go's `os.FileMode` type bits the receiver tells entries apart by.
const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_TYPE: u32 = GO_MODE_DIR | GO_MODE_SYMLINK | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19);
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_STICKY: u32 = 1 << 20;
/// BuildKit sends messages of up to 16 MiB on the session.
const MAX_MESSAGE: usize = 16 << 20;

/// Where an exporter's files go.
#[derive(Debug, Clone)]
pub enum ExportTarget {
    /// The file's bytes, in order, handed on; the channel closing means the file is complete.
    Bytes(mpsc::Sender<Bytes>),
    /// A folder the exported files are written into (kept files it already had, as buildx).
    Folder(PathBuf),
}

/// The FileSend service: exporter index → where its files go.
#[derive(Clone)]
pub(crate) struct FileSendServer {
    exports: Arc<Mutex<HashMap<usize, ExportTarget>>>,
}

impl FileSendServer {
    pub(crate) fn new(exports: HashMap<usize, ExportTarget>) -> Self {
        Self { exports: Arc::new(Mutex::new(exports)) }
    }
}

impl tonic::server::NamedService for FileSendServer {
    const NAME: &'static str = "moby.filesync.v1.FileSend";
}

impl<B> tower_service::Service<http::Request<B>> for FileSendServer
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
            if request.uri().path() != "/moby.filesync.v1.FileSend/DiffCopy" {
                return Ok(Status::unimplemented("only DiffCopy is served").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(RawCodec).apply_max_message_size_config(Some(MAX_MESSAGE), None);
            Ok(grpc.streaming(DiffCopy(this), request).await)
        })
    }
}

struct DiffCopy(FileSendServer);

type RawStream = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

impl tonic::server::StreamingService<Bytes> for DiffCopy {
    type Response = Bytes;
    type ResponseStream = RawStream;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<tonic::Response<RawStream>, Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<tonic::Streaming<Bytes>>) -> Self::Future {
        let exports = self.0.exports.clone();
        Box::pin(async move {
            // Go reads a missing or bad ID as exporter 0.
            let id = request
                .metadata()
                .get("buildkit-attachable-exporter-id")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            let target = {
                let mut exports = exports.lock().map_err(|_| Status::internal("the export table broke"))?;
                match exports.get(&id) {
                    // A file is sent once: its channel is taken.
                    Some(ExportTarget::Bytes(_)) => exports.remove(&id),
                    // A folder gets one stream per platform, possibly at once.
                    Some(folder) => Some(folder.clone()),
                    None => None,
                }
            };
            let inbound = request.into_inner();
            match target {
                None => Err(Status::not_found(format!("exporter {id} not found"))),
                Some(ExportTarget::Bytes(target)) => {
                    receive_bytes(inbound, target).await?;
                    Ok(tonic::Response::new(Box::pin(futures_util::stream::empty()) as RawStream))
                }
                Some(ExportTarget::Folder(dest)) => {
                    let (send, mut receive) = mpsc::channel::<Result<Bytes, Status>>(64);
                    tokio::spawn(async move {
                        if let Err(failure) = receive_folder(&dest, inbound, &send).await {
                            let packet = Packet {
                                r#type: PacketType::PacketErr as i32,
                                data: failure.clone().into_bytes(),
                                ..Default::default()
                            };
                            let _ = send.send(Ok(Bytes::from(packet.encode_to_vec()))).await;
                            let _ = send.send(Err(Status::aborted(failure))).await;
                        }
                    });
                    let outbound = futures_util::stream::poll_fn(move |cx| receive.poll_recv(cx));
                    Ok(tonic::Response::new(Box::pin(outbound) as RawStream))
                }
            }
        })
    }
}

/// A file's bytes (`BytesMessage`s), handed on in order.
async fn receive_bytes(mut inbound: tonic::Streaming<Bytes>, target: mpsc::Sender<Bytes>) -> Result<(), Status> {
    while let Some(message) = inbound.next().await {
        let message = BytesMessage::decode(message?).map_err(|e| Status::invalid_argument(e.to_string()))?;
        if target.send(Bytes::from(message.data)).await.is_err() {
            return Err(Status::aborted("the exported file could not be handed on"));
        }
    }
    Ok(())
}

/// fsutil's receiving side, writing into `dest`: the sender lists every entry (STAT), we ask for
/// each regular file's contents (REQ) and write its DATA as it comes (several files interleave),
/// then say FIN once all are written and wait for the sender's.
async fn receive_folder<S>(
    dest: &Path,
    mut inbound: S,
    send: &mpsc::Sender<Result<Bytes, Status>>,
) -> Result<(), String>
where
    S: Stream<Item = Result<Bytes, Status>> + Unpin,
{
    let out = |packet: Packet| Ok(Bytes::from(packet.encode_to_vec()));
    std::fs::create_dir_all(dest).map_err(|e| format!("could not make {}: {e}", dest.display()))?;
    let mut stats: Vec<Stat> = Vec::new();
    let mut open: HashMap<u32, File> = HashMap::new();
    let mut waiting = 0usize;
    let mut listed = false;
    let mut fin_sent = false;
    let mut folders: Vec<Stat> = Vec::new();
    let mut links: Vec<Stat> = Vec::new();
    while let Some(message) = inbound.next().await {
        let message = message.map_err(|status| format!("the transfer broke: {}", status.message()))?;
        let packet = Packet::decode(message).map_err(|e| format!("BuildKit sent a packet we cannot read: {e}"))?;
        match PacketType::try_from(packet.r#type) {
            Ok(PacketType::PacketStat) => match packet.stat {
                None => listed = true,
                Some(stat) => {
                    let id = u32::try_from(stats.len()).map_err(|_| "too many entries".to_string())?;
                    let path = inside(dest, &stat.path)?;
                    if stat.mode & GO_MODE_DIR != 0 {
                        make_folder(&path)?;
                        folders.push(stat.clone());
                    } else if stat.mode & GO_MODE_SYMLINK != 0 {
                        clear(&path)?;
                        std::os::unix::fs::symlink(&stat.linkname, &path)
                            .map_err(|e| format!("could not make the link {}: {e}", path.display()))?;
                    } else if stat.mode & GO_MODE_TYPE == 0 {
                        if stat.linkname.is_empty() {
                            waiting += 1;
                            let request = Packet { r#type: PacketType::PacketReq as i32, id, ..Default::default() };
                            send.send(out(request)).await.map_err(|_| "the transfer ended".to_string())?;
                        } else {
                            links.push(stat.clone());
                        }
                    }
                    // Devices, pipes and sockets are not written: a build's output has no use for them.
                    stats.push(stat);
                }
            },
            Ok(PacketType::PacketData) => {
                let stat =
                    stats.get(packet.id as usize).ok_or_else(|| format!("data for unknown file {}", packet.id))?;
                let path = inside(dest, &stat.path)?;
                if let std::collections::hash_map::Entry::Vacant(slot) = open.entry(packet.id) {
                    clear(&path)?;
                    slot.insert(File::create(&path).map_err(|e| format!("could not write {}: {e}", path.display()))?);
                }
                if packet.data.is_empty() {
                    // The file is complete.
                    if let Some(file) = open.remove(&packet.id) {
                        apply_metadata(&file, &path, stat)?;
                    }
                    waiting = waiting.saturating_sub(1);
                } else if let Some(file) = open.get_mut(&packet.id) {
                    file.write_all(&packet.data).map_err(|e| format!("could not write {}: {e}", path.display()))?;
                }
            }
            Ok(PacketType::PacketFin) => return Ok(()),
            Ok(PacketType::PacketErr) => {
                return Err(format!("BuildKit's export failed: {}", String::from_utf8_lossy(&packet.data)))
            }
            Ok(PacketType::PacketReq) | Err(_) => return Err(format!("unexpected packet type {}", packet.r#type)),
        }
        if listed && waiting == 0 && !fin_sent {
            for link in &links {
                let path = inside(dest, &link.path)?;
                let target = inside(dest, &link.linkname)?;
                clear(&path)?;
                std::fs::hard_link(&target, &path).map_err(|e| format!("could not link {}: {e}", path.display()))?;
            }
            // Folders last, deepest first: writing into one changes its time.
            for folder in folders.iter().rev() {
                let path = inside(dest, &folder.path)?;
                if let Ok(file) = File::open(&path) {
                    apply_metadata(&file, &path, folder)?;
                }
            }
            fin_sent = true;
            let fin = Packet { r#type: PacketType::PacketFin as i32, ..Default::default() };
            send.send(out(fin)).await.map_err(|_| "the transfer ended".to_string())?;
        }
    }
    if fin_sent {
        Ok(())
    } else {
        Err("BuildKit ended the export before it finished".into())
    }
}

/// `relative` under `dest`; a path that would leave it is refused.
fn inside(dest: &Path, relative: &str) -> Result<PathBuf, String> {
    let path = Path::new(relative);
    if path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        Ok(dest.join(path))
    } else {
        Err(format!("BuildKit sent a path outside the output folder: {relative:?}"))
    }
}

fn make_folder(path: &Path) -> Result<(), String> {
    if path.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
        clear(path)?;
    }
    std::fs::create_dir_all(path).map_err(|e| format!("could not make {}: {e}", path.display()))
}

/// Removes what is at `path` (not a folder with files in it: that is an error, as fsutil's).
fn clear(path: &Path) -> Result<(), String> {
    match path.symlink_metadata() {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => std::fs::remove_dir(path),
        Ok(_) => std::fs::remove_file(path),
    }
    .map_err(|e| format!("could not replace {}: {e}", path.display()))
}

fn apply_metadata(file: &File, path: &Path, stat: &Stat) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mut mode = stat.mode & 0o777;
    for (go, unix) in [(GO_MODE_SETUID, 0o4000), (GO_MODE_SETGID, 0o2000), (GO_MODE_STICKY, 0o1000)] {
        if stat.mode & go != 0 {
            mode |= unix;
        }
    }
    let failed = |e: std::io::Error| format!("could not set the mode and time of {}: {e}", path.display());
    if let Ok(nanos) = u64::try_from(stat.mod_time) {
        file.set_modified(UNIX_EPOCH + Duration::from_nanos(nanos)).map_err(failed)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(failed)
}

/// Messages as they come: the service decodes them per exporter.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(path: &str, mode: u32, size: i64, linkname: &str) -> Packet {
        Packet {
            r#type: PacketType::PacketStat as i32,
            stat: Some(Stat {
                path: path.into(),
                mode,
                size,
                mod_time: 1_600_000_000_000_000_000,
                linkname: linkname.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn data(id: u32, bytes: &[u8]) -> Packet {
        Packet { r#type: PacketType::PacketData as i32, id, data: bytes.to_vec(), ..Default::default() }
    }

    #[tokio::test]
    async fn a_listing_and_interleaved_contents_become_the_folder() {
        let dest = std::env::temp_dir().join(format!("assemble-filesend-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::write(dest.join("kept.txt"), "kept").unwrap();
        let packets = vec![
            stat("bin", GO_MODE_DIR | 0o755, 0, ""),
            stat("bin/run", 0o750, 3, ""),
            stat("empty", 0o644, 0, ""),
            stat("hard", 0o644, 0, "bin/run"),
            stat("link", GO_MODE_SYMLINK | 0o777, 0, "bin/run"),
            Packet { r#type: PacketType::PacketStat as i32, ..Default::default() },
            data(1, b"ab"),
            data(2, b""),
            data(1, b"c"),
            data(1, b""),
            Packet { r#type: PacketType::PacketFin as i32, ..Default::default() },
        ];
        let inbound = futures_util::stream::iter(packets.into_iter().map(|p| Ok(Bytes::from(p.encode_to_vec()))));
        let (send, mut receive) = mpsc::channel(16);
        receive_folder(&dest, inbound, &send).await.unwrap();
        drop(send);
        let mut sent = Vec::new();
        while let Some(Ok(bytes)) = receive.recv().await {
            let p = Packet::decode(bytes).unwrap();
            sent.push((p.r#type, p.id));
        }
        let (req, fin) = (PacketType::PacketReq as i32, PacketType::PacketFin as i32);
        assert_eq!(sent, [(req, 1), (req, 2), (fin, 0)]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::read_to_string(dest.join("bin/run")).unwrap(), "abc");
        assert_eq!(std::fs::metadata(dest.join("bin/run")).unwrap().permissions().mode() & 0o777, 0o750);
        assert_eq!(std::fs::read_to_string(dest.join("hard")).unwrap(), "abc");
        assert_eq!(std::fs::read_link(dest.join("link")).unwrap(), Path::new("bin/run"));
        assert_eq!(std::fs::read(dest.join("empty")).unwrap(), b"");
        assert_eq!(std::fs::read_to_string(dest.join("kept.txt")).unwrap(), "kept", "merged, as buildx");
        let modified = std::fs::metadata(dest.join("bin")).unwrap().modified().unwrap();
        assert_eq!(modified, UNIX_EPOCH + Duration::from_secs(1_600_000_000));
        assert!(inside(&dest, "../escape").is_err() && inside(&dest, "/etc/passwd").is_err());
        std::fs::remove_dir_all(dest).unwrap();
    }
}
