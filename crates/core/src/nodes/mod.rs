//! Nodes: the user's backend on other engines, each reached by a docker context (ssh, TLS or
//! local), joined to the `assemble` buildx builder beside the local backend. A node is the same
//! backend (same names, labels, image, ports and cache rule) on its own engine, so everything a
//! backend does carries over; this module adds the list ([`store`]), the builder's nodes, and
//! running an operation on every node at once, where a node whose engine does not answer is
//! reported as unreachable and never holds the others up.
pub mod choice;
pub mod error;
pub mod store;

use std::{
    future::Future,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Serialize;

use crate::{
    backend::{
        builder, info::BackendInfo, labels, progress, request::StartRequest, start::StartOutcome, stop::StopOutcome,
        Backend, Presence,
    },
    engine::{self, Endpoint, Engine, EngineChoice, Environment},
    names::Names,
    settings::CacheSetting,
    Error, Result,
};
// Its own line: mod-cycles.py reads a `crate::{…}` entry by its prefixes, so `buildkit` there
// would count as `build` (which uses this module).
use crate::buildkit::{platform::Platform, prune::CacheFilter, CacheTotals};
use error::NodeError;
use store::NodeEntry;

/// How long a node's engine may take to answer at all; past it, the node is unreachable.
const REACH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long asking a running node what it is (`ls`, `info`) may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long stopping a node may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// A node's state, as `nodes ls` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeState {
    /// The backend runs there and BuildKit answers.
    Running,
    /// The engine answers; no backend runs there.
    Stopped,
    /// The engine does not answer (or the context cannot be used).
    Unreachable,
}

impl NodeState {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Unreachable => "unreachable",
        }
    }
}

/// One node, as `nodes ls` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// Its name (buildx's node name; the local node's is its context's).
    pub name: String,
    /// The backend on the engine this command runs against.
    pub local: bool,
    /// The docker context that reaches its engine.
    pub context: String,
    /// The engine's address, when the context resolves.
    pub host: Option<String>,
    /// Running, stopped or unreachable.
    pub state: NodeState,
    /// The platforms declared with `--platform` (buildx sends these platforms here first).
    pub declared_platforms: Vec<String>,
    /// The platforms BuildKit's workers list there (ListWorkers), when it runs.
    pub platforms: Vec<String>,
    /// The platforms its emulators add, when it runs.
    pub emulated_platforms: Vec<String>,
    /// Bytes its build cache holds (BuildKit's DiskUsage), when it runs.
    pub cache_bytes: Option<i64>,
    /// The same as the panel and `nodes ls` show it (`1.2GB`).
    pub cache_text: Option<String>,
    /// Why it is unreachable, or what else is worth saying.
    pub reason: Option<String>,
}

/// What happened on one node.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Reached<T> {
    /// The operation ran.
    Done {
        /// Its result.
        result: T,
    },
    /// The node's engine did not answer.
    Unreachable {
        /// Why.
        reason: String,
    },
    /// The engine answered, and the operation failed there.
    Failed {
        /// The sentence.
        reason: String,
    },
}

/// One node's part of an operation on every node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport<T> {
    /// The node's name.
    pub name: String,
    /// Its context.
    pub context: String,
    /// Its engine's address, when the context resolves.
    pub host: Option<String>,
    /// What happened there.
    #[serde(flatten)]
    pub reached: Reached<T>,
}

/// What `nodes add` did.
#[derive(Debug, Clone, Serialize)]
pub struct NodeAdded {
    /// The node's name.
    pub name: String,
    /// Its context.
    pub context: String,
    /// Its engine's address.
    pub host: String,
    /// The start on its engine.
    pub start: StartOutcome,
    /// The node's endpoint in the builder.
    pub endpoint: String,
}

