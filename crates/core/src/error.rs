//! What the areas' errors share: where a sentence is shown ([`Place`]), and the ways out a sentence
//! names ([`Remedy`]) and the inputs it names ([`Input`]), each worded once for each place. Each
//! area words its own facts once (`engine/error.rs`, `backend/error.rs`, `buildkit/error.rs`,
//! `build/error.rs`, `logs/error.rs`, and the rules' own: `PortError`, `ReferenceError`,
//! `SizeError`, `PluginError`) and asks here for the way out; the crate's `Error` (lib.rs) gathers
//! them. A leaf module: the areas ask it, it asks nothing.

/// Where a sentence is shown, so that its way out names what the reader can do there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The CLI: flags and commands.
    CommandLine,
    /// The app's windows and tray: buttons and the settings window, no flags.
    App,
}

/// What the user can do about a failure, as data: each place words it once ([`Remedy::words`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remedy {
    /// Start the backend.
    StartBackend,
    /// Run another backend image.
    ChooseImage,
    /// Start without host ports.
    NoHostPorts,
    /// Choose an existing docker context.
    ChooseContext,
    /// Choose another engine than the one that does not answer.
    ChooseEngine,
    /// Use the engine that this docker context names.
    UseContext(String),
    /// Use the engine at this address, which no context names.
    UseHost(String),
    /// Point docker at the TLS file that `flag` would name.
    PointAtTlsFile {
        /// The docker flag for that file (`--tlscacert`, …).
        flag: &'static str,
    },
    /// Give one of the security modes.
    ChooseSecurity,
    /// Run the backend in BuildKit's rootless mode, where the engine's policy allows that.
    Rootless,
    /// Run the backend in the default security mode.
    DefaultSecurity,
    /// Make the sidecars match the backend again.
    RepairSidecars,
    /// See which builds there are.
    ListBuilds,
    /// Give an existing folder to build.
    ChooseBuildFolder,
    /// Give the folder a Dockerfile.
    AddDockerfile,
    /// Name the image to push.
    NameTheImage,
    /// Push several platforms as one image, or build one platform.
    PushOrOnePlatform,
    /// Start without local images.
    NoLocalImages,
}

impl Remedy {
    /// The way out in `place`'s terms.
    pub fn words(&self, place: Place) -> String {
        match place {
            Place::CommandLine => self.on_command_line(),
            Place::App => self.in_app(),
        }
    }

    /// The way out with the CLI's flags and commands.
    fn on_command_line(&self) -> String {
        match self {
            Remedy::StartBackend => "start it with `docker assemble backend start`".into(),
            Remedy::ChooseImage => "choose another with --image".into(),
            Remedy::NoHostPorts => "start without host ports (--allow-host-port 0)".into(),
            Remedy::ChooseContext => {
                "Choose one with --context NAME, or make one current with `docker context use NAME`".into()
            }
            Remedy::ChooseEngine => "choose another engine (--context, -H, DOCKER_HOST or `docker context use`)".into(),
            Remedy::UseContext(name) => format!("run `docker context use {name}` or pass --context {name}"),
            Remedy::UseHost(address) => {
                format!("pass -H {address} (or make a context: `docker context create NAME --docker host={address}`)")
            }
            Remedy::PointAtTlsFile { flag } => format!("point DOCKER_CERT_PATH (or {flag}) at the right file"),
            Remedy::ChooseSecurity => "give auto, capabilities or rootless".into(),
            Remedy::Rootless => "start the backend in rootless mode where the policy allows that: docker assemble \
                                 backend start --security rootless"
                .into(),
            Remedy::DefaultSecurity => "start it in the default mode instead (--security auto)".into(),
            Remedy::RepairSidecars => "`docker assemble backend start` repairs the sidecars".into(),
            Remedy::ListBuilds => "`assemble backend builds` lists them".into(),
            Remedy::ChooseBuildFolder => {
                "give the folder to build (the build context), for example `assemble build .`".into()
            }
            Remedy::AddDockerfile => "add a Dockerfile, or name one with -f".into(),
            Remedy::NameTheImage => "add one with -t, for example -t localhost:5000/app:1".into(),
            Remedy::PushOrOnePlatform => {
                "push the platforms as one image with --push instead, or give --platform one of them".into()
            }
            Remedy::NoLocalImages => {
                "turn local images off (--no-local-images, or local_images: false in the settings) to start without \
                 them"
                    .into()
            }
        }
    }

