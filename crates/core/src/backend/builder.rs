//! The backend as a buildx builder named `assemble`, so that `docker buildx build --builder
//! assemble …` builds on it. buildx keeps its builders in a store of its own, so we go through its
//! documented interface (`docker buildx ls`, `create`, `use`), never its files. The builder is the
//! remote driver on `docker-container://<backend>?context=<context>`: buildx reaches BuildKit with
//! `docker --context <context> exec … buildctl dial-stdio`, on the engine the backend runs on. A
//! builder of that name that points elsewhere is not ours and is never changed.
use std::{path::PathBuf, process::Stdio};

use serde::{Deserialize, Serialize};

use crate::engine::{Endpoint, Origin};

/// The builder's name.
pub const BUILDER_NAME: &str = "assemble";

/// What was done about the builder, with the sentence to tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum BuilderRegistration {
    /// Made now.
    Registered {
        /// Its endpoint.
        endpoint: String,
        /// It was also made docker's current builder (`--use`).
        current: bool,
    },
    /// It was there already, for this backend.
    AlreadyRegistered {
        /// Its endpoint.
        endpoint: String,
        /// It was also made docker's current builder (`--use`).
        current: bool,
    },
    /// A builder named `assemble` exists for another endpoint: left as it is.
    Foreign {
        /// Where that builder points.
        theirs: String,
        /// Where ours would point.
        ours: String,
    },
    /// The engine was named by its address (`-H`, `DOCKER_HOST`), which a builder cannot name.
    NoContext {
        /// The engine's address.
        host: String,
    },
    /// `docker buildx` is not there (or does not run).
    BuildxMissing {
        /// What running it said.
        reason: String,
    },
    /// buildx refused to make or select the builder.
    Failed {
        /// buildx's own words.
        reason: String,
    },
}

impl BuilderRegistration {
    /// One line for the user.
    pub fn sentence(&self) -> String {
        let build = format!("docker buildx build --builder {BUILDER_NAME} .");
        let current = |current: &bool| if *current { " It is docker's current builder now." } else { "" };
        match self {
            Self::Registered { current: now, .. } => {
                format!("Registered the buildx builder \"{BUILDER_NAME}\": {build}{}", current(now))
            }
            Self::AlreadyRegistered { current: now, .. } => {
                format!("The buildx builder \"{BUILDER_NAME}\" builds here: {build}{}", current(now))
            }
            Self::Foreign { theirs, ours } => format!(
                "A buildx builder named \"{BUILDER_NAME}\" already exists for {theirs}, so it was left as it is; to \
                 build here, remove it (docker buildx rm {BUILDER_NAME}) and start again, or make one under another \
                 name: docker buildx create --name NAME --driver remote '{ours}'"
            ),
            Self::NoContext { host } => format!(
                "No buildx builder was registered: the engine was chosen by its address ({host}), which a builder \
                 cannot name; make a context for it (docker context create NAME --docker host={host}) and use that"
            ),
            Self::BuildxMissing { reason } => format!(
                "No buildx builder was registered: docker buildx does not run here ({reason}); install it (Debian: \
                 docker-buildx) to build on the backend with docker buildx"
            ),
            Self::Failed { reason } => {
                format!("The buildx builder \"{BUILDER_NAME}\" could not be registered: {reason}")
            }
        }
    }

    /// What the panel shows.
    pub fn view(&self) -> BuilderView {
        BuilderView {
            name: BUILDER_NAME,
            ours: self.is_ours(),
            command: self.is_ours().then(|| format!("docker buildx build --builder {BUILDER_NAME} .")),
            sentence: self.sentence(),
        }
    }

    /// The builder is ours and usable.
    pub fn is_ours(&self) -> bool {
        matches!(self, Self::Registered { .. } | Self::AlreadyRegistered { .. })
    }
}