/// What `nodes rm` did.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRemoved {
    /// The node's name.
    pub name: String,
    /// The backend container removed there, if one ran.
    pub container: Option<String>,
    /// The cache volume removed with it (one we created).
    pub removed_volume: Option<String>,
    /// The cache volume left in place (`--keep-state`, or a volume we did not create).
    pub kept_volume: Option<String>,
    /// Its engine did not answer, and the node was forgotten anyway (`--force`): its containers
    /// may still be there.
    pub unreachable: Option<String>,
}

/// The tray's line for the nodes, the local backend among them: how many run ("Nodes: 1 of 2 up").
pub fn tray_line(statuses: &[NodeStatus]) -> String {
    let up = statuses.iter().filter(|s| s.state == NodeState::Running).count();
    format!("Nodes: {up} of {} up", statuses.len())
}

/// The platforms the panel's "Add node" field holds (commas between them; empty is none).
pub fn parse_typed_platforms(typed: &str) -> Result<Vec<String>> {
    match typed.trim() {
        "" => Ok(Vec::new()),
        typed => parse_platforms(&[typed.to_string()]),
    }
}

/// The docker config folder the local engine was resolved from: the nodes' contexts and the
/// builder live there.
fn config_of(local: &Backend) -> PathBuf {
    local.engine().endpoint().config.path().to_path_buf()
}

/// Resolves a node's context in `config`, as `--context NAME` would.
fn resolve(config: &Path, context: &str) -> Result<Endpoint> {
    let choice = EngineChoice {
        context: Some(context.to_string()),
        config_dir: Some(config.to_path_buf()),
        ..Default::default()
    };
    engine::resolve(&choice, &Environment::from_process())
}

/// Connects to `endpoint` within [`REACH_TIMEOUT`]; the sentence when it does not answer.
async fn reach(endpoint: Endpoint) -> std::result::Result<Engine, String> {
    let host = endpoint.host();
    match tokio::time::timeout(REACH_TIMEOUT, Engine::connect_to(endpoint)).await {
        Ok(Ok(engine)) => Ok(engine),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("{host} did not answer within {} s", REACH_TIMEOUT.as_secs())),
    }
}

/// Parses `--platform` values (each may be comma-separated), normalized.
pub fn parse_platforms(typed: &[String]) -> Result<Vec<String>> {
    let mut platforms = Vec::new();
    for part in typed.iter().flat_map(|t| t.split(',')) {
        let platform = Platform::parse(part).ok_or_else(|| NodeError::BadPlatform(part.trim().to_string()))?;
        let text = platform.to_string();
        if !platforms.contains(&text) {
            platforms.push(text);
        }
    }
    Ok(platforms)
}

/// The nodes in the list at `file`.
pub fn entries(file: &Path) -> Result<Vec<NodeEntry>> {
    store::load(file)
}

