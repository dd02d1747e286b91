//! What goes wrong with nodes (backends on other engines, joined to the `assemble` builder), each
//! worded once as one sentence that says what to do.

/// A node request refused, or a node that cannot be changed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// `nodes add` for a context that already is a node.
    #[error("the node {name:?} already exists (context {context:?}); remove it first with `assemble backend nodes rm {name}`")]
    AlreadyExists {
        /// The node's name.
        name: String,
        /// Its context.
        context: String,
    },

    /// `nodes add` without the node's context.
    #[error("give the node's engine as a docker context: assemble backend nodes add --context NAME (docker context ls lists them)")]
    NoContext,

    /// `nodes add` or `nodes rm` naming the local node: it is the backend itself.
    #[error(
        "{name:?} is the local node, the backend on the engine this command runs against; it is started and \
         stopped with `assemble backend start` and `assemble backend stop`, and cannot be added or removed as a node"
    )]
    Local {
        /// The name given.
        name: String,
    },

    /// `nodes add` for a context that reaches the engine the local backend is on.
    #[error(
        "the context {context:?} reaches the same engine as the local node ({host}), which already runs the \
         backend; give a context for another engine"
    )]
    SameEngine {
        /// The context given.
        context: String,
        /// The local engine's address.
        host: String,
    },

    /// `nodes rm` of a name that is no node.
    #[error("there is no node named {name:?}; the nodes are: {}", if known.is_empty() { "none besides the local one".to_string() } else { known.join(", ") })]
    Unknown {
        /// The name given.
        name: String,
        /// The nodes there are.
        known: Vec<String>,
    },

    /// A `--platform` value that is not a platform.
    #[error("{0:?} is not a platform: give os/arch[/variant], such as linux/arm64 or linux/arm/v7, comma-separated")]
    BadPlatform(String),

    /// The node's engine does not answer, so its containers cannot be removed.
    #[error(
        "the engine of node {name:?} does not answer ({reason}), so its containers could not be removed; start \
         that engine and run this again, or pass --force to forget the node and leave them"
    )]
    Unreachable {
        /// The node's name.
        name: String,
        /// Why it does not answer.
        reason: String,
    },

    /// A node chosen for part of a split build that cannot take it now.
    #[error(
        "the node {name:?} cannot take its share of the build ({reason}); start it with `assemble backend start` \
         (which starts every node), or remove it with `assemble backend nodes rm {name}`"
    )]
    NotReady {
        /// The node's name.
        name: String,
        /// Why not.
        reason: String,
    },

    /// `nodes add` on a local engine chosen by its address, which a builder cannot name.
    #[error(
        "nodes join the buildx builder \"assemble\", which names engines by context, and this engine was chosen \
         by its address ({host}); make a context for it (docker context create NAME --docker host={host}), use it, \
         and add the node again"
    )]
    LocalWithoutContext {
        /// The local engine's address.
        host: String,
    },

    /// `nodes add` for a context whose engine does not answer in time.
    #[error(
        "the engine of context {context:?} ({host}) did not answer within {seconds} s, so no node was added; start \
         that engine or check the context (docker context inspect {context}), then add it again"
    )]
    Silent {
        /// The context given.
        context: String,
        /// Its address.
        host: String,
        /// How long it was given.
        seconds: u64,
    },

    /// The local builder is someone else's, or buildx refused to add the node.
    #[error("the node {name:?} runs, but it could not be added to the buildx builder \"assemble\": {reason}")]
    Builder {
        /// The node's name.
        name: String,
        /// What buildx or the registration said.
        reason: String,
    },

    /// The node list could not be read or written.
    #[error("the node list {path} {problem}")]
    Store {
        /// The file.
        path: String,
        /// What went wrong ("cannot be read: …").
        problem: String,
    },
}