/// The builder as the panel shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuilderView {
    /// Its name.
    pub name: &'static str,
    /// It builds on this backend.
    pub ours: bool,
    /// The line to copy, when it is ours.
    pub command: Option<String>,
    /// What was done, or why it is not ours.
    pub sentence: String,
}

/// The endpoint buildx is given for `backend` on `engine`; `None` when the engine was chosen by
/// its address, which the `docker-container://` helper cannot carry (it names a context).
pub fn endpoint_for(backend: &str, engine: &Endpoint) -> Option<String> {
    match engine.origin {
        Origin::HostFlag | Origin::DockerHost => None,
        Origin::ContextFlag | Origin::Pinned | Origin::DockerContext | Origin::CurrentContext | Origin::Default => {
            Some(format!("docker-container://{backend}?context={}", engine.context))
        }
    }
}

/// One builder as `docker buildx ls --format json` lists it (one JSON object per line).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedBuilder {
    name: String,
    #[serde(default)]
    driver: String,
    #[serde(default)]
    nodes: Vec<ListedNode>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedNode {
    #[serde(default)]
    name: String,
    #[serde(default)]
    endpoint: String,
}

/// What to do, from buildx's list of builders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// No builder of that name: create it.
    Create,
    /// Ours is there.
    Keep,
    /// Someone else's: leave it, and say where it points.
    LeaveForeign(String),
}

/// Decides from `docker buildx ls --format json`'s output. Lines that do not parse are skipped
/// (buildx prints warnings there too).
pub fn plan(listing: &str, ours: &str) -> Plan {
    let found = listing
        .lines()
        .filter_map(|line| serde_json::from_str::<ListedBuilder>(line.trim()).ok())
        .find(|builder| builder.name == BUILDER_NAME);
    match found {
        None => Plan::Create,
        Some(builder) => {
            let endpoints: Vec<&str> = builder.nodes.iter().map(|n| n.endpoint.as_str()).collect();
            // Our backend here, and any others only this backend's nodes (the same backend name on
            // other contexts, added by `nodes add`): a builder made only of ours stays ours.
            let all_ours = endpoints.contains(&ours) && endpoints.iter().all(|e| same_backend(e, ours));
            if builder.driver == "remote" && all_ours {
                Plan::Keep
            } else {
                let theirs = match endpoints.as_slice() {
                    [] => format!("the {} driver", builder.driver),
                    _ => endpoints.join(", "),
                };
                Plan::LeaveForeign(theirs)
            }
        }
    }
}

/// Whether `endpoint` names the same backend as `ours` (`docker-container://NAME?context=…`),
/// whatever its context: a node of ours on another engine.
fn same_backend(endpoint: &str, ours: &str) -> bool {
    let backend = |e: &str| {
        e.strip_prefix("docker-container://")
            .and_then(|rest| rest.split_once("?context="))
            .map(|(name, _)| name.to_string())
    };
    matches!((backend(endpoint), backend(ours)), (Some(theirs), Some(mine)) if theirs == mine)
}

/// The node name buildx is given for a node on the context `context`: buildx's node names take
/// letters, digits, `_`, `.` and `-`, a context's also `+`.
pub fn node_name(context: &str) -> String {
    context.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect()
}

/// Adds (or updates) the node `node` of the builder, on `endpoint` (see [`endpoint_for`]),
/// declared to build `platforms` (none: what its workers list). `config` is the docker config
/// folder the builder lives in. buildx's own sentence when it refuses.
pub async fn append_node(
    config: &std::path::Path,
    node: &str,
    endpoint: &str,
    platforms: &[String],
) -> Result<(), String> {
    let docker = Docker { config: config.to_path_buf() };
    let mut args = vec!["buildx", "create", "--append", "--name", BUILDER_NAME, "--node", node, "--driver", "remote"];
    let joined = platforms.join(",");
    if !platforms.is_empty() {
        args.extend(["--platform", joined.as_str()]);
    }
    args.push(endpoint);
    docker.run(&args).await.map(|_| ())
}