/// Starts the backend on the engine `context` reaches and makes it a node of the `assemble`
/// builder, declared for `platforms` (already parsed). The node gets the same request as the
/// local backend (image, ports, cache rule); when the cache rule is the automatic one, its
/// default cache volume is made on its engine first, so its cache is its own and lasts.
pub async fn add(
    local: &Backend,
    context: &str,
    platforms: &[String],
    request: &StartRequest,
    file: &Path,
) -> Result<NodeAdded> {
    let local_endpoint = local.engine().endpoint();
    let name = builder::node_name(context);
    if context == local_endpoint.context {
        return Err(NodeError::Local { name: context.to_string() }.into());
    }
    if builder::endpoint_for(&local.names().backend(), local_endpoint).is_none() {
        return Err(NodeError::LocalWithoutContext { host: local_endpoint.host() }.into());
    }
    let mut nodes = store::load(file)?;
    if let Some(node) = nodes.iter().find(|n| n.name == name || n.context == context) {
        return Err(NodeError::AlreadyExists { name: node.name.clone(), context: node.context.clone() }.into());
    }
    let config = config_of(local);
    let endpoint = resolve(&config, context)?;
    let host = endpoint.host();
    let engine = tokio::time::timeout(REACH_TIMEOUT, Engine::connect_to(endpoint.clone())).await.map_err(|_| {
        NodeError::Silent { context: context.to_string(), host: host.clone(), seconds: REACH_TIMEOUT.as_secs() }
    })??;
    if same_engine(local.engine(), &engine).await {
        return Err(NodeError::SameEngine { context: context.to_string(), host: local_endpoint.host() }.into());
    }
    let node = Backend::new(engine, local.names().clone());
    let made_volume = request.cache == CacheSetting::Auto && ensure_cache_volume(&node).await?;
    let start = match node.start(request, &progress::silent).await {
        Ok(start) => start,
        Err(err) => {
            // The start took back what it made; the volume made for it goes too.
            if made_volume {
                let _ = remove_our_volume(&node, &node.names().default_cache_volume()).await;
            }
            return Err(err);
        }
    };
    nodes.push(NodeEntry { name: name.clone(), context: context.to_string(), platforms: platforms.to_vec() });
    store::save(file, &nodes)?;
    let Some(node_endpoint) = builder::endpoint_for(&local.names().backend(), &endpoint) else {
        return Err(NodeError::Builder { name, reason: "its context cannot be named in a builder".into() }.into());
    };
    join_builder(local, &name, &node_endpoint, platforms)
        .await
        .map_err(|reason| NodeError::Builder { name: name.clone(), reason })?;
    Ok(NodeAdded { name, context: context.to_string(), host, start, endpoint: node_endpoint })
}

/// Makes sure the builder is ours (registering it for the local backend when it is missing), then
/// adds the node to it.
async fn join_builder(
    local: &Backend,
    name: &str,
    endpoint: &str,
    platforms: &[String],
) -> std::result::Result<(), String> {
    let registration = builder::register(&local.names().backend(), local.engine().endpoint(), false).await;
    if !registration.is_ours() {
        return Err(registration.sentence());
    }
    builder::append_node(&config_of(local), name, endpoint, platforms).await
}

/// Whether two connections reach one engine. The engine's ID alone does not tell: two dockerds
/// on one machine share `/etc/docker/key.json`, and so their ID; with the host's name and the
/// data folder it does.
async fn same_engine(a: &Engine, b: &Engine) -> bool {
    if a.endpoint().same_target(b.endpoint()) {
        return true;
    }
    let (first, second) = futures_util::future::join(a.docker().info(), b.docker().info()).await;
    let identity = |info: bollard::models::SystemInfo| (info.id, info.name, info.docker_root_dir);
    match (first.map(identity), second.map(identity)) {
        (Ok(x), Ok(y)) => x.0.is_some() && x == y,
        _ => false,
    }
}

/// Creates the user's default cache volume on the node's engine, labelled ours, when missing;
/// whether it did.
async fn ensure_cache_volume(node: &Backend) -> Result<bool> {
    let name = node.names().default_cache_volume();
    if node.docker().inspect_volume(&name).await.is_ok() {
        return Ok(false);
    }
    let request = bollard::models::VolumeCreateRequest {
        name: Some(name.clone()),
        labels: Some(labels::common(node.names(), labels::Role::Cache)),
        ..Default::default()
    };
    node.docker().create_volume(request).await.map_err(Error::docker(format!("creating cache volume {name}")))?;
    Ok(true)
}

