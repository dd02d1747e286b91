//! The command line, word for word as the original `docker assemble backend …`, with docker's own
//! global options for choosing the engine.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "assemble", version, about = "Run and manage a personal BuildKit backend on a Docker Engine")]
pub struct Cli {
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// docker's global options, with docker's meaning. In plugin mode docker passes them through.
#[derive(Args, Debug, Default)]
pub struct EngineArgs {
    /// Name of the docker context to use (overrides DOCKER_HOST and `docker context use`)
    #[arg(short = 'c', long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Docker Engine to connect to (unix:///path, tcp://host:port or ssh://[user@]host)
    #[arg(short = 'H', long, global = true, value_name = "HOST")]
    pub host: Option<String>,
    /// Location of docker's client config files (default: $DOCKER_CONFIG, else ~/.docker)
    #[arg(long, global = true, value_name = "DIR")]
    pub config: Option<PathBuf>,
    /// Use TLS; implied by --tlsverify
    #[arg(long, global = true)]
    pub tls: bool,
    /// Use TLS and verify the remote
    #[arg(long, global = true)]
    pub tlsverify: bool,
    /// Trust certs signed only by this CA (default: ca.pem in $DOCKER_CERT_PATH)
    #[arg(long, global = true, value_name = "FILE")]
    pub tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file (default: cert.pem in $DOCKER_CERT_PATH)
    #[arg(long, global = true, value_name = "FILE")]
    pub tlscert: Option<PathBuf>,
    /// Path to TLS key file (default: key.pem in $DOCKER_CERT_PATH)
    #[arg(long, global = true, value_name = "FILE")]
    pub tlskey: Option<PathBuf>,
    /// Accepted because docker passes it to plugins; it changes nothing here
    #[arg(short = 'D', long, global = true, hide = true)]
    pub debug: bool,
    /// Accepted because docker passes it to plugins; it changes nothing here
    #[arg(short = 'l', long = "log-level", global = true, hide = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Manage the build backend
    #[command(subcommand)]
    Backend(BackendCommand),
    /// Build a folder on the backend: its Dockerfile, or a Spring Boot or ASP.NET Core project
    /// without one (--dry-run prints the plan)
    Build(Box<BuildArgs>),
    /// Install this binary as the Docker CLI plugin `docker assemble`
    InstallPlugin {
        /// Replace a file at the plugin path even if it is not our link
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The build context: a folder, a git or HTTP(S) URL (the backend fetches it), or - (standard input: a tar of the context, or a Dockerfile and no context)
    #[arg(default_value = ".", value_name = "PATH")]
    pub path: std::path::PathBuf,
    /// The Dockerfile (default: PATH/Dockerfile; without one, a project we know gets one written; - reads it from standard input)
    #[arg(short = 'f', long = "file", value_name = "DOCKERFILE")]
    pub file: Option<std::path::PathBuf>,
    /// An image name, such as localhost:5000/app:1 (repeat for more)
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// The image's name without its tag, in place of the project's (the project's version stays the tag)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Push the image to its registry
    #[arg(long)]
    pub push: bool,
    /// Load the image into the engine the backend runs on
    #[arg(long)]
    pub load: bool,
    /// A build argument, KEY=VALUE (or KEY, from the environment); repeat for more
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// The stage to build
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// The platform(s) to build for, os/arch[/variant], comma-separated
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Do not use the cache
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// How to show progress
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Progress,
    /// Print what would be built (the kind, the Dockerfile, the names, the context) and stop
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// The build stage's image of a generated Dockerfile (Maven, Gradle or the .NET SDK)
    #[arg(long = "build-image", value_name = "IMAGE")]
    pub build_image: Option<String>,
    /// The runtime image of a generated Dockerfile (a Java runtime, or ASP.NET Core's)
    #[arg(long = "runtime-image", value_name = "IMAGE")]
    pub runtime_image: Option<String>,
    #[command(flatten)]
    pub session: crate::session_args::SessionArgs,
    #[command(flatten)]
    pub solve: crate::build_flags::SolveFlags,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    Auto,
    Tty,
    Plain,
    Rawjson,
    /// No progress; the image ID on stdout (as -q)
    Quiet,
    /// No progress and no image ID
    None,
}

#[derive(Subcommand, Debug)]
pub enum BackendCommand {
    /// Start the backend (pulling its image if needed) and its host-port sidecars
    Start(StartArgs),
    /// Remove the backend and its sidecars; cache volumes are kept
    Stop,
    /// Describe the backend: container, image, sidecars, workers and cache
    Info(FormatArgs),
    /// Show the backend's logs
    Logs(LogsArgs),
    /// List the builds BuildKit remembers (any client's), newest first; `builds logs REF` shows one
    Builds(BuildsArgs),
    /// List the host ports the backend proxies; `ports add`/`ports rm` change them live
    Ports(PortsArgs),
    /// Inspect or clean the build cache
    #[command(subcommand)]
    Cache(CacheCommand),
    /// The backend on other engines (docker contexts), as nodes of the `assemble` buildx builder
    #[command(subcommand)]
    Nodes(NodesCommand),
}

#[derive(Subcommand, Debug)]
pub enum NodesCommand {
    /// Start the backend on the engine a docker context reaches (`--context NAME`, required here:
    /// it names the node's engine, not this command's) and add it to the builder
    Add {
        /// Platforms buildx sends to this node first, comma-separated (linux/arm64,linux/arm/v7)
        #[arg(long, value_name = "PLATFORMS")]
        platform: Vec<String>,
    },
    /// Take a node out of the builder and remove its containers and its cache volume
    Rm {
        /// The node's name (`nodes ls` lists them)
        name: String,
        /// Keep the node's cache volume, as `docker buildx rm --keep-state`
        #[arg(long)]
        keep_state: bool,
        /// Forget a node whose engine does not answer, leaving whatever runs there
        #[arg(long)]
        force: bool,
    },
    /// List the nodes: each one's engine, state and platforms
    Ls(FormatArgs),
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PortsArgs {
    #[command(subcommand)]
    pub command: Option<PortsCommand>,
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Subcommand, Debug)]
pub enum PortsCommand {
    /// Also proxy these host ports, live: same backend, same cache, no restart
    Add {
        /// Ports, repeated or comma-separated (`6000`, `6000,7000`)
        #[arg(value_name = "PORT", required = true, allow_hyphen_values = true)]
        ports: Vec<String>,
    },
    /// Stop proxying these host ports, live
    Rm {
        /// Ports, repeated or comma-separated; each must be proxied now
        #[arg(value_name = "PORT", required = true, allow_hyphen_values = true)]
        ports: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Host port to make reachable as localhost:PORT inside the backend; repeat it or give a
    /// comma-separated list. Default 5000; 0 alone means none.
    #[arg(long = "allow-host-port", value_name = "PORT", allow_hyphen_values = true)]
    pub allow_host_port: Vec<String>,
    /// Named volume for the build cache (default: docker-assemble-backend-cache-<user> if it exists)
    #[arg(long = "cache-volume", value_name = "NAME")]
    pub cache_volume: Option<String>,
    /// BuildKit image to run (default: $ASSEMBLE_BACKEND_IMAGE, else the pinned moby/buildkit)
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// The most the build cache may use (`20GB`, `500MiB`): BuildKit's GC keeps it below
    #[arg(long = "cache-limit", value_name = "SIZE")]
    pub cache_limit: Option<String>,
    /// How BuildKit is granted its powers: auto (--privileged, or all capabilities but
    /// SYS_RESOURCE where the engine's runtime cannot apply them), capabilities, or rootless
    /// (BuildKit's rootless mode: a user namespace, no added capability; default image
    /// moby/buildkit:v0.25.1-rootless)
    #[arg(long = "security", value_name = "MODE")]
    pub security: Option<String>,
    /// Let builds use --network host (BuildKit's network.host entitlement); off unless asked
    #[arg(long = "allow-network-host")]
    pub allow_network_host: bool,
    /// Builds on this backend take base images from registries only: a FROM of an image the
    /// engine has is not taken from the engine (default: local images are used, as docker build
    /// does; the settings' `local_images` turns them off for good)
    #[arg(long = "no-local-images")]
    pub no_local_images: bool,
    /// Also make the buildx builder "assemble" docker's current builder (`docker buildx use`)
    #[arg(long = "use")]
    pub use_builder: bool,
    /// Seconds to wait for BuildKit to answer
    #[arg(long = "ready-timeout", value_name = "SECONDS", default_value_t = assemble_core::backend::request::DEFAULT_READY_TIMEOUT.as_secs())]
    pub ready_timeout: u64,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BuildsArgs {
    #[command(subcommand)]
    pub command: Option<BuildsCommand>,
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Subcommand, Debug)]
pub enum BuildsCommand {
    /// A build's steps and their output, as `--progress plain` shows them, with the error at the end
    Logs {
        /// The build's ref (as `builds` lists it; buildx's `builder/node/ref` works too)
        #[arg(value_name = "REF")]
        reference: String,
    },
}

#[derive(Args, Debug)]
pub struct FormatArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct UsageArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    /// Only these records: until=DURATION (unused for that long, such as 24h) or type=TYPE
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PurgeArgs {
    /// Also BuildKit's internal and frontend records
    #[arg(short, long)]
    pub all: bool,
    /// Leave this much cache (such as 10GB)
    #[arg(long = "keep-storage", value_name = "SIZE")]
    pub keep_storage: Option<String>,
    /// Only these records: until=DURATION (unused for that long, such as 24h) or type=TYPE
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for every line)
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// List the build cache records and totals
    Usage(UsageArgs),
    /// Remove the build cache records not in use (as `docker buildx prune`) and show what was freed
    Purge(PurgeArgs),
}
