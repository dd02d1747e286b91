//! The DiffCopy wire protocol, from the sending side: one STAT packet per walked entry, then the
//! contents of each file the receiver asks for (REQ), as DATA packets ended by an empty one, until
//! its FIN. Files are read by a few threads at once, as fsutil does.
use std::{
    collections::HashMap,
    io::Read,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use bollard_buildkit_proto::fsutil::types::{packet::PacketType, Packet};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::buildkit::filesync::walk::{Contents, WalkedEntry};

/// Bytes per DATA packet.
const CHUNK: usize = 64 * 1024;
/// Files read at once for the receiver, as fsutil does.
const READERS: usize = 4;

/// What one transfer sent: counted while it runs, read after.
#[derive(Debug, Default)]
pub struct TransferCount {
    /// Entries described (STAT packets).
    pub entries: AtomicU64,
    /// Files whose contents the receiver asked for.
    pub files_sent: AtomicU64,
    /// Bytes of contents sent.
    pub bytes_sent: AtomicU64,
}

fn packet(kind: PacketType) -> Packet {
    Packet { r#type: kind as i32, ..Default::default() }
}

/// The failure sent to the receiver and kept for the user.
#[derive(Debug, Clone)]
pub struct TransferFailure(pub String);

/// Runs one DiffCopy: `entries` (a finished walk) as STAT packets, then the contents asked for,
/// until the receiver's FIN. `send` carries packets out; `inbound` is what the receiver sends.
pub async fn send_entries<S>(
    entries: Vec<WalkedEntry>,
    mut inbound: S,
    send: mpsc::Sender<Packet>,
    count: Arc<TransferCount>,
) -> std::result::Result<(), TransferFailure>
where
    S: Stream<Item = std::result::Result<Packet, String>> + Unpin,
{
    let mut sources: HashMap<u32, Contents> = HashMap::new();
    let mut stats = Vec::with_capacity(entries.len() + 1);
    for (id, entry) in entries.into_iter().enumerate() {
        if let (Some(source), Ok(id)) = (entry.source, u32::try_from(id)) {
            sources.insert(id, source);
        }
        stats.push(Packet { r#type: PacketType::PacketStat as i32, stat: Some(entry.stat), ..Default::default() });
    }
    // The empty STAT ends the listing.
    stats.push(packet(PacketType::PacketStat));
    count.entries.fetch_add(stats.len() as u64 - 1, Ordering::Relaxed);

    let listing = {
        let send = send.clone();
        tokio::spawn(async move {
            for stat in stats {
                if send.send(stat).await.is_err() {
                    break;
                }
            }
        })
    };

    let (work, readers) = start_readers(send.clone(), count.clone());
    let result = loop {
        let Some(message) = inbound.next().await else {
            break Err(TransferFailure("BuildKit ended the file transfer before it finished".into()));
        };
        let packet_in = match message {
            Ok(packet_in) => packet_in,
            Err(e) => break Err(TransferFailure(format!("the file transfer broke: {e}"))),
        };
        match PacketType::try_from(packet_in.r#type) {
            Ok(PacketType::PacketReq) => {
                let Some(source) = sources.remove(&packet_in.id) else {
                    let message =
                        format!("BuildKit asked for file number {} which is not one it may ask for", packet_in.id);
                    let _ = send
                        .send(Packet {
                            r#type: PacketType::PacketErr as i32,
                            data: message.clone().into_bytes(),
                            ..Default::default()
                        })
                        .await;
                    break Err(TransferFailure(message));
                };
                if let Ok(queue) = work.lock() {
                    let _ = queue.send((packet_in.id, source));
                }
            }
            Ok(PacketType::PacketFin) => {
                let _ = send.send(packet(PacketType::PacketFin)).await;
                break Ok(());
            }
            Ok(PacketType::PacketErr) => {
                break Err(TransferFailure(format!(
                    "BuildKit refused the files: {}",
                    String::from_utf8_lossy(&packet_in.data)
                )))
            }
            // The receiver sends nothing else; anything unknown is ignored, as fsutil does.
            _ => {}
        }
    };
    drop(work);
    listing.abort();
    for reader in readers {
        let _ = reader.await;
    }
    result
}

type WorkQueue = Arc<Mutex<std::sync::mpsc::Sender<(u32, Contents)>>>;

/// Threads that read requested files and send their DATA packets; they end when the queue closes.
fn start_readers(
    send: mpsc::Sender<Packet>,
    count: Arc<TransferCount>,
) -> (WorkQueue, Vec<tokio::task::JoinHandle<()>>) {
    let (queue, jobs) = std::sync::mpsc::channel::<(u32, Contents)>();
    let jobs = Arc::new(Mutex::new(jobs));
    let readers = (0..READERS)
        .map(|_| {
            let (jobs, send, count) = (jobs.clone(), send.clone(), count.clone());
            tokio::task::spawn_blocking(move || loop {
                let job = match jobs.lock() {
                    Ok(jobs) => jobs.recv(),
                    Err(_) => return,
                };
                let Ok((id, source)) = job else { return };
                if send_contents(id, &source, &send, &count).is_err() {
                    return;
                }
            })
        })
        .collect();
    (Arc::new(Mutex::new(queue)), readers)
}

/// The transfer is over for this reader: BuildKit stopped listening, or a file could not be read
/// (BuildKit was told).
struct TransferOver;

impl From<mpsc::error::SendError<Packet>> for TransferOver {
    fn from(_: mpsc::error::SendError<Packet>) -> Self {
        TransferOver
    }
}

/// Sends one file's contents as it is now, then the empty DATA that ends it. A file that cannot be
/// opened any more arrives empty, as with fsutil; one that changed since the walk arrives as it is.
fn send_contents(
    id: u32,
    source: &Contents,
    send: &mpsc::Sender<Packet>,
    count: &TransferCount,
) -> std::result::Result<(), TransferOver> {
    let data_packet = |data: Vec<u8>| Packet { r#type: PacketType::PacketData as i32, id, data, ..Default::default() };
    count.files_sent.fetch_add(1, Ordering::Relaxed);
    match source {
        Contents::Memory(data) => {
            for chunk in data.chunks(CHUNK) {
                count.bytes_sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                send.blocking_send(data_packet(chunk.to_vec()))?;
            }
        }
        Contents::File(path) => {
            if let Ok(mut file) = std::fs::File::open(path) {
                loop {
                    let mut buffer = vec![0; CHUNK];
                    match file.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(n) => {
                            buffer.truncate(n);
                            count.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
                            send.blocking_send(data_packet(buffer))?;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        // A file cut short would be built as if it were whole: the transfer fails.
                        Err(e) => {
                            let message = format!("could not read {} for the build context: {e}", path.display());
                            send.blocking_send(Packet {
                                r#type: PacketType::PacketErr as i32,
                                data: message.into_bytes(),
                                ..Default::default()
                            })?;
                            return Err(TransferOver);
                        }
                    }
                }
            }
        }
    }
    send.blocking_send(data_packet(Vec::new()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildkit::filesync::{
        mode::can_request_data,
        testing::tree,
        walk::{walk, SyncDir, TransferFilter},
    };

    /// The receiver's side of a DiffCopy, played by the test: asks for every file, then FIN.
    async fn transfer(entries: Vec<WalkedEntry>, change: impl FnOnce()) -> (Vec<Packet>, Arc<TransferCount>) {
        let (to_receiver, mut received) = mpsc::channel(1024);
        let (to_sender, inbound) = mpsc::channel::<std::result::Result<Packet, String>>(16);
        let count = Arc::new(TransferCount::default());
        let inbound = futures_util::stream::poll_fn({
            let mut inbound = inbound;
            move |cx| inbound.poll_recv(cx)
        });
        let task = tokio::spawn(send_entries(entries, inbound, to_receiver, count.clone()));
        let mut stats = Vec::new();
        loop {
            let p = received.recv().await.unwrap();
            if p.stat.is_none() {
                break;
            }
            stats.push(p);
        }
        change();
        let files: Vec<u32> = stats
            .iter()
            .enumerate()
            .filter(|(_, p)| can_request_data(p.stat.as_ref().unwrap().mode))
            .map(|(i, _)| i as u32)
            .collect();
        for id in &files {
            to_sender
                .send(Ok(Packet { r#type: PacketType::PacketReq as i32, id: *id, ..Default::default() }))
                .await
                .unwrap();
        }
        let mut data = Vec::new();
        let mut ended = 0;
        while ended < files.len() {
            let p = received.recv().await.unwrap();
            assert_eq!(p.r#type, PacketType::PacketData as i32);
            if p.data.is_empty() {
                ended += 1;
            }
            data.push(p);
        }
        to_sender.send(Ok(packet(PacketType::PacketFin))).await.unwrap();
        assert_eq!(received.recv().await.unwrap().r#type, PacketType::PacketFin as i32);
        task.await.unwrap().unwrap();
        let mut all = stats;
        all.extend(data);
        (all, count)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn sends_the_contents_asked_for_as_they_are_when_asked() {
        let dir = tree(&["a", "big", "sub/c"]);
        std::fs::write(dir.path().join("big"), vec![7u8; CHUNK * 2 + 5]).unwrap();
        let entries = walk(&SyncDir::Folder(dir.path().into()), &TransferFilter::default()).unwrap();
        // "a" changes after the walk, before BuildKit asks for it.
        let changed = dir.path().join("a");
        let (packets, count) = transfer(entries, || std::fs::write(&changed, b"changed since").unwrap()).await;
        let contents = |id: u32| -> Vec<u8> {
            packets
                .iter()
                .filter(|p| p.r#type == PacketType::PacketData as i32 && p.id == id)
                .flat_map(|p| p.data.clone())
                .collect()
        };
        // ids: 0 a, 1 big, 2 sub, 3 sub/c
        assert_eq!(packets[0].stat.as_ref().unwrap().size, 1, "the stat is the walk's");
        assert_eq!(contents(0), b"changed since", "the contents are the file's when asked");
        assert_eq!(contents(1).len(), CHUNK * 2 + 5);
        assert_eq!(contents(3), b"sub/c");
        assert_eq!(count.files_sent.load(Ordering::Relaxed), 3);
        assert_eq!(count.entries.load(Ordering::Relaxed), 4);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_request_for_an_unknown_id_fails_the_transfer_with_a_sentence() {
        let (to_receiver, mut received) = mpsc::channel(16);
        let inbound = futures_util::stream::iter(vec![Ok(Packet {
            r#type: PacketType::PacketReq as i32,
            id: 9,
            ..Default::default()
        })]);
        let result = send_entries(Vec::new(), inbound, to_receiver, Arc::default()).await;
        assert!(result.unwrap_err().0.contains("file number 9"));
        let mut kinds = Vec::new();
        while let Ok(p) = received.try_recv() {
            kinds.push(p.r#type);
        }
        assert!(kinds.contains(&(PacketType::PacketErr as i32)), "{kinds:?}");
    }
}
