//! Every failure the core reports, as a sentence that says what happened and what to do.
use std::path::{Path, PathBuf};

use crate::ports::PortError;

/// The result of every fallible call in the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core; its `Display` is the sentence the user sees.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Host ports that break the `--allow-host-port` rule.
    #[error("{0}")]
    InvalidPorts(#[from] PortError),

    /// A cache volume name docker would refuse.
    #[error("{0:?} is not a valid volume name: use letters, digits, '_', '.' or '-', starting with a letter or digit")]
    InvalidVolumeName(String),

    /// A blank image reference.
    #[error("the image reference is empty: give an image such as moby/buildkit:v0.25.1")]
    EmptyImage,

    /// The engine went away, in a sentence of its own (its event stream closed).
    #[error("{0}")]
    DockerUnavailable(String),

    /// The chosen engine cannot be reached: nothing listens, no permission, no answer, or not a Docker Engine.
    #[error("Cannot reach the Docker Engine at {host} ({place}): {reason}")]
    EngineUnreachable {
        /// The address tried, as docker prints it.
        host: String,
        /// The context that named it, and what chose that context.
        place: String,
        /// What went wrong and the way out.
        reason: String,
    },

    /// An engine address (`-H`, `DOCKER_HOST`, a context's host) that cannot be dialled.
    #[error("{address:?} is not a Docker Engine address: {reason}")]
    InvalidEngineAddress {
        /// The address as given.
        address: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// Both `--host` and `--context` were given.
    #[error("conflicting options: cannot specify both --host and --context (as in docker); give one of them")]
    ConflictingEngineOptions,

    /// No docker context has this name.
    #[error(
        "there is no docker context named {name:?}; the contexts are: {known}. Choose one with --context NAME, \
         or make one current with `docker context use NAME`",
        known = known.join(", ")
    )]
    UnknownContext {
        /// The name asked for.
        name: String,
        /// Every context there is, `default` first.
        known: Vec<String>,
    },

    /// A context whose `meta.json` cannot be read or makes no sense.
    #[error(
        "the docker context {name:?} cannot be used: {}: {reason}; fix the file, or remove the context with \
         `docker context rm {name}`",
        file.display()
    )]
    ContextUnreadable {
        /// The context's name.
        name: String,
        /// Its `meta.json`.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A context name docker would refuse (the settings' pinned context).
    #[error("{0:?} is not a docker context name: use letters, digits, '_', '.', '+' or '-', starting with a letter or digit")]
    InvalidContextName(String),

    /// A TLS file that is needed and does not exist.
    #[error(
        "the TLS {what} {} does not exist; put the engine's {} there, or point DOCKER_CERT_PATH (or {}) at the right file",
        path.display(), file_name(path), what.flag()
    )]
    TlsFileMissing {
        /// Which file.
        what: TlsFile,
        /// Where it should be.
        path: PathBuf,
    },

    /// A TLS file that is there but cannot be used (not PEM, or not what it should hold).
    #[error("the TLS {what} {} cannot be used: {reason}", path.display())]
    TlsFileInvalid {
        /// Which file.
        what: TlsFile,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// TLS could not be set up or spoken, in a sentence of its own.
    #[error("{0}")]
    Tls(String),

    /// The engine's certificate does not verify against the trusted CAs.
    #[error(
        "the Docker Engine at {host} presented a certificate that does not verify against {}: {problem}. \
         Check that DOCKER_CERT_PATH (or the context's TLS files) belong to this engine",
        trusted(ca)
    )]
    TlsUntrusted {
        /// The engine's address.
        host: String,
        /// The CA file trusted; `None` for the system's trusted CAs.
        ca: Option<PathBuf>,
        /// Why the certificate does not verify.
        problem: String,
    },

    /// The engine ended our TLS handshake with an alert, usually for want of a client certificate.
    #[error(
        "the Docker Engine at {host} refused our TLS connection ({alert}): it wants a client certificate it trusts; \
         put cert.pem and key.pem beside ca.pem (in DOCKER_CERT_PATH, or the context's TLS files)"
    )]
    TlsRefused {
        /// The engine's address.
        host: String,
        /// The TLS alert it sent.
        alert: String,
    },

    /// ssh to an `ssh://` engine failed.
    #[error("ssh to {host} failed ({status}): {last_line}")]
    Ssh {
        /// The engine's address.
        host: String,
        /// How ssh ended ("exit status 255").
        status: String,
        /// ssh's last line on stderr: the explanation.
        last_line: String,
    },

    /// The `ssh` command is not installed.
    #[error(
        "the ssh command was not found; install OpenSSH's client (for example `sudo apt-get install openssh-client`) \
         to reach ssh:// engines"
    )]
    SshMissing,

    /// A container we did not create holds the backend's or a sidecar's name.
    #[error(
        "a container named {name:?} exists but was not created by Assemble Backend, so it is left alone; \
         remove or rename it yourself (docker rm -f {name}) and try again"
    )]
    ForeignContainer {
        /// The container's name.
        name: String,
    },

    /// The image is not on the engine and could not be pulled.
    #[error(
        "image {image} is not present and could not be pulled ({reason}); load or build it locally, \
         or choose another with --image"
    )]
    ImageUnavailable {
        /// The image reference.
        image: String,
        /// Why the pull failed, in the engine's words.
        reason: String,
    },

    /// BuildKit did not answer within the ready timeout.
    #[error("the backend did not become ready within {seconds}s; its last log lines:\n{logs}")]
    NotReady {
        /// The timeout, in seconds.
        seconds: u64,
        /// The container's last log lines, indented.
        logs: String,
    },

    /// The backend container exited (or was restarted) before BuildKit was ready.
    #[error("the backend container {name:?} stopped while starting; its last log lines:\n{logs}")]
    BackendExited {
        /// The container's name.
        name: String,
        /// Its last log lines, indented.
        logs: String,
    },

    /// The engine refused to start the backend container, in the last security mode tried.
    #[error("the Docker Engine refused to start the backend container {name:?}: {reason}")]
    StartRefused {
        /// The container's name.
        name: String,
        /// The engine's message.
        reason: String,
    },

    /// A security mode we do not know.
    #[error("--security {0:?} is not a mode; give auto, capabilities or rootless")]
    InvalidSecurity(String),

    /// The engine's policy refused the privileged backend: never worked around.
    #[error(
        "the Docker Engine's policy refused a privileged container for the backend {name:?} ({reason}); Assemble \
         Backend does not work around a policy, so nothing was started. Ask the engine's administrator to allow it, \
         or start the backend in rootless mode where the policy allows that: docker assemble backend start --security \
         rootless"
    )]
    PrivilegedRefusedByPolicy {
        /// The backend container's name.
        name: String,
        /// The engine's (or its plugin's) words.
        reason: String,
    },

    /// The engine could not run the backend in rootless mode.
    #[error(
        "the Docker Engine cannot run the backend {name:?} in rootless mode: {reason}. Rootless BuildKit needs an \
         engine that lets a container make a user namespace (seccomp, AppArmor and the /proc masks unconfined, no \
         added capability) and a rootless image (moby/buildkit:…-rootless); start it in the default mode instead \
         (--security auto), or ask the engine's administrator to allow this"
    )]
    RootlessRefused {
        /// The backend container's name.
        name: String,
        /// What the engine said, or what the backend logged before it stopped.
        reason: String,
    },

    /// A new sidecar did not start relaying (it could not enter the engine's network namespace).
    #[error(
        "the sidecar {name:?} did not start relaying host port {port}{}; the engine must allow a container with the \
         host's PID namespace and the SYS_ADMIN, SYS_PTRACE, SETUID and SETGID capabilities (all dropped before it relays), \
         or start without host ports (--allow-host-port 0)",
        if logs.is_empty() { String::new() } else { format!(": {logs}") }
    )]
    SidecarNotReady {
        /// The sidecar's container name.
        name: String,
        /// The port it relays.
        port: u16,
        /// What it printed.
        logs: String,
    },

    /// The plugin's path holds a file that is not our link.
    #[error("{} is already there and is not our link; move it away, or pass --force to replace it", path.display())]
    PluginPathTaken {
        /// The path.
        path: PathBuf,
    },

    /// Neither `DOCKER_CONFIG` nor `HOME` is set, so there is no plugin folder.
    #[error("HOME is not set, so the Docker CLI plugin folder is unknown; set HOME or DOCKER_CONFIG")]
    HomeUnset,

    /// A build ref BuildKit does not know.
    #[error("there is no build {0:?} on the backend; `assemble backend builds` lists them")]
    UnknownBuild(String),

    /// A cache limit too small to build with.
    #[error("a cache limit of {0} is too small to build with; give at least 64MiB, such as 20GB")]
    CacheLimitTooSmall(String),

    /// A cache filter we do not know.
    #[error(
        "{filter:?} is not a cache filter; use until=DURATION (such as 24h) or type=TYPE, where TYPE is one of {types}"
    )]
    InvalidCacheFilter {
        /// The filter as typed.
        filter: String,
        /// The record types BuildKit knows, for the sentence.
        types: String,
    },

    /// A size that does not parse.
    #[error("{0:?} is not a size; give a number and a unit, such as 20GB or 500MiB")]
    InvalidSize(String),

    /// A `.dockerignore` line Docker would refuse.
    #[error("line {line} of {file}, {pattern:?}: {reason}; fix or remove that line")]
    InvalidIgnorePattern {
        /// The ignore file.
        file: String,
        /// Its number, from 1.
        line: usize,
        /// The line as written (trimmed).
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },

    /// `assemble build`'s folder does not exist or is not a folder.
    #[error("{path} is not a folder; give the folder to build (the build context), for example `assemble build .`")]
    ContextNotAFolder {
        /// The path given.
        path: String,
    },

    /// `-f` names a file that is not there.
    #[error("there is no Dockerfile at {path}; check the -f path (it is relative to where you run the command)")]
    DockerfileMissing {
        /// The path given.
        path: String,
    },

    /// A folder with neither a Dockerfile nor a project we can build without one.
    #[error(
        "{path} has no Dockerfile, and it is not a Spring Boot project (Maven or Gradle) or an ASP.NET Core project; \
         add a Dockerfile, or name one with -f"
    )]
    NothingToBuild {
        /// The folder.
        path: String,
    },

    /// A project file we found but could not read.
    #[error("could not read {path}: {reason}; check that you may read it")]
    ProjectUnreadable {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },

    /// An image reference Docker would refuse.
    #[error("{reference:?} is not a valid image name: {reason}; use a name like `localhost:5000/team/app:1.0`")]
    InvalidImageName {
        /// The name as given.
        reference: String,
        /// What is wrong.
        reason: String,
    },

    /// `--target` names a stage the Dockerfile does not have.
    #[error("the Dockerfile has no stage named {target:?} (its stages: {stages}); check --target")]
    UnknownTarget {
        /// The stage asked for.
        target: String,
        /// The stages there are, for the sentence.
        stages: String,
    },

    /// `--build-image` or `--runtime-image` for a folder with a Dockerfile.
    #[error(
        "--build-image and --runtime-image are for a project without a Dockerfile; this folder's Dockerfile names \
         its own images"
    )]
    BaseImageForADockerfile,

    /// `--push` with no image name.
    #[error("--push needs a name to push to; add one with -t, for example -t localhost:5000/app:1")]
    PushNeedsAName,

    /// A `--build-arg` without a key.
    #[error("--build-arg {arg:?} is not KEY=VALUE (or KEY, to take its value from the environment)")]
    InvalidBuildArg {
        /// The argument as given.
        arg: String,
    },

    /// A `--platform` that is not `os/arch[/variant]`.
    #[error("--platform {platform:?} is not os/arch[/variant]; write it like linux/amd64 or linux/arm64/v8")]
    InvalidPlatform {
        /// The platform as given.
        platform: String,
    },

    /// A file or folder in the context whose name BuildKit's transfer cannot carry.
    #[error(
        "{path} has a name that is not UTF-8, which BuildKit's file transfer cannot carry; rename it, or leave it \
         out with a line in .dockerignore"
    )]
    ContextNameNotUtf8 {
        /// The entry.
        path: std::path::PathBuf,
    },

    /// BuildKit ended the build with an error (a failing step, a missing base image).
    #[error("the build failed: {message}")]
    BuildFailed {
        /// BuildKit's message, and ours about the files when the transfer broke on our side.
        message: String,
    },

    /// The user interrupted the build; BuildKit was told to cancel it.
    #[error("the build was canceled")]
    BuildCanceled,

    /// The built image could not be loaded into the engine.
    #[error("the image was built but could not be loaded into the engine: {message}")]
    LoadFailed {
        /// What the engine, or the transfer, said.
        message: String,
    },

    /// A `--tail` value that is neither a number nor `all`.
    #[error("--tail {0:?} is not a number of lines; give a whole number or \"all\"")]
    InvalidTail(String),

    /// The app runs one start, stop or restart at a time.
    #[error("another start or stop is under way; wait for it to finish")]
    OperationUnderWay,

    /// The app is quitting: nothing new begins.
    #[error("Assemble Backend is quitting, so nothing new is started; open it again to go on")]
    Quitting,

    /// A purge that broke off after BuildKit had removed some records: not run again by itself.
    #[error(
        "the purge stopped after removing {removed} cache entries ({freed}): {cause}; run it again to remove the rest"
    )]
    PurgeInterrupted {
        /// Records removed before the break.
        removed: usize,
        /// Their size, as docker prints sizes.
        freed: String,
        /// What broke it.
        cause: Box<Error>,
    },

    /// The start was cancelled; what it had created was removed.
    #[error("the start was interrupted; everything it had created was removed")]
    Cancelled,

    /// A start failed (or was interrupted) and taking back what it had created failed too.
    #[error("{}{}", cause_before_cleanup(cause, Place::CommandLine), cleanup_sentence(failures, left))]
    RollbackIncomplete {
        /// Why the start did not complete.
        cause: Box<Error>,
        /// One sentence per object that could not be removed.
        failures: Vec<String>,
        /// What is left: containers and volumes, as `docker rm -f` / `docker volume rm` arguments.
        left: Vec<Leftover>,
    },

    /// Ports change live only on a running backend.
    #[error(
        "the backend is not running, so its ports cannot change live; start it with the ports you want: docker \
         assemble backend start --allow-host-port P"
    )]
    PortsNeedARunningBackend,

    /// A bad port given to `ports add` or `ports rm` (`verb`).
    #[error("{}", source.in_ports_command(verb))]
    InvalidPortChange {
        /// `add` or `rm`.
        verb: &'static str,
        /// What is wrong with it.
        source: crate::ports::PortError,
    },

    /// `ports rm` of a port that is not proxied.
    #[error("port {port} is not proxied, so there is nothing to remove; `docker assemble backend ports` lists the proxied ports")]
    PortNotProxied {
        /// The port.
        port: u16,
    },

    /// The port record in the backend container is not one we wrote.
    #[error("the port record {record} in {name} is damaged ({text:?}); stop the backend and start it again")]
    PortRecordDamaged {
        /// Where the record is.
        record: &'static str,
        /// The backend container.
        name: String,
        /// What the record holds.
        text: String,
    },

    /// A change of ports failed, and putting the old ports back failed too.
    #[error(
        "{first}; putting the old ports back failed too ({undo}); `docker assemble backend start` repairs the sidecars"
    )]
    PortChangeNotUndone {
        /// Why the change failed.
        first: Box<Error>,
        /// Why the undo failed.
        undo: Box<Error>,
    },

    /// The operation needs the backend, and it is not running.
    #[error("the backend is not running; start it with `docker assemble backend start`")]
    NotRunning,

    /// BuildKit could not be reached: the exec stream or the HTTP/2 connection failed.
    #[error("the backend is running but BuildKit does not answer: {0}")]
    Buildkit(String),

    /// BuildKit answered, and refused or failed the call; `code` is its gRPC status.
    #[error("BuildKit could not {call}: {message} (gRPC status {code:?})")]
    BuildkitStatus {
        /// What we asked for, as a verb phrase ("list its workers").
        call: &'static str,
        /// BuildKit's gRPC status code.
        code: tonic::Code,
        /// BuildKit's message.
        message: String,
        /// The call failed in transit (the connection broke), not in BuildKit.
        transport: bool,
    },

    /// Local images (backend/mirror): a registry in the settings' list that is not a registry host.
    #[error(
        "{0:?} cannot be a registry whose names are taken from the engine: give a registry host and an optional \
         port, such as registry.example.com or localhost:5000 (Docker Hub is always one)"
    )]
    InvalidLocalImageRegistry(String),

    /// The local-image mirror's image could not be made.
    #[error("could not prepare the local-image mirror's image: {0}")]
    MirrorImage(String),

    /// The mirror's store could not be given the engine's API (a repair says so; a start goes on
    /// without local images).
    #[error("local images are unavailable: {0}")]
    LocalImagesUnavailable(String),

    /// The mirror's front did not come up in the backend's network namespace.
    #[error(
        "the local-image mirror {name:?} did not start listening inside the backend{}; turn local images off \
         (--no-local-images, or in Settings) to start without them",
        if logs.is_empty() { String::new() } else { format!(": {logs}") }
    )]
    MirrorNotReady {
        /// The front's container name.
        name: String,
        /// What it printed.
        logs: String,
    },

    /// The sidecar image could not be packed or imported.
    #[error("could not prepare the sidecar proxy image: {0}")]
    ProxyImage(String),

    /// A request to the engine failed.
    #[error("{action}: {source}")]
    Docker {
        /// What we were doing ("creating container …").
        action: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },

    /// A local file or process operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What we were doing ("writing …").
        action: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Something a start created and could not remove again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// A container, by name or ID.
    Container(String),
    /// A volume, by name.
    Volume(String),
}

