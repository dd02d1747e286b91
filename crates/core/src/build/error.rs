//! What goes wrong in planning and running a build (`assemble build`, the Build window), each
//! worded once; the way out is a [`Remedy`], worded by the place that shows it, and
//! [`BuildError::form_field`] is the Build window's field an error is about.
use crate::error::{Input, Place, Remedy};
use crate::reference::ReferenceError;

/// A build that cannot be planned, or that failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The folder to build does not exist or is not a folder.
    #[error("{}", self.sentence(Place::CommandLine))]
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

    /// `-` as PATH and `-f -` together: standard input cannot be both.
    #[error(
        "standard input can be the build context (PATH -) or the Dockerfile (-f -), not both; give a folder as PATH, \
         or a file to -f"
    )]
    StdinTwice,

    /// `-` or `-f -` with nothing to read on standard input.
    #[error("{flag} reads standard input, but {why}; pipe it in, for example: {example}")]
    StdinEmpty {
        /// `PATH -` or `-f -`.
        flag: &'static str,
        /// What standard input was.
        why: &'static str,
        /// A command that works.
        example: &'static str,
    },

    /// A Dockerfile on standard input (PATH `-`) while `-f` names another.
    #[error(
        "standard input holds a Dockerfile and -f names another; drop -f, or give a folder (or a tar on standard \
         input) as the context"
    )]
    TwoDockerfiles,

    /// A Dockerfile on standard input that is not text.
    #[error("the Dockerfile on standard input is not UTF-8 text; pipe in a Dockerfile, or a tar of the context")]
    StdinNotText,

    /// A tar on standard input (PATH `-`) that could not be unpacked.
    #[error("the tar on standard input could not be unpacked ({reason}); check the archive (tar -tf FILE)")]
    StdinTarUnreadable {
        /// Why.
        reason: String,
    },

    /// A `--call` value that is not one buildx takes.
    #[error("--call {value:?} {reason}")]
    InvalidCall {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// `--call` (or `--check`) with an output: a call builds nothing.
    #[error("--call {call} asks the Dockerfile frontend a question and builds nothing, so it has no image to {what}; drop {what_flag}")]
    CallWithOutput {
        /// The question.
        call: &'static str,
        /// What the output would do.
        what: &'static str,
        /// The flags to drop.
        what_flag: &'static str,
    },

    /// The Dockerfile check could not read the Dockerfile.
    #[error("the Dockerfile check could not read the Dockerfile: {message}")]
    CheckFailed {
        /// The frontend's message and the place.
        message: String,
    },

    /// A `--call` whose answer fails the command (a check that found warnings), printed above.
    #[error("--call {call} answered with status {status} (above); add ignorestatus=true to --call to succeed anyway")]
    CallStatus {
        /// The question.
        call: &'static str,
        /// The frontend's status.
        status: i32,
    },

    /// A folder with neither a Dockerfile nor a project we can build without one.
    #[error("{}", self.sentence(Place::CommandLine))]
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

    /// A name to give the built image (`-t`, `--name`, the Build window's Names) that Docker would refuse.
    #[error(transparent)]
    InvalidName(ReferenceError),

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

    /// A push with no image name.
    #[error("{}", self.sentence(Place::CommandLine))]
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

    /// A load of several platforms: the engine's image store takes one image, not an index
    /// (buildx's sentence, then the ways out).
    #[error("{}", self.sentence(Place::CommandLine))]
    LoadOfSeveralPlatforms {
        /// The platforms asked for.
        platforms: String,
    },

    /// A `--cache-from`/`--cache-to` value that cannot be used; `reason` ends the sentence.
    #[error("{flag} {value:?} {reason}")]
    InvalidCache {
        /// The flag.
        flag: &'static str,
        /// The value as typed.
        value: String,
        /// Why, with the way out.
        reason: String,
    },

    /// A `--label` without a key.
    #[error("--label {label:?} has no key; write it as KEY=VALUE (or KEY, for an empty value)")]
    InvalidLabel {
        /// The label as typed.
        label: String,
    },

    /// A `--provenance` or `--sbom` value that cannot be used.
    #[error("{flag} {value:?} {reason}")]
    InvalidAttestation {
        /// The flag.
        flag: &'static str,
        /// The value as typed.
        value: String,
        /// Why, with the way out.
        reason: String,
    },

    /// A bad `--shm-size`, `--ulimit` or `--annotation` (build/step_options.rs).
    #[error("{flag} {value:?} {reason}")]
    InvalidStepOption {
        /// The flag.
        flag: &'static str,
        /// The value as typed.
        value: String,
        /// What is wrong, and the form it takes.
        reason: String,
    },

    /// A `--network` BuildKit does not have.
    #[error("--network {mode:?} is not a network BuildKit has; use default, none or host")]
    InvalidNetwork {
        /// The mode as typed.
        mode: String,
    },

    /// A bad `--add-host`.
    #[error("--add-host {host:?} {reason}")]
    InvalidAddHost {
        /// The value as typed.
        host: String,
        /// Why, with the way out.
        reason: String,
    },

    /// A bad `--build-context`.
    #[error("--build-context {value:?} {reason}")]
    InvalidBuildContext {
        /// The value as typed.
        value: String,
        /// Why, with the way out.
        reason: String,
    },

    /// `--network host` on a backend not started with the `network.host` grant.
    #[error(
        "--network host needs the backend to allow it, and this backend was started without that; restart it \
         with `assemble backend start --allow-network-host` (or set allow_network_host in the settings)"
    )]
    NetworkHostNotAllowed,

    /// `--sbom` on a backend that cannot pull the scanner image.
    #[error(
        "--sbom runs the scanner image {scanner}, and the backend could not pull it ({message}); let the backend \
         reach its registry, or name a scanner it can pull with --sbom generator=IMAGE"
    )]
    SbomScannerUnavailable {
        /// The scanner image.
        scanner: String,
        /// BuildKit's message.
        message: String,
    },

    /// `--iidfile` or `--metadata-file` could not be written.
    #[error("{flag} could not be written to {path}: {reason}; check the folder exists and you may write there")]
    WriteResultFile {
        /// The flag.
        flag: &'static str,
        /// The file.
        path: String,
        /// What the system said.
        reason: String,
    },

    /// BuildKit ended the build with an error (a failing step, a missing base image).
    #[error("the build failed: {message}")]
    Failed {
        /// BuildKit's message, and ours about the files when the transfer broke on our side.
        message: String,
    },

    /// One node of a build split across nodes failed; the others were canceled.
    #[error("the build failed on the node {node:?} ({platforms}): {message}; the other nodes' builds were canceled")]
    NodeFailed {
        /// The node's name.
        node: String,
        /// The platforms it built, comma-separated.
        platforms: String,
        /// Its error (BuildKit's message, with the failing step).
        message: String,
    },

    /// The nodes pushed their parts, and the image index joining them could not be made or pushed.
    #[error("the nodes pushed their images, but the image index for {name} could not be {doing}: {message}; check that the registry answers and that you may push to it (docker login)")]
    IndexFailed {
        /// The image name.
        name: String,
        /// `read`, `pushed`.
        doing: &'static str,
        /// What the registry (or the reading) said.
        message: String,
    },

    /// The user interrupted the build; BuildKit was told to cancel it.
    #[error("the build was canceled")]
    Canceled,

    /// The built image could not be loaded into the engine.
    #[error("the image was built but could not be loaded into the engine: {message}")]
    LoadFailed {
        /// What the engine, or the transfer, said.
        message: String,
    },

    /// A `--secret` that is not buildx's `id=ID[,src=FILE|,env=VAR][,type=file|env]`.
    #[error("--secret {given:?}: {reason}; write it as id=ID,src=FILE or id=ID,env=VARIABLE")]
    InvalidSecret {
        /// The value as given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A secret's file that is not there or cannot be read.
    #[error("--secret {id}: cannot read {path} ({reason}); check the src path (it is relative to where you run the command)")]
    SecretUnreadable {
        /// The secret's ID.
        id: String,
        /// The file as given.
        path: String,
        /// Why.
        reason: String,
    },

    /// A secret's file larger than BuildKit takes.
    #[error(
        "--secret {id} is {size} bytes, more than BuildKit takes (500 KiB, 512000 bytes); pass a smaller file (a \
         token, a config), not a bundle"
    )]
    SecretTooBig {
        /// The secret's ID.
        id: String,
        /// Its size in bytes.
        size: u64,
    },

    /// The same secret ID twice.
    #[error("--secret id={id} is given twice; give each secret its own id")]
    DuplicateSecret {
        /// The ID.
        id: String,
    },

    /// The same ssh ID twice.
    #[error("--ssh {id} is given twice; give each agent or key set its own id")]
    DuplicateSsh {
        /// The ID.
        id: String,
    },

    /// `--ssh ID` with no path and no agent in the environment.
    #[error(
        "--ssh {id} needs a running ssh-agent, and SSH_AUTH_SOCK is not set; start one and add your key \
         (eval \"$(ssh-agent)\" && ssh-add), or name a key file: --ssh {id}=$HOME/.ssh/id_ed25519"
    )]
    NoSshAgent {
        /// The ID.
        id: String,
    },

    /// A socket or key file for `--ssh` that is not there or is neither.
    #[error("--ssh {id}: {path} cannot be used ({reason}); name a running ssh-agent's socket or a private key file")]
    SshPathUnusable {
        /// The ID.
        id: String,
        /// The path (SSH_AUTH_SOCK's when none was given).
        path: String,
        /// Why.
        reason: String,
    },

    /// Paths for one ssh ID that do not go together.
    #[error("--ssh {id}: {reason}")]
    InvalidSsh {
        /// The ID.
        id: String,
        /// What is wrong.
        reason: String,
    },

    /// The key files of `--ssh` could not be served (ssh-agent or ssh-add refused).
    #[error("--ssh: {message}")]
    SshKeys {
        /// What went wrong, with the way out.
        message: String,
    },

    /// An `-o/--output` buildx would refuse.
    #[error("--output {given:?}: {reason}")]
    InvalidOutput {
        /// The value as given.
        given: String,
        /// What is wrong, with the way out.
        reason: String,
    },

    /// A `--secret` (or a secret row of the Build window) without an id.
    #[error("--secret {given:?}: it has no id; write it as id=ID,src=FILE or id=ID,env=VARIABLE")]
    SecretWithoutId {
        /// The value as given.
        given: String,
    },

    /// A secret row of the Build window with an id and no file.
    #[error("--secret {id} has no file; give it as id={id},src=FILE")]
    SecretWithoutFile {
        /// The secret's ID.
        id: String,
    },

    /// A cache ref (the Build window's Cache to or Cache from) that is not an image name.
    #[error("{flag} {error}")]
    InvalidCacheRef {
        /// The flag it stands for.
        flag: &'static str,
        /// What is wrong with the ref.
        error: ReferenceError,
    },

    /// The Build window's output folder, which cannot take the result's files.
    #[error("-o type=local,dest={path}: {reason}; give a folder you may write to")]
    OutputFolderUnusable {
        /// The folder as given.
        path: String,
        /// Why.
        reason: String,
    },

    /// The build's files could not be written where `-o` says.
    #[error("the build's output could not be written: {message}")]
    OutputFailed {
        /// What went wrong.
        message: String,
    },
}

