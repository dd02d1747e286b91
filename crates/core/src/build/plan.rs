//! `assemble build`'s plan: what it builds (the project, its Dockerfile and its `.dockerignore`),
//! under which names, with which arguments, and where the result goes. Everything the user typed
//! is checked here, before a byte is sent; `--dry-run` prints the plan.
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::buildkit::{
    dockerignore::IgnoreRules,
    filesync::{self, SyncDir, TransferFilter},
    platform::Platform,
};
use crate::{
    build::{
        attrs, call,
        dockerfile::BaseImages,
        error::BuildError,
        project::{self, DockerfileSource, Project},
        stdin::{self, StdinContent, UnpackedContext},
        ProjectKind,
    },
    reference::{check_image_name, ReferenceError},
    Result,
};

/// What the user asked for, as typed.
#[derive(Debug, Clone, Default)]
pub struct BuildInput {
    /// PATH as typed: a folder, a git or HTTP(S) URL, or `-` (standard input: a tar of the context,
    /// or a Dockerfile and no context).
    pub context: PathBuf,
    /// `-f`: the Dockerfile, when not the context's own (`-`: standard input).
    pub dockerfile: Option<PathBuf>,
    /// Standard input, read by the caller when [`BuildInput::reads_stdin`] says so; `None` when it
    /// has none to give (a terminal).
    pub stdin: Option<Vec<u8>>,
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
    /// `--build-image` and `--runtime-image`: the bases of a generated Dockerfile.
    pub build_image: Option<String>,
    /// See `build_image`.
    pub runtime_image: Option<String>,
    /// The base images chosen in the settings (the flags win over them).
    pub base_images: crate::backend::request::BaseImageChoices,
    /// `--secret`, as buildx takes it (`id=ID[,src=FILE|,env=VAR]`).
    pub secrets: Vec<String>,
    /// `--ssh`, as buildx takes it (`default|ID[=SOCKET|KEY[,KEY…]]`).
    pub ssh: Vec<String>,
    /// `-o/--output`, as buildx takes it.
    pub outputs: Vec<String>,
    /// Our standard output is a terminal (a tar is not written to one).
    pub stdout_is_terminal: bool,
    /// The solve's other options as typed (caches, labels, attestations, network, contexts).
    pub solve: attrs::SolveInput,
    /// `--call` (`--check` is `--call check`): a question for the frontend instead of a build.
    pub call: Option<String>,
}

impl BuildInput {
    /// Whether PATH or `-f` is `-`, so the caller reads standard input into `stdin`.
    pub fn reads_stdin(&self) -> bool {
        self.context == Path::new("-") || self.dockerfile.as_deref() == Some(Path::new("-"))
    }
}

/// Where a build's files come from.
#[derive(Debug, Clone)]
pub enum BuildContext {
    /// A folder here, sent through the session.
    Folder(PathBuf),
    /// A tar from standard input, unpacked into a folder of ours and sent like a folder.
    Unpacked(Arc<UnpackedContext>),
    /// A git repository or an HTTP(S) URL (a tar, or a Dockerfile), which the backend fetches: the
    /// Dockerfile frontend's `context`, as buildx sends it.
    Remote(String),
    /// None: `-` as PATH with a Dockerfile on standard input.
    Empty,
}

impl BuildContext {
    /// The folder sent, when the context is one.
    pub fn folder(&self) -> Option<&Path> {
        match self {
            BuildContext::Folder(path) => Some(path),
            BuildContext::Unpacked(unpacked) => Some(unpacked.path()),
            BuildContext::Remote(_) | BuildContext::Empty => None,
        }
    }

