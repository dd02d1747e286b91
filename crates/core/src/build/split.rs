//! A pushed multi-platform build split across the builder's nodes, as buildx splits it: each node
//! builds its platforms ([`crate::nodes::choice`]) and pushes them by digest, all at once; then one
//! image index, made from the manifests the nodes pushed, goes to every tag. One node failing
//! cancels the others (their solves are dropped, which cancels them on BuildKit).
use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    path::Path,
    str::FromStr,
};

use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;
use oci_client::{
    client::{ClientConfig, ClientProtocol},
    secrets::RegistryAuth,
    Client, Reference,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{
    backend::{Backend, OurContainer},
    build::{
        error::BuildError,
        outputs::{Destination, OutputSpec},
        plan::{BuildPlan, Output},
        run::{self, BuildOutcome},
    },
    buildkit::{platform::Platform, registry_auth::Credentials},
    nodes::{self, choice::Share, error::NodeError},
    Result,
};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Whether a build with these shares is split: several platforms, pushed (and nothing else: no
/// `--load`, no `-o`, which buildx refuses across nodes too), and more than one node with work.
pub fn is_split(plan: &BuildPlan, shares: &[Share]) -> bool {
    plan.platforms.len() > 1 && plan.output == Output::Push && plan.outputs.is_empty() && shares.len() > 1
}

/// How a build splits across the builder's nodes: each node's share, and the backends of the
/// nodes as the survey reached them (reached once: over ssh, each reach is a connection).
pub struct Split {
    /// Each node's share, in the nodes' order.
    pub shares: Vec<Share>,
    reached: Vec<(String, Backend)>,
}

/// How this build splits across the builder's nodes (several platforms, pushed, and more than one
/// node with work); `None` builds on the local backend as always. `nodes_file` is the list of
/// nodes ([`crate::nodes::store::path`]).
pub async fn shares_for(local: &Backend, plan: &BuildPlan, nodes_file: &Path) -> Result<Option<Split>> {
    if plan.platforms.len() < 2 || plan.output != Output::Push || !plan.outputs.is_empty() {
        return Ok(None);
    }
    if nodes::entries(nodes_file)?.is_empty() {
        return Ok(None);
    }
    let surveyed = nodes::survey(local, nodes_file, nodes::CacheUse::Skip).await?;
    let statuses: Vec<_> = surveyed.iter().map(|(status, _)| status.clone()).collect();
    let shares = nodes::choice::split(&statuses, &plan.platforms);
    let reached =
        surveyed.into_iter().filter_map(|(status, backend)| backend.map(|backend| (status.name, backend))).collect();
    Ok(is_split(plan, &shares).then_some(Split { shares, reached }))
}

/// One node's part, ready to run.
pub struct NodeRun {
    /// Its share of the platforms.
    pub share: Share,
    /// Its backend.
    pub backend: Backend,
    /// Its running backend container.
    pub container: OurContainer,
    /// Its build's reference (its history entry there).
    pub reference: String,
}

impl NodeRun {
    /// The line saying, before it starts, what this node builds: `Node armbox builds linux/arm64 (build REF)`.
    pub fn announcement(&self) -> String {
        format!("Node {} builds {} (build {})", self.share.node, self.share.platforms.join(", "), self.reference)
    }
}

/// What each progress line of a node's part starts with: `[linux/arm64 @ armbox]`.
pub fn prefix(share: &Share) -> String {
    format!("[{} @ {}]", share.platforms.join(","), share.node)
}

/// Each share's node running, before anything is built: a node that is not ready stops the
/// build with its own sentence. The local node (`local`, whose running container is
/// `container`) runs its share itself.
pub async fn node_runs(local: &Backend, container: &OurContainer, split: Split) -> Result<Vec<NodeRun>> {
    let local_name = local.engine().endpoint().context.clone();
    let mut runs = Vec::new();
    for share in split.shares {
        let (backend, container) = if share.node == local_name {
            (local.clone(), container.clone())
        } else {
            let not_ready = |reason: String| NodeError::NotReady { name: share.node.clone(), reason };
            let node = split
                .reached
                .iter()
                .find(|(name, _)| *name == share.node)
                .map(|(_, backend)| backend.clone())
                .ok_or_else(|| not_ready("its engine did not answer".to_string()))?;
            let running = node.running().await.map_err(|err| not_ready(err.to_string()))?;
            (node, running)
        };
        runs.push(NodeRun { share, backend, container, reference: run::new_reference() });
    }
    Ok(runs)
}

/// What a split build did: each node's own outcome, and the index pushed.
#[derive(Debug, Clone)]
pub struct SplitOutcome {
    /// Each node's share and its build's outcome, in the nodes' order.
    pub parts: Vec<(Share, BuildOutcome)>,
    /// The names the index was pushed to.
    pub pushed: Vec<String>,
    /// The index's digest.
    pub digest: String,
}

impl SplitOutcome {
    /// The keys `--iidfile` and `--metadata-file` read, as one build's exporter would give them:
    /// the index's digest and the names it went to.
    pub fn exporter_response(&self) -> HashMap<String, String> {
        HashMap::from([
            ("containerimage.digest".to_string(), self.digest.clone()),
            ("image.name".to_string(), self.pushed.join(",")),
        ])
    }

    /// Each node's build reference, comma-separated (`buildx.build.ref`).
    pub fn references(&self) -> String {
        self.parts.iter().map(|(_, outcome)| outcome.reference.as_str()).collect::<Vec<_>>().join(",")
    }

    /// What the build gave, one sentence a line: which node built which platform, the names
    /// pushed and the index's digest.
    pub fn sentences(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .parts
            .iter()
            .map(|(share, outcome)| {
                let platforms = if outcome.platforms.is_empty() {
                    share.platforms.join(", ")
                } else {
                    outcome.platforms.join(", ")
                };
                format!("Node {} built {platforms}", share.node)
            })
            .collect();
        lines.extend(self.pushed.iter().map(|name| format!("Pushed {name}")));
        lines.push(format!("Image digest: {}", self.digest));
        lines
    }
}

/// The repositories of the plan's names (`localhost:5000/app` for `localhost:5000/app:1`), each once.
fn repositories(names: &[String]) -> Result<Vec<Reference>> {
    let mut repositories: Vec<Reference> = Vec::new();
    for name in names {
        let reference = parse_name(name)?;
        if !repositories
            .iter()
            .any(|r| r.registry() == reference.registry() && r.repository() == reference.repository())
        {
            repositories.push(reference);
        }
    }
    Ok(repositories)
}

fn parse_name(name: &str) -> Result<Reference> {
    Reference::from_str(name).map_err(|err| {
        BuildError::InvalidName(crate::reference::ReferenceError {
            reference: name.to_string(),
            reason: err.to_string(),
        })
        .into()
    })
}

/// The plan one node runs: its platforms, pushed by digest to the names' repositories (no tag:
/// the index gets the tags), as buildx asks each node.
pub fn node_plan(plan: &BuildPlan, share: &Share) -> Result<BuildPlan> {
    let repositories: Vec<String> =
        repositories(&plan.names)?.iter().map(|r| format!("{}/{}", r.registry(), r.repository())).collect();
    let mut part = plan.clone();
    part.platforms = share.platforms.clone();
    part.output = Output::CacheOnly;
    part.names = Vec::new();
    part.outputs = vec![OutputSpec {
        exporter: "image".to_string(),
        attrs: BTreeMap::from([
            ("name".to_string(), repositories.join(",")),
            ("push".to_string(), "true".to_string()),
            ("push-by-digest".to_string(), "true".to_string()),
            ("name-canonical".to_string(), "true".to_string()),
        ]),
        dest: Destination::None,
    }];
    Ok(part)
}

/// The index entries one node's push gives: the entries of the index it pushed, or the manifest
/// it pushed, marked with the platform it built (`platform`: its only one).
pub fn entries_of(body: &[u8], digest: &str, platform: Option<&str>) -> std::result::Result<Vec<Value>, String> {
    let pushed: Value = serde_json::from_slice(body).map_err(|e| format!("the manifest {digest} is not JSON: {e}"))?;
    let media_type = pushed.get("mediaType").and_then(Value::as_str).unwrap_or(OCI_MANIFEST);
    if media_type == OCI_INDEX || media_type == DOCKER_LIST || pushed.get("manifests").is_some() {
        let manifests = pushed.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default();
        return Ok(manifests);
    }
    let mut entry = json!({ "mediaType": media_type, "digest": digest, "size": body.len() });
    if let Some(platform) = platform.and_then(Platform::parse) {
        let mut described = json!({ "architecture": platform.architecture, "os": platform.os });
        if !platform.variant.is_empty() {
            described["variant"] = json!(platform.variant);
        }
        entry["platform"] = described;
    }
    Ok(vec![entry])
}

/// The index joining every node's entries (each manifest once), as bytes to push and its media
/// type: a Docker manifest list when every entry is a Docker manifest, else an OCI index.
pub fn merge(entries: Vec<Value>) -> (Vec<u8>, &'static str) {
    let mut manifests: Vec<Value> = Vec::new();
    for entry in entries {
        if !manifests.iter().any(|m| m.get("digest") == entry.get("digest")) {
            manifests.push(entry);
        }
    }
    let docker = !manifests.is_empty()
        && manifests.iter().all(|m| m.get("mediaType").and_then(Value::as_str) == Some(DOCKER_MANIFEST));
    let media_type = if docker { DOCKER_LIST } else { OCI_INDEX };
    let index = json!({ "schemaVersion": 2, "mediaType": media_type, "manifests": manifests });
    (serde_json::to_vec(&index).unwrap_or_default(), media_type)
}

/// `sha256:…` of `bytes`.
fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// A registry client for `registry`: plain http for the registries Docker itself reaches without
/// TLS (localhost and 127.0.0.0/8), else https.
fn client_for(registry: &str) -> Client {
    // reqwest is built without its own crypto provider; ours (ring) is installed once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let host = registry.rsplit_once(':').map_or(registry, |(host, _)| host);
    let plain = host == "localhost" || host.starts_with("127.") || host == "[::1]";
    let protocol = if plain { ClientProtocol::HttpsExcept(vec![registry.to_string()]) } else { ClientProtocol::Https };
    Client::new(ClientConfig { protocol, ..Default::default() })
}

fn auth_for(credentials: &Credentials, registry: &str) -> RegistryAuth {
    match credentials.for_host(registry) {
        Some((user, secret)) => RegistryAuth::Basic(user, secret),
        None => RegistryAuth::Anonymous,
    }
}

/// Runs each node's part at once, each node's progress to `on_status` with its share; the first
/// failure cancels the others and names its node. Then the index goes to every name.
pub async fn run_split(
    runs: Vec<NodeRun>,
    plan: &BuildPlan,
    config_dir: &Path,
    on_status: &(dyn Fn(&Share, &StatusResponse) + Sync),
    cancel: impl Future<Output = ()>,
) -> Result<SplitOutcome> {
    let builds = runs.iter().map(|node| async move {
        let part = node_plan(plan, &node.share)?;
        let outcome = run::run(
            &node.backend,
            &node.container,
            &part,
            config_dir,
            &node.reference,
            |status| on_status(&node.share, status),
            std::future::pending(),
        )
        .await
        .map_err(|err| {
            crate::Error::from(BuildError::NodeFailed {
                node: node.share.node.clone(),
                platforms: node.share.platforms.join(", "),
                message: err.to_string(),
            })
        })?;
        Ok::<_, crate::Error>((node.share.clone(), outcome))
    });
    // try_join_all drops the unfinished builds on the first failure: BuildKit cancels them.
    let parts = tokio::select! {
        parts = futures_util::future::try_join_all(builds) => parts?,
        () = cancel => return Err(BuildError::Canceled.into()),
    };
    let (pushed, digest) = push_index(plan, &parts, config_dir).await?;
    Ok(SplitOutcome { parts, pushed, digest })
}

/// Reads each node's pushed manifest from the first name's repository, merges them, and pushes
/// the index to every name; the names and the index's digest.
async fn push_index(
    plan: &BuildPlan,
    parts: &[(Share, BuildOutcome)],
    config_dir: &Path,
) -> Result<(Vec<String>, String)> {
    let credentials = Credentials::from_config_dir(config_dir);
    let first = plan.names.first().ok_or(BuildError::PushNeedsAName)?;
    let source = parse_name(first)?;
    let failed = |doing: &'static str, message: String| BuildError::IndexFailed { name: first.clone(), doing, message };
    let client = client_for(source.registry());
    let auth = auth_for(&credentials, source.registry());
    let mut entries = Vec::new();
    for (share, outcome) in parts {
        let digest = outcome.exporter_response.get("containerimage.digest").ok_or_else(|| {
            failed("read", format!("the node {} did not say what it pushed (no containerimage.digest)", share.node))
        })?;
        let by_digest =
            Reference::with_digest(source.registry().to_string(), source.repository().to_string(), digest.clone());
        let (body, _) = client
            .pull_manifest_raw(&by_digest, &auth, &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])
            .await
            .map_err(|e| failed("read", format!("{by_digest}: {e}")))?;
        let only = (share.platforms.len() == 1).then(|| share.platforms[0].as_str());
        entries.extend(entries_of(&body, digest, only).map_err(|m| failed("read", m))?);
    }
    let (body, media_type) = merge(entries);
    let digest = digest_of(&body);
    let mut pushed = Vec::new();
    for name in &plan.names {
        let target = parse_name(name)?;
        let client = client_for(target.registry());
        let auth = auth_for(&credentials, target.registry());
        let fail = |e: String| BuildError::IndexFailed { name: name.clone(), doing: "pushed", message: e };
        client.auth(&target, &auth, oci_client::RegistryOperation::Push).await.map_err(|e| fail(e.to_string()))?;
        let content_type = media_type.parse().map_err(|e: http::header::InvalidHeaderValue| fail(e.to_string()))?;
        client.push_manifest_raw(&target, body.clone(), content_type).await.map_err(|e| fail(e.to_string()))?;
        pushed.push(name.clone());
    }
    Ok((pushed, digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::plan::{plan, BuildInput};

    #[test]
    fn each_node_pushes_its_platforms_by_digest_to_the_names_repositories() {
        let dir = std::env::temp_dir().join(format!("assemble-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
        let input = BuildInput {
            context: dir.clone(),
            tags: vec![
                "localhost:5000/app:1".into(),
                "localhost:5000/app:latest".into(),
                "localhost:5001/other".into(),
            ],
            push: true,
            platform: Some("linux/amd64,linux/arm64".into()),
            ..Default::default()
        };
        let whole = plan(&input, |_| None).unwrap();
        let arm = Share { node: "armbox".into(), platforms: vec!["linux/arm64".into()] };
        let two = [Share { node: "default".into(), platforms: vec!["linux/amd64".into()] }, arm.clone()];
        assert!(is_split(&whole, &two));
        assert!(!is_split(&whole, &two[..1]), "one node with work: no split");
        let part = node_plan(&whole, &arm).unwrap();
        assert_eq!(part.platforms, ["linux/arm64"]);
        assert!(part.names.is_empty() && part.output == Output::CacheOnly);
        let attrs = &part.outputs[0].attrs;
        assert_eq!(part.outputs[0].exporter, "image");
        assert_eq!(attrs["name"], "localhost:5000/app,localhost:5001/other");
        for key in ["push", "push-by-digest", "name-canonical"] {
            assert_eq!(attrs[key], "true", "{key}");
        }
        let mut loaded = whole.clone();
        loaded.output = Output::PushAndLoad;
        assert!(!is_split(&loaded, &two), "--load stays on one backend");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_index_joins_each_node_s_manifest_or_index_once() {
        let amd =
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#;
        let from_amd = entries_of(amd, "sha256:aa", Some("linux/amd64")).unwrap();
        assert_eq!(
            from_amd,
            [
                json!({"mediaType": OCI_MANIFEST, "digest": "sha256:aa", "size": amd.len(), "platform": {"architecture": "amd64", "os": "linux"}})
            ]
        );
        // A node that built two platforms (or added attestations) pushed an index: its entries.
        let arm_index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": "sha256:bb", "size": 5, "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": "sha256:cc", "size": 6, "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
        ]});
        let from_arm = entries_of(arm_index.to_string().as_bytes(), "sha256:ix", None).unwrap();
        assert_eq!(from_arm.len(), 2);
        let v7 = entries_of(amd, "sha256:dd", Some("linux/arm/v7")).unwrap();
        assert_eq!(v7[0]["platform"], json!({"architecture": "arm", "os": "linux", "variant": "v7"}));
        let (body, media_type) = merge([from_amd.clone(), from_arm, from_amd].concat());
        assert_eq!(media_type, OCI_INDEX);
        let index: Value = serde_json::from_slice(&body).unwrap();
        let digests: Vec<&str> =
            index["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap()).collect();
        assert_eq!(digests, ["sha256:aa", "sha256:bb", "sha256:cc"], "each manifest once, in the nodes' order");
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(digest_of(&body).len(), "sha256:".len() + 64);
        let docker = entries_of(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#,
            "sha256:ee",
            Some("linux/amd64"),
        )
        .unwrap();
        assert_eq!(merge(docker).1, DOCKER_LIST, "Docker manifests only: a Docker manifest list");
        assert!(entries_of(b"not json", "sha256:ff", None).unwrap_err().contains("sha256:ff is not JSON"));
    }
}
