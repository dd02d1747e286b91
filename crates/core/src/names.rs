//! Naming: every name we give a container or volume derives from one user name.

/// Overrides the login name, so tests (and people with several backends) never touch another one.
pub const USER_ENV: &str = "ASSEMBLE_BACKEND_USER";

/// The names of one user's backend, its sidecars and its default cache volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    user: String,
}

impl Names {
    /// For `$ASSEMBLE_BACKEND_USER` when set, else the login name.
    pub fn for_current_user() -> Self {
        let raw = std::env::var(USER_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| whoami::fallible::username().ok())
            .unwrap_or_default();
        Self::for_user(&raw)
    }

    /// For the user `raw`, made docker-safe: lower case, `_` for anything docker refuses.
    pub fn for_user(raw: &str) -> Self {
        Self { user: docker_safe(raw) }
    }

    /// The docker-safe user name every other name derives from.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The backend container's name: `docker-assemble-backend-<user>`.
    pub fn backend(&self) -> String {
        format!("docker-assemble-backend-{}", self.user)
    }

    /// The name of the sidecar for host port `port`.
    pub fn proxy(&self, port: u16) -> String {
        format!("{}-proxy-port-{port}", self.backend())
    }

    /// The local-image mirror's front, in the backend's network namespace.
    pub fn mirror(&self) -> String {
        format!("{}-mirror", self.backend())
    }

    /// The local-image mirror's store (its back), which holds the engine's API.
    pub fn mirror_store(&self) -> String {
        format!("{}-mirror-store", self.backend())
    }

    /// The volume of the store's socket, which only the front and the store mount.
    pub fn mirror_socket_volume(&self) -> String {
        format!("{}-mirror-socket", self.backend())
    }

    /// The cache volume the automatic rule uses when it exists.
    pub fn default_cache_volume(&self) -> String {
        format!("docker-assemble-backend-cache-{}", self.user)
    }
}

/// Docker names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; anything else becomes `_`. We also lower-case,
/// because the name doubles as a BuildKit worker hostname.
fn docker_safe(raw: &str) -> String {
    let safe: String = raw
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c.to_ascii_lowercase() } else { '_' })
        .collect();
    let safe = safe.trim_start_matches(['_', '.', '-']).to_string();
    if safe.is_empty() {
        "user".to_string()
    } else {
        safe
    }
}

/// Where per-machine, per-boot files go (locks, memos, ssh control sockets): `$XDG_RUNTIME_DIR`,
/// else the temp folder.
pub(crate) fn runtime_dir() -> std::path::PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir)
}

/// Docker's rule for volume names, checked before we create or mount anything.
pub fn is_valid_volume_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_original() {
        let names = Names::for_user("username");
        assert_eq!(names.backend(), "docker-assemble-backend-username");
        assert_eq!(names.proxy(5000), "docker-assemble-backend-username-proxy-port-5000");
        assert_eq!(names.default_cache_volume(), "docker-assemble-backend-cache-username");
        assert_eq!(names.mirror(), "docker-assemble-backend-username-mirror");
        assert_eq!(names.mirror_store(), "docker-assemble-backend-username-mirror-store");
        assert_eq!(names.mirror_socket_volume(), "docker-assemble-backend-username-mirror-socket");
    }

    #[test]
    fn user_names_are_made_docker_safe() {
        assert_eq!(Names::for_user("Jane Doe").user(), "jane_doe");
        assert_eq!(Names::for_user("DOMAIN\\jane").user(), "domain_jane");
        assert_eq!(Names::for_user("_x").user(), "x");
        assert_eq!(Names::for_user("").user(), "user");
        assert_eq!(Names::for_user("ü").user(), "user");
    }

    #[test]
    fn volume_names_follow_docker() {
        assert!(is_valid_volume_name("username-assemble-cache"));
        assert!(!is_valid_volume_name(""));
        assert!(!is_valid_volume_name("a"));
        assert!(!is_valid_volume_name("-x"));
        assert!(!is_valid_volume_name("a/b"));
    }
}