impl BuildError {
    /// The sentence for `place`, its way out in that place's terms.
    pub fn sentence(&self, place: Place) -> String {
        match self {
            BuildError::ContextNotAFolder { path } => {
                format!("{path} is not a folder; {}", Remedy::ChooseBuildFolder.words(place))
            }
            BuildError::NothingToBuild { path } => format!(
                "{path} has no Dockerfile, and it is not a Spring Boot project (Maven or Gradle) or an ASP.NET Core \
                 project; {}",
                Remedy::AddDockerfile.words(place)
            ),
            BuildError::PushNeedsAName => format!(
                "{} needs an image name to push to; {}",
                Input::Push.words(place),
                Remedy::NameTheImage.words(place)
            ),
            BuildError::LoadOfSeveralPlatforms { platforms } => format!(
                "docker exporter does not currently support exporting manifest lists: {} takes one platform (asked: \
                 {platforms}); {}",
                Input::Load.words(place),
                Remedy::PushOrOnePlatform.words(place)
            ),
            // In the app these stand beside their own field, so they name the value, not a flag.
            BuildError::SecretWithoutId { .. } if place == Place::App => {
                "This secret has no id; type the id that the Dockerfile's RUN --mount=type=secret,id=ID names".into()
            }
            BuildError::SecretWithoutFile { id } if place == Place::App => {
                format!("Secret {id} has no file; choose its file with Choose file…")
            }
            BuildError::SecretUnreadable { path, reason, .. } if place == Place::App => {
                format!("Cannot read {path} ({reason}); choose the secret's file again")
            }
            BuildError::SecretTooBig { size, .. } if place == Place::App => format!(
                "This file is {size} bytes, more than BuildKit takes for a secret (500 KiB, 512000 bytes); choose a \
                 smaller file (a token, a config), not a bundle"
            ),
            BuildError::DuplicateSecret { id } if place == Place::App => {
                format!("The id {id} is given twice; give each secret its own id")
            }
            BuildError::NoSshAgent { .. } if place == Place::App => "SSH forwarding needs a running ssh-agent, and \
                 the app sees no SSH_AUTH_SOCK; start one and add your key (eval \"$(ssh-agent)\" && ssh-add) in the \
                 session that starts the app, or turn SSH forwarding off"
                .into(),
            BuildError::SshPathUnusable { path, reason, .. } if place == Place::App => format!(
                "SSH forwarding uses the ssh-agent at {path} (SSH_AUTH_SOCK), which cannot be used ({reason}); start \
                 the agent and add your key (ssh-add), or turn SSH forwarding off"
            ),
            BuildError::InvalidCacheRef { error, .. } if place == Place::App => error.to_string(),
            BuildError::InvalidOutput { reason, .. } if place == Place::App => capitalized(reason),
            BuildError::OutputFolderUnusable { path, reason } if place == Place::App => {
                format!("The output folder {path} cannot be used: {reason}; choose a folder you may write to")
            }
            other => other.to_string(),
        }
    }

