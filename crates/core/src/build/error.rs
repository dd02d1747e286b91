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

    /// The user interrupted the build; BuildKit was told to cancel it.
    #[error("the build was canceled")]
    Canceled,

    /// The built image could not be loaded into the engine.
    #[error("the image was built but could not be loaded into the engine: {message}")]
    LoadFailed {
        /// What the engine, or the transfer, said.
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
            _ => None,
        }
    }
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