    /// The context in words.
    pub fn describe(&self) -> String {
        match self {
            BuildContext::Folder(path) => path.display().to_string(),
            BuildContext::Unpacked(_) => "the tar on standard input".into(),
            BuildContext::Remote(url) => format!("{url} (the backend fetches it)"),
            BuildContext::Empty => "none (the Dockerfile came on standard input)".into(),
        }
    }
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
    /// Where the build's files come from.
    pub context: BuildContext,
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
    /// The platforms to build for, normalized (`linux/arm64`), each once; none: the backend's own.
    pub platforms: Vec<String>,
    /// Build without the cache.
    pub no_cache: bool,
    /// The `.dockerignore` used, if any, and its rules.
    pub ignore_file: Option<PathBuf>,
    /// See `ignore_file`.
    pub ignore: IgnoreRules,
    /// The secrets offered, by ID (where each value is read; never the value).
    pub secrets: crate::buildkit::secrets::SecretStore,
    /// The ssh agents offered, by ID.
    pub ssh: crate::buildkit::ssh::SshAgents,
    /// The `-o` outputs, after the push and load ones.
    pub outputs: Vec<crate::build::outputs::OutputSpec>,
    /// The solve's other options, checked.
    pub solve: attrs::SolveOptions,
    /// A question for the frontend instead of a build (`--call`, `--check`).
    pub call: Option<call::Call>,
}

/// Image names typed in one field (the app's), separated by commas or spaces.
pub fn names_from_text(text: &str) -> Vec<String> {
    text.split([',', ' ', '\t', '\n']).map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect()
}