/// Takes the node `node` out of the builder (`buildx create --leave`); a builder or node that is
/// not there is not an error.
pub async fn leave_node(config: &std::path::Path, node: &str) -> Result<(), String> {
    let docker = Docker { config: config.to_path_buf() };
    let listing = docker.run(&["buildx", "ls", "--format", "json"]).await?;
    let present = listing
        .lines()
        .filter_map(|line| serde_json::from_str::<ListedBuilder>(line.trim()).ok())
        .any(|builder| builder.name == BUILDER_NAME && builder.nodes.iter().any(|n| n.name == node));
    if !present {
        return Ok(());
    }
    docker.run(&["buildx", "create", "--name", BUILDER_NAME, "--leave", "--node", node]).await.map(|_| ())
}

/// Registers the builder for `backend` on `engine` (see the module doc); `make_current` also makes
/// it docker's current builder. Never fails: the outcome says what happened.
pub async fn register(backend: &str, engine: &Endpoint, make_current: bool) -> BuilderRegistration {
    let Some(ours) = endpoint_for(backend, engine) else {
        return BuilderRegistration::NoContext { host: engine.host() };
    };
    let docker = Docker { config: engine.config.path().to_path_buf() };
    if let Err(reason) = docker.run(&["buildx", "version"]).await {
        return BuilderRegistration::BuildxMissing { reason };
    }
    let listing = match docker.run(&["buildx", "ls", "--format", "json"]).await {
        Ok(listing) => listing,
        Err(reason) => return BuilderRegistration::Failed { reason },
    };
    let created = match plan(&listing, &ours) {
        Plan::LeaveForeign(theirs) => return BuilderRegistration::Foreign { theirs, ours },
        Plan::Keep => false,
        Plan::Create => {
            match docker.run(&["buildx", "create", "--name", BUILDER_NAME, "--driver", "remote", &ours]).await {
                Ok(_) => true,
                // Another start (the app and the CLI at once) may have made it meanwhile: look again.
                Err(reason) => match docker.run(&["buildx", "ls", "--format", "json"]).await.map(|l| plan(&l, &ours)) {
                    Ok(Plan::Keep) => false,
                    Ok(Plan::LeaveForeign(theirs)) => return BuilderRegistration::Foreign { theirs, ours },
                    Ok(Plan::Create) | Err(_) => return BuilderRegistration::Failed { reason },
                },
            }
        }
    };
    if make_current {
        if let Err(reason) = docker.run(&["buildx", "use", BUILDER_NAME]).await {
            return BuilderRegistration::Failed { reason };
        }
    }
    if created {
        BuilderRegistration::Registered { endpoint: ours, current: make_current }
    } else {
        BuilderRegistration::AlreadyRegistered { endpoint: ours, current: make_current }
    }
}

/// The docker CLI, on the config folder the engine was resolved from (its contexts, its buildx).
struct Docker {
    config: PathBuf,
}

