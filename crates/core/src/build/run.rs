//! Runs a checked build ([`BuildPlan`]) on the backend, as `docker buildx build` does: a session
//! that serves the folders and credentials, a solve with the Dockerfile frontend and the exporters
//! the plan asks for, and BuildKit's progress as it comes. `--load` streams the image tar the
//! `docker` exporter sends back into the engine the backend runs on.
use std::{collections::HashMap, future::Future, path::Path, sync::atomic::Ordering, sync::Arc};

use bollard::query_parameters::ImportImageOptionsBuilder;
use bollard_buildkit_proto::moby::buildkit::v1::{
    control_client::ControlClient,
    frontend::{self, llb_bridge_client::LlbBridgeClient},
    Exporter, SolveRequest, StatusRequest, StatusResponse,
};
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::{
    backend::mirror::{self, config as mirror_config, LocalImages},
    backend::request::StartRequest,
    backend::start::StartOutcome,
    backend::{error::BackendError, progress::StartEvent},
    backend::{Backend, OurContainer},
    build::outputs::Destination,
    build::{
        attrs::NetworkMode,
        call::{Call, SUBREQUESTS_CAP},
        error::BuildError,
        plan::{BuildContext, BuildPlan, Output},
        project::DockerfileSource,
    },
    buildkit::content::{put_index, IndexName, LocalStore},
    buildkit::filesend::ExportTarget,
    buildkit::filesync::SyncDir,
    buildkit::registry_auth::Credentials,
    buildkit::session::{random_id, Session, SessionOffer},
    buildkit::{status_error, BuildkitClient},
    Error, Result,
};

/// How long the progress stream may go on after the solve answered (its last messages).
const STATUS_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// What a finished build did.
#[derive(Debug, Clone, Default)]
pub struct BuildOutcome {
    /// BuildKit's ref for the build (its history entry).
    pub reference: String,
    /// The image names pushed (with `--push`).
    pub pushed: Vec<String>,
    /// The image names loaded into the engine (with `--load`; empty names: an untagged image).
    pub loaded: Vec<String>,
    /// The image's digest, when an image was exported (an image index's, for several platforms).
    pub digest: Option<String>,
    /// The platforms built, as asked, an emulated one marked (`linux/arm64 (emulated)`); empty
    /// when none was asked (the backend's own).
    pub platforms: Vec<String>,
    /// Entries of the context described to BuildKit.
    pub entries_listed: u64,
    /// Context files whose contents BuildKit asked for: on a rebuild, only the changed ones.
    pub files_sent: u64,
    /// Bytes of file contents sent.
    pub bytes_sent: u64,
    /// What the `-o` outputs wrote, one sentence each.
    pub written: Vec<String>,
    /// BuildKit's exporter response (digests, names, cache manifest): the metadata file's source.
    pub exporter_response: HashMap<String, String>,
}

impl BuildOutcome {
    /// What the build gave, one sentence a line: the names pushed and loaded, the digest, or that
    /// the result stays in the cache.
    pub fn sentences(&self, output: Output) -> Vec<String> {
        let mut lines: Vec<String> = self.pushed.iter().map(|name| format!("Pushed {name}")).collect();
        lines.extend(self.loaded.iter().map(|name| format!("Loaded image {name}")));
        if self.loaded.is_empty() && matches!(output, Output::Load | Output::PushAndLoad) {
            lines.push("Loaded an untagged image (add a name to tag it)".to_string());
        }
        if !self.platforms.is_empty() {
            lines.push(format!("Platforms: {}", self.platforms.join(", ")));
        }
        if let Some(digest) = &self.digest {
            lines.push(format!("Image digest: {digest}"));
        }
        lines.extend(self.written.iter().cloned());
        if output == Output::CacheOnly && self.written.is_empty() {
            lines.push("Built: the result is in the backend's build cache.".to_string());
        }
        lines
    }

    /// What the context's transfer sent, for the end of a run.
    pub fn transfer_sentence(&self) -> String {
        format!(
            "Context: sent {} of {} entries' contents ({}).",
            self.files_sent,
            self.entries_listed,
            crate::units::binary_size(self.bytes_sent)
        )
    }
}

/// A new build's reference, BuildKit's ID for it (its history entry), made before it starts so a
/// view can follow it.
pub fn new_reference() -> String {
    random_id()
}

/// The running backend, started first with the settings' options when it is not running.
/// Returns it and whether it was started here.
pub async fn running_or_started(
    backend: &Backend,
    request: &StartRequest,
    report: &(dyn Fn(StartEvent) + Send + Sync),
    interrupted: impl Future<Output = ()>,
) -> Result<(OurContainer, bool)> {
    match backend.running().await {
        Ok(container) => Ok((container, false)),
        Err(Error::Backend(BackendError::NotRunning)) => {
            let outcome = backend.start_until(request, report, interrupted).await?;
            let started = matches!(outcome, StartOutcome::Started { .. });
            Ok((backend.running().await?, started))
        }
        Err(other) => Err(other),
    }
}

