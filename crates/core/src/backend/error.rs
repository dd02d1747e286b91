//! What goes wrong in the backend's lifecycle (its settings, start, stop, sidecars and live
//! ports), each worded once; the way out is a [`Remedy`], worded by the place that shows it.
use crate::error::{Input, Place, Remedy};
use crate::{ports::PortError, reference::ReferenceError, Error};

/// A failure of the backend's lifecycle, or a start request it refuses.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A cache volume name docker would refuse.
    #[error("{0:?} is not a valid volume name: use letters, digits, '_', '.' or '-', starting with a letter or digit")]
    InvalidVolumeName(String),

    /// A blank image reference.
    #[error("the image reference is empty: give an image such as moby/buildkit:v0.25.1")]
    EmptyImage,

    /// A backend image name Docker would refuse (the flag's, the environment's or the settings').
    #[error("the backend image {}", .0)]
    InvalidImage(#[source] ReferenceError),

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
    #[error("{}", self.sentence(Place::CommandLine))]
    MirrorNotReady {
        /// The front's container name.
        name: String,
        /// What it printed.
        logs: String,
    },

    /// A security mode we do not know.
    #[error("{}", self.sentence(Place::CommandLine))]
    InvalidSecurity(String),

    /// A cache limit too small to build with.
    #[error("a cache limit of {0} is too small to build with; give at least 64MiB, such as 20GB")]
    CacheLimitTooSmall(String),

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
    #[error("{}", self.sentence(Place::CommandLine))]
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
    Exited {
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

    /// The engine's policy refused the privileged backend: never worked around.
    #[error("{}", self.sentence(Place::CommandLine))]
    PrivilegedRefusedByPolicy {
        /// The backend container's name.
        name: String,
        /// The engine's (or its plugin's) words.
        reason: String,
    },

    /// The engine could not run the backend in rootless mode.
    #[error("{}", self.sentence(Place::CommandLine))]
    RootlessRefused {
        /// The backend container's name.
        name: String,
        /// What the engine said, or what the backend logged before it stopped.
        reason: String,
    },

    /// A new sidecar did not start relaying (it could not enter the engine's network namespace).
    #[error("{}", self.sentence(Place::CommandLine))]
    SidecarNotReady {
        /// The sidecar's container name.
        name: String,
        /// The port it relays.
        port: u16,
        /// What it printed.
        logs: String,
    },

    /// The sidecar image could not be packed or imported.
    #[error("could not prepare the sidecar proxy image: {0}")]
    ProxyImage(String),

    /// The operation needs the backend, and it is not running.
    #[error("{}", self.sentence(Place::CommandLine))]
    NotRunning,

    /// The app runs one start, stop or restart at a time.
    #[error("another start or stop is under way; wait for it to finish")]
    OperationUnderWay,

    /// The app is quitting: nothing new begins.
    #[error("Assemble Backend is quitting, so nothing new is started; open it again to go on")]
    Quitting,

    /// The start was cancelled; what it had created was removed.
    #[error("the start was interrupted; everything it had created was removed")]
    Cancelled,

    /// A start failed (or was interrupted) and taking back what it had created failed too.
    #[error("{}", self.sentence(Place::CommandLine))]
    RollbackIncomplete {
        /// Why the start did not complete.
        cause: Box<Error>,
        /// One sentence per object that could not be removed.
        failures: Vec<String>,
        /// What is left: containers and volumes, as `docker rm -f` / `docker volume rm` arguments.
        left: Vec<Leftover>,
    },

    /// Ports change live only on a running backend (`ports add`, `ports rm`).
    #[error(
        "the backend is not running, so its ports cannot change live; start it with the ports you want: docker \
         assemble backend start --allow-host-port P"
    )]
    PortsNeedARunningBackend,

    /// The settings were saved, but the running backend could not take their ports live.
    #[error("{0}")]
    PortsNotApplied(Box<Error>),

    /// A bad port given to `ports add` or `ports rm` (`verb`).
    #[error("{}", source.in_ports_command(verb))]
    InvalidPortChange {
        /// `add` or `rm`.
        verb: &'static str,
        /// What is wrong with it.
        source: PortError,
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
    #[error("{}", self.sentence(Place::CommandLine))]
    PortChangeNotUndone {
        /// Why the change failed.
        first: Box<Error>,
        /// Why the undo failed.
        undo: Box<Error>,
    },
}