/// Removes the node `name`: out of the builder, its containers removed from its engine, and its
/// cache volume too unless `keep_state` (as `docker buildx rm --keep-state`); only a volume we
/// created is ever removed. An engine that does not answer refuses the removal, so no container
/// is left behind unseen, unless `force`.
pub async fn remove(local: &Backend, name: &str, keep_state: bool, force: bool, file: &Path) -> Result<NodeRemoved> {
    let mut nodes = store::load(file)?;
    if name == local.engine().endpoint().context || name == builder::node_name(&local.engine().endpoint().context) {
        return Err(NodeError::Local { name: name.to_string() }.into());
    }
    let Some(position) = nodes.iter().position(|n| n.name == name) else {
        return Err(NodeError::Unknown {
            name: name.to_string(),
            known: nodes.iter().map(|n| n.name.clone()).collect(),
        }
        .into());
    };
    let entry = nodes[position].clone();
    let config = config_of(local);
    let reached = match resolve(&config, &entry.context) {
        Ok(endpoint) => reach(endpoint).await,
        Err(err) => Err(err.to_string()),
    };
    let mut removed = NodeRemoved {
        name: name.to_string(),
        container: None,
        removed_volume: None,
        kept_volume: None,
        unreachable: None,
    };
    match reached {
        Ok(engine) => {
            let node = Backend::new(engine, local.names().clone());
            let volume = match node.stop().await? {
                StopOutcome::Stopped { id, cache_volume, .. } => {
                    removed.container = Some(id);
                    cache_volume
                }
                StopOutcome::NotRunning { .. } => Some(node.names().default_cache_volume()),
            };
            if let Some(volume) = volume {
                if !keep_state && remove_our_volume(&node, &volume).await? {
                    removed.removed_volume = Some(volume);
                } else if node.docker().inspect_volume(&volume).await.is_ok() {
                    removed.kept_volume = Some(volume);
                }
            }
        }
        Err(reason) if force => removed.unreachable = Some(reason),
        Err(reason) => return Err(NodeError::Unreachable { name: name.to_string(), reason }.into()),
    }
    builder::leave_node(&config, name).await.map_err(|reason| NodeError::Builder { name: name.to_string(), reason })?;
    nodes.remove(position);
    store::save(file, &nodes)?;
    Ok(removed)
}

/// Removes `volume` when it carries our labels for this user; whether it did.
async fn remove_our_volume(node: &Backend, volume: &str) -> Result<bool> {
    let Ok(found) = node.docker().inspect_volume(volume).await else { return Ok(false) };
    let labels = found.labels;
    let ours = labels.get(labels::OWNER).map(String::as_str) == Some(node.names().user())
        && labels.get(labels::ROLE).map(String::as_str) == Some(labels::Role::Cache.as_str());
    if !ours {
        return Ok(false);
    }
    node.docker()
        .remove_volume(volume, None::<bollard::query_parameters::RemoveVolumeOptions>)
        .await
        .map_err(Error::docker(format!("removing volume {volume}")))?;
    Ok(true)
}

/// Every node's status, the local one first, all asked at once, with each running node's cache
/// use (`nodes ls`, the panel); an engine that does not answer is unreachable after
/// [`REACH_TIMEOUT`] at most.
pub async fn list(local: &Backend, file: &Path) -> Result<Vec<NodeStatus>> {
    Ok(survey(local, file, CacheUse::Read).await?.into_iter().map(|(status, _)| status).collect())
}

/// Whether a survey reads each node's cache use (a DiskUsage call there, which a build does not need).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Read it on each running node.
    Read,
    /// Leave it out (`cache_bytes` stays `None`).
    Skip,
}

/// Every node's status as [`list`] gives it, each with its backend when its engine was reached
/// (a split build then runs there without reaching it again: over ssh, each reach costs a connection).
pub async fn survey(local: &Backend, file: &Path, cache: CacheUse) -> Result<Vec<(NodeStatus, Option<Backend>)>> {
    let entries = store::load(file)?;
    let endpoint = local.engine().endpoint();
    let local_status = async {
        let mut status = probe(local, cache).await;
        status.name = endpoint.context.clone();
        status.local = true;
        (status, Some(local.clone()))
    };
    let others = entries.iter().map(|entry| async {
        let mut status = NodeStatus {
            name: entry.name.clone(),
            local: false,
            context: entry.context.clone(),
            host: None,
            state: NodeState::Unreachable,
            declared_platforms: entry.platforms.clone(),
            platforms: Vec::new(),
            emulated_platforms: Vec::new(),
            cache_bytes: None,
            cache_text: None,
            reason: None,
        };
        match connect(&config_of(local), entry, local.names()).await {
            Ok(node) => {
                let probed = probe(&node, cache).await;
                (NodeStatus { name: status.name, declared_platforms: status.declared_platforms, ..probed }, Some(node))
            }
            Err((host, reason)) => {
                status.host = host;
                status.reason = Some(reason);
                (status, None)
            }
        }
    });
    let (first, rest) = futures_util::future::join(local_status, futures_util::future::join_all(others)).await;
    Ok(std::iter::once(first).chain(rest).collect())
}