/// Checks `input` and finds the project; `env` gives environment variables (for `--build-arg KEY`).
pub fn plan(input: &BuildInput, env: impl Fn(&str) -> Option<String>) -> Result<BuildPlan> {
    for name in input.tags.iter().chain(input.name.iter()) {
        check_image_name(name).map_err(BuildError::InvalidName)?;
    }
    for image in input.build_image.iter().chain(input.runtime_image.iter()) {
        check_image_name(image)?;
    }
    if let Some(name) = &input.name {
        let last = name.rsplit('/').next().unwrap_or(name);
        if last.contains(':') || name.contains('@') {
            return Err(BuildError::InvalidName(ReferenceError {
                reference: name.clone(),
                reason:
                    "--name takes a name without a tag (the project's version is the tag; give a full name with -t)"
                        .into(),
            })
            .into());
        }
    }
    let build_args: Vec<(String, String)> = input
        .build_args
        .iter()
        .map(|arg| build_arg(arg, &env))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let mut platforms: Vec<String> = Vec::new();
    for typed in input.platform.iter().flat_map(|list| list.split(',')) {
        let platform = platform(typed.trim())?;
        if !platforms.contains(&platform) {
            platforms.push(platform);
        }
    }
    let (context, project) = context_and_project(input)?;
    if project.kind == ProjectKind::Dockerfile && (input.build_image.is_some() || input.runtime_image.is_some()) {
        return Err(BuildError::BaseImageForADockerfile.into());
    }
    // A Dockerfile in a remote context is read by the backend alone: the frontend checks the target.
    let dockerfile_known = !matches!(project.dockerfile_source, DockerfileSource::InRemoteContext(_));
    if let Some(target) = input.target.as_ref().filter(|_| dockerfile_known) {
        let stages = stages(&project.dockerfile);
        if !stages.iter().any(|s| s.eq_ignore_ascii_case(target)) {
            return Err(BuildError::UnknownTarget {
                target: target.clone(),
                stages: if stages.is_empty() { "none is named".into() } else { stages.join(", ") },
            }
            .into());
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
        check_image_name(name).map_err(BuildError::InvalidName)?;
    }
    if input.push && names.is_empty() {
        return Err(BuildError::PushNeedsAName.into());
    }
    let output = match (input.push, input.load) {
        (false, false) => Output::CacheOnly,
        (true, false) => Output::Push,
        (false, true) => Output::Load,
        (true, true) => Output::PushAndLoad,
    };
    // The engine's image store takes one image, not an index: refused whole, never loaded in part
    // (buildx's sentence, and the ways out).
    if input.load && platforms.len() > 1 {
        return Err(BuildError::LoadOfSeveralPlatforms { platforms: platforms.join(", ") }.into());
    }
    let (ignore_file, ignore) = match context.folder() {
        Some(folder) => {
            let beside = match &project.dockerfile_source {
                DockerfileSource::File(path) => Some(path.as_path()),
                _ => None,
            };
            ignore_rules(folder, beside)?
        }
        None => (None, IgnoreRules::default()),
    };
    let secrets = crate::build::session_flags::secrets(&input.secrets, &env)?;
    let ssh = crate::build::session_flags::ssh(&input.ssh, &env)?;
    let outputs = crate::build::outputs::outputs(&input.outputs, &names, platforms.len(), input.stdout_is_terminal)?;
    let solve = attrs::check(&input.solve, &build_args, output != Output::CacheOnly, &env)?;
    let call = input.call.as_deref().map(call::parse).transpose()?.flatten();
    if let Some(call) = &call {
        let refuse = |what, what_flag| BuildError::CallWithOutput { call: call.name(), what, what_flag };
        if input.push || input.load {
            return Err(refuse("push or load", "--push and --load").into());
        }
        if !outputs.is_empty() {
            return Err(refuse("write", "-o").into());
        }
    }
    Ok(BuildPlan {
        context,
        project,
        names,
        output,
        build_args,
        target: input.target.clone(),
        platforms,
        no_cache: input.no_cache,
        ignore_file,
        ignore,
        secrets,
        ssh,
        outputs,
        solve,
        call,
    })
}

/// PATH and `-f` as buildx reads them: where the files come from, and what they build.
fn context_and_project(input: &BuildInput) -> Result<(BuildContext, Project)> {
    let dockerfile_on_stdin = input.dockerfile.as_deref() == Some(Path::new("-"));
    let typed = input.context.to_string_lossy();
    if typed == "-" {
        if dockerfile_on_stdin {
            return Err(BuildError::StdinTwice.into());
        }
        let bytes = stdin_bytes(input, "PATH -", "assemble build - < Dockerfile")?;
        return match stdin::context_or_dockerfile(bytes)? {
            StdinContent::Dockerfile(_) if input.dockerfile.is_some() => Err(BuildError::TwoDockerfiles.into()),
            StdinContent::Dockerfile(text) => Ok((BuildContext::Empty, project::from_text(text))),
            StdinContent::Context(unpacked) => {
                // `-f` names a file inside the tar, as BuildKit reads it from the uploaded context.
                let dockerfile = input.dockerfile.as_ref().map(|path| unpacked.path().join(path));
                let project = detect_in_folder(unpacked.path(), dockerfile.as_deref(), input)?;
                Ok((BuildContext::Unpacked(Arc::new(unpacked)), project))
            }
        };
    }
    let from_stdin = if dockerfile_on_stdin {
        let bytes = stdin_bytes(input, "-f -", "assemble build -f - . < Dockerfile")?;
        Some(project::from_text(stdin::dockerfile(bytes)?))
    } else {
        None
    };
    if attrs::is_remote_url(&typed) {
        // As buildx: a relative -f lies in the remote context, an absolute one is a file here.
        let project = match (from_stdin, input.dockerfile.as_deref()) {
            (Some(project), _) => project,
            (None, Some(path)) if path.is_absolute() => project::named_dockerfile(path)?,
            (None, path) => project::in_remote_context(&path.map_or("Dockerfile".into(), |p| p.display().to_string())),
        };
        return Ok((BuildContext::Remote(typed.into_owned()), project));
    }
    let folder = input.context.clone();
    let project = match from_stdin {
        Some(_) if !folder.is_dir() => {
            return Err(BuildError::ContextNotAFolder { path: folder.display().to_string() }.into())
        }
        Some(project) => project,
        None => detect_in_folder(&folder, input.dockerfile.as_deref(), input)?,
    };
    Ok((BuildContext::Folder(folder), project))
}

/// What a folder builds, with the base images the settings and flags choose for a project without
/// a Dockerfile.
fn detect_in_folder(folder: &Path, dockerfile: Option<&Path>, input: &BuildInput) -> Result<Project> {
    // Only the bases of the kind found are replaced, so the project comes first.
    let probe = project::detect(folder, dockerfile, &BaseImages::default())?;
    if probe.kind == ProjectKind::Dockerfile {
        return Ok(probe);
    }
    let bases = BaseImages::chosen(&input.base_images).with_overrides(
        probe.kind,
        input.build_image.as_deref(),
        input.runtime_image.as_deref(),
    );
    project::detect(folder, None, &bases)
}

/// Standard input for `flag`, which must hold something.
fn stdin_bytes<'a>(input: &'a BuildInput, flag: &'static str, example: &'static str) -> Result<&'a [u8]> {
    match input.stdin.as_deref() {
        None => Err(BuildError::StdinEmpty { flag, why: "it is a terminal", example }.into()),
        Some([]) => Err(BuildError::StdinEmpty { flag, why: "it is empty", example }.into()),
        Some(bytes) => Ok(bytes),
    }
}

