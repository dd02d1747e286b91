//! The back: the only part that holds the engine's API (its socket, mounted into a container with
//! no network). It answers the front's checked questions, one line each, on a unix socket in a
//! volume only the front and the back mount: is this name an image the engine has (a manifest),
//! and the bytes of a blob of an image it has exported. An image is exported once (`docker save`)
//! and its blobs kept by digest until the engine no longer has it (see store.rs); every answer
//! first asks the engine whether the image is still there, under the name asked for.
use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write},
    os::unix::{
        fs::PermissionsExt,
        net::{UnixListener, UnixStream},
    },
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    thread,
    time::Duration,
};

use crate::{
    answer::{error, AnswerHead, Code},
    engine::{Engine, Failure, Image},
    export::{self, MANIFEST_TYPE},
    grammar::{Ask, Named, Range, Reference, Request},
    http::Client,
    json,
    store::{Record, Store},
};

/// What the back prints once it answers (the core waits for it, or for an error line).
pub const READY: &str = "assemble-mirror: store ready";

/// How often the records are checked against the engine, besides its image events.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Config {
    /// The engine's socket, mounted into this container.
    pub engine_socket: PathBuf,
    /// Where to listen for the front.
    pub socket: PathBuf,
    /// The group that may connect (the front's); others may not.
    pub socket_group: Option<u32>,
    /// The cache folder (the container's own volume).
    pub cache: PathBuf,
    /// This container's name, to prove the socket is the engine it runs on.
    pub own_name: String,
    /// The engine as the user knows it (`default (unix:///var/run/docker.sock)`), for sentences.
    pub engine_label: String,
    /// The registries whose names are served from the engine.
    pub registries: Vec<String>,
    pub max_layer_bytes: u64,
    pub max_connections: usize,
}

struct Back {
    engine: Engine,
    store: Store,
    /// One export at a time, and no deletion of blobs while one runs.
    exports: Mutex<()>,
    /// "the Docker Engine default (unix:///var/run/docker.sock), vm (Debian … 20.10.24)".
    engine_words: String,
    registries: Vec<String>,
}

/// A body to send: bytes, or part of a blob's file.
enum Body {
    Bytes(Vec<u8>),
    File { file: File, start: u64 },
}

struct Reply {
    head: AnswerHead,
    body: Body,
}

impl Reply {
    fn error(status: u16, code: Code, message: &str) -> Self {
        let (head, body) = error(status, code, message);
        Reply { head, body: Body::Bytes(body) }
    }
}