/// A node's backend: its context resolved and its engine reached, or the address (when it
/// resolved) and why not.
async fn connect(
    config: &Path,
    entry: &NodeEntry,
    names: &Names,
) -> std::result::Result<Backend, (Option<String>, String)> {
    let endpoint = resolve(config, &entry.context).map_err(|err| (None, err.to_string()))?;
    let host = endpoint.host();
    let engine = reach(endpoint).await.map_err(|reason| (Some(host), reason))?;
    Ok(Backend::new(engine, names.clone()))
}

/// What one backend is now: running (with its platforms), stopped, or unreachable.
async fn probe(backend: &Backend, cache: CacheUse) -> NodeStatus {
    let endpoint = backend.engine().endpoint();
    let mut status = NodeStatus {
        name: builder::node_name(&endpoint.context),
        local: false,
        context: endpoint.context.clone(),
        host: Some(endpoint.host()),
        state: NodeState::Stopped,
        declared_platforms: Vec::new(),
        platforms: Vec::new(),
        emulated_platforms: Vec::new(),
        cache_bytes: None,
        cache_text: None,
        reason: None,
    };
    let asked = async {
        match backend.presence().await? {
            Presence::Ours(container) if container.running => {
                let platforms = backend.platforms(&container.id).await?;
                // The cache's size is worth showing, not worth failing the node's status for.
                let cache = match cache {
                    CacheUse::Read => {
                        backend.cache_usage(&CacheFilter::default()).await.ok().map(|r| CacheTotals::of(&r).total)
                    }
                    CacheUse::Skip => None,
                };
                Ok::<_, Error>(Some((platforms, cache)))
            }
            Presence::Foreign => Err(crate::BackendError::ForeignContainer { name: backend.names().backend() }.into()),
            _ => Ok(None),
        }
    };
    match tokio::time::timeout(QUERY_TIMEOUT, asked).await {
        Ok(Ok(Some((platforms, cache)))) => {
            status.state = NodeState::Running;
            status.platforms = platforms.native;
            status.emulated_platforms = platforms.emulated;
            status.cache_bytes = cache;
            status.cache_text = cache.map(crate::units::human_size);
        }
        Ok(Ok(None)) => {}
        Ok(Err(err)) if err.is_engine_unavailable() => {
            status.state = NodeState::Unreachable;
            status.reason = Some(err.to_string());
        }
        Ok(Err(err)) => status.reason = Some(err.to_string()),
        Err(_) => {
            status.state = NodeState::Unreachable;
            status.reason = Some(format!("it did not answer within {} s", QUERY_TIMEOUT.as_secs()));
        }
    }
    status
}

