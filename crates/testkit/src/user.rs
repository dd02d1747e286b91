//! A throw-away user of the product: its own name (so runs never collide with each other or with a
//! developer's own backend), its own settings folder and docker config folder (buildx linked in),
//! the real `assemble` binary run as it with a cleaned environment, and cleanup that runs even
//! when a test fails.
use std::{
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
};

use assemble_core::Names;
use bollard::Docker;

use crate::{
    cli::{assemble_binary, buildx_plugin, run_bounded, Run},
    containers::remove_containers_named,
    folders::make_scratch_dir,
    images::test_image,
    machine::{clear_engine_environment, MACHINE_ENGINE},
};

/// Numbers the users of one process, so that two tests never share a name.
static USERS_MADE: AtomicUsize = AtomicUsize::new(0);

/// A throw-away user: everything named after it is removed when it drops, pass or fail, on the
/// engine its backend lives on and on any other engine named with [`TestUser::also_clean_on`].
pub struct TestUser {
    pub names: Names,
    /// Holds the user's settings folder, docker config folder and scratch folders; removed on drop.
    home: tempfile::TempDir,
    /// The backend image its commands ask for (`ASSEMBLE_BACKEND_IMAGE`).
    image: String,
    /// The docker context its commands run in (`DOCKER_CONTEXT`); none: the docker config's
    /// default, the machine's engine.
    context: Option<String>,
    volumes: Mutex<Vec<String>>,
    /// The engines (unix sockets) its containers may be on, cleaned on drop; its own engine first.
    engines: Mutex<Vec<String>>,
}

impl TestUser {
    /// A user named after `tag`, unique on this machine (`e2e-TAG-PID-N`), whose backend runs on
    /// the machine's engine. Panics, with the cause, when its folders cannot be made.
    pub fn new(tag: &str) -> Self {
        let serial = USERS_MADE.fetch_add(1, Ordering::SeqCst);
        let user = format!("e2e-{tag}-{}-{serial}", std::process::id());
        Self::named(&user, MACHINE_ENGINE).unwrap_or_else(|reason| panic!("{reason}"))
    }

    /// The user `user`, exactly so named (the soak's `soak`, a benchmark's), whose backend runs on
    /// the engine at `engine` (`unix://…`), where its containers are cleaned on drop.
    pub fn named(user: &str, engine: &str) -> Result<Self, String> {
        let home = make_scratch_dir(user)?;
        let user = Self {
            names: Names::for_user(user),
            home,
            image: test_image(),
            context: None,
            volumes: Mutex::new(Vec::new()),
            engines: Mutex::new(vec![engine.to_string()]),
        };
        user.make_docker_config()?;
        Ok(user)
    }

    /// The same user, asking for `image` as its backend image instead of the test image.
    pub fn with_image(mut self, image: &str) -> Self {
        self.image = image.to_string();
        self
    }

    /// The same user, its commands run in the docker context `name` (made here in its docker
    /// config, for the engine at `host`), as a user whose current context that is. A context, not
    /// `DOCKER_HOST`, so that `start` registers the buildx builder, as it does for a user.
    pub fn with_context(mut self, name: &str, host: &str) -> Result<Self, String> {
        let created =
            run_bounded(self.docker_command(&["context", "create", name, "--docker", &format!("host={host}")]));
        if !created.ok() {
            return Err(format!("making the docker context {name}: {}", created.describe()));
        }
        self.context = Some(name.to_string());
        Ok(self)
    }

    pub fn user(&self) -> &str {
        self.names.user()
    }

    /// The backend image its commands ask for.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// A new, empty folder of this user's (`what` names it), removed with the user.
    pub fn scratch(&self, what: &str) -> PathBuf {
        let dir = self.home.path().join("scratch").join(what);
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(err) = std::fs::create_dir_all(&dir) {
            panic!("cannot make {}: {err}", dir.display());
        }
        dir
    }

    /// Volumes to remove at the end (ones the test or the product created for this user).
    pub fn own_volume(&self, name: &str) {
        self.volumes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(name.to_string());
    }

    /// Cleans the engine at `host` (`unix://…`) too when the user drops.
    pub fn also_clean_on(&self, host: &str) {
        self.engines.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(host.to_string());
    }

