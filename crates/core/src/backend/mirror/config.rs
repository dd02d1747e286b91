//! The rules of local images, with no I/O: which registries' names are served from the engine,
//! where the front listens, what BuildKit's config says about it, the source policy that makes
//! `assemble build --pull` go around it, and which socket of the engine the store is given.
use std::collections::HashMap;

use bollard_buildkit_proto::moby::buildkit::v1::sourcepolicy::{
    MatchType, Policy, PolicyAction, Rule, Selector, Update,
};

use crate::{backend::error::BackendError, engine::Address, Error};

/// The address the front listens on, inside the backend's network namespace: a loopback address
/// of its own, so that no host port the sidecars relay on `localhost` (127.0.0.1 and ::1) can ever
/// take its port, and builds cannot mistake it for one.
pub const LISTEN_ADDRESS: &str = "127.0.0.2";
/// The front's port there.
pub const LISTEN_PORT: u16 = 49500;

/// Docker Hub, whose names are always served from the engine first (as `docker build` does).
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's registry host: `--pull` names it directly, which BuildKit's config gives no mirror.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
/// The domain of the hosts `--pull` names for the other registries: each is given its registry as
/// its only mirror, so it reaches the registry and never the engine (`.invalid` never resolves).
const PULL_DOMAIN: &str = "pull.assemble.invalid";

/// The front's address as BuildKit names a mirror: `127.0.0.2:49500`.
pub fn mirror_host() -> String {
    format!("{LISTEN_ADDRESS}:{LISTEN_PORT}")
}

/// Where the store listens for the front, in the volume only they mount.
pub const SOCKET_DIR: &str = "/run/assemble-mirror";
/// The store's socket.
pub fn socket_path() -> String {
    format!("{SOCKET_DIR}/store.sock")
}

/// A registry host as an image reference names one: DNS labels and an optional port
/// (`registry.example.com`, `localhost:5000`). The mirror's own rule, so both agree.
pub use assemble_mirror::{grammar::is_registry_host, words::MIRROR_SAYS};

/// The registries whose names the engine serves: Docker Hub first, then `extra` as typed (trimmed,
/// lower-cased, `index.docker.io` read as Docker Hub, duplicates dropped). A name that is not a
/// registry host, or the mirror itself, is refused.
pub fn registries(extra: &[String]) -> Result<Vec<String>, Error> {
    let mut out = vec![DOCKER_HUB.to_string()];
    for typed in extra {
        let host = typed.trim().to_ascii_lowercase();
        let host = if host == "index.docker.io" { DOCKER_HUB.to_string() } else { host };
        if !is_registry_host(&host) || host == mirror_host() || host.ends_with(PULL_DOMAIN) || host == DOCKER_HUB_HOST {
            return Err(BackendError::InvalidLocalImageRegistry(typed.trim().to_string()).into());
        }
        if !out.contains(&host) {
            out.push(host);
        }
    }
    Ok(out)
}

/// The host `--pull` names for `registry`: Docker Hub's own registry host, else an alias whose
/// only mirror is the registry itself.
pub fn pull_host(registry: &str) -> String {
    if registry == DOCKER_HUB {
        DOCKER_HUB_HOST.to_string()
    } else {
        format!("{}.{PULL_DOMAIN}", registry.replace(':', "--"))
    }
}

/// buildkitd.toml's part for local images: the front as the first mirror of every registry in
/// `registries` (BuildKit asks it first and goes on to the registry when it answers "not found"),
/// plain HTTP to it, and the hosts `--pull` names (see [`pull_policy`]).
pub fn buildkitd_section(registries: &[String]) -> String {
    let mirror = mirror_host();
    let mut text = String::from(
        "\n# Local images (Assemble Backend): the engine's own images, served read-only inside this network\n\
         # namespace, are asked for first; what the engine does not have comes from its registry.\n",
    );
    for registry in registries {
        text.push_str(&format!("[registry.\"{registry}\"]\n  mirrors = [\"{mirror}\"]\n"));
    }
    text.push_str(&format!("[registry.\"{mirror}\"]\n  http = true\n"));
    text.push_str(
        "# `assemble build --pull` names these hosts instead: the registries themselves, never the engine.\n",
    );
    for registry in registries.iter().filter(|r| *r != DOCKER_HUB) {
        text.push_str(&format!("[registry.\"{}\"]\n  mirrors = [\"{registry}\"]\n", pull_host(registry)));
    }
    text
}

/// The source policy of a `--pull` build: every image of a registry whose names the engine serves
/// is taken from a host BuildKit's config gives no local mirror, so the build never uses a local
/// image. The image's name in the build's steps stays the one the Dockerfile wrote.
pub fn pull_policy(registries: &[String]) -> Policy {
    let rules = registries
        .iter()
        .map(|registry| Rule {
            action: PolicyAction::Convert as i32,
            selector: Some(Selector {
                identifier: format!("^docker-image://{}/(.+)$", regex_escape(registry)),
                match_type: MatchType::Regex as i32,
                constraints: Vec::new(),
            }),
            updates: Some(Update {
                identifier: format!("docker-image://{}/${{1}}", pull_host(registry)),
                attrs: HashMap::new(),
            }),
        })
        .collect();
    Policy { version: 1, rules }
}