/// Why a start did not complete, said before its failed cleanup: an interruption's own sentence
/// would claim that everything was removed.
fn cause_before_cleanup(cause: &Error, place: Place) -> String {
    match cause {
        Error::Cancelled => "the start was interrupted".to_string(),
        other => other.sentence(place),
    }
}

/// What a failed cleanup adds after the cause, the same in every place.
fn cleanup_sentence(failures: &[String], left: &[Leftover]) -> String {
    format!(
        "; and removing what the start had created failed: {}. Remove what is left yourself: {}",
        failures.join("; "),
        leftover_commands(left)
    )
}

fn leftover_commands(left: &[Leftover]) -> String {
    let containers: Vec<&str> =
        left.iter().filter_map(|l| if let Leftover::Container(c) = l { Some(c.as_str()) } else { None }).collect();
    let volumes: Vec<&str> =
        left.iter().filter_map(|l| if let Leftover::Volume(v) = l { Some(v.as_str()) } else { None }).collect();
    let mut commands = Vec::new();
    if !containers.is_empty() {
        commands.push(format!("`docker rm -f {}`", containers.join(" ")));
    }
    if !volumes.is_empty() {
        commands.push(format!("`docker volume rm {}`", volumes.join(" ")));
    }
    commands.join(" and ")
}

