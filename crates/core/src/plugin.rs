//! The Docker CLI plugin: `docker assemble …` runs our binary as `docker-assemble` from
//! `~/.docker/cli-plugins` (or `$DOCKER_CONFIG/cli-plugins`).
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The subcommand docker calls to learn about a plugin.
pub const METADATA_COMMAND: &str = "docker-cli-plugin-metadata";
/// The name docker passes as the first argument when it runs the plugin.
pub const PLUGIN_COMMAND: &str = "assemble";
pub const PLUGIN_FILE: &str = "docker-assemble";

/// The JSON docker expects from `docker-assemble docker-cli-plugin-metadata`.
pub fn metadata() -> String {
    serde_json::json!({
        "SchemaVersion": "0.1.0",
        "Vendor": "Assemble Backend",
        "Version": crate::labels::OUR_VERSION,
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
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or_else(|| Error::Io {
        action: "finding the Docker CLI plugin folder".into(),
        source: std::io::Error::other("HOME is not set; set HOME or DOCKER_CONFIG"),
    })?;
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
        Ok(_) => {
            return Err(Error::Io {
                action: format!("installing {}", link.display()),
                source: std::io::Error::other(
                    "a file that is not our link is already there; move it away or pass --force",
                ),
            })
        }
        Err(_) => {}
    }
    std::os::unix::fs::symlink(&target, &link).map_err(Error::io(format!("linking {}", link.display())))?;
    Ok(link)
}

/// Arguments as the CLI should parse them: in plugin mode docker passes `assemble` first.
pub fn strip_plugin_argument(mut args: Vec<String>) -> Vec<String> {
    if args.get(1).map(String::as_str) == Some(PLUGIN_COMMAND) {
        args.remove(1);
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
        assert!(install(&exe, &dir, false).is_err());
        assert_eq!(std::fs::read(&link).unwrap(), b"someone else's plugin");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