fn regex_escape(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_string() } else { format!("\\{c}") }).collect()
}

/// The engine's own API socket, on the engine's host, for the store to mount: the socket we reach
/// it by when that is local (Docker Desktop's is a forwarder on the desktop; in its VM the engine
/// listens on the default socket), the socket an `ssh://` address names, else the default one. The
/// store proves it is the engine it runs on before it answers anything (see crates/mirror).
pub fn engine_socket(address: &Address, operating_system: &str) -> String {
    match address {
        Address::Unix(path) if operating_system != "Docker Desktop" => path.to_string_lossy().into_owned(),
        Address::Ssh(target) => target.socket.clone().unwrap_or_else(|| crate::engine::DEFAULT_SOCKET.to_string()),
        _ => crate::engine::DEFAULT_SOCKET.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SshTarget;

    #[test]
    fn docker_hub_always_comes_first_and_typed_registries_are_checked() {
        assert_eq!(registries(&[]).unwrap(), ["docker.io"]);
        let typed = [
            "localhost:5000".to_string(),
            " Registry.Example.com ".into(),
            "index.docker.io".into(),
            "localhost:5000".into(),
        ];
        assert_eq!(registries(&typed).unwrap(), ["docker.io", "localhost:5000", "registry.example.com"]);
        for bad in [
            "https://r.example.com",
            "r.example.com/team",
            "",
            "a..b",
            "r:0",
            "r:70000",
            "127.0.0.2:49500",
            "registry-1.docker.io",
        ] {
            let refused = registries(&[bad.to_string()]).unwrap_err();
            assert!(
                matches!(&refused, Error::Backend(BackendError::InvalidLocalImageRegistry(t)) if t == bad.trim()),
                "{bad}: {refused:?}"
            );
        }
    }

    #[test]
    fn buildkit_asks_the_front_first_for_every_served_registry() {
        let text = buildkitd_section(&["docker.io".into(), "localhost:5000".into()]);
        assert!(text.contains("[registry.\"docker.io\"]\n  mirrors = [\"127.0.0.2:49500\"]\n"), "{text}");
        assert!(text.contains("[registry.\"localhost:5000\"]\n  mirrors = [\"127.0.0.2:49500\"]\n"), "{text}");
        assert!(text.contains("[registry.\"127.0.0.2:49500\"]\n  http = true\n"), "{text}");
        assert!(
            text.contains("[registry.\"localhost--5000.pull.assemble.invalid\"]\n  mirrors = [\"localhost:5000\"]\n"),
            "{text}"
        );
        assert!(!text.contains("registry-1.docker.io"), "Docker Hub's own host keeps BuildKit's defaults: {text}");
    }

    #[test]
    fn pull_moves_each_image_to_a_host_without_the_local_mirror() {
        let policy = pull_policy(&["docker.io".into(), "localhost:5000".into()]);
        let rules: Vec<(String, String)> = policy
            .rules
            .iter()
            .map(|r| (r.selector.as_ref().unwrap().identifier.clone(), r.updates.as_ref().unwrap().identifier.clone()))
            .collect();
        assert_eq!(
            rules,
            [
                (
                    "^docker-image://docker\\.io/(.+)$".to_string(),
                    "docker-image://registry-1.docker.io/${1}".to_string()
                ),
                (
                    "^docker-image://localhost\\:5000/(.+)$".to_string(),
                    "docker-image://localhost--5000.pull.assemble.invalid/${1}".to_string()
                ),
            ]
        );
        assert!(policy.rules.iter().all(|r| r.action == PolicyAction::Convert as i32));
        // The new host is itself a registry host, and not one the policy converts again.
        assert!(is_registry_host(&pull_host("localhost:5000")) && is_registry_host(&pull_host("docker.io")));
    }

    #[test]
    fn the_store_mounts_the_engines_own_socket() {
        let unix = |p: &str| Address::Unix(p.into());
        assert_eq!(
            engine_socket(&unix("/run/user/1000/docker.sock"), "Debian GNU/Linux 12 (bookworm)"),
            "/run/user/1000/docker.sock"
        );
        assert_eq!(
            engine_socket(&unix("/home/jane/.docker/desktop/docker.sock"), "Docker Desktop"),
            "/var/run/docker.sock"
        );
        let ssh = |socket: Option<&str>| {
            Address::Ssh(SshTarget { user: None, host: "h".into(), port: None, socket: socket.map(String::from) })
        };
        assert_eq!(engine_socket(&ssh(None), "Ubuntu"), "/var/run/docker.sock");
        assert_eq!(engine_socket(&ssh(Some("/run/docker-2.sock")), "Ubuntu"), "/run/docker-2.sock");
        assert_eq!(engine_socket(&Address::Tcp { host: "h".into(), port: 2376 }, "Ubuntu"), "/var/run/docker.sock");
    }
}
