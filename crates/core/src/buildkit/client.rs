//! BuildKit's control API (gRPC `moby.buildkit.v1.Control`) over `buildctl dial-stdio`, run in the
//! backend container through a Docker exec stream, the way `docker buildx` reaches a
//! docker-container builder. One exec carries one HTTP/2 connection; keep a [`BuildkitClient`]
//! to make several calls over it.
use std::{
    collections::BTreeMap,
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bollard::{
    container::LogOutput,
    exec::{CreateExecOptions, StartExecOptions, StartExecResults},
    Docker,
};
use bollard_buildkit_proto::moby::buildkit::v1::{
    control_client::ControlClient, DiskUsageRequest, InfoRequest, ListWorkersRequest, PruneRequest, UsageRecord,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::io::StreamReader;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::buildkit::error::BuildkitError;
use crate::buildkit::prune::CacheFilter;
use crate::{Error, Result};

/// Bounds one connection attempt (exec + HTTP/2 handshake), so a wedged daemon cannot hang us.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds one call; disk usage on a large cache is the slowest we make.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A BuildKit worker, as `info` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Worker {
    /// The worker's ID.
    pub id: String,
    /// The platforms it builds for natively (the kernel runs them), as `os/arch[/variant]`: what
    /// BuildKit lists.
    pub platforms: Vec<String>,
    /// The platforms it builds for only through the daemon's emulators (BuildKit does not list
    /// them; see [`crate::buildkit::platform`]); empty until they are looked for.
    pub emulated_platforms: Vec<String>,
    /// Its labels (executor, hostname, snapshotter, …).
    pub labels: BTreeMap<String, String>,
    /// The BuildKit version it reports, when it does.
    pub buildkit_version: Option<String>,
}

/// One build cache record, as `cache usage` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheRecord {
    /// The record's ID.
    pub id: String,
    /// Its type in lower case (`regular`, `source.local`, …); `regular` when BuildKit gives none.
    pub record_type: String,
    /// Its size in bytes.
    pub size: i64,
    /// Held by a running build.
    pub in_use: bool,
    /// Its data is shared with other records.
    pub shared: bool,
    /// A mutable snapshot rather than a committed one.
    pub mutable: bool,
    /// Seconds since the Unix epoch; `None` when never used.
    pub last_used: Option<i64>,
    /// How many times it has been used.
    pub usage_count: i64,
    /// BuildKit's description of it (often the step that made it).
    pub description: String,
}

impl CacheRecord {
    /// Freed by a purge: anything not held by a running build.
    pub fn reclaimable(&self) -> bool {
        !self.in_use
    }
}

/// Totals over a set of cache records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheTotals {
    /// How many records.
    pub entries: usize,
    /// Entries a purge would remove.
    pub reclaimable_entries: usize,
    /// Bytes in all records.
    pub total: i64,
    /// Bytes held by running builds.
    pub in_use: i64,
    /// Bytes a purge would free.
    pub reclaimable: i64,
    /// Bytes in shared records.
    pub shared: i64,
}

impl CacheTotals {
    /// Sums `records`: counts, and bytes in use, reclaimable and shared.
    pub fn of(records: &[CacheRecord]) -> Self {
        records.iter().fold(Self::default(), |mut t, r| {
            t.entries += 1;
            t.total += r.size;
            if r.in_use {
                t.in_use += r.size;
            } else {
                t.reclaimable += r.size;
                t.reclaimable_entries += 1;
            }
            if r.shared {
                t.shared += r.size;
            }
            t
        })
    }

    /// Bytes per record type, for a breakdown.
    pub fn by_type(records: &[CacheRecord]) -> BTreeMap<String, i64> {
        let mut by_type = BTreeMap::new();
        for record in records {
            *by_type.entry(record.record_type.clone()).or_insert(0) += record.size;
        }
        by_type
    }
}

/// A connection to one backend's BuildKit daemon.
#[derive(Clone)]
pub struct BuildkitClient {
    control: ControlClient<Channel>,
    /// The same connection, for the daemon's other services (its content store).
    channel: Channel,
}

impl BuildkitClient {
    /// Opens the exec stream and the HTTP/2 connection over it.
    pub async fn connect(docker: &Docker, container: &str) -> Result<Self> {
        Self::connect_with(docker, container, Some(CALL_TIMEOUT)).await
    }

    /// A connection for a build: its calls (the solve, the session, the status) last as long as
    /// the build does, so none of them has a time limit.
    pub async fn connect_for_build(docker: &Docker, container: &str) -> Result<Self> {
        Self::connect_with(docker, container, None).await
    }

