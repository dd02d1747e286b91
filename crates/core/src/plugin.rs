//! The Docker CLI plugin: `docker assemble …` runs our binary as `docker-assemble` from
//! `~/.docker/cli-plugins` (or `$DOCKER_CONFIG/cli-plugins`).
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Why the plugin cannot be installed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin's path holds a file that is not our link.
    #[error("{} is already there and is not our link; move it away, or pass --force to replace it", path.display())]
    PathTaken {
        /// The path.
        path: PathBuf,
    },

    /// Neither `DOCKER_CONFIG` nor `HOME` is set, so there is no plugin folder.
    #[error("HOME is not set, so the Docker CLI plugin folder is unknown; set HOME or DOCKER_CONFIG")]
    HomeUnset,
}

/// The subcommand docker calls to learn about a plugin.
pub const METADATA_COMMAND: &str = "docker-cli-plugin-metadata";
/// The name docker passes as the first argument when it runs the plugin.
pub const PLUGIN_COMMAND: &str = "assemble";
/// The plugin's file name: docker finds plugins as `docker-<command>`.
pub const PLUGIN_FILE: &str = "docker-assemble";

/// The JSON docker expects from `docker-assemble docker-cli-plugin-metadata`.
pub fn metadata() -> String {
    serde_json::json!({
        "SchemaVersion": "0.1.0",
        "Vendor": "Assemble Backend",
        "Version": crate::backend::labels::OUR_VERSION,
        "ShortDescription": "Run and manage a personal BuildKit backend",
        "URL": "https://docs.docker.com/assemble/advanced/",
    })
    .to_string()
}

/// `$DOCKER_CONFIG/cli-plugins`, else `~/.docker/cli-plugins`.
pub fn plugin_dir() -> Result<PathBuf> {
    if let Some(config) = std::env::var_os("DOCKER_CONFIG").filter(|c| !c.is_empty()) {
        return Ok(PathBuf::from(config).join("cli-plugins"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or(PluginError::HomeUnset)?;
    Ok(PathBuf::from(home).join(".docker").join("cli-plugins"))
}

/// Links `dir/docker-assemble` to `executable`. A link of ours is replaced; any other file there
/// is the user's and is left alone unless `force`.
pub fn install(executable: &Path, dir: &Path, force: bool) -> Result<PathBuf> {
    let target = std::fs::canonicalize(executable).map_err(Error::io(format!("resolving {}", executable.display())))?;
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let link = dir.join(PLUGIN_FILE);
    match std::fs::symlink_metadata(&link) {
        Ok(meta) if meta.file_type().is_symlink() || force => {
            std::fs::remove_file(&link).map_err(Error::io(format!("replacing {}", link.display())))?;
        }
        Ok(_) => return Err(PluginError::PathTaken { path: link }.into()),
        Err(_) => {}
    }
    std::os::unix::fs::symlink(&target, &link).map_err(Error::io(format!("linking {}", link.display())))?;
    Ok(link)
}

/// docker's global options that take a value, which docker passes before the plugin's name.
const DOCKER_VALUE_OPTIONS: [&str; 10] =
    ["--context", "-c", "--host", "-H", "--config", "--log-level", "-l", "--tlscacert", "--tlscert", "--tlskey"];

/// Arguments as the CLI should parse them. In plugin mode docker runs us with all of its own
/// arguments, so its global options come first, then `assemble`, then ours
/// (`docker-assemble --context x assemble backend info`): the plugin's name goes, the options stay
/// (we take docker's global options too).
pub fn strip_plugin_argument(mut args: Vec<String>) -> Vec<String> {
    let mut at = 1;
    while let Some(arg) = args.get(at) {
        if arg == PLUGIN_COMMAND {
            args.remove(at);
            break;
        }
        if DOCKER_VALUE_OPTIONS.contains(&arg.as_str()) {
            at += 2;
        } else if arg.starts_with('-') {
            at += 1;
        } else {
            break;
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_mode_drops_the_plugin_name() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            strip_plugin_argument(args(&["docker-assemble", "assemble", "backend", "info"])),
            args(&["docker-assemble", "backend", "info"])
        );
        assert_eq!(
            strip_plugin_argument(args(&["assemble", "backend", "info"])),
            args(&["assemble", "backend", "info"])
        );
        // docker's global options come before the plugin's name and stay.
        assert_eq!(
            strip_plugin_argument(args(&[
                "docker-assemble",
                "--context",
                "assemble",
                "-D",
                "--tls",
                "assemble",
                "backend"
            ])),
            args(&["docker-assemble", "--context", "assemble", "-D", "--tls", "backend"])
        );
        assert_eq!(
            strip_plugin_argument(args(&[
                "docker-assemble",
                "-Hunix:///x.sock",
                "--log-level=info",
                "assemble",
                "backend"
            ])),
            args(&["docker-assemble", "-Hunix:///x.sock", "--log-level=info", "backend"])
        );
        // Standalone, a later "assemble" is a value, not the plugin's name.
        assert_eq!(
            strip_plugin_argument(args(&["assemble", "backend", "start", "--cache-volume", "assemble"])),
            args(&["assemble", "backend", "start", "--cache-volume", "assemble"])
        );
    }

    #[test]
    fn metadata_is_what_docker_reads() {
        let value: serde_json::Value = serde_json::from_str(&metadata()).unwrap();
        assert_eq!(value["SchemaVersion"], "0.1.0");
        assert!(value["ShortDescription"].as_str().unwrap().contains("BuildKit"));
    }

    #[test]
    fn install_replaces_our_link_and_keeps_foreign_files() {
        let dir = std::env::temp_dir().join(format!("assemble-plugin-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let exe = std::env::current_exe().unwrap();
        let link = install(&exe, &dir, false).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), std::fs::canonicalize(&exe).unwrap());
        install(&exe, &dir, false).unwrap();
        std::fs::remove_file(&link).unwrap();
        std::fs::write(&link, b"someone else's plugin").unwrap();
        let err = install(&exe, &dir, false).unwrap_err();
        assert!(matches!(&err, Error::Plugin(PluginError::PathTaken { path }) if path == &link), "{err:?}");
        assert!(err.to_string().ends_with("is not our link; move it away, or pass --force to replace it"), "{err}");
        assert_eq!(std::fs::read(&link).unwrap(), b"someone else's plugin");
        install(&exe, &dir, true).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), std::fs::canonicalize(&exe).unwrap(), "--force replaces it");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