/// `KEY=VALUE`, or `KEY` with its value from the environment (left out when unset, as docker does).
fn build_arg(arg: &str, env: &impl Fn(&str) -> Option<String>) -> Result<Option<(String, String)>> {
    let (key, value) = match arg.split_once('=') {
        Some((key, value)) => (key, Some(value.to_string())),
        None => (arg, None),
    };
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(BuildError::InvalidBuildArg { arg: arg.to_string() }.into());
    }
    Ok(value.or_else(|| env(key)).map(|value| (key.to_string(), value)))
}

/// `os/arch[/variant]` (or `arch`, or `local` for this machine's, as buildx takes them), normalized
/// as containerd does (`linux/arm64/v8` is `linux/arm64`, `linux/arm` is `linux/arm/v7`).
fn platform(text: &str) -> Result<String> {
    let platform = if text.eq_ignore_ascii_case("local") { Some(Platform::local()) } else { Platform::parse(text) };
    platform.map(|p| p.to_string()).ok_or_else(|| BuildError::InvalidPlatform { platform: text.to_string() }.into())
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
            let text = std::fs::read_to_string(&path).map_err(|err| BuildError::ProjectUnreadable {
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
    let Some(folder) = plan.context.folder() else {
        return Ok(ContextSummary::default());
    };
    let walk = filesync::walk_counting(&SyncDir::Folder(folder.to_path_buf()), &filter)?;
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
    use crate::buildkit::error::BuildkitError;
    use crate::Error;

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
    fn standard_input_is_the_dockerfile_or_the_context_as_buildx_reads_it() {
        let dir = context(&[("Dockerfile", "FROM scratch AS own\n"), (".dockerignore", "x\n")]);
        let stdin = |context: &str, dockerfile: Option<&str>, bytes: Option<&[u8]>| BuildInput {
            context: context.into(),
            dockerfile: dockerfile.map(PathBuf::from),
            stdin: bytes.map(<[u8]>::to_vec),
            ..Default::default()
        };
        // `-`: a Dockerfile and no context.
        let piped = plan(&stdin("-", None, Some(b"FROM scratch AS piped\n")), |_| None).unwrap();
        assert!(matches!(piped.context, BuildContext::Empty) && piped.ignore_file.is_none());
        assert_eq!(piped.project.dockerfile_source, DockerfileSource::StandardInput);
        assert_eq!(stages(&piped.project.dockerfile), ["piped"]);
        // `-f -` with a folder: the folder's .dockerignore, standard input's Dockerfile.
        let folder = dir.display().to_string();
        let with_folder = plan(&stdin(&folder, Some("-"), Some(b"FROM scratch AS piped\n")), |_| None).unwrap();
        assert_eq!(with_folder.context.folder(), Some(dir.as_path()));
        assert_eq!(with_folder.ignore_file, Some(dir.join(".dockerignore")));
        assert_eq!(with_folder.project.dockerfile, "FROM scratch AS piped\n");
        // A tar: unpacked, its own Dockerfile (or the one -f names inside it); removed with the plan.
        let tar =
            stdin::tar_of(&[("Dockerfile", "FROM scratch AS tarred\n"), ("sub/Other", "FROM scratch AS other\n")]);
        let tarred = plan(&stdin("-", None, Some(&tar)), |_| None).unwrap();
        let unpacked = tarred.context.folder().unwrap().to_path_buf();
        assert_eq!(stages(&tarred.project.dockerfile), ["tarred"]);
        assert_eq!(summarize(&tarred).unwrap().files, 2);
        let other = plan(&stdin("-", Some("sub/Other"), Some(&tar)), |_| None).unwrap();
        assert_eq!(stages(&other.project.dockerfile), ["other"]);
        drop((tarred, other));
        assert!(!unpacked.exists(), "the unpacked context goes with its plan");

        let refused = |input: BuildInput| plan(&input, |_| None).unwrap_err().to_string();
        assert!(refused(stdin("-", Some("-"), Some(b"FROM scratch\n")))
            .starts_with("standard input can be the build context"));
        assert_eq!(
            refused(stdin("-", None, None)),
            "PATH - reads standard input, but it is a terminal; pipe it in, for example: assemble build - < Dockerfile"
        );
        assert_eq!(
            refused(stdin(&folder, Some("-"), Some(b""))),
            "-f - reads standard input, but it is empty; pipe it in, for example: assemble build -f - . < Dockerfile"
        );
        assert!(refused(stdin("-", Some("Dockerfile"), Some(b"FROM scratch\n")))
            .starts_with("standard input holds a Dockerfile and -f names another"));
        assert!(refused(stdin("/nowhere", Some("-"), Some(b"FROM scratch\n"))).starts_with("/nowhere is not a folder"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_call_builds_nothing_so_outputs_are_refused() {
        let dir = context(&[("Dockerfile", "FROM scratch\n")]);
        let with = |change: &dyn Fn(&mut BuildInput)| {
            let mut i = BuildInput { call: Some("check".into()), ..input(&dir) };
            change(&mut i);
            plan(&i, |_| None)
        };
        assert_eq!(with(&|_| {}).unwrap().call.map(|c| c.request_id()), Some("frontend.lint"));
        assert_eq!(with(&|i| i.call = Some("build".into())).unwrap().call, None);
        let said = |change: &dyn Fn(&mut BuildInput)| with(change).unwrap_err().to_string();
        assert!(said(&|i| i.load = true).ends_with("drop --push and --load"));
        assert!(said(&|i| i.outputs = vec!["type=local,dest=/tmp/x".into()]).ends_with("to write; drop -o"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_url_is_a_remote_context_that_the_backend_reads() {
        let remote = |dockerfile: Option<&str>| BuildInput {
            context: "https://example.com/app.tar".into(),
            dockerfile: dockerfile.map(PathBuf::from),
            target: Some("any".into()),
            ..Default::default()
        };
        let plan_of = |input: BuildInput| plan(&input, |_| None).unwrap();
        let default = plan_of(remote(None));
        assert!(matches!(&default.context, BuildContext::Remote(url) if url == "https://example.com/app.tar"));
        assert_eq!(default.project.dockerfile_source, DockerfileSource::InRemoteContext("Dockerfile".into()));
        assert_eq!(default.target.as_deref(), Some("any"), "the frontend checks the stage, as it reads the file");
        assert_eq!(
            plan_of(remote(Some("sub/Dockerfile.dev"))).project.dockerfile_source,
            DockerfileSource::InRemoteContext("sub/Dockerfile.dev".into())
        );
        let dir = context(&[("Dockerfile.here", "FROM scratch AS any\n")]);
        let here = dir.join("Dockerfile.here");
        let local = plan_of(remote(Some(here.to_str().unwrap())));
        assert_eq!(local.project.dockerfile_source, DockerfileSource::File(here), "an absolute -f is a file here");
        for git in ["git@example.com:app.git", "github.com/moby/buildkit", "git://example.com/app"] {
            let input = BuildInput { context: git.into(), ..Default::default() };
            assert!(matches!(plan_of(input).context, BuildContext::Remote(_)), "{git}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

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
        i.platform = Some("linux/amd64, linux/arm64/v8,linux/aarch64".into());
        let plan = plan(&i, |k| (k == "FROM_ENV").then(|| "yes".to_string())).unwrap();
        assert_eq!(plan.names, ["localhost:5000/app:1"]);
        assert_eq!(
            stages("# c\nFROM --platform=$BUILDPLATFORM \\\n  golang AS build\nFROM scratch as out\n"),
            ["build", "out"]
        );
        assert_eq!(plan.output, Output::Push);
        assert_eq!(plan.build_args, [("A".into(), "1".into()), ("FROM_ENV".into(), "yes".into())]);
        assert_eq!(plan.platforms, ["linux/amd64", "linux/arm64"], "normalized, each once");
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
        assert!(matches!(refuse(&|i| i.tags = vec!["Bad:Tag".into()]), Error::Build(BuildError::InvalidName(_))));
        assert!(matches!(refuse(&|i| i.push = true), Error::Build(BuildError::PushNeedsAName)));
        assert!(matches!(
            refuse(&|i| i.build_args = vec!["=1".into()]),
            Error::Build(BuildError::InvalidBuildArg { .. })
        ));
        for platform in ["linux/amd 64", "linux/amd64,"] {
            assert!(
                matches!(
                    refuse(&|i| i.platform = Some(platform.into())),
                    Error::Build(BuildError::InvalidPlatform { .. })
                ),
                "{platform}"
            );
        }
        let several = refuse(&|i| {
            i.load = true;
            i.platform = Some("linux/amd64,linux/arm64".into());
        });
        assert_eq!(
            several.to_string(),
            "docker exporter does not currently support exporting manifest lists: --load takes one platform (asked: \
             linux/amd64, linux/arm64); push the platforms as one image with --push instead, or give --platform one of \
             them"
        );
        assert_eq!(
            several.sentence(crate::error::Place::App),
            "docker exporter does not currently support exporting manifest lists: Load into the engine takes one \
             platform (asked: linux/amd64, linux/arm64); choose Push instead to push them as one image, or choose one \
             platform"
        );
        assert_eq!(several.build_field(), Some("platforms"));
        assert!(matches!(refuse(&|i| i.name = Some("app:1".into())), Error::Build(BuildError::InvalidName(_))));
        assert!(matches!(
            refuse(&|i| i.build_image = Some("golang".into())),
            Error::Build(BuildError::BaseImageForADockerfile)
        ));
        let err = refuse(&|i| i.target = Some("test".into()));
        assert!(err.to_string().contains("base, final"), "{err}");
        assert!(matches!(
            refuse(&|i| i.dockerfile = Some(dir.join("Nope"))),
            Error::Build(BuildError::DockerfileMissing { .. })
        ));
        assert!(matches!(
            refuse(&|i| i.context = dir.join("absent")),
            Error::Build(BuildError::ContextNotAFolder { .. })
        ));
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
        let folder = plan.context.folder().expect("a folder context").to_path_buf();
        filesync::walk(&SyncDir::Folder(folder), &filter).map_err(|e| e.to_string())
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
        assert!(matches!(refused, Error::Buildkit(BuildkitError::ContextNameNotUtf8 { .. })), "{refused:?}");
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