    async fn connect_with(docker: &Docker, container: &str, call_timeout: Option<Duration>) -> Result<Self> {
        let connector = ExecConnector { docker: docker.clone(), container: container.to_string() };
        // The URI is never dialled: the connector supplies the byte stream.
        let mut endpoint = Endpoint::from_static("http://buildkitd.invalid").connect_timeout(CONNECT_TIMEOUT);
        if let Some(limit) = call_timeout {
            endpoint = endpoint.timeout(limit);
        }
        let channel =
            endpoint.connect_with_connector(connector).await.map_err(|e| BuildkitError::Unreachable(describe(&e)))?;
        Ok(Self { control: ControlClient::new(channel.clone()).max_decoding_message_size(64 * 1024 * 1024), channel })
    }

    /// The control API, for calls made in other modules (one module per concern).
    pub(crate) fn control(&self) -> ControlClient<Channel> {
        self.control.clone()
    }

    /// The connection, for the daemon's services beside the control API.
    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The daemon's workers; BuildKit is ready once it lists one.
    pub async fn workers(&self) -> Result<Vec<Worker>> {
        let response = self
            .control
            .clone()
            .list_workers(ListWorkersRequest::default())
            .await
            .map_err(status_error("list its workers"))?
            .into_inner();
        Ok(response.record.into_iter().map(worker_from_record).collect())
    }

    /// The daemon's version string (e.g. `v0.25.1`).
    pub async fn version(&self) -> Result<String> {
        let response =
            self.control.clone().info(InfoRequest {}).await.map_err(status_error("tell its version"))?.into_inner();
        Ok(response.buildkit_version.map(|v| v.version).unwrap_or_default())
    }

    /// Every build cache record, for `cache usage` and `info`.
    pub async fn disk_usage(&self) -> Result<Vec<CacheRecord>> {
        // No filter: no type asked of BuildKit and no age, so the time does not matter.
        self.disk_usage_matching(&CacheFilter::default(), 0).await
    }

    /// The cache records that match `filter` (its types, asked of BuildKit; its age, checked here
    /// against each record's last use, at `now` in seconds since the epoch).
    pub async fn disk_usage_matching(&self, filter: &CacheFilter, now: i64) -> Result<Vec<CacheRecord>> {
        let request = DiskUsageRequest { filter: filter.buildkit_filters(), ..Default::default() };
        let response =
            self.control.clone().disk_usage(request).await.map_err(status_error("list its cache"))?.into_inner();
        let unused_for = filter.until.map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Ok(response
            .record
            .into_iter()
            .map(cache_record)
            .filter(|r| unused_for.is_none_or(|age| r.last_used.is_none_or(|used| now - used >= age)))
            .collect())
    }

    /// Removes the cache records not in use that `filter` selects (buildx prune's options);
    /// returns the records removed.
    pub async fn prune(&self, filter: &CacheFilter) -> Result<Vec<CacheRecord>> {
        let request = PruneRequest {
            all: filter.all,
            filter: filter.buildkit_filters(),
            keep_duration: filter.keep_duration_nanos(),
            reserved_space: filter.keep_storage.map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX)),
            ..Default::default()
        };
        let mut stream =
            self.control.clone().prune(request).await.map_err(status_error("purge its cache"))?.into_inner();
        let mut removed: Vec<CacheRecord> = Vec::new();
        while let Some(record) = stream.next().await {
            match record.map_err(status_error("purge its cache")) {
                Ok(record) => removed.push(cache_record(record)),
                // Some records are gone already: say how many, and never run it again by itself.
                Err(cause) if !removed.is_empty() => {
                    return Err(BuildkitError::PurgeInterrupted {
                        removed: removed.len(),
                        freed: crate::units::human_size(removed.iter().map(|r| r.size).sum()),
                        cause: Box::new(cause),
                    }
                    .into())
                }
                Err(cause) => return Err(cause.into()),
            }
        }
        Ok(removed)
    }
}

/// BuildKit's answer kept as it is: its gRPC code, its message, and whether the call broke in
/// transit (tonic then carries the connection's error as the status's source).
pub(crate) fn status_error(call: &'static str) -> impl Fn(tonic::Status) -> BuildkitError {
    move |status| BuildkitError::Status {
        call,
        code: status.code(),
        message: status.message().to_string(),
        transport: std::error::Error::source(&status).is_some() || status.code() == tonic::Code::Unavailable,
    }
}

fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