/// The TLS files docker reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// `ca.pem`.
    Ca,
    /// `cert.pem`.
    ClientCertificate,
    /// `key.pem`.
    ClientKey,
}

impl TlsFile {
    /// The docker flag that names this file.
    pub fn flag(self) -> &'static str {
        match self {
            TlsFile::Ca => "--tlscacert",
            TlsFile::ClientCertificate => "--tlscert",
            TlsFile::ClientKey => "--tlskey",
        }
    }
}

impl std::fmt::Display for TlsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsFile::Ca => "CA certificate",
            TlsFile::ClientCertificate => "client certificate",
            TlsFile::ClientKey => "client key",
        })
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

fn trusted(ca: &Option<PathBuf>) -> String {
    match ca {
        Some(ca) => format!("the CA in {}", ca.display()),
        None => "the system's trusted CAs".to_string(),
    }
}

/// How the CLI chooses another engine (said when an engine does not answer), and how the app does:
/// its settings window, or docker's current context, which it follows.
pub(crate) const CHOOSE_ENGINE_CLI: &str = "(--context, -H, DOCKER_HOST or `docker context use`)";
const CHOOSE_ENGINE_APP: &str = "(in Settings, or with `docker context use`)";

/// Where a sentence is shown, so that its way out names what the reader can do there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The CLI: flags and commands.
    CommandLine,
    /// The app's windows and tray: buttons and the settings window, no flags.
    App,
}