pub fn serve(config: &Config) -> Result<(), String> {
    let engine = Engine::new(Client::new(&config.engine_socket));
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default().trim().to_string();
    let described = engine.check_is_mine(&config.own_name, &hostname)?;
    let store = Store::open(&config.cache, config.max_layer_bytes)
        .map_err(|e| format!("the cache folder {}: {e}", config.cache.display()))?;
    let _ = std::fs::remove_file(&config.socket);
    let listener =
        UnixListener::bind(&config.socket).map_err(|e| format!("listening on {}: {e}", config.socket.display()))?;
    let mode = match config.socket_group.map(|gid| std::os::unix::fs::chown(&config.socket, None, Some(gid))) {
        Some(Ok(())) => 0o660,
        _ => 0o666,
    };
    std::fs::set_permissions(&config.socket, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", config.socket.display()))?;
    let back = Arc::new(Back {
        engine,
        store,
        exports: Mutex::new(()),
        engine_words: format!("the Docker Engine {}, {described}", config.engine_label),
        registries: config.registries.clone(),
    });
    println!("{READY}: serving {}'s images for {}", described, config.registries.join(", "));
    let watcher = back.clone();
    thread::spawn(move || watcher.follow_events());
    let sweeper = back.clone();
    thread::spawn(move || loop {
        thread::sleep(SWEEP_EVERY);
        sweeper.sweep();
    });
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= config.max_connections {
            active.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let (back, active_here) = (back.clone(), active.clone());
        let spawned = thread::Builder::new().stack_size(512 * 1024).spawn(move || {
            back.connection(stream);
            active_here.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
    Ok(())
}

impl Back {
    fn lock_exports(&self) -> std::sync::MutexGuard<'_, ()> {
        self.exports.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn connection(&self, stream: UnixStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let Ok(read_half) = stream.try_clone() else { return };
        let mut line = String::new();
        if BufReader::new(read_half).take(2048).read_line(&mut line).is_err() {
            return;
        }
        let (reply, head_only) = match Request::parse_line(&line) {
            Some(request) => (self.reply(&request), request.head),
            None => (Reply::error(400, Code::Unsupported, "a question the store does not answer"), false),
        };
        let mut out = stream;
        let _ = out.set_write_timeout(Some(Duration::from_secs(600)));
        if reply.head.write_to(&mut out).is_err() || head_only {
            return;
        }
        let _ = match reply.body {
            Body::Bytes(bytes) => out.write_all(&bytes),
            Body::File { mut file, start } => file
                .seek(SeekFrom::Start(start))
                .and_then(|_| io::copy(&mut file.take(reply.head.length), &mut out).map(drop)),
        };
    }

    fn reply(&self, request: &Request) -> Reply {
        match &request.ask {
            Ask::Ping => Reply {
                head: AnswerHead {
                    status: 200,
                    length: 2,
                    content_type: "application/json".into(),
                    digest: None,
                    range: None,
                },
                body: Body::Bytes(b"{}".to_vec()),
            },
            Ask::Manifest { registry, name, .. } | Ask::Blob { registry, name, .. }
                if !self.registries.contains(registry) =>
            {
                Reply::error(
                    404,
                    Code::NameUnknown,
                    &format!(
                        "{} is not a registry whose images are taken from the engine",
                        Named::familiar(registry, name, None)
                    ),
                )
            }
            Ask::Manifest { registry, name, reference: Reference::Tag(tag) } => {
                self.manifest_by_tag(registry, name, tag)
            }
            Ask::Manifest { registry, name, reference: Reference::Digest(digest) } => {
                self.manifest_by_digest(registry, name, digest)
            }
            Ask::Blob { registry, name, digest, range } => self.blob(registry, name, digest, *range),
        }
    }

    fn manifest_by_tag(&self, registry: &str, name: &str, tag: &str) -> Reply {
        let familiar = Named::familiar(registry, name, Some(tag));
        let image = match self.engine.image(&format!("{registry}/{name}:{tag}")) {
            Ok(Some(image)) => image,
            Ok(None) => {
                return Reply::error(
                    404,
                    Code::ManifestUnknown,
                    &format!("the engine has no image {familiar}; its registry is asked"),
                )
            }
            Err(failure) => return self.engine_failed(&familiar, &failure),
        };
        match self.exported(&image, &familiar) {
            Ok(record) => manifest_reply(&record),
            Err(reply) => reply,
        }
    }

    fn manifest_by_digest(&self, registry: &str, name: &str, digest: &str) -> Reply {
        let Some(record) = self.store.by_manifest(digest) else { return self.unknown(digest, Code::ManifestUnknown) };
        match self.alive(&record, registry, name) {
            Ok(true) => manifest_reply(&record),
            Ok(false) => self.gone_reply(&record.asked_as, &record.image_id),
            Err(failure) => self.engine_failed(&record.asked_as, &failure),
        }
    }

    fn blob(&self, registry: &str, name: &str, digest: &str, range: Option<Range>) -> Reply {
        let records = self.store.with_blob(digest);
        let mut first_dead: Option<Arc<Record>> = None;
        for record in &records {
            match self.alive(record, registry, name) {
                Ok(true) => return self.blob_of(record, digest, range),
                Ok(false) => {
                    first_dead.get_or_insert_with(|| record.clone());
                }
                Err(failure) => return self.engine_failed(&record.asked_as, &failure),
            }
        }
        match first_dead {
            Some(record) => self.gone_reply(&record.asked_as, &record.image_id),
            None => self.unknown(digest, Code::BlobUnknown),
        }
    }

    /// Serves `digest` of `record`, exporting the image again when its file was dropped for room.
    fn blob_of(&self, record: &Arc<Record>, digest: &str, range: Option<Range>) -> Reply {
        let Some((_, size)) = record.blobs().find(|(d, _)| *d == digest) else {
            return self.unknown(digest, Code::BlobUnknown);
        };
        let file = match File::open(self.store.path(digest)) {
            Ok(file) => file,
            Err(_) => {
                let image = Image { id: record.image_id.clone(), repo_tags: Vec::new(), diff_ids: Vec::new() };
                if let Err(reply) = self.exported(&image, &record.asked_as) {
                    return reply;
                }
                match File::open(self.store.path(digest)) {
                    Ok(file) => file,
                    Err(err) => {
                        return Reply::error(
                            500,
                            Code::Unknown,
                            &format!("the store lost a layer of {} ({err})", record.asked_as),
                        )
                    }
                }
            }
        };
        self.store.touch(digest);
        let (start, last) = match range {
            None => (0, size.saturating_sub(1)),
            Some(Range { start, end }) => (start, end.unwrap_or(u64::MAX).min(size.saturating_sub(1))),
        };
        if range.is_some() && start >= size {
            return Reply::error(416, Code::BlobUnknown, &format!("the blob has {size} bytes"));
        }
        let length = if size == 0 { 0 } else { last - start + 1 };
        let mut head = AnswerHead::ok(length, "application/octet-stream", digest);
        if range.is_some() {
            head.status = 206;
            head.range = Some((start, last, size));
        }
        Reply { head, body: Body::File { file, start } }
    }

    /// Whether the engine still has `record`'s image under `registry/name`. An image it no longer
    /// has is forgotten.
    fn alive(&self, record: &Record, registry: &str, name: &str) -> Result<bool, Failure> {
        match self.engine.image(&record.image_id)? {
            None => {
                let _exports = self.lock_exports();
                self.store.forget(&record.image_id);
                Ok(false)
            }
            Some(image) => Ok(image
                .repo_tags
                .iter()
                .filter_map(|t| Named::parse(t))
                .any(|n| n.registry == registry && n.name == name)),
        }
    }

    /// The record of `image`, exported now unless it is there with all its blobs.
    fn exported(&self, image: &Image, asked_as: &str) -> Result<Arc<Record>, Reply> {
        if let Some(record) = self.store.record(&image.id).filter(|r| self.store.complete(r)) {
            return Ok(record);
        }
        let _exports = self.lock_exports();
        if let Some(record) = self.store.record(&image.id).filter(|r| self.store.complete(r)) {
            return Ok(record);
        }
        let image = match image.diff_ids.is_empty() {
            true => match self.engine.image(&image.id) {
                Ok(Some(image)) => image,
                Ok(None) => return Err(self.gone_reply(asked_as, &image.id)),
                Err(failure) => return Err(self.engine_failed(asked_as, &failure)),
            },
            false => image.clone(),
        };
        eprintln!("assemble-mirror: exporting {asked_as} ({}) from the engine", short(&image.id));
        let stream = self
            .engine
            .export(&image.id)
            .map_err(|failure| self.export_failed(asked_as, &image.id, &failure.to_string()))?;
        let exported = export::read(stream, &self.store.blobs, &self.store.tmp, &image).map_err(|why| {
            self.store.collect();
            self.export_failed(asked_as, &image.id, &why)
        })?;
        eprintln!("assemble-mirror: exported {asked_as} ({}): {} layers", short(&image.id), exported.layers.len());
        let record = self.store.insert(Record { image_id: image.id.clone(), asked_as: asked_as.to_string(), exported });
        self.store.make_room();
        Ok(record)
    }

    /// Checks every record against the engine; forgets those whose image is gone.
    fn sweep(&self) {
        let gone: Vec<String> =
            self.store.image_ids().into_iter().filter(|id| matches!(self.engine.image(id), Ok(None))).collect();
        if gone.is_empty() {
            return;
        }
        let _exports = self.lock_exports();
        for id in gone {
            if let Some(record) = self.store.record(&id) {
                eprintln!(
                    "assemble-mirror: the engine no longer has {} ({}); its blobs are dropped",
                    record.asked_as,
                    short(&id)
                );
            }
            self.store.forget(&id);
        }
    }

    /// Sweeps after every image deletion or untagging the engine reports, for as long as it runs.
    fn follow_events(&self) {
        loop {
            if let Ok(events) = self.engine.image_events() {
                for line in events.lines() {
                    let Ok(line) = line else { break };
                    let action = json::parse(line.as_bytes())
                        .ok()
                        .and_then(|v| v.get("Action").and_then(|a| a.as_str()).map(String::from));
                    if matches!(action.as_deref(), Some("delete" | "untag")) {
                        self.sweep();
                    }
                }
            }
            thread::sleep(Duration::from_secs(2));
        }
    }

    /// A digest no record names: the image it belonged to is gone (a sentence), or it never was ours.
    fn unknown(&self, digest: &str, code: Code) -> Reply {
        match self.store.gone(digest) {
            Some(gone) => self.gone_reply(&gone.asked_as, &gone.image_id),
            None => Reply::error(404, code, &format!("the engine's images hold no {digest}")),
        }
    }

    fn gone_reply(&self, asked_as: &str, image_id: &str) -> Reply {
        Reply::error(
            410,
            Code::BlobUnknown,
            &format!(
                "the engine no longer has the image {asked_as} ({}) that this build started from: it was removed \
                 or re-tagged while the build used it; build again to use what the engine (or the registry) has now",
                short(image_id)
            ),
        )
    }

    fn engine_failed(&self, familiar: &str, failure: &Failure) -> Reply {
        Reply::error(502, Code::Unknown, &format!("{} could not be asked for {familiar}: {failure}", self.engine_words))
    }

    fn export_failed(&self, familiar: &str, id: &str, why: &str) -> Reply {
        Reply::error(
            502,
            Code::Unknown,
            &format!(
                "{} cannot export {familiar} ({}), so the build cannot take it from the engine: {why}",
                self.engine_words,
                short(id)
            ),
        )
    }
}

fn manifest_reply(record: &Record) -> Reply {
    let manifest = record.exported.manifest.clone();
    Reply {
        head: AnswerHead::ok(manifest.len() as u64, MANIFEST_TYPE, &record.exported.manifest_digest),
        body: Body::Bytes(manifest),
    }
}

/// `sha256:0123456789ab`: an image ID as people read it.
fn short(id: &str) -> &str {
    &id[..id.len().min(19)]
}