fn worker_from_record(record: bollard_buildkit_proto::moby::buildkit::v1::types::WorkerRecord) -> Worker {
    Worker {
        id: record.id,
        platforms: record
            .platforms
            .into_iter()
            .map(|p| {
                let mut text = format!("{}/{}", p.os, p.architecture);
                if !p.variant.is_empty() {
                    text.push('/');
                    text.push_str(&p.variant);
                }
                text
            })
            .collect(),
        emulated_platforms: Vec::new(),
        labels: record.labels.into_iter().collect(),
        buildkit_version: record.buildkit_version.map(|v| v.version).filter(|v| !v.is_empty()),
    }
}

fn cache_record(record: UsageRecord) -> CacheRecord {
    CacheRecord {
        id: record.id,
        record_type: if record.record_type.is_empty() { "regular".into() } else { record.record_type.to_lowercase() },
        size: record.size,
        in_use: record.in_use,
        shared: record.shared,
        mutable: record.mutable,
        last_used: record.last_used_at.map(|t| t.seconds),
        usage_count: record.usage_count,
        description: record.description,
    }
}

/// Dials BuildKit by running `buildctl dial-stdio` in the container and using its stdio.
#[derive(Clone)]
struct ExecConnector {
    docker: Docker,
    container: String,
}

impl tower_service::Service<Uri> for ExecConnector {
    type Response = TokioIo<ExecStream>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let (docker, container) = (self.docker.clone(), self.container.clone());
        Box::pin(async move {
            let exec = docker
                .create_exec(
                    &container,
                    CreateExecOptions {
                        attach_stdin: Some(true),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        cmd: Some(vec!["buildctl", "dial-stdio"]),
                        ..Default::default()
                    },
                )
                .await
                .map_err(Error::docker(format!("running buildctl dial-stdio in {container}")))?;
            let started = docker
                .start_exec(&exec.id, Some(StartExecOptions { output_capacity: Some(64 * 1024), ..Default::default() }))
                .await
                .map_err(Error::docker(format!("attaching to buildctl dial-stdio in {container}")))?;
            match started {
                StartExecResults::Attached { output, input } => {
                    Ok(TokioIo::new(ExecStream { reader: StreamReader::new(stdout_only(output)), writer: input }))
                }
                StartExecResults::Detached => {
                    Err(BuildkitError::Unreachable("the exec stream was detached".into()).into())
                }
            }
        })
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// The gRPC bytes are buildctl's stdout; its stderr carries only diagnostics.
fn stdout_only(
    output: Pin<Box<dyn Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Send>>,
) -> ByteStream {
    Box::pin(output.filter_map(|item| async move {
        match item {
            Ok(LogOutput::StdOut { message }) => Some(Ok(message)),
            Ok(_) => None,
            Err(err) => Some(Err(io::Error::other(err))),
        }
    }))
}

/// The exec's stdout (read) and stdin (write) as one duplex byte stream.
struct ExecStream {
    reader: StreamReader<ByteStream, Bytes>,
    writer: Pin<Box<dyn AsyncWrite + Send>>,
}

impl AsyncRead for ExecStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for ExecStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.writer.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.as_mut().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(size: i64, in_use: bool, shared: bool, kind: &str) -> CacheRecord {
        CacheRecord {
            id: "x".into(),
            record_type: kind.into(),
            size,
            in_use,
            shared,
            mutable: false,
            last_used: None,
            usage_count: 0,
            description: String::new(),
        }
    }

    #[test]
    fn buildkits_answer_keeps_its_code_and_a_broken_call_is_told_apart() {
        let answered = status_error("list its cache")(tonic::Status::new(tonic::Code::NotFound, "no such record"));
        assert!(
            matches!(&answered, BuildkitError::Status { code: tonic::Code::NotFound, transport: false, message, .. }
                if message == "no such record"),
            "{answered:?}"
        );
        let broken = io::Error::new(io::ErrorKind::BrokenPipe, "the exec stream ended");
        let in_transit = status_error("list its cache")(tonic::Status::from_error(Box::new(broken)));
        assert!(in_transit.is_transport(), "{in_transit:?}");
        let unavailable = status_error("list its cache")(tonic::Status::unavailable("connection reset"));
        assert!(unavailable.is_transport());
    }

    #[test]
    fn totals_split_in_use_from_reclaimable() {
        let records = [
            record(100, true, false, "regular"),
            record(50, false, true, "source.local"),
            record(7, false, false, "regular"),
        ];
        let totals = CacheTotals::of(&records);
        assert_eq!(
            totals,
            CacheTotals { entries: 3, reclaimable_entries: 2, total: 157, in_use: 100, reclaimable: 57, shared: 50 }
        );
        let by_type = CacheTotals::by_type(&records);
        assert_eq!(by_type.get("regular"), Some(&107));
        assert_eq!(by_type.get("source.local"), Some(&50));
    }
}