impl Error {
    /// The sentence for `place`: the error's own text on the command line; in the app, the same
    /// facts with a way out in the app's terms where the text would name a flag.
    pub fn sentence(&self, place: Place) -> String {
        if place == Place::CommandLine {
            return self.to_string();
        }
        match self {
            Error::InvalidPorts(port) => port.in_settings(),
            Error::SidecarNotReady { name, port, logs } => format!(
                "the sidecar {name:?} did not start relaying host port {port}{}; the engine must allow a container \
                 with the host's PID namespace and the SYS_ADMIN, SYS_PTRACE, SETUID and SETGID capabilities (all \
                 dropped before it relays), or remove the host ports in Settings",
                if logs.is_empty() { String::new() } else { format!(": {logs}") }
            ),
            Error::ImageUnavailable { image, reason } => format!(
                "image {image} is not present and could not be pulled ({reason}); load or build it locally, or \
                 choose another image in Settings"
            ),
            Error::UnknownContext { name, known } => format!(
                "there is no docker context named {name:?}; the contexts are: {}. Choose one in Settings",
                known.join(", ")
            ),
            Error::NotRunning => "the backend is not running; start it with Start".to_string(),
            Error::InvalidSecurity(typed) => {
                format!("{typed:?} is not a mode; choose Automatic, Capabilities or Rootless")
            }
            Error::PrivilegedRefusedByPolicy { name, reason } => format!(
                "the Docker Engine's policy refused a privileged container for the backend {name:?} ({reason}); \
                 Assemble Backend does not work around a policy, so nothing was started. Ask the engine's \
                 administrator to allow it, or choose Rootless under Security in Settings where the policy allows that"
            ),
            Error::RootlessRefused { name, reason } => format!(
                "the Docker Engine cannot run the backend {name:?} in rootless mode: {reason}. Rootless BuildKit \
                 needs an engine that lets a container make a user namespace (seccomp, AppArmor and the /proc masks \
                 unconfined, no added capability) and a rootless image; choose Automatic under Security in Settings, \
                 or ask the engine's administrator to allow this"
            ),
            Error::EngineUnreachable { .. } => self.to_string().replace(CHOOSE_ENGINE_CLI, CHOOSE_ENGINE_APP),
            Error::RollbackIncomplete { cause, failures, left } => {
                cause_before_cleanup(cause, place) + &cleanup_sentence(failures, left)
            }
            other => other.to_string(),
        }
    }

