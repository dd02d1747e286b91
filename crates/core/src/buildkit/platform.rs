//! Platforms as BuildKit and buildx name them (`os/arch[/variant]`), read by containerd's rules
//! (containerd/platforms `Parse` and `Normalize`, which buildx and the Dockerfile frontend use):
//! `aarch64` and `linux/arm64/v8` are `linux/arm64`, `armhf` and `linux/arm` are `linux/arm/v7`, a
//! bare architecture is Linux's, and case does not count. And which platforms a BuildKit daemon
//! builds for: natively (its workers' list: what the kernel runs, probed by BuildKit's
//! util/archutil) or through an emulator (`buildkit-qemu-<arch>` in buildkitd's PATH, which
//! BuildKit mounts into a step of a platform the kernel cannot run: solver/llbsolver/ops
//! exec_binfmt.go `getEmulator`). ListWorkers names only the first kind, so the emulators are
//! looked for in the daemon's container ([`emulators`]).
use std::fmt;

use bollard::{
    container::LogOutput,
    exec::{CreateExecOptions, StartExecOptions, StartExecResults},
    Docker,
};
use futures_util::StreamExt;
use serde::Serialize;

use crate::buildkit::Worker;

/// A platform, normalized: `linux/arm64`, `linux/arm/v7`, `linux/amd64/v2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// `linux`, `windows`, …
    pub os: String,
    /// GOARCH's name: `amd64`, `arm64`, `arm`, `386`, `riscv64`, …
    pub architecture: String,
    /// `v7`, `v2`, …; empty when none.
    pub variant: String,
}

impl Platform {
    /// Reads `os/arch[/variant]`, or an architecture alone (Linux's), or an OS alone (this
    /// machine's architecture), as containerd does; `None` when it is not a platform's shape.
    pub fn parse(text: &str) -> Option<Platform> {
        let parts: Vec<&str> = text.trim().split('/').collect();
        let specifier = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if parts.is_empty() || parts.len() > 3 || !parts.iter().all(specifier) {
            return None;
        }
        let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
        let (os, architecture, variant) = match lower.as_slice() {
            [one] if is_known_os(one) => (one.clone(), local_architecture().0, local_architecture().1),
            [one] => ("linux".to_string(), one.clone(), String::new()),
            [os, architecture] => (os.clone(), architecture.clone(), String::new()),
            [os, architecture, variant] => (os.clone(), architecture.clone(), variant.clone()),
            _ => return None,
        };
        let (architecture, variant) = normalize_architecture(&architecture, &variant);
        let os = if os == "macos" { "darwin".to_string() } else { os };
        Some(Platform { os, architecture, variant })
    }

    /// This machine's platform (what buildx calls `local`).
    pub fn local() -> Platform {
        let (architecture, variant) = local_architecture();
        Platform { os: "linux".into(), architecture, variant }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// Whether `name` is an operating system's, as GOOS names them (and `macos`).
pub fn is_os(name: &str) -> bool {
    is_known_os(&name.to_ascii_lowercase())
}

fn is_known_os(name: &str) -> bool {
    matches!(
        name,
        "aix"
            | "android"
            | "darwin"
            | "macos"
            | "dragonfly"
            | "freebsd"
            | "hurd"
            | "illumos"
            | "ios"
            | "js"
            | "linux"
            | "nacl"
            | "netbsd"
            | "openbsd"
            | "plan9"
            | "solaris"
            | "windows"
            | "zos"
    )
}

/// containerd's `normalizeArch`: the architecture's aliases and its default variant.
fn normalize_architecture(architecture: &str, variant: &str) -> (String, String) {
    let (architecture, variant) = match (architecture, variant) {
        ("i386", _) => ("386", ""),
        ("x86_64" | "x86-64" | "amd64", "v1") => ("amd64", ""),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v),
        ("aarch64" | "arm64", "8" | "v8" | "v8.0") => ("arm64", ""),
        ("aarch64" | "arm64", "9" | "9.0" | "v9.0") => ("arm64", "v9"),
        ("aarch64" | "arm64", v) => ("arm64", v),
        ("armhf", _) => ("arm", "v7"),
        ("armel", _) => ("arm", "v6"),
        ("arm", "" | "7") => ("arm", "v7"),
        ("arm", "5") => ("arm", "v5"),
        ("arm", "6") => ("arm", "v6"),
        ("arm", "8") => ("arm", "v8"),
        (a, v) => (a, v),
    };
    (architecture.to_string(), variant.to_string())
}

/// The architecture this program was built for, in GOARCH's words.
fn local_architecture() -> (String, String) {
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", ""),
        "aarch64" => ("arm64", ""),
        "arm" => ("arm", "v7"),
        "x86" => ("386", ""),
        "powerpc64" => ("ppc64le", ""),
        "loongarch64" => ("loong64", ""),
        other => (other, ""),
    };
    (architecture.to_string(), variant.to_string())
}