    /// The Build window's field an error is about (`folder`, `names`), so it shows beside it.
    pub fn form_field(&self) -> Option<&'static str> {
        match self {
            BuildError::ContextNotAFolder { .. }
            | BuildError::DockerfileMissing { .. }
            | BuildError::NothingToBuild { .. } => Some("folder"),
            BuildError::InvalidName(_) | BuildError::PushNeedsAName => Some("names"),
            BuildError::InvalidPlatform { .. } | BuildError::LoadOfSeveralPlatforms { .. } => Some("platforms"),
            BuildError::InvalidSecret { .. }
            | BuildError::SecretUnreadable { .. }
            | BuildError::SecretTooBig { .. }
            | BuildError::DuplicateSecret { .. }
            | BuildError::SecretWithoutId { .. }
            | BuildError::SecretWithoutFile { .. } => Some("secrets"),
            BuildError::DuplicateSsh { .. }
            | BuildError::NoSshAgent { .. }
            | BuildError::SshPathUnusable { .. }
            | BuildError::InvalidSsh { .. } => Some("ssh"),
            BuildError::InvalidOutput { .. } | BuildError::OutputFolderUnusable { .. } => Some("output"),
            BuildError::InvalidCache { flag: "--cache-to", .. }
            | BuildError::InvalidCacheRef { flag: "--cache-to", .. } => Some("cache_to"),
            BuildError::InvalidCache { .. } | BuildError::InvalidCacheRef { .. } => Some("cache_from"),
            _ => None,
        }
    }
}