impl BackendError {
    /// The sentence for `place`, its way out in that place's terms.
    pub fn sentence(&self, place: Place) -> String {
        match self {
            BackendError::MirrorNotReady { name, logs } => format!(
                "the local-image mirror {name:?} did not start listening inside the backend{}; {}",
                if logs.is_empty() { String::new() } else { format!(": {logs}") },
                Remedy::NoLocalImages.words(place)
            ),
            BackendError::InvalidSecurity(typed) => format!(
                "{} is not a mode; {}",
                Input::Security(typed.clone()).words(place),
                Remedy::ChooseSecurity.words(place)
            ),
            BackendError::ImageUnavailable { image, reason } => format!(
                "image {image} is not present and could not be pulled ({reason}); load or build it locally, or {}",
                Remedy::ChooseImage.words(place)
            ),
            BackendError::PrivilegedRefusedByPolicy { name, reason } => format!(
                "the Docker Engine's policy refused a privileged container for the backend {name:?} ({reason}); \
                 Assemble Backend does not work around a policy, so nothing was started. Ask the engine's \
                 administrator to allow it, or {}",
                Remedy::Rootless.words(place)
            ),
            BackendError::RootlessRefused { name, reason } => format!(
                "the Docker Engine cannot run the backend {name:?} in rootless mode: {reason}. Rootless BuildKit \
                 needs an engine that lets a container make a user namespace (seccomp, AppArmor and the /proc masks \
                 unconfined, no added capability) and a rootless image (moby/buildkit:…-rootless); {}, or ask the \
                 engine's administrator to allow this",
                Remedy::DefaultSecurity.words(place)
            ),
            BackendError::SidecarNotReady { name, port, logs } => format!(
                "the sidecar {name:?} did not start relaying host port {port}{}; the engine must allow a container \
                 with the host's PID namespace and the SYS_ADMIN, SYS_PTRACE, SETUID and SETGID capabilities (all \
                 dropped before it relays), or {}",
                if logs.is_empty() { String::new() } else { format!(": {logs}") },
                Remedy::NoHostPorts.words(place)
            ),
            BackendError::NotRunning => {
                format!("the backend is not running; {}", Remedy::StartBackend.words(place))
            }
            BackendError::RollbackIncomplete { cause, failures, left } => {
                // An interruption's own sentence would claim that everything was removed.
                let cause = match &**cause {
                    Error::Backend(BackendError::Cancelled) => "the start was interrupted".to_string(),
                    other => other.sentence(place),
                };
                format!(
                    "{cause}; and removing what the start had created failed: {}. Remove what is left yourself: {}",
                    failures.join("; "),
                    leftover_commands(left)
                )
            }
            BackendError::PortsNotApplied(error) => error.sentence(place),
            BackendError::PortChangeNotUndone { first, undo } => format!(
                "{}; putting the old ports back failed too ({}); {}",
                first.sentence(place),
                undo.sentence(place),
                Remedy::RepairSidecars.words(place)
            ),
            other => other.to_string(),
        }
    }

    /// The settings field this error is about.
    pub fn settings_field(&self) -> Option<&'static str> {
        match self {
            BackendError::InvalidVolumeName(_) => Some("cache"),
            BackendError::EmptyImage | BackendError::InvalidImage(_) => Some("image"),
            BackendError::CacheLimitTooSmall(_) => Some("cache_limit"),
            // Whatever went wrong, it was in applying the ports.
            BackendError::PortsNotApplied(_) => Some("ports"),
            BackendError::InvalidSecurity(_) => Some("security"),
            BackendError::InvalidLocalImageRegistry(_) => Some("local_image_registries"),
            _ => None,
        }
    }
}

/// Something a start created and could not remove again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// A container, by name or ID.
    Container(String),
    /// A volume, by name.
    Volume(String),
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
        let image = Error::from(BackendError::ImageUnavailable { image: "x:1".into(), reason: "no registry".into() });
        assert!(image.sentence(Place::CommandLine).ends_with("or choose another with --image"));
        assert!(image.sentence(Place::App).ends_with("or choose another image in Settings"));
        let not_running = Error::from(BackendError::NotRunning);
        assert_eq!(not_running.sentence(Place::App), "the backend is not running; start it with Start");
        assert_eq!(
            not_running.to_string(),
            "the backend is not running; start it with `docker assemble backend start`"
        );
        assert!(!not_running.is_buildkit_transport());
        let policy = BackendError::PrivilegedRefusedByPolicy { name: "b".into(), reason: "denied".into() };
        assert!(policy.to_string().ends_with(
            "Ask the engine's administrator to allow it, or start the backend in rootless mode where the policy \
             allows that: docker assemble backend start --security rootless"
        ));
        assert!(policy.sentence(Place::App).ends_with(
            "Ask the engine's administrator to allow it, or choose Rootless under Security in Settings where the \
             policy allows that"
        ));
        // Nothing the app shows names a flag.
        for error in [
            ports,
            image,
            BackendError::SidecarNotReady { name: "b".into(), port: 5000, logs: String::new() }.into(),
            not_running,
            BackendError::InvalidSecurity("x".into()).into(),
            policy.into(),
            BackendError::RootlessRefused { name: "b".into(), reason: "no user namespace".into() }.into(),
            BackendError::PortChangeNotUndone {
                first: Box::new(
                    BackendError::SidecarNotReady { name: "b".into(), port: 6000, logs: "x".into() }.into(),
                ),
                undo: Box::new(BackendError::NotRunning.into()),
            }
            .into(),
        ] {
            assert!(!error.sentence(Place::App).contains("--"), "{}", error.sentence(Place::App));
            assert!(!error.sentence(Place::App).contains("docker assemble"), "{}", error.sentence(Place::App));
        }
    }

    #[test]
    fn a_cleanup_that_failed_is_told_with_what_is_left_and_how_to_remove_it() {
        let error = Error::from(BackendError::RollbackIncomplete {
            cause: Box::new(
                BackendError::ImageUnavailable { image: "x:1".into(), reason: "no registry".into() }.into(),
            ),
            failures: vec!["could not remove volume cache-v (volume is in use)".into()],
            left: vec![Leftover::Container("proxy-5000".into()), Leftover::Volume("cache-v".into())],
        });
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
        let interrupted = BackendError::RollbackIncomplete {
            cause: Box::new(BackendError::Cancelled.into()),
            failures: vec!["x".into()],
            left: vec![Leftover::Volume("v".into())],
        };
        assert!(interrupted.to_string().starts_with("the start was interrupted; and removing"), "{interrupted}");
    }
}