/// The platforms a BuildKit daemon's emulator runs, by its file name (`buildkit-qemu-aarch64`):
/// BuildKit looks one up as `buildkit-qemu-` and qemu's name for the architecture (its
/// `qemuArchMap`), or GOARCH's name where that map has none. A name BuildKit never looks up runs
/// nothing (`buildkit-qemu-mips64el`: BuildKit asks for `-mips64le`).
pub fn emulated_by(file_name: &str) -> Vec<Platform> {
    let Some(arch) = file_name.strip_prefix(EMULATOR_PREFIX) else { return Vec::new() };
    let platforms: &[(&str, &str)] = match arch {
        "aarch64" => &[("arm64", "")],
        "x86_64" => &[("amd64", "")],
        "i386" => &[("386", "")],
        "arm" => &[("arm", "v7"), ("arm", "v6")],
        "riscv64" | "s390x" | "ppc64le" | "ppc64" | "mips64le" | "mips64" | "loong64" => &[(arch, "")],
        _ => &[],
    };
    platforms
        .iter()
        .map(|(architecture, variant)| Platform {
            os: "linux".into(),
            architecture: architecture.to_string(),
            variant: variant.to_string(),
        })
        .collect()
}

/// What BuildKit's emulators are called, before qemu's name for the architecture.
pub const EMULATOR_PREFIX: &str = "buildkit-qemu-";

/// Lists the emulators BuildKit would find: the executable `buildkit-qemu-*` files in each folder
/// of the container's PATH (buildkitd's own), by a shell the image has (moby/buildkit's Alpine,
/// our busybox). Their file names, in PATH's order, each once.
pub async fn emulators(docker: &Docker, container: &str) -> crate::Result<Vec<String>> {
    const SCRIPT: &str = r#"IFS=:; for d in $PATH; do for f in "$d"/buildkit-qemu-*; do [ -f "$f" ] && [ -x "$f" ] && echo "${f##*/}"; done; done; exit 0"#;
    let described = |what: &str| format!("{what} a shell in {container} to list BuildKit's emulators");
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(vec!["sh", "-c", SCRIPT]),
                ..Default::default()
            },
        )
        .await
        .map_err(crate::Error::docker(described("running")))?;
    let started = docker
        .start_exec(&exec.id, Some(StartExecOptions::default()))
        .await
        .map_err(crate::Error::docker(described("attaching to")))?;
    let mut stdout = Vec::new();
    if let StartExecResults::Attached { mut output, .. } = started {
        while let Some(item) = output.next().await {
            if let Ok(LogOutput::StdOut { message }) = item {
                stdout.extend_from_slice(&message);
            }
        }
    }
    let mut names: Vec<String> = Vec::new();
    for line in String::from_utf8_lossy(&stdout).lines().map(str::trim) {
        if line.starts_with(EMULATOR_PREFIX) && !names.iter().any(|n| n == line) {
            names.push(line.to_string());
        }
    }
    Ok(names)
}

/// The platforms a BuildKit daemon builds for: those its workers list (the kernel runs them), then
/// those only its emulators run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Platforms {
    /// What the workers list, in their order: the kernel runs these (natively, or through a
    /// binfmt_misc registration on the host).
    pub native: Vec<String>,
    /// What BuildKit's emulators run and the kernel does not, in the emulators' order.
    pub emulated: Vec<String>,
}

/// One platform to offer, for a window's choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformChoice {
    /// `linux/arm64`.
    pub platform: String,
    /// Run by an emulator.
    pub emulated: bool,
    /// How a window shows it: `linux/arm64 (emulated)`.
    pub label: String,
}

impl Platforms {
    /// The workers' platforms, and the emulators' (by file name) that none of them lists.
    pub fn of(workers: &[Worker], emulator_names: &[String]) -> Self {
        let mut native: Vec<String> = Vec::new();
        for platform in workers.iter().flat_map(|w| &w.platforms) {
            let platform = Platform::parse(platform).map_or_else(|| platform.clone(), |p| p.to_string());
            if !native.contains(&platform) {
                native.push(platform);
            }
        }
        let mut emulated: Vec<String> = Vec::new();
        for platform in emulator_names.iter().flat_map(|name| emulated_by(name)).map(|p| p.to_string()) {
            if !native.contains(&platform) && !emulated.contains(&platform) {
                emulated.push(platform);
            }
        }
        Self { native, emulated }
    }

    /// Whether `platform` (normalized) is built here.
    pub fn builds(&self, platform: &Platform) -> bool {
        let text = platform.to_string();
        self.native.contains(&text) || self.emulated.contains(&text)
    }

    /// Whether `platform` is run by an emulator here.
    pub fn is_emulated(&self, platform: &str) -> bool {
        self.emulated.iter().any(|p| p == platform)
    }

    /// Every platform, native first, for a window to offer.
    pub fn choices(&self) -> Vec<PlatformChoice> {
        self.native.iter().chain(&self.emulated).map(|p| self.choice(p)).collect()
    }