/// How long one docker CLI call may take (buildx answers from its own files).
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Docker {
    /// Runs `docker --config DIR ARGS`; its stdout, or a line saying why not.
    async fn run(&self, args: &[&str]) -> Result<String, String> {
        let mut command = tokio::process::Command::new("docker");
        command
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let output = match tokio::time::timeout(CALL_TIMEOUT, command.output()).await {
            Err(_) => return Err(format!("docker {} did not answer within {CALL_TIMEOUT:?}", args.join(" "))),
            Ok(Err(err)) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err("the docker command was not found".to_string())
            }
            Ok(Err(err)) => return Err(format!("docker could not be run: {err}")),
            Ok(Ok(output)) => output,
        };
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string();
        Err(format!("docker {} failed: {last}", args.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "docker-container://docker-assemble-backend-jane?context=default";

    #[test]
    fn a_missing_builder_is_created_ours_kept_and_anyone_elses_left() {
        let default = r#"{"Current":true,"Driver":"docker","Name":"default","Nodes":[{"Endpoint":"default"}]}"#;
        assert_eq!(plan(default, OURS), Plan::Create);
        assert_eq!(plan("", OURS), Plan::Create);
        let ours = format!(r#"{{"Driver":"remote","Name":"assemble","Nodes":[{{"Endpoint":"{OURS}"}}]}}"#);
        assert_eq!(plan(&format!("{default}\n{ours}\n"), OURS), Plan::Keep);
        let elsewhere = r#"{"Driver":"remote","Name":"assemble","Nodes":[{"Endpoint":"tcp://buildkit.example:1234"}]}"#;
        assert_eq!(plan(elsewhere, OURS), Plan::LeaveForeign("tcp://buildkit.example:1234".into()));
        let container_driver = r#"{"Driver":"docker-container","Name":"assemble","Nodes":[]}"#;
        assert_eq!(plan(container_driver, OURS), Plan::LeaveForeign("the docker-container driver".into()));
        // Another backend of ours (another user, another context) is not this one.
        let other_context = OURS.replace("context=default", "context=desktop-linux");
        let theirs = format!(r#"{{"Driver":"remote","Name":"assemble","Nodes":[{{"Endpoint":"{other_context}"}}]}}"#);
        assert_eq!(plan(&theirs, OURS), Plan::LeaveForeign(other_context));
    }

    #[test]
    fn a_builder_whose_other_nodes_are_this_backend_on_other_contexts_stays_ours() {
        let node = OURS.replace("context=default", "context=armbox");
        let two = format!(
            r#"{{"Driver":"remote","Name":"assemble","Nodes":[{{"Endpoint":"{OURS}"}},{{"Name":"armbox","Endpoint":"{node}"}}]}}"#
        );
        assert_eq!(plan(&two, OURS), Plan::Keep);
        // One node that is someone else's makes the whole builder someone else's.
        let mixed = format!(
            r#"{{"Driver":"remote","Name":"assemble","Nodes":[{{"Endpoint":"{OURS}"}},{{"Endpoint":"tcp://x:1"}}]}}"#
        );
        assert_eq!(plan(&mixed, OURS), Plan::LeaveForeign(format!("{OURS}, tcp://x:1")));
        let other_user = node.replace("backend-jane", "backend-joe");
        let theirs = format!(
            r#"{{"Driver":"remote","Name":"assemble","Nodes":[{{"Endpoint":"{OURS}"}},{{"Endpoint":"{other_user}"}}]}}"#
        );
        assert!(matches!(plan(&theirs, OURS), Plan::LeaveForeign(_)));
        assert_eq!(node_name("arm+box"), "arm-box");
    }

    #[test]
    fn warnings_between_the_json_lines_are_skipped() {
        let listing = format!(
            "WARNING: some builders could not be loaded\n{{\"Driver\":\"remote\",\"Name\":\"assemble\",\"Nodes\":[{{\"Endpoint\":\"{OURS}\"}}]}}"
        );
        assert_eq!(plan(&listing, OURS), Plan::Keep);
    }

    #[test]
    fn each_outcome_says_what_to_do() {
        let foreign = BuilderRegistration::Foreign { theirs: "tcp://x:1".into(), ours: OURS.into() };
        assert_eq!(
            foreign.sentence(),
            format!(
                "A buildx builder named \"assemble\" already exists for tcp://x:1, so it was left as it is; to build \
                 here, remove it (docker buildx rm assemble) and start again, or make one under another name: docker \
                 buildx create --name NAME --driver remote '{OURS}'"
            )
        );
        let made = BuilderRegistration::Registered { endpoint: OURS.into(), current: true };
        assert_eq!(
            made.sentence(),
            "Registered the buildx builder \"assemble\": docker buildx build --builder assemble . It is docker's \
             current builder now."
        );
        assert!(!foreign.is_ours() && made.is_ours());
    }
}