/// Runs `operation` on every node's backend at once, each bounded by `limit` once its engine
/// answers; one node's failure or silence never stops or delays the others.
async fn each_node<T, F, Fut>(
    local: &Backend,
    file: &Path,
    limit: Option<Duration>,
    operation: F,
) -> Result<Vec<NodeReport<T>>>
where
    F: Fn(Backend, NodeEntry) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let entries = store::load(file)?;
    let config = config_of(local);
    let runs = entries.into_iter().map(|entry| {
        let (config, operation) = (&config, &operation);
        async move {
            let mut report = NodeReport {
                name: entry.name.clone(),
                context: entry.context.clone(),
                host: None,
                reached: Reached::Unreachable { reason: String::new() },
            };
            let node = match connect(config, &entry, local.names()).await {
                Ok(node) => node,
                Err((host, reason)) => {
                    report.host = host;
                    report.reached = Reached::Unreachable { reason };
                    return report;
                }
            };
            report.host = Some(node.engine().endpoint().host());
            let run = operation(node, entry);
            let result = match limit {
                Some(limit) => match tokio::time::timeout(limit, run).await {
                    Ok(result) => result,
                    Err(_) => {
                        report.reached =
                            Reached::Unreachable { reason: format!("it did not answer within {} s", limit.as_secs()) };
                        return report;
                    }
                },
                None => run.await,
            };
            report.reached = match result {
                Ok(result) => Reached::Done { result },
                Err(err) if err.is_engine_unavailable() => Reached::Unreachable { reason: err.to_string() },
                Err(err) => Reached::Failed { reason: err.to_string() },
            };
            report
        }
    });
    Ok(futures_util::future::join_all(runs).await)
}

/// Starts the backend on every node with `request`, and puts each started node (back) into the
/// builder, declared as it was added.
pub async fn start_all(local: &Backend, request: &StartRequest, file: &Path) -> Result<Vec<NodeReport<StartOutcome>>> {
    each_node(local, file, None, |node, entry| async move {
        let outcome = node.start(request, &progress::silent).await?;
        if let Some(endpoint) = builder::endpoint_for(&node.names().backend(), node.engine().endpoint()) {
            // The builder is repaired, not required: the backend runs either way, and `nodes ls`
            // and buildx say what is missing.
            let _ = join_builder(local, &entry.name, &endpoint, &entry.platforms).await;
        }
        Ok(outcome)
    })
    .await
}

/// Stops the backend on every node (the nodes stay in the list and the builder).
pub async fn stop_all(local: &Backend, file: &Path) -> Result<Vec<NodeReport<StopOutcome>>> {
    each_node(local, file, Some(STOP_TIMEOUT), |node, _| async move { node.stop().await }).await
}

/// Every node's `info`.
pub async fn info_all(local: &Backend, file: &Path) -> Result<Vec<NodeReport<BackendInfo>>> {
    each_node(local, file, Some(QUERY_TIMEOUT), |node, _| async move { node.info().await }).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tray_counts_the_nodes_up_and_the_panel_s_platforms_field_may_be_empty() {
        let node = |name: &str, local: bool, state: NodeState| NodeStatus {
            name: name.into(),
            local,
            context: name.into(),
            host: None,
            state,
            declared_platforms: Vec::new(),
            platforms: Vec::new(),
            emulated_platforms: Vec::new(),
            cache_bytes: None,
            cache_text: None,
            reason: None,
        };
        assert_eq!(tray_line(&[node("default", true, NodeState::Stopped)]), "Nodes: 0 of 1 up");
        let two = [node("default", true, NodeState::Running), node("arm", false, NodeState::Unreachable)];
        assert_eq!(tray_line(&two), "Nodes: 1 of 2 up");
        assert_eq!(parse_typed_platforms("  ").unwrap(), Vec::<String>::new());
        assert_eq!(parse_typed_platforms("linux/arm64, linux/arm64").unwrap(), ["linux/arm64"]);
        assert!(parse_typed_platforms("linux/").is_err());
    }

    use super::*;

    #[test]
    fn platforms_are_normalized_split_on_commas_and_a_bad_one_is_named() {
        let parsed = parse_platforms(&["linux/arm64,linux/arm/v7".into(), "linux/aarch64".into()]).expect("parsed");
        assert_eq!(parsed, vec!["linux/arm64", "linux/arm/v7"]);
        let refused = parse_platforms(&["linux/arm64,linux//x".into()]).expect_err("refused");
        assert_eq!(
            refused.to_string(),
            "\"linux//x\" is not a platform: give os/arch[/variant], such as linux/arm64 or linux/arm/v7, comma-separated"
        );
    }
}