    /// The settings field an error is about, so a form can show it next to that field.
    pub fn settings_field(&self) -> Option<&'static str> {
        match self {
            Error::InvalidPorts(_) => Some("ports"),
            Error::InvalidVolumeName(_) => Some("cache"),
            Error::EmptyImage => Some("image"),
            Error::InvalidContextName(_) => Some("context"),
            Error::InvalidSize(_) | Error::CacheLimitTooSmall(_) => Some("cache_limit"),
            Error::InvalidSecurity(_) => Some("security"),
            Error::InvalidLocalImageRegistry(_) => Some("local_image_registries"),
            _ => None,
        }
    }

    /// The engine could not be found or reached (as opposed to refusing a request).
    pub fn is_engine_unavailable(&self) -> bool {
        match self {
            Error::DockerUnavailable(_)
            | Error::EngineUnreachable { .. }
            | Error::InvalidEngineAddress { .. }
            | Error::ConflictingEngineOptions
            | Error::UnknownContext { .. }
            | Error::ContextUnreadable { .. }
            | Error::TlsFileMissing { .. }
            | Error::TlsFileInvalid { .. }
            | Error::Tls(_)
            | Error::TlsUntrusted { .. }
            | Error::TlsRefused { .. }
            | Error::Ssh { .. }
            | Error::SshMissing => true,
            Error::Docker { source, .. } => crate::failure::is_connection_failure(source),
            _ => false,
        }
    }

    /// A failure in reaching BuildKit, where trying again over a new connection may succeed; a
    /// refusal by BuildKit itself is final (retrying a failed purge would run it twice).
    pub fn is_buildkit_transport(&self) -> bool {
        match self {
            Error::Buildkit(_) => true,
            Error::BuildkitStatus { transport, .. } => *transport,
            _ => false,
        }
    }

    pub(crate) fn docker(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Error {
        let action = action.into();
        move |source| Error::Docker { action, source }
    }

    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let action = action.into();
        move |source| Error::Io { action, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_hears_the_way_out_in_its_own_terms() {
        let ports = Error::InvalidPorts(PortError::OutOfRange("70000".into()));
        assert_eq!(
            ports.sentence(Place::CommandLine),
            "--allow-host-port 70000 is out of range; ports go from 1 to 65535 (0 alone means no ports)"
        );
        assert_eq!(ports.sentence(Place::App), "70000 is out of range; ports go from 1 to 65535");
        let image = Error::ImageUnavailable { image: "x:1".into(), reason: "no registry".into() };
        assert!(image.sentence(Place::CommandLine).ends_with("or choose another with --image"));
        assert!(image.sentence(Place::App).ends_with("or choose another image in Settings"));
        assert_eq!(Error::NotRunning.sentence(Place::App), "the backend is not running; start it with Start");
        // Nothing the app shows names a flag.
        for error in [
            ports,
            image,
            Error::SidecarNotReady { name: "b".into(), port: 5000, logs: String::new() },
            Error::NotRunning,
            Error::InvalidSecurity("x".into()),
            Error::PrivilegedRefusedByPolicy { name: "b".into(), reason: "authorization denied by plugin p".into() },
            Error::RootlessRefused { name: "b".into(), reason: "no user namespace".into() },
        ] {
            assert!(!error.sentence(Place::App).contains("--"), "{}", error.sentence(Place::App));
        }
    }

    #[test]
    fn a_cleanup_that_failed_is_told_with_what_is_left_and_how_to_remove_it() {
        let error = Error::RollbackIncomplete {
            cause: Box::new(Error::ImageUnavailable { image: "x:1".into(), reason: "no registry".into() }),
            failures: vec!["could not remove volume cache-v (volume is in use)".into()],
            left: vec![Leftover::Container("proxy-5000".into()), Leftover::Volume("cache-v".into())],
        };
        assert_eq!(
            error.to_string(),
            "image x:1 is not present and could not be pulled (no registry); load or build it locally, or choose \
             another with --image; and removing what the start had created failed: could not remove volume cache-v \
             (volume is in use). Remove what is left yourself: `docker rm -f proxy-5000` and `docker volume rm cache-v`"
        );
        let in_app = error.sentence(Place::App);
        assert!(
            in_app.starts_with(
                "image x:1 is not present and could not be pulled (no registry); load or build it \
             locally, or choose another image in Settings; and removing what the start had created failed"
            ),
            "{in_app}"
        );
        assert!(in_app.ends_with("`docker volume rm cache-v`"), "{in_app}");
    }

    #[test]
    fn only_a_broken_connection_to_buildkit_is_worth_a_new_one() {
        let refused = Error::BuildkitStatus {
            call: "purge its cache",
            code: tonic::Code::Internal,
            message: "boom".into(),
            transport: false,
        };
        assert!(!refused.is_buildkit_transport());
        assert_eq!(refused.to_string(), "BuildKit could not purge its cache: boom (gRPC status Internal)");
        assert!(Error::Buildkit("the exec stream was detached".into()).is_buildkit_transport());
        assert!(!Error::NotRunning.is_buildkit_transport());
        // A purge that removed some records before the break is not run again.
        let interrupted = Error::PurgeInterrupted {
            removed: 3,
            freed: "2.5MB".into(),
            cause: Box::new(Error::Buildkit("connection reset".into())),
        };
        assert!(!interrupted.is_buildkit_transport());
        assert_eq!(
            interrupted.to_string(),
            "the purge stopped after removing 3 cache entries (2.5MB): the backend is running but BuildKit does not \
             answer: connection reset; run it again to remove the rest"
        );
    }
}