/// `text` with its first letter upper-case (a sentence that stands alone beside its field).
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_window_hears_the_same_facts_with_its_own_way_out_beside_the_field() {
        let folder = BuildError::ContextNotAFolder { path: "/nope".into() };
        assert_eq!(
            folder.to_string(),
            "/nope is not a folder; give the folder to build (the build context), for example `assemble build .`"
        );
        assert_eq!(
            folder.sentence(Place::App),
            "/nope is not a folder; choose the folder to build (the build context)"
        );
        assert_eq!(folder.form_field(), Some("folder"));
        let nothing = BuildError::NothingToBuild { path: "/src".into() };
        assert!(nothing.to_string().ends_with("project; add a Dockerfile, or name one with -f"), "{nothing}");
        assert!(nothing.sentence(Place::App).ends_with("project; add a Dockerfile to it"));
        assert_eq!(
            BuildError::PushNeedsAName.to_string(),
            "--push needs an image name to push to; add one with -t, for example -t localhost:5000/app:1"
        );
        assert_eq!(
            BuildError::PushNeedsAName.sentence(Place::App),
            "Push needs an image name to push to; type one in Names, for example localhost:5000/app:1"
        );
        assert_eq!(BuildError::PushNeedsAName.form_field(), Some("names"));
        assert_eq!(BuildError::Canceled.form_field(), None);
    }
}