    /// This user's own settings folder, so no test reads a developer's settings. Not made here:
    /// the product makes it when it saves.
    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join("settings")
    }

    /// The settings file the CLI and the app read for this user.
    pub fn settings_file(&self) -> PathBuf {
        self.config_dir().join("settings.json")
    }

    /// This user's own docker config folder (contexts, buildx builders), with the tests' buildx
    /// as its CLI plugin when it was fetched (scripts/fetch-buildx.sh): the product registers
    /// builders there, never in the developer's `~/.docker`.
    pub fn docker_config(&self) -> PathBuf {
        // Beside the settings folder, not in it, because tests count what the product writes there.
        self.home.path().join("docker")
    }

    /// Whether a real buildx is this user's docker CLI plugin, so buildx commands can run.
    pub fn has_buildx(&self) -> bool {
        self.docker_config().join("cli-plugins/docker-buildx").exists()
    }

    fn make_docker_config(&self) -> Result<(), String> {
        let plugins = self.docker_config().join("cli-plugins");
        std::fs::create_dir_all(&plugins).map_err(|e| format!("cannot make {}: {e}", plugins.display()))?;
        let link = plugins.join("docker-buildx");
        if buildx_plugin().exists() && !link.exists() {
            std::os::unix::fs::symlink(buildx_plugin(), &link)
                .map_err(|e| format!("cannot link buildx into {}: {e}", plugins.display()))?;
        }
        Ok(())
    }

    /// The docker CLI (`docker ARGS`) on this user's docker config folder and context, whatever the
    /// caller's shell says.
    pub fn docker_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("docker");
        self.set_environment(&mut command);
        command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    }

    /// `docker ARGS` as this user, bounded in time.
    pub fn docker(&self, args: &[&str]) -> Run {
        run_bounded(self.docker_command(args))
    }

    /// `assemble ARGS` as this user, on its engine (the machine's, or its context's), whatever the
    /// caller's shell says.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(assemble_binary());
        self.set_environment(&mut command);
        command
            .args(args)
            .env("ASSEMBLE_BACKEND_USER", self.user())
            .env("ASSEMBLE_BACKEND_IMAGE", &self.image)
            .env("ASSEMBLE_CONFIG_DIR", self.config_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `assemble ARGS` for this user, bounded in time.
    pub fn run(&self, args: &[&str]) -> Run {
        run_bounded(self.command(args))
    }

    /// What every command of this user's gets: no engine choice from the caller, its own docker
    /// config, and its context when it has one.
    fn set_environment(&self, command: &mut Command) {
        clear_engine_environment(command);
        command.env("DOCKER_CONFIG", self.docker_config());
        if let Some(context) = &self.context {
            command.env("DOCKER_CONTEXT", context);
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let prefix = self.names.backend();
        let owner = format!("{}={}", assemble_core::backend::labels::OWNER, self.names.user());
        let volumes = self.volumes.lock().map(|v| v.clone()).unwrap_or_default();
        let engines = self.engines.lock().map(|e| e.clone()).unwrap_or_default();
        // Drop may run while a test's runtime unwinds: clean up on a runtime of our own.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async move {
                for host in engines {
                    let Some(docker) = connect_unix(&host).await else { continue };
                    remove_containers_named(&docker, &prefix).await;
                    // The ones the test named, and the ones the product made for this user (its
                    // owner label), which a test that ends without `backend stop` leaves behind.
                    let filters = std::collections::HashMap::from([("label", vec![owner.as_str()])]);
                    let options =
                        bollard::query_parameters::ListVolumesOptionsBuilder::default().filters(&filters).build();
                    let labelled = docker.list_volumes(Some(options)).await.ok().and_then(|list| list.volumes);
                    let labelled = labelled.unwrap_or_default().into_iter().map(|v| v.name);
                    for volume in volumes.iter().cloned().chain(labelled) {
                        let _ =
                            docker.remove_volume(&volume, None::<bollard::query_parameters::RemoveVolumeOptions>).await;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A client for the engine at `host` (`unix://…`) that speaks its API version (an older engine
/// refuses a newer client's), or none when it does not answer.
async fn connect_unix(host: &str) -> Option<Docker> {
    let docker = Docker::connect_with_unix(host, 30, bollard::API_DEFAULT_VERSION).ok()?;
    docker.negotiate_version().await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine address that answers nothing, so the unit tests' cleanup touches no engine.
    const NO_ENGINE: &str = "unix:///nonexistent/assemble-testkit.sock";

    #[test]
    fn a_user_has_its_own_folders_and_commands_that_ignore_the_callers_engine() {
        let user = TestUser::named("testkit-unit", NO_ENGINE).expect("a user");
        assert!(user.docker_config().join("cli-plugins").is_dir());
        assert!(!user.config_dir().exists(), "the product makes the settings folder, not the kit");
        let command = user.docker_command(&["version"]);
        let env: Vec<_> = command.get_envs().collect();
        for name in crate::machine::ENGINE_VARIABLES {
            assert!(env.contains(&(name.as_ref(), None)), "{name} is not removed");
        }
        assert!(env.contains(&("DOCKER_CONFIG".as_ref(), Some(user.docker_config().as_os_str()))));
        let home = user.home.path().to_path_buf();
        drop(user);
        assert!(!home.exists(), "the user's folders outlive it");
    }
}