/// The metadata that names the build a gateway call is for (BuildKit's `buildid` package).
const BUILD_ID_HEADER: &str = "buildkit-controlapi-buildid";

/// The solve: the Dockerfile frontend's build, answered with the exporters' response; or, for
/// `--call`, the frontend's answer to a question, through BuildKit's gateway as buildx asks it: a
/// control solve without a frontend holds the build open (internal: no history record) while the
/// gateway's bridge asks the frontend, and the bridge's Return ends it. The answer's metadata
/// (`result.txt`, `result.json`, `result.statuscode`) stands in for the exporters' response.
async fn solve_or_ask(
    mut control: ControlClient<Channel>,
    channel: Channel,
    request: SolveRequest,
    call: Option<Call>,
) -> std::result::Result<HashMap<String, String>, tonic::Status> {
    let Some(call) = call else {
        return control.solve(request).await.map(|answer| answer.into_inner().exporter_response);
    };
    let reference = request.r#ref.clone();
    let mut question = request.frontend_attrs.clone();
    question.insert("requestid".into(), call.request_id().into());
    let caps =
        question.remove("frontend.caps").map_or(SUBREQUESTS_CAP.to_string(), |c| format!("{c},{SUBREQUESTS_CAP}"));
    question.insert("frontend.caps".into(), caps);
    let held = SolveRequest { frontend: String::new(), exporters: Vec::new(), cache: None, internal: true, ..request };
    let mut bridge = LlbBridgeClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let asked = frontend::SolveRequest {
        frontend: "dockerfile.v0".into(),
        frontend_opt: question,
        allow_result_return: true,
        allow_result_array_ref: true,
        ..Default::default()
    };
    let held = control.solve(held);
    tokio::pin!(held);
    let answer = tokio::select! {
        // A question that fails drops the held solve, which cancels the build on BuildKit.
        answer = bridge.solve(for_build(&reference, asked)) => answer?.into_inner(),
        ended = &mut held => {
            ended?;
            return Err(tonic::Status::internal("the build ended before the Dockerfile frontend answered"));
        }
    };
    let metadata = answer.result.map(|result| result.metadata).unwrap_or_default();
    // As BuildKit's gateway client ends a build that returns no image: an empty ref. The held
    // solve ends with it, in either order.
    let done = frontend::ReturnRequest {
        result: Some(frontend::Result {
            result: Some(frontend::result::Result::Ref(frontend::Ref::default())),
            ..Default::default()
        }),
        error: None,
    };
    let (returned, ended) = tokio::join!(bridge.r#return(for_build(&reference, done)), held);
    returned?;
    ended?;
    Ok(metadata.into_iter().map(|(key, value)| (key, String::from_utf8_lossy(&value).into_owned())).collect())
}

/// A gateway call for build `reference`.
fn for_build<T>(reference: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = reference.parse() {
        request.metadata_mut().insert(BUILD_ID_HEADER, value);
    }
    request
}

/// The folders the Dockerfile frontend asks for: `context` (none for a remote context, which the
/// backend fetches), and `dockerfile` (the Dockerfile's own folder, or one made in memory for a
/// generated Dockerfile or standard input's), with the name of the file the frontend reads.
fn offered_dirs(plan: &BuildPlan) -> (HashMap<String, SyncDir>, String) {
    let mut dirs = HashMap::new();
    match (&plan.context, plan.context.folder()) {
        (_, Some(folder)) => {
            dirs.insert("context".to_string(), SyncDir::Folder(folder.to_path_buf()));
        }
        (BuildContext::Empty, None) => {
            dirs.insert("context".to_string(), SyncDir::Files(Vec::new()));
        }
        (_, None) => {}
    }
    let filename = match &plan.project.dockerfile_source {
        DockerfileSource::File(path) => {
            let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            dirs.insert("dockerfile".to_string(), SyncDir::Folder(folder.to_path_buf()));
            path.file_name().map_or("Dockerfile".to_string(), |n| n.to_string_lossy().into_owned())
        }
        DockerfileSource::Generated | DockerfileSource::StandardInput => {
            let text: Arc<[u8]> = plan.project.dockerfile.as_bytes().into();
            dirs.insert("dockerfile".to_string(), SyncDir::Files(vec![("Dockerfile".to_string(), text)]));
            "Dockerfile".to_string()
        }
        DockerfileSource::InRemoteContext(path) => path.clone(),
    };
    (dirs, filename)
}

/// The session's shared key: the same folders give the same key, so BuildKit compares against what
/// it received for them last time (as buildx keys it by the context's path).
fn shared_key(plan: &BuildPlan) -> String {
    let canonical = |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut hash = Sha256::new();
    hash.update(b"assemble-build\0");
    match &plan.context {
        BuildContext::Remote(url) => hash.update(url.as_bytes()),
        BuildContext::Empty => hash.update(b"-"),
        other => {
            if let Some(folder) = other.folder() {
                hash.update(canonical(folder).as_os_str().as_encoded_bytes())
            }
        }
    }
    hash.update(b"\0");
    if let DockerfileSource::File(path) = &plan.project.dockerfile_source {
        hash.update(canonical(path).as_os_str().as_encoded_bytes());
    }
    hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The Dockerfile frontend's options, as buildx sends them.
fn frontend_attrs(plan: &BuildPlan, filename: &str) -> HashMap<String, String> {
    let mut attrs = HashMap::new();
    attrs.insert("filename".to_string(), filename.to_string());
    if let BuildContext::Remote(url) = &plan.context {
        attrs.insert("context".to_string(), url.clone());
        // A Dockerfile from here goes with a remote context through the `dockerfile` folder.
        if !matches!(plan.project.dockerfile_source, DockerfileSource::InRemoteContext(_)) {
            attrs.insert("dockerfilekey".to_string(), "dockerfile".to_string());
        }
    }
    if let Some(target) = &plan.target {
        attrs.insert("target".to_string(), target.clone());
    }
    for (key, value) in &plan.build_args {
        attrs.insert(format!("build-arg:{key}"), value.clone());
    }
    if !plan.platforms.is_empty() {
        attrs.insert("platform".to_string(), plan.platforms.join(","));
    }
    if plan.no_cache {
        attrs.insert("no-cache".to_string(), String::new());
    }
    attrs.extend(plan.solve.frontend_attrs());
    attrs
}

/// What `--pull` says about local images on a backend that uses them, before the build.
pub fn pull_note(plan: &BuildPlan, local_images: &LocalImages) -> Option<String> {
    (plan.solve.pull && matches!(local_images, LocalImages::Used { .. })).then(|| {
        format!(
            "--pull: base images come from their registries, not from the engine (local images are skipped for {})",
            local_images.registries().join(", ")
        )
    })
}

/// The failure of a build in words: BuildKit's message, and what it means when it names the
/// local-image mirror or follows `--pull`.
fn failure_sentence(mut message: String, plan: &BuildPlan, container: &OurContainer, engine: &str) -> String {
    // The store is named after the backend (names.rs).
    let store = format!("{}-mirror-store", container.name);
    let mirror = mirror_config::mirror_host();
    if message.contains(&mirror) {
        // The mirror's own sentence (an image removed during the build, an engine that cannot
        // export) says what happened: it goes first, BuildKit's request after it.
        if let Some(at) = message.find(mirror_config::MIRROR_SAYS) {
            let said = message[at + mirror_config::MIRROR_SAYS.len()..].trim().trim_end_matches('.').to_string();
            let request = message[..at].trim().trim_end_matches("unknown:").trim().trim_end_matches(['-', ':', ' ']);
            return format!(
                "{said} (said by the backend's local-image mirror {mirror}, while BuildKit ran: {request}; \
                 `docker logs {store}` says more)"
            );
        }
        message.push_str(&format!(
            " ({mirror} is the backend's local-image mirror, which serves the images of {engine}: it could not give \
             this one, because the image was removed during the build or {engine} could not export it. Build again, \
             or pass --pull to take base images from their registries; `docker logs {store}` says more)"
        ));
    } else if plan.solve.pull
        && matches!(container.config.local_images, LocalImages::Used { .. })
        && message.contains("failed to resolve source metadata")
    {
        message.push_str(
            " (--pull takes base images from their registries only; without --pull a FROM of an image the engine \
             has takes the engine's image)",
        );
    }
    message
}

/// The exporters for the plan's output; the index of the `docker` one (for `--load`) is also the
/// ID its tar arrives under.
fn exporters(plan: &BuildPlan) -> (Vec<Exporter>, Option<usize>) {
    let mut list = Vec::new();
    let mut load_index = None;
    let named = |mut attrs: HashMap<String, String>| {
        if !plan.names.is_empty() {
            attrs.insert("name".to_string(), plan.names.join(","));
        }
        attrs
    };
    // `--annotation` goes to every exporter that writes an image, as buildx sends it.
    let annotated = |kind: &str, attrs: &mut HashMap<String, String>| {
        if matches!(kind, "image" | "oci" | "docker") {
            for (key, value) in &plan.solve.steps.annotations {
                attrs.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    };
    // --push with an image output of -o pushes that one, as buildx.
    let pushed_by_output = plan.outputs.iter().any(|o| o.exporter == "image");
    if matches!(plan.output, Output::Push | Output::PushAndLoad) && !pushed_by_output {
        let attrs = named(HashMap::from([("push".to_string(), "true".to_string())]));
        list.push(Exporter { r#type: "image".to_string(), attrs });
    }
    if matches!(plan.output, Output::Load | Output::PushAndLoad) {
        load_index = Some(list.len());
        list.push(Exporter { r#type: "docker".to_string(), attrs: named(HashMap::new()) });
    }
    for output in plan.outputs.iter().filter(|o| o.exporter != "cacheonly") {
        let mut attrs: HashMap<String, String> = output.attrs.clone().into_iter().collect();
        if output.exporter == "image" && matches!(plan.output, Output::Push | Output::PushAndLoad) {
            attrs.insert("push".to_string(), "true".to_string());
        }
        list.push(Exporter { r#type: output.exporter.clone(), attrs });
    }
    for exporter in &mut list {
        annotated(&exporter.r#type, &mut exporter.attrs);
    }
    (list, load_index)
}

/// Runs `plan` on the running backend `container` as build `reference`: the whole build on one
/// backend, every platform of the plan on it (a split across several backends would call this once
/// per backend, each with its share of the platforms). Each progress message goes to `on_status`
/// as it comes; `cancel` ending cancels the build on BuildKit (its solve call is dropped).
pub async fn run(
    backend: &Backend,
    container: &OurContainer,
    plan: &BuildPlan,
    config_dir: &Path,
    reference: &str,
    mut on_status: impl FnMut(&StatusResponse),
    cancel: impl Future<Output = ()>,
) -> Result<BuildOutcome> {
    // A platform this backend builds neither natively nor by emulation is one sentence, before
    // anything is sent (BuildKit would fail at the first RUN, or build a foreign image it cannot run).
    let platforms = if plan.platforms.is_empty() {
        Vec::new()
    } else {
        let available = backend.platforms(&container.id).await?;
        available.check(&plan.platforms)?;
        available.labels(&plan.platforms)
    };
    // Said before anything is sent; BuildKit's own refusal is mapped too (see `failure`).
    if plan.solve.network == NetworkMode::Host && !container.config.network_host {
        return Err(BuildError::NetworkHostNotAllowed.into());
    }
    let client = BuildkitClient::connect_for_build(backend.docker(), &container.id).await?;
    let control = client.control();
    let (mut dirs, filename) = offered_dirs(plan);
    dirs.extend(plan.solve.folders().map(|(name, path)| (name.to_string(), SyncDir::Folder(path.clone()))));
    let (exporters, load_index) = exporters(plan);

    // The -o outputs come after the push and load exporters.
    let outputs: Vec<_> = plan.outputs.iter().filter(|o| o.exporter != "cacheonly").cloned().collect();
    let (mut exports, writers) = crate::build::outputs::targets(&outputs, exporters.len() - outputs.len())?;
    let agents = plan.ssh.start().map_err(|message| BuildError::SshKeys { message })?;
    let load = load_index.map(|index| {
        let (send, receive) = mpsc::channel::<Bytes>(16);
        exports.insert(index, ExportTarget::Bytes(send));
        let docker = backend.docker().clone();
        LoadTask(tokio::spawn(async move { load_into_engine(&docker, receive).await }))
    });
    let offer = SessionOffer {
        dirs,
        credentials: Credentials::from_config_dir(config_dir),
        exports,
        secrets: plan.secrets.clone(),
        ssh: Arc::new(agents),
        content: content_stores(plan)?,
    };
    let session = Session::open(&control, &shared_key(plan), offer).await?;

    let reference = reference.to_string();
    let request = SolveRequest {
        r#ref: reference.clone(),
        session: session.id.clone(),
        frontend: "dockerfile.v0".to_string(),
        frontend_attrs: frontend_attrs(plan, &filename),
        exporters,
        cache: Some(plan.solve.cache.to_proto()).filter(|_| !plan.solve.cache.is_empty()),
        entitlements: plan.solve.entitlements(),
        // `--pull` names each served registry by a host without the mirror (backend/mirror).
        source_policy: (plan.solve.pull && matches!(container.config.local_images, LocalImages::Used { .. }))
            .then(|| mirror_config::pull_policy(container.config.local_images.registries())),
        ..Default::default()
    };
    let mut status = control
        .clone()
        .status(StatusRequest { r#ref: reference.clone() })
        .await
        .map_err(status_error("report the build's progress"))?
        .into_inner();
    let solve = solve_or_ask(control.clone(), client.channel(), request, plan.call);
    tokio::pin!(solve);
    tokio::pin!(cancel);
    let mut status_open = true;
    let solved = loop {
        tokio::select! {
            answer = &mut solve => break answer,
            message = status.next(), if status_open => match message {
                Some(Ok(message)) => on_status(&message),
                _ => status_open = false,
            },
            // Dropping the solve call resets its stream: BuildKit cancels the build. (The load,
            // if any, is called off as its task drops.)
            () = &mut cancel => return Err(BuildError::Canceled.into()),
        }
    };
    // The last messages (the export's steps) may come after the answer.
    let drain = async {
        while status_open {
            match status.next().await {
                Some(Ok(message)) => on_status(&message),
                _ => status_open = false,
            }
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(STATUS_DRAIN, drain) => {},
        () = &mut cancel => return Err(BuildError::Canceled.into()),
    }

    let exported = match solved {
        Ok(exported) => exported,
        Err(status) => {
            let mut message = status.message().trim().to_string();
            for failure in session.failures() {
                message.push_str(&format!(" ({failure})"));
            }
            // The engine refused the image: its reason, not BuildKit's echo of it. Otherwise no
            // image comes, and the load waiting for one is called off as its task drops.
            if let Some(load) = load.filter(|l| l.0.is_finished()) {
                if let Ok(Err(err)) = load.finish().await {
                    return Err(err);
                }
            }
            return Err(
                failure(plan, failure_sentence(message, plan, container, &mirror::engine_words(backend))).into()
            );
        }
    };
    // The context's own transfers: what a rebuild of a barely changed folder shows.
    let sent = session.sent.get("context").cloned().unwrap_or_default();
    drop(session);
    if let Some(load) = load {
        tokio::select! {
            loaded = load.finish() => match loaded {
                Ok(Ok(())) => {}
                Ok(Err(err)) => return Err(err),
                Err(join) => return Err(BuildError::LoadFailed { message: join.to_string() }.into()),
            },
            () = &mut cancel => return Err(BuildError::Canceled.into()),
        }
    }
    tokio::select! {
        written = writers.finish() => written?,
        () = &mut cancel => return Err(BuildError::Canceled.into()),
    }
    let exported = &exported;
    record_in_indexes(plan, exported)?;
    Ok(BuildOutcome {
        reference,
        pushed: if matches!(plan.output, Output::Push | Output::PushAndLoad) { plan.names.clone() } else { Vec::new() },
        loaded: if matches!(plan.output, Output::Load | Output::PushAndLoad) { plan.names.clone() } else { Vec::new() },
        digest: exported.get("containerimage.digest").cloned(),
        platforms,
        entries_listed: sent.entries.load(Ordering::Relaxed),
        files_sent: sent.files_sent.load(Ordering::Relaxed),
        bytes_sent: sent.bytes_sent.load(Ordering::Relaxed),
        written: plan.outputs.iter().filter_map(|o| o.sentence()).collect(),
        exporter_response: exported.clone(),
    })
}

/// The session's content stores: the local caches' folders (made now, as BuildKit's client makes
/// them, and checked writable: a failure mid-export would only say the write broke) and the OCI
/// layout output's folder, under the store ID BuildKit names (`export` for the output).
fn content_stores(plan: &BuildPlan) -> Result<HashMap<String, LocalStore>> {
    let mut stores = HashMap::new();
    for (id, dir) in plan.solve.cache.content_stores() {
        if let Some(entry) = plan
            .solve
            .cache
            .exports
            .iter()
            .find(|e| e.kind == "local" && e.attrs.get("dest").is_some_and(|d| *d == dir.to_string_lossy()))
        {
            writable_folder(&dir).map_err(|reason| BuildError::InvalidCache {
                flag: "--cache-to",
                value: entry.describe(),
                reason,
            })?;
        }
        stores.insert(id, LocalStore::new(dir));
    }
    // Named contexts from OCI layouts are only read (BuildKit's content store asks, it never writes).
    for (key, dir) in plan.solve.oci_layouts() {
        stores.insert(key, LocalStore::new(dir.clone()));
    }
    for output in &plan.outputs {
        if let Destination::Layout(dir) = &output.dest {
            writable_folder(dir).map_err(|reason| BuildError::OutputFailed {
                message: format!("the {} output's folder {reason}", output.exporter),
            })?;
            stores.insert("export".to_string(), LocalStore::new(dir.clone()));
        }
    }
    Ok(stores)
}

/// Makes `dir` and checks that a file can be written in it; why not, as the end of a sentence.
fn writable_folder(dir: &Path) -> std::result::Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("{} cannot be made: {e}; give a folder you can write", dir.display()))?;
    let probe = dir.join(format!(".assemble-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| format!("{} cannot be written: {e}; give a folder you can write", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// After the solve, as BuildKit's client: each local cache's `index.json` gets the cache manifest
/// under its tag (`cache.manifest`, plain JSON), and an OCI layout output's gets the image under
/// its names (`containerimage.descriptor`, base64 JSON; `image.name`, else the tag `latest`).
fn record_in_indexes(plan: &BuildPlan, exported: &HashMap<String, String>) -> Result<()> {
    let failed = |message: String| BuildError::OutputFailed { message };
    let exports = plan.solve.cache.local_exports();
    if let (false, Some(text)) = (exports.is_empty(), exported.get("cache.manifest")) {
        let descriptor: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| failed(format!("BuildKit's cache manifest could not be read: {e}")))?;
        for (dir, tag) in exports {
            put_index(&dir, &descriptor, &[IndexName::Tag(tag)]).map_err(failed)?;
        }
    }
    let layouts: Vec<&Path> = plan
        .outputs
        .iter()
        .filter_map(|o| if let Destination::Layout(dir) = &o.dest { Some(dir.as_path()) } else { None })
        .collect();
    if let (false, Some(encoded)) = (layouts.is_empty(), exported.get("containerimage.descriptor")) {
        use base64::Engine;
        let descriptor: serde_json::Value = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| failed("BuildKit's image descriptor could not be read".to_string()))?;
        let names: Vec<IndexName> = match exported.get("image.name") {
            Some(names) => names.split(',').map(|n| IndexName::Name(n.to_string())).collect(),
            None => vec![IndexName::Tag("latest".to_string())],
        };
        for dir in layouts {
            put_index(dir, &descriptor, &names).map_err(failed)?;
        }
    }
    Ok(())
}

/// BuildKit's failure, as our sentence where we know the way out: `--network host` on a backend
/// without the grant, `--sbom` whose scanner cannot be pulled.
fn failure(plan: &BuildPlan, message: String) -> BuildError {
    if message.contains("network.host is not allowed") {
        return BuildError::NetworkHostNotAllowed;
    }
    if let Some(scanner) = plan.solve.sbom_scanner() {
        let short = scanner.rsplit('/').next().unwrap_or(&scanner).split(':').next().unwrap_or_default().to_string();
        if message.contains(&short) && !short.is_empty() {
            return BuildError::SbomScannerUnavailable { scanner, message };
        }
    }
    BuildError::Failed { message }
}

/// The engine's image load for `--load`; called off when dropped unfinished.
struct LoadTask(tokio::task::JoinHandle<Result<()>>);

impl LoadTask {
    async fn finish(mut self) -> std::result::Result<Result<()>, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl Drop for LoadTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Feeds the tar the `docker` exporter sends into the engine's image load.
async fn load_into_engine(docker: &bollard::Docker, mut receive: mpsc::Receiver<Bytes>) -> Result<()> {
    let tar = futures_util::stream::poll_fn(move |cx| receive.poll_recv(cx)).map(Ok::<_, std::io::Error>);
    let mut answers = docker.import_image_stream(ImportImageOptionsBuilder::new().quiet(true).build(), tar, None);
    while let Some(answer) = answers.next().await {
        match answer {
            Ok(info) => {
                if let Some(error) = info.error_detail.and_then(|d| d.message) {
                    return Err(BuildError::LoadFailed { message: error }.into());
                }
            }
            Err(err) => return Err(BuildError::LoadFailed { message: err.to_string() }.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::plan::{plan, BuildInput};

    fn folder_with(files: &[(&str, &str)]) -> std::path::PathBuf {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("assemble-build-run-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn the_solve_carries_what_the_plan_says() {
        let dir = folder_with(&[("Dockerfile", "FROM scratch AS base\nFROM base AS final\n")]);
        let input = BuildInput {
            context: dir.clone(),
            tags: vec!["localhost:5000/app:1".into(), "localhost:5000/app:latest".into()],
            push: true,
            load: true,
            build_args: vec!["A=1".into()],
            target: Some("base".into()),
            platform: Some("linux/amd64".into()),
            no_cache: true,
            ..Default::default()
        };
        let plan = plan(&input, |_| None).unwrap();
        let (dirs, filename) = offered_dirs(&plan);
        assert_eq!(filename, "Dockerfile");
        assert!(matches!(&dirs["context"], SyncDir::Folder(p) if *p == dir));
        let attrs = frontend_attrs(&plan, &filename);
        assert_eq!(attrs["build-arg:A"], "1");
        assert_eq!(attrs["target"], "base");
        assert_eq!(attrs["platform"], "linux/amd64");
        assert!(attrs.contains_key("no-cache"));
        assert!(!attrs.contains_key("image-resolve-mode"));
        let used = LocalImages::Used { registries: vec!["docker.io".into()] };
        assert_eq!(pull_note(&plan, &used), None);
        let mut pulling = plan.clone();
        pulling.solve.pull = true;
        assert_eq!(frontend_attrs(&pulling, &filename)["image-resolve-mode"], "pull");
        assert!(pull_note(&pulling, &used)
            .unwrap()
            .starts_with("--pull: base images come from their registries, not from the engine"));
        assert_eq!(pull_note(&pulling, &LocalImages::Off { reason: None }), None, "nothing to skip");
        let (list, load) = exporters(&plan);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].r#type, "image");
        assert_eq!(list[0].attrs["push"], "true");
        assert_eq!(list[0].attrs["name"], "localhost:5000/app:1,localhost:5000/app:latest");
        assert_eq!((list[1].r#type.as_str(), load), ("docker", Some(1)));
        let other = folder_with(&[("Dockerfile", "FROM scratch\n")]);
        let other_plan =
            crate::build::plan::plan(&BuildInput { context: other.clone(), ..Default::default() }, |_| None).unwrap();
        assert_ne!(shared_key(&plan), shared_key(&other_plan), "each folder has its own key");
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(other).unwrap();
    }

    #[test]
    fn local_caches_and_a_layout_output_get_their_stores_and_index_entries_as_buildkit_s_client_gives_them() {
        let dir = folder_with(&[("Dockerfile", "FROM scratch\n")]);
        let (cache, layout) = (dir.join("cache"), dir.join("layout"));
        let input = BuildInput {
            context: dir.clone(),
            tags: vec!["localhost:5000/app:1".into()],
            outputs: vec![format!("type=oci,dest={},tar=false", layout.display())],
            solve: crate::build::attrs::SolveInput {
                cache_to: vec![format!("type=local,dest={},tag=v2", cache.display())],
                ..Default::default()
            },
            ..Default::default()
        };
        let plan = plan(&input, |_| None).unwrap();
        let stores = content_stores(&plan).unwrap();
        let mut ids: Vec<&String> = stores.keys().collect();
        ids.sort();
        assert_eq!(ids, [&"export".to_string(), &format!("local:{}", cache.display())]);
        assert!(cache.is_dir() && layout.is_dir(), "made before the build, as BuildKit's client");
        let manifest = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:c", "size": 3});
        let image = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:i", "size": 4});
        use base64::Engine;
        let response = HashMap::from([
            ("cache.manifest".to_string(), manifest.to_string()),
            (
                "containerimage.descriptor".to_string(),
                base64::engine::general_purpose::STANDARD.encode(image.to_string()),
            ),
            ("image.name".to_string(), "localhost:5000/app:1".to_string()),
        ]);
        record_in_indexes(&plan, &response).unwrap();
        let tagged = crate::buildkit::content::lookup_index(&cache, "v2").unwrap().unwrap();
        assert_eq!(tagged["digest"], "sha256:c");
        let named = crate::buildkit::content::lookup_index(&layout, "localhost:5000/app:1").unwrap().unwrap();
        assert_eq!(named["digest"], "sha256:i");
        assert_eq!(named["annotations"]["org.opencontainers.image.ref.name"], "1");
        let blocked = BuildInput {
            solve: crate::build::attrs::SolveInput {
                cache_to: vec!["type=local,dest=/proc/assemble-no".into()],
                ..Default::default()
            },
            outputs: Vec::new(),
            ..input
        };
        let refused = content_stores(&crate::build::plan::plan(&blocked, |_| None).unwrap()).unwrap_err().to_string();
        assert!(refused.starts_with("--cache-to") && refused.contains("give a folder you can write"), "{refused}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn buildkit_s_refusals_we_know_become_our_sentences() {
        let dir = folder_with(&[("Dockerfile", "FROM scratch\n")]);
        let input = BuildInput {
            context: dir.clone(),
            solve: crate::build::attrs::SolveInput { sbom: Some("true".into()), ..Default::default() },
            ..Default::default()
        };
        let plan = plan(&input, |_| None).unwrap();
        let denied = "granting entitlement network.host is not allowed by build daemon configuration";
        assert!(matches!(failure(&plan, denied.into()), BuildError::NetworkHostNotAllowed));
        let pull =
            "failed to resolve source metadata for docker.io/docker/buildkit-syft-scanner:stable-1: dial tcp: lookup";
        match failure(&plan, pull.into()) {
            BuildError::SbomScannerUnavailable { scanner, .. } => {
                assert_eq!(scanner, "docker/buildkit-syft-scanner:stable-1")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(failure(&plan, "exit code: 1".into()), BuildError::Failed { .. }));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_generated_dockerfile_is_offered_from_memory() {
        let dir = folder_with(&[(
            "pom.xml",
            "<project><parent><groupId>org.springframework.boot</groupId><artifactId>spring-boot-starter-parent</artifactId><version>3.3.0</version></parent><artifactId>demo</artifactId><version>1.0</version></project>",
        )]);
        let plan = plan(&BuildInput { context: dir.clone(), ..Default::default() }, |_| None).unwrap();
        let (dirs, filename) = offered_dirs(&plan);
        assert_eq!(filename, "Dockerfile");
        match &dirs["dockerfile"] {
            SyncDir::Files(files) => assert_eq!(&*files[0].1, plan.project.dockerfile.as_bytes()),
            other => panic!("{other:?}"),
        }
        let (list, load) = exporters(&plan);
        assert!(list.is_empty() && load.is_none(), "neither flag: the cache only");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_remote_context_is_the_frontends_to_fetch_and_standard_input_is_offered_from_memory() {
        let remote = |dockerfile: Option<&str>, stdin: Option<&[u8]>| {
            let input = BuildInput {
                context: "https://example.com/app.tar".into(),
                dockerfile: dockerfile.map(Into::into),
                stdin: stdin.map(<[u8]>::to_vec),
                ..Default::default()
            };
            let plan = plan(&input, |_| None).unwrap();
            let (dirs, filename) = offered_dirs(&plan);
            let attrs = frontend_attrs(&plan, &filename);
            let mut names: Vec<_> = dirs.keys().cloned().collect();
            names.sort();
            (names, attrs)
        };
        let (dirs, attrs) = remote(Some("sub/Dockerfile"), None);
        assert!(dirs.is_empty(), "the backend fetches it all: {dirs:?}");
        assert_eq!(attrs["context"], "https://example.com/app.tar");
        assert_eq!(attrs["filename"], "sub/Dockerfile");
        assert!(!attrs.contains_key("dockerfilekey"));
        let (dirs, attrs) = remote(Some("-"), Some(b"FROM scratch\n"));
        assert_eq!(dirs, ["dockerfile"]);
        assert_eq!((attrs["dockerfilekey"].as_str(), attrs["filename"].as_str()), ("dockerfile", "Dockerfile"));

        let piped = plan(
            &BuildInput { context: "-".into(), stdin: Some(b"FROM scratch\n".to_vec()), ..Default::default() },
            |_| None,
        )
        .unwrap();
        let (dirs, filename) = offered_dirs(&piped);
        assert!(matches!(&dirs["context"], SyncDir::Files(files) if files.is_empty()), "an empty context");
        assert!(matches!(&dirs["dockerfile"], SyncDir::Files(files) if &*files[0].1 == b"FROM scratch\n"));
        assert!(!frontend_attrs(&piped, &filename).contains_key("context"));
    }

    const ENGINE: &str = "the Docker Engine default (unix:///var/run/docker.sock)";

    #[test]
    fn a_failure_that_names_the_mirror_or_follows_pull_says_what_it_means() {
        let dir = folder_with(&[("Dockerfile", "FROM base:dev\n")]);
        let mut plan = plan(&BuildInput { context: dir, ..Default::default() }, |_| None).unwrap();
        let mut container = OurContainer {
            id: "b1".into(),
            name: "docker-assemble-backend-u".into(),
            state: crate::backend::ContainerState::Running,
            running: true,
            started_at: None,
            image_id: "sha256:1".into(),
            config: crate::backend::labels::BackendLabels {
                ports: crate::ports::PortSet::none(),
                cache_volume: None,
                image: "img".into(),
                version: "0".into(),
                security: crate::backend::labels::SecurityMode::Privileged,
                security_reason: None,
                cache_limit: None,
                network_host: false,
                local_images: LocalImages::Used { registries: vec!["docker.io".into()] },
            },
            unrelayed: crate::ports::PortSet::none(),
        };
        let gone = failure_sentence(
            "failed to copy: unexpected status from GET request to http://127.0.0.2:49500/v2/library/base/blobs/sha256:ab: 410 Gone".into(),
            &plan,
            &container,
            ENGINE,
        );
        assert!(gone.contains("127.0.0.2:49500 is the backend's local-image mirror, which serves the images of the Docker Engine default (unix:///var/run/docker.sock): it could not give this one"), "{gone}");
        assert!(
            gone.contains("or the Docker Engine default (unix:///var/run/docker.sock) could not export it"),
            "{gone}"
        );
        assert!(gone.contains("`docker logs docker-assemble-backend-u-mirror-store` says more"), "{gone}");
        // As BuildKit reported an image removed during a build (seen here on 2026-12-03).
        let removed = failure_sentence(
            "base:4: failed to resolve source metadata for docker.io/library/base:4: failed to copy: httpReadSeeker: \
             failed open: unexpected status from GET request to http://127.0.0.2:49500/v2/library/base/manifests/sha256:cc?ns=docker.io: \
             410 Gone\nunknown: local images: the engine no longer has the image base:4 (sha256:21) that this build started \
             from: it was removed or re-tagged while the build used it; build again to use what the engine (or the registry) has now"
                .into(),
            &plan,
            &container,
            ENGINE,
        );
        assert!(
            removed.starts_with("the engine no longer has the image base:4 (sha256:21) that this build started from"),
            "the mirror's sentence first: {removed}"
        );
        assert!(removed.contains("said by the backend's local-image mirror 127.0.0.2:49500, while BuildKit ran: base:4: failed to resolve"), "{removed}");
        assert!(removed.contains("?ns=docker.io: 410 Gone;"), "{removed}");
        assert!(!removed.contains("unknown:"), "{removed}");
        let unresolved = "failed to resolve source metadata for registry-1.docker.io/library/base:dev: no such host";
        assert_eq!(
            failure_sentence(unresolved.into(), &plan, &container, ENGINE),
            unresolved,
            "without --pull: BuildKit's words"
        );
        plan.solve.pull = true;
        assert!(failure_sentence(unresolved.into(), &plan, &container, ENGINE).ends_with(
            "(--pull takes base images from their registries only; without --pull a FROM of an image the engine has takes the engine's image)"
        ));
        container.config.local_images = LocalImages::Off { reason: None };
        assert_eq!(failure_sentence(unresolved.into(), &plan, &container, ENGINE), unresolved, "nothing was skipped");
    }
}