    /// The way out with the app's buttons, windows and settings; never a flag.
    fn in_app(&self) -> String {
        match self {
            Remedy::StartBackend => "start it with Start".into(),
            Remedy::ChooseImage => "choose another image in Settings".into(),
            Remedy::NoHostPorts => "remove the host ports in Settings".into(),
            Remedy::ChooseContext => "Choose one in Settings".into(),
            Remedy::ChooseEngine => "choose another engine (in Settings, or with `docker context use`)".into(),
            Remedy::UseContext(name) => format!("choose it in Settings, or run `docker context use {name}`"),
            Remedy::UseHost(address) => format!(
                "make a context for it (`docker context create NAME --docker host={address}`) and choose it in \
                 Settings"
            ),
            Remedy::PointAtTlsFile { .. } => "point DOCKER_CERT_PATH at the right file".into(),
            Remedy::ChooseSecurity => "choose Automatic, Capabilities or Rootless".into(),
            Remedy::Rootless => "choose Rootless under Security in Settings where the policy allows that".into(),
            Remedy::DefaultSecurity => "choose Automatic under Security in Settings".into(),
            Remedy::RepairSidecars => "Restart repairs the sidecars".into(),
            Remedy::ListBuilds => "the Builds window lists them".into(),
            Remedy::ChooseBuildFolder => "choose the folder to build (the build context)".into(),
            Remedy::AddDockerfile => "add a Dockerfile to it".into(),
            Remedy::NameTheImage => "type one in Names, for example localhost:5000/app:1".into(),
            Remedy::PushOrOnePlatform => "choose Push instead to push them as one image, or choose one platform".into(),
            Remedy::NoLocalImages => "turn local images off in Settings to start without them".into(),
        }
    }
}

/// An input a sentence names: a flag on the command line; in the app, the control, or only the
/// value where the sentence stands beside its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A security mode as typed (`--security`, or the environment).
    Security(String),
    /// Pushing the built image (`--push`, the Build window's Push).
    Push,
    /// Loading the built image into the engine (`--load`, the Build window's Load).
    Load,
}

impl Input {
    /// The input in `place`'s terms.
    pub fn words(&self, place: Place) -> String {
        match (self, place) {
            (Input::Security(typed), Place::CommandLine) => format!("--security {typed:?}"),
            (Input::Security(typed), Place::App) => format!("{typed:?}"),
            (Input::Push, Place::CommandLine) => "--push".into(),
            (Input::Push, Place::App) => "Push".into(),
            (Input::Load, Place::CommandLine) => "--load".into(),
            (Input::Load, Place::App) => "Load into the engine".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_remedy() -> Vec<Remedy> {
        vec![
            Remedy::StartBackend,
            Remedy::ChooseImage,
            Remedy::NoHostPorts,
            Remedy::ChooseContext,
            Remedy::ChooseEngine,
            Remedy::UseContext("desktop-linux".into()),
            Remedy::UseHost("unix:///run/podman/podman.sock".into()),
            Remedy::PointAtTlsFile { flag: "--tlscacert" },
            Remedy::ChooseSecurity,
            Remedy::Rootless,
            Remedy::DefaultSecurity,
            Remedy::RepairSidecars,
            Remedy::ListBuilds,
            Remedy::ChooseBuildFolder,
            Remedy::AddDockerfile,
            Remedy::NameTheImage,
            Remedy::PushOrOnePlatform,
            Remedy::NoLocalImages,
        ]
    }

    #[test]
    fn the_app_words_every_way_out_without_a_flag_or_a_command_of_ours() {
        for remedy in every_remedy() {
            let in_app = remedy.words(Place::App);
            // Docker's own commands, in backquotes, are a way out in both places.
            let outside_commands: String = in_app.split('`').step_by(2).collect();
            assert!(!outside_commands.contains("--") && !outside_commands.contains(" -"), "{in_app}");
            assert!(!in_app.contains("assemble "), "{in_app}");
            assert_ne!(in_app, remedy.words(Place::CommandLine), "{remedy:?} is worded once per place");
        }
        for input in [Input::Security("x".into()), Input::Push, Input::Load] {
            assert!(!input.words(Place::App).contains("--"), "{input:?}");
        }
    }
}
