//! `assemble build`'s plan: what it builds (the project, its Dockerfile and its `.dockerignore`),
//! under which names, with which arguments, and where the result goes. Everything the user typed
//! is checked here, before a byte is sent; `--dry-run` prints the plan.
use std::path::{Path, PathBuf};

use crate::buildkit::{
    dockerignore::IgnoreRules,
    filesync::{self, SyncDir, TransferFilter},
};
use crate::{
    build::{
        dockerfile::BaseImages,
        project::{self, Project},
        ProjectKind,
    },
    error::{Error, Result},
    reference::check_image_name,
};

/// What the user asked for, as typed.
#[derive(Debug, Clone, Default)]
pub struct BuildInput {
    /// The folder to build (the context).
    pub context: PathBuf,
    /// `-f`: the Dockerfile, when not the context's own.
    pub dockerfile: Option<PathBuf>,
    /// `-t`: full image names.
    pub tags: Vec<String>,
    /// `--name`: the image's name without its tag, in place of the project's.
    pub name: Option<String>,
    /// `--push`: push the image to its registry.
    pub push: bool,
    /// `--load`: load the image into the engine the backend runs on.
    pub load: bool,
    /// `--build-arg`: `KEY=VALUE`, or `KEY` to take the value from the environment.
    pub build_args: Vec<String>,
    /// `--target`: the stage to build.
    pub target: Option<String>,
    /// `--platform`: `os/arch[/variant]`, comma-separated.
    pub platform: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`: base images from their registries, never the engine's (backend/mirror).
    pub pull: bool,
    /// `--build-image` and `--runtime-image`: the bases of a generated Dockerfile.
    pub build_image: Option<String>,
    /// See `build_image`.
    pub runtime_image: Option<String>,
    /// The base images chosen in the settings (the flags win over them).
    pub base_images: crate::backend::request::BaseImageChoices,
}

/// Where the built image goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Nowhere but the build cache (buildx says the same when given neither flag).
    CacheOnly,
    /// Pushed to its registry.
    Push,
    /// Loaded into the engine.
    Load,
    /// Both.
    PushAndLoad,
}

impl Output {
    /// The output in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Output::CacheOnly => {
                "the build cache only: no image is pushed or loaded (add --push or --load to get the image)"
            }
            Output::Push => "pushed to its registry",
            Output::Load => "loaded into the engine",
            Output::PushAndLoad => "pushed to its registry and loaded into the engine",
        }
    }
}

/// A checked build.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    /// The context folder.
    pub context: PathBuf,
    /// What it builds.
    pub project: Project,
    /// The image names (none: the result stays unnamed).
    pub names: Vec<String>,
    /// Where the result goes.
    pub output: Output,
    /// Build arguments, in the order given.
    pub build_args: Vec<(String, String)>,
    /// The stage to build.
    pub target: Option<String>,
    /// The platforms to build for.
    pub platforms: Vec<String>,
    /// Build without the cache.
    pub no_cache: bool,
    /// Base images from their registries only: fresh, and never the engine's own.
    pub pull: bool,
    /// The `.dockerignore` used, if any, and its rules.
    pub ignore_file: Option<PathBuf>,
    /// See `ignore_file`.
    pub ignore: IgnoreRules,
}

/// Image names typed in one field (the app's), separated by commas or spaces.
pub fn names_from_text(text: &str) -> Vec<String> {
    text.split([',', ' ', '\t', '\n']).map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect()
}

/// Checks `input` and finds the project; `env` gives environment variables (for `--build-arg KEY`).
pub fn plan(input: &BuildInput, env: impl Fn(&str) -> Option<String>) -> Result<BuildPlan> {
    for name in
        input.tags.iter().chain(input.name.iter()).chain(input.build_image.iter()).chain(input.runtime_image.iter())
    {
        check_image_name(name)?;
    }
    if let Some(name) = &input.name {
        let last = name.rsplit('/').next().unwrap_or(name);
        if last.contains(':') || name.contains('@') {
            return Err(Error::InvalidImageName {
                reference: name.clone(),
                reason:
                    "--name takes a name without a tag (the project's version is the tag; give a full name with -t)"
                        .into(),
            });
        }
    }
    let build_args = input
        .build_args
        .iter()
        .map(|arg| build_arg(arg, &env))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let platforms = match &input.platform {
        Some(list) => list.split(',').map(|p| platform(p.trim())).collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    // Only the bases of the kind found are replaced, so the project comes first.
    let probe = project::detect(&input.context, input.dockerfile.as_deref(), &BaseImages::default())?;
    let bases = BaseImages::chosen(&input.base_images).with_overrides(
        probe.kind,
        input.build_image.as_deref(),
        input.runtime_image.as_deref(),
    );
    let project =
        if probe.kind == ProjectKind::Dockerfile { probe } else { project::detect(&input.context, None, &bases)? };
    if project.kind == ProjectKind::Dockerfile && (input.build_image.is_some() || input.runtime_image.is_some()) {
        return Err(Error::BaseImageForADockerfile);
    }
    if let Some(target) = &input.target {
        let stages = stages(&project.dockerfile);
        if !stages.iter().any(|s| s.eq_ignore_ascii_case(target)) {
            return Err(Error::UnknownTarget {
                target: target.clone(),
                stages: if stages.is_empty() { "none is named".into() } else { stages.join(", ") },
            });
        }
    }
    let names = if !input.tags.is_empty() {
        input.tags.clone()
    } else {
        match (&input.name, &project.image) {
            (Some(name), Some(image)) => {
                vec![format!("{name}:{}", image.rsplit_once(':').map_or("latest", |(_, t)| t))]
            }
            (Some(name), None) => vec![format!("{name}:latest")],
            (None, Some(image)) => vec![image.clone()],
            (None, None) => Vec::new(),
        }
    };
    for name in &names {
        check_image_name(name)?;
    }
    if input.push && names.is_empty() {
        return Err(Error::PushNeedsAName);
    }
    let output = match (input.push, input.load) {
        (false, false) => Output::CacheOnly,
        (true, false) => Output::Push,
        (false, true) => Output::Load,
        (true, true) => Output::PushAndLoad,
    };
    let (ignore_file, ignore) = ignore_rules(&input.context, project.dockerfile_path.as_deref())?;
    Ok(BuildPlan {
        context: input.context.clone(),
        project,
        names,
        output,
        build_args,
        target: input.target.clone(),
        platforms,
        no_cache: input.no_cache,
        pull: input.pull,
        ignore_file,
        ignore,
    })
}

/// `KEY=VALUE`, or `KEY` with its value from the environment (left out when unset, as docker does).
fn build_arg(arg: &str, env: &impl Fn(&str) -> Option<String>) -> Result<Option<(String, String)>> {
    let (key, value) = match arg.split_once('=') {
        Some((key, value)) => (key, Some(value.to_string())),
        None => (arg, None),
    };
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(Error::InvalidBuildArg { arg: arg.to_string() });
    }
    Ok(value.or_else(|| env(key)).map(|value| (key.to_string(), value)))
}

/// `os/arch[/variant]` (or `arch`, or `local`, as buildx takes them), lower case.
fn platform(text: &str) -> Result<String> {
    let parts: Vec<&str> = text.split('/').collect();
    let valid = (1..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
    if valid {
        Ok(text.to_string())
    } else {
        Err(Error::InvalidPlatform { platform: text.to_string() })
    }
}

/// The names of a Dockerfile's stages (`FROM image AS name`), in order. An instruction may go on
/// over several lines, each but the last ending with `\`.
pub fn stages(dockerfile: &str) -> Vec<String> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        if current.is_empty() && line.trim_start().starts_with('#') {
            continue;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    instructions
        .iter()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let from = words.first().is_some_and(|w| w.eq_ignore_ascii_case("FROM"));
            let at = words.iter().position(|w| w.eq_ignore_ascii_case("AS"))?;
            (from && at + 1 < words.len()).then(|| words[at + 1].to_string())
        })
        .collect()
}

/// The `.dockerignore` BuildKit reads: `<Dockerfile>.dockerignore` beside the Dockerfile when
/// there is one, else the context's own.
fn ignore_rules(context: &Path, dockerfile: Option<&Path>) -> Result<(Option<PathBuf>, IgnoreRules)> {
    let beside = dockerfile.map(|d| {
        let mut name = d.as_os_str().to_owned();
        name.push(".dockerignore");
        PathBuf::from(name)
    });
    let candidates = beside.into_iter().chain(std::iter::once(context.join(".dockerignore")));
    for path in candidates {
        if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|err| Error::ProjectUnreadable {
                path: path.display().to_string(),
                reason: err.to_string(),
            })?;
            return Ok((Some(path.clone()), IgnoreRules::parse_file(&path.display().to_string(), &text)?));
        }
    }
    Ok((None, IgnoreRules::default()))
}

/// What the context sends: files and folders after the `.dockerignore`, and what it leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextSummary {
    /// Files (and links) sent.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Entries the `.dockerignore` leaves out (a folder left out counts once).
    pub left_out: u64,
}

/// The context as a build sends it: walked by the transfer's own walker, with the exclude patterns
/// BuildKit asks it for (the `.dockerignore`'s), so that it refuses what a build refuses, with the
/// same sentence, and counts what a build sends.
pub fn summarize(plan: &BuildPlan) -> Result<ContextSummary> {
    let filter = TransferFilter { exclude: plan.ignore.patterns(), ..Default::default() };
    let walk = filesync::walk_counting(&SyncDir::Folder(plan.context.clone()), &filter)?;
    let sent = walk.entries.iter().filter(|entry| !entry.is_dir());
    Ok(ContextSummary {
        files: sent.clone().count() as u64,
        bytes: sent.filter(|entry| entry.has_contents()).map(|entry| u64::try_from(entry.stat.size).unwrap_or(0)).sum(),
        left_out: walk.left_out,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn names_typed_in_one_field_split_on_commas_and_spaces() {
        assert_eq!(names_from_text(" a:1, b:2  c\n"), ["a:1", "b:2", "c"]);
        assert!(names_from_text(" , ").is_empty());
    }

    use super::*;

    fn context(files: &[(&str, &str)]) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "assemble-plan-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        for (path, text) in files {
            let full = dir.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        dir
    }

    fn input(dir: &Path) -> BuildInput {
        BuildInput { context: dir.to_path_buf(), ..Default::default() }
    }

    const DOCKERFILE: &str = "FROM busybox AS base\nRUN true\nFROM base as final\n";

    #[test]
    fn a_dockerfile_build_with_names_args_and_a_target() {
        let dir = context(&[
            ("Dockerfile", DOCKERFILE),
            (".dockerignore", "secret\n"),
            ("secret", "x"),
            ("sub/a.txt", "hello"),
        ]);
        let mut i = input(&dir);
        i.tags = vec!["localhost:5000/app:1".into()];
        i.push = true;
        i.build_args = vec!["A=1".into(), "FROM_ENV".into(), "UNSET".into()];
        i.target = Some("FINAL".into());
        i.platform = Some("linux/amd64, linux/arm64/v8".into());
        let plan = plan(&i, |k| (k == "FROM_ENV").then(|| "yes".to_string())).unwrap();
        assert_eq!(plan.names, ["localhost:5000/app:1"]);
        assert_eq!(
            stages("# c\nFROM --platform=$BUILDPLATFORM \\\n  golang AS build\nFROM scratch as out\n"),
            ["build", "out"]
        );
        assert_eq!(plan.output, Output::Push);
        assert_eq!(plan.build_args, [("A".into(), "1".into()), ("FROM_ENV".into(), "yes".into())]);
        assert_eq!(plan.platforms, ["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(plan.ignore_file, Some(dir.join(".dockerignore")));
        let summary = summarize(&plan).unwrap();
        assert_eq!(
            summary,
            ContextSummary { files: 3, bytes: (DOCKERFILE.len() + "secret\n".len() + 5) as u64, left_out: 1 }
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn each_bad_input_is_one_sentence() {
        let dir = context(&[("Dockerfile", DOCKERFILE)]);
        let refuse = |change: &dyn Fn(&mut BuildInput)| {
            let mut i = input(&dir);
            change(&mut i);
            plan(&i, |_| None).unwrap_err()
        };
        assert!(matches!(refuse(&|i| i.tags = vec!["Bad:Tag".into()]), Error::InvalidImageName { .. }));
        assert!(matches!(refuse(&|i| i.push = true), Error::PushNeedsAName));
        assert!(matches!(refuse(&|i| i.build_args = vec!["=1".into()]), Error::InvalidBuildArg { .. }));
        assert!(matches!(refuse(&|i| i.platform = Some("linux/AMD64".into())), Error::InvalidPlatform { .. }));
        assert!(matches!(refuse(&|i| i.name = Some("app:1".into())), Error::InvalidImageName { .. }));
        assert!(matches!(refuse(&|i| i.build_image = Some("golang".into())), Error::BaseImageForADockerfile));
        let err = refuse(&|i| i.target = Some("test".into()));
        assert!(err.to_string().contains("base, final"), "{err}");
        assert!(matches!(refuse(&|i| i.dockerfile = Some(dir.join("Nope"))), Error::DockerfileMissing { .. }));
        assert!(matches!(refuse(&|i| i.context = dir.join("absent")), Error::ContextNotAFolder { .. }));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_dockerfile_s_own_ignore_file_wins_and_exceptions_reach_into_folders() {
        let dir = context(&[
            ("build/Dockerfile", DOCKERFILE),
            ("build/Dockerfile.dockerignore", "logs\n!logs/keep.log\n"),
            (".dockerignore", "*\n"),
            ("logs/a.log", "a"),
            ("logs/keep.log", "k"),
        ]);
        let mut i = input(&dir);
        i.dockerfile = Some(dir.join("build/Dockerfile"));
        let plan = plan(&i, |_| None).unwrap();
        assert_eq!(plan.ignore_file, Some(dir.join("build/Dockerfile.dockerignore")));
        assert_eq!(plan.output, Output::CacheOnly);
        assert!(plan.names.is_empty());
        let summary = summarize(&plan).unwrap();
        assert_eq!((summary.files, summary.left_out), (4, 1), "{summary:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// What the transfer itself sends of `plan`'s context, asked as BuildKit asks (the exclude
    /// patterns of the `.dockerignore`): the entries, or the sentence it refuses with.
    fn transfer(plan: &BuildPlan) -> std::result::Result<Vec<filesync::WalkedEntry>, String> {
        let filter = TransferFilter { exclude: plan.ignore.patterns(), ..Default::default() };
        filesync::walk(&SyncDir::Folder(plan.context.clone()), &filter).map_err(|e| e.to_string())
    }

    #[test]
    fn the_dry_run_refuses_and_counts_exactly_what_the_transfer_refuses_and_sends() {
        use std::os::unix::ffi::OsStrExt;
        let dir = context(&[("Dockerfile", DOCKERFILE), ("sub/a.txt", "hello")]);
        // A socket (a dev server's, say): the transfer cannot send one and leaves it out; so does
        // the dry run, which neither counts it as a file nor refuses it.
        let _socket = std::os::unix::net::UnixListener::bind(dir.join("sub/app.sock")).unwrap();
        std::os::unix::fs::symlink("a.txt", dir.join("sub/link")).unwrap();
        let plan = plan(&input(&dir), |_| None).unwrap();
        let summary = summarize(&plan).unwrap();
        let sent = transfer(&plan).unwrap();
        assert!(!sent.iter().any(|e| e.stat.path.ends_with("app.sock")), "the transfer leaves the socket out");
        let files: Vec<&str> = sent.iter().filter(|e| !e.is_dir()).map(|e| e.stat.path.as_str()).collect();
        assert_eq!(files, ["Dockerfile", "sub/a.txt", "sub/link"]);
        let bytes = (DOCKERFILE.len() + "hello".len()) as u64;
        assert_eq!(summary, ContextSummary { files: 3, bytes, left_out: 0 }, "a link's target is not sent");

        // A name that is not UTF-8: both refuse it, with the same sentence.
        std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b"sub/caf\xe9.txt")), "x").unwrap();
        let refused = summarize(&plan).unwrap_err();
        assert!(matches!(refused, Error::ContextNameNotUtf8 { .. }), "{refused:?}");
        assert_eq!(Err(refused.to_string()), transfer(&plan).map(|_| ()));

        // Left out by the .dockerignore, it is neither refused nor sent, and counted as left out.
        std::fs::write(dir.join(".dockerignore"), "sub/caf*\n").unwrap();
        let plan = super::plan(&input(&dir), |_| None).unwrap();
        let summary = summarize(&plan).unwrap();
        let sent = transfer(&plan).unwrap();
        assert_eq!(sent.iter().filter(|e| !e.is_dir()).count() as u64, summary.files);
        assert_eq!((summary.files, summary.left_out), (4, 1), "{summary:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_project_s_name_can_be_replaced_and_keeps_its_version() {
        let pom =
            "<project><parent><artifactId>spring-boot-starter-parent</artifactId><version>3.3.5</version></parent>\
                   <artifactId>shop</artifactId><version>2.1</version></project>";
        let dir = context(&[("pom.xml", pom)]);
        let mut i = input(&dir);
        assert_eq!(plan(&i, |_| None).unwrap().names, ["shop:2.1"]);
        i.name = Some("localhost:5000/team/shop".into());
        // The settings' choices replace ours; a flag replaces the settings'.
        i.base_images.maven = Some("localhost:5000/settings-maven:3".into());
        i.base_images.java_runtime = Some("localhost:5000/settings-jre:21".into());
        i.build_image = Some("localhost:5000/maven:3".into());
        let plan = plan(&i, |_| None).unwrap();
        assert_eq!(plan.names, ["localhost:5000/team/shop:2.1"]);
        assert!(plan.project.dockerfile.contains("FROM localhost:5000/maven:3 AS build"));
        assert!(plan.project.dockerfile.contains("FROM localhost:5000/settings-jre:21\n"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
