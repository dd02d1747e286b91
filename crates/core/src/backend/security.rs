//! How the backend is granted its powers, decided with no I/O: the mode the user asks for, what an
//! engine's refusal means, and the reason every mode is told with. `start.rs` acts on it, the memo
//! (`privilege_memo.rs`) remembers a runtime's refusal, and `info`, the panel and `start` say it.
//!
//! The rule: the default asks for `--privileged`, as `docker buildx` does. Only when the runtime
//! could not apply the capabilities (runc's "unable to apply caps", a host without
//! CAP_SYS_RESOURCE) does it fall back to the capability mode. A refusal by the engine's policy (an
//! authorization plugin, or any refusal that says "denied" or "not allowed") is never worked
//! around: it is a sentence that names the policy and the ways out.
use serde::{Deserialize, Serialize};

use crate::{backend::error::BackendError, Result};

/// The mode the user asks for (`--security`, the settings' `security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecurityChoice {
    /// `--privileged`, or the capability mode where the runtime cannot apply capabilities.
    #[default]
    Auto,
    /// The capability mode, without asking for `--privileged` first.
    Capabilities,
    /// BuildKit's rootless mode: no added capability, a user namespace.
    Rootless,
}

impl SecurityChoice {
    /// The words the flag and the settings file take.
    pub const WORDS: &'static str = "auto, capabilities or rootless";

    /// Reads a choice as typed (`--security rootless`).
    pub fn parse(typed: &str) -> Result<Self> {
        match typed.trim() {
            "auto" => Ok(Self::Auto),
            "capabilities" => Ok(Self::Capabilities),
            "rootless" => Ok(Self::Rootless),
            other => Err(BackendError::InvalidSecurity(other.to_string()).into()),
        }
    }

    /// The word for the choice.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Capabilities => "capabilities",
            Self::Rootless => "rootless",
        }
    }
}

/// What an engine's refusal to create or start the privileged backend means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The runtime could not apply the capabilities (a host whose own bounding set lacks one):
    /// the capability mode is the way, and it is remembered.
    RuntimeCannotApplyCapabilities,
    /// A policy said no (an authorization plugin, "denied", "not allowed"): respected, told.
    Policy,
    /// Something else: told as it is, no fallback.
    Other,
}

/// Reads an engine's refusal. Policy words win: a plugin's message may quote anything.
pub fn classify(message: &str) -> Refusal {
    let text = message.to_ascii_lowercase();
    let policy = ["authorization", "denied", "not allowed", "forbidden"];
    if policy.iter().any(|word| text.contains(word)) {
        return Refusal::Policy;
    }
    // runc: "unable to apply caps: operation not permitted"; crun: "capset: Operation not permitted".
    let runtime = ["unable to apply caps", "apply caps", "capset"];
    if runtime.iter().any(|word| text.contains(word)) {
        return Refusal::RuntimeCannotApplyCapabilities;
    }
    Refusal::Other
}

/// Why the backend runs in its mode, in words for `info`, the panel and `start`.
pub mod reason {
    /// The default, privileged.
    pub const PRIVILEGED: &str = "the default: --privileged, as docker buildx runs BuildKit";
    /// Capabilities because the user asked.
    pub const CAPABILITIES_ASKED: &str =
        "asked for (--security capabilities, the settings, or ASSEMBLE_BACKEND_SECURITY)";
    /// Rootless because the user asked.
    pub const ROOTLESS_ASKED: &str =
        "asked for (--security rootless or the settings): BuildKit in a user namespace, no added capability";

    /// Capabilities because the runtime could not apply them for `--privileged`.
    pub fn runtime_refused(message: &str, remembered: bool) -> String {
        format!(
            "the engine's runtime could not apply the capabilities of --privileged ({message}){}; so all \
             capabilities but SYS_RESOURCE, unconfined profiles and writable cgroups instead",
            if remembered { ", remembered from an earlier start" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_runtime_that_cannot_apply_capabilities_falls_back() {
        let runc = "OCI runtime create failed: container_linux.go:380: starting container process caused: unable \
                    to apply caps: operation not permitted: unknown";
        assert_eq!(classify(runc), Refusal::RuntimeCannotApplyCapabilities);
        assert_eq!(classify("crun: capset: Operation not permitted: OCI permission denied"), Refusal::Policy);
        assert_eq!(classify("crun: capset: Operation not permitted"), Refusal::RuntimeCannotApplyCapabilities);
    }

    #[test]
    fn a_policy_is_never_worked_around() {
        for message in [
            "authorization denied by plugin assemble-authz: privileged containers are not allowed",
            "Error response from daemon: privileged mode is denied",
            "privileged containers are not allowed on this host",
            "Forbidden: no privileged containers",
            // A plugin that quotes the runtime's words is still a policy.
            "authorization denied by plugin p: unable to apply caps",
        ] {
            assert_eq!(classify(message), Refusal::Policy, "{message}");
        }
    }

    #[test]
    fn anything_else_is_told_as_it_is() {
        assert_eq!(classify("no such image"), Refusal::Other);
        assert_eq!(classify(""), Refusal::Other);
    }

    #[test]
    fn choices_read_as_typed() {
        assert_eq!(SecurityChoice::parse("rootless").unwrap(), SecurityChoice::Rootless);
        assert_eq!(SecurityChoice::parse(" auto ").unwrap(), SecurityChoice::Auto);
        assert_eq!(SecurityChoice::parse("capabilities").unwrap(), SecurityChoice::Capabilities);
        let bad = SecurityChoice::parse("root").unwrap_err();
        assert_eq!(bad.to_string(), "--security \"root\" is not a mode; give auto, capabilities or rootless");
    }
}