    /// `platforms` as a sentence shows them, an emulated one marked: `linux/arm64 (emulated)`.
    pub fn labels(&self, platforms: &[String]) -> Vec<String> {
        platforms.iter().map(|p| self.choice(p).label).collect()
    }

    fn choice(&self, platform: &str) -> PlatformChoice {
        let emulated = self.is_emulated(platform);
        let label = if emulated { format!("{platform} (emulated)") } else { platform.to_string() };
        PlatformChoice { platform: platform.to_string(), emulated, label }
    }

    /// Refuses the first of `requested` (normalized, as the build plan keeps them) that is built
    /// neither natively nor by an emulator here, naming what is.
    pub fn check(&self, requested: &[String]) -> crate::Result<()> {
        for text in requested {
            let built = Platform::parse(text).is_some_and(|p| self.builds(&p));
            if !built {
                return Err(crate::buildkit::error::BuildkitError::UnsupportedPlatform {
                    platform: text.clone(),
                    native: self.native.join(", "),
                    emulated: if self.emulated.is_empty() { "none".into() } else { self.emulated.join(", ") },
                }
                .into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Option<String> {
        Platform::parse(text).map(|p| p.to_string())
    }

    #[test]
    fn platforms_are_read_as_containerd_reads_them() {
        for (typed, read) in [
            ("linux/amd64", "linux/amd64"),
            ("linux/AMD64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/amd64/v2", "linux/amd64/v2"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/aarch64", "linux/arm64"),
            ("arm64", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("linux/i386", "linux/386"),
            ("linux/riscv64", "linux/riscv64"),
            (" linux/s390x ", "linux/s390x"),
        ] {
            assert_eq!(parsed(typed).as_deref(), Some(read), "{typed}");
        }
        assert_eq!(parsed("linux"), Some(Platform::local().to_string()), "an OS alone is this machine's");
        for bad in ["", "linux/", "/amd64", "linux/amd 64", "a/b/c/d", "linux/amd64/"] {
            assert_eq!(parsed(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn emulators_run_the_platforms_buildkit_looks_them_up_for() {
        let names = |file: &str| emulated_by(file).iter().map(Platform::to_string).collect::<Vec<_>>();
        assert_eq!(names("buildkit-qemu-aarch64"), ["linux/arm64"]);
        assert_eq!(names("buildkit-qemu-arm"), ["linux/arm/v7", "linux/arm/v6"]);
        assert_eq!(names("buildkit-qemu-riscv64"), ["linux/riscv64"]);
        assert_eq!(names("buildkit-qemu-x86_64"), ["linux/amd64"]);
        assert!(names("buildkit-qemu-mips64el").is_empty(), "BuildKit asks for -mips64le");
        assert!(names("qemu-aarch64").is_empty());
    }

    fn worker(platforms: &[&str]) -> Worker {
        Worker {
            id: "w".into(),
            platforms: platforms.iter().map(|p| p.to_string()).collect(),
            emulated_platforms: Vec::new(),
            labels: Default::default(),
            buildkit_version: None,
        }
    }

    #[test]
    fn the_kernel_s_platforms_are_native_and_the_emulators_add_the_rest() {
        let emulators = ["buildkit-qemu-aarch64", "buildkit-qemu-x86_64", "buildkit-qemu-arm"].map(String::from);
        let platforms = Platforms::of(&[worker(&["linux/amd64", "linux/amd64/v2", "linux/386"])], &emulators);
        assert_eq!(platforms.native, ["linux/amd64", "linux/amd64/v2", "linux/386"]);
        assert_eq!(platforms.emulated, ["linux/arm64", "linux/arm/v7", "linux/arm/v6"], "amd64 is native already");
        assert!(platforms.is_emulated("linux/arm64") && !platforms.is_emulated("linux/amd64"));
        let choices = platforms.choices();
        assert_eq!(
            choices[0],
            PlatformChoice { platform: "linux/amd64".into(), emulated: false, label: "linux/amd64".into() }
        );
        assert_eq!(choices[3].label, "linux/arm64 (emulated)");
        assert_eq!(
            platforms.labels(&["linux/arm64".into(), "linux/386".into()]),
            ["linux/arm64 (emulated)", "linux/386"]
        );

        assert!(platforms.check(&["linux/amd64".into(), "linux/arm/v7".into()]).is_ok());
        let refused = platforms.check(&["linux/arm64".into(), "linux/s390x".into()]).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the backend cannot build for linux/s390x: it builds for linux/amd64, linux/amd64/v2, linux/386 natively, \
             and for linux/arm64, linux/arm/v7, linux/arm/v6 through its emulators"
        );
        let none = Platforms::of(&[worker(&["linux/amd64"])], &[]).check(&["linux/arm64".into()]).unwrap_err();
        assert!(none.to_string().ends_with("and for none through its emulators"), "{none}");
    }
}
