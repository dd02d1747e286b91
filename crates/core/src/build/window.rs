//! The Build window's entries beside the folder, names and platforms: secrets as (id, file) rows,
//! ssh forwarding on or off, a registry cache to export to and to import from, and an output
//! folder. Each becomes the flag the CLI takes and is checked by the CLI's own code:
//! - a secret row: `--secret id=ID,src=FILE` (the file is read when BuildKit asks for it, never here);
//! - ssh forwarding on: `--ssh default` (the app's `$SSH_AUTH_SOCK`);
//! - cache to: `--cache-to type=registry,ref=REF,mode=max` (every stage's steps, as a buildx user
//!   picks for a cache another machine builds from; `mode=min` would keep only the final stage's);
//! - cache from: `--cache-from type=registry,ref=REF`;
//! - an output folder: `-o type=local,dest=DIR`, checked to be a folder we may write to.
//!
//! Every bad entry is found at once, each with the window's field it is about, so each sentence
//! stands beside its own field; nothing is planned while one is bad.
use std::path::Path;

use crate::{
    build::{
        attrs::is_remote_url,
        cache_options::{self, CacheDirection},
        error::BuildError,
        outputs,
        plan::{self, BuildInput, BuildPlan},
        session_flags,
    },
    reference::check_image_name,
    Error,
};

/// One secret row: the id a `RUN --mount=type=secret,id=ID` names, and the file that holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct SecretRow {
    /// The secret's id.
    pub id: String,
    /// The file's path.
    pub file: String,
}

/// The window's entries, as the user left them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct WindowEntries {
    /// The secret rows (a row left wholly empty is ignored).
    pub secrets: Vec<SecretRow>,
    /// Forward the user's ssh agent.
    pub ssh: bool,
    /// A registry ref to export the cache to (empty: none).
    pub cache_to: String,
    /// A registry ref to import the cache from (empty: none).
    pub cache_from: String,
    /// A folder to write the result's files to (empty: none).
    pub output_folder: String,
}

/// A bad entry and the window's field it is about: `folder`, `names`, `platforms`, `secret-N`
/// (the Nth row), `secrets`, `ssh`, `cache_to`, `cache_from`, `output`; `None`: no field.
#[derive(Debug)]
pub struct FieldError {
    /// The field.
    pub field: Option<String>,
    /// What is wrong with it.
    pub error: Error,
}

impl FieldError {
    fn at(field: impl Into<String>, error: impl Into<Error>) -> Self {
        Self { field: Some(field.into()), error: error.into() }
    }

    fn of(error: Error) -> Self {
        Self { field: error.build_field().map(str::to_string), error }
    }
}

/// One CSV record, as [`session_flags::csv_fields`] reads it back: every field quoted, so a comma
/// or a quote in a path or a ref stays in its field.
fn csv_record(fields: &[String]) -> String {
    fields.iter().map(|f| format!("\"{}\"", f.replace('"', "\"\""))).collect::<Vec<_>>().join(",")
}

/// Plans the build of `base` (the folder, names, platforms…) with the window's `entries`, or says
/// every bad entry, each with its field. `env` gives the app's environment (`SSH_AUTH_SOCK`).
pub fn plan(
    base: &BuildInput,
    entries: &WindowEntries,
    env: impl Fn(&str) -> Option<String>,
) -> Result<BuildPlan, Vec<FieldError>> {
    let mut input = base.clone();
    let mut errors = Vec::new();
    // The window builds a folder; standard input and URLs are the command line's.
    let typed = base.context.to_string_lossy();
    let not_a_folder = base.reads_stdin() || is_remote_url(&typed);
    if not_a_folder {
        errors.push(FieldError::at("folder", BuildError::ContextNotAFolder { path: typed.into_owned() }));
    }

    let mut ids: Vec<&str> = Vec::new();
    for (row, secret) in entries.secrets.iter().enumerate() {
        let (id, file) = (secret.id.trim(), secret.file.trim());
        if id.is_empty() && file.is_empty() {
            continue;
        }
        let field = format!("secret-{row}");
        if file.is_empty() {
            errors.push(FieldError::at(field, BuildError::SecretWithoutFile { id: id.to_string() }));
            continue;
        }
        if !id.is_empty() && ids.contains(&id) {
            errors.push(FieldError::at(field, BuildError::DuplicateSecret { id: id.to_string() }));
            continue;
        }
        ids.push(id);
        let text = csv_record(&[format!("id={id}"), format!("src={file}")]);
        match session_flags::secrets(std::slice::from_ref(&text), &env) {
            Ok(_) => input.secrets.push(text),
            Err(error) => errors.push(FieldError::at(field, error)),
        }
    }

    if entries.ssh {
        let default = vec!["default".to_string()];
        match session_flags::ssh(&default, &env) {
            Ok(_) => input.ssh = default,
            Err(error) => errors.push(FieldError::at("ssh", error)),
        }
    }

    for (direction, reference) in
        [(CacheDirection::To, entries.cache_to.trim()), (CacheDirection::From, entries.cache_from.trim())]
    {
        if reference.is_empty() {
            continue;
        }
        let field = match direction {
            CacheDirection::To => "cache_to",
            CacheDirection::From => "cache_from",
        };
        if let Err(error) = check_image_name(reference) {
            errors.push(FieldError::at(field, BuildError::InvalidCacheRef { flag: direction.flag(), error }));
            continue;
        }
        let mut fields = vec!["type=registry".to_string(), format!("ref={reference}")];
        if direction == CacheDirection::To {
            fields.push("mode=max".into());
        }
        let text = csv_record(&fields);
        match cache_options::parse(direction, &text) {
            Ok(_) if direction == CacheDirection::To => input.solve.cache_to.push(text),
            Ok(_) => input.solve.cache_from.push(text),
            Err(error) => errors.push(FieldError::at(field, error)),
        }
    }

    let folder = entries.output_folder.trim();
    if !folder.is_empty() {
        let text = csv_record(&["type=local".into(), format!("dest={folder}")]);
        let checked = outputs::outputs(std::slice::from_ref(&text), &[], 1, false)
            .map_err(Error::from)
            .and_then(|_| writable_folder(Path::new(folder)).map_err(Error::from));
        match checked {
            Ok(()) => input.outputs.push(text),
            Err(error) => errors.push(FieldError::at("output", error)),
        }
    }

    if !errors.is_empty() {
        // The folder, names and platforms too, so every bad entry shows at once.
        if let Some(error) = plan::plan(base, &env).err().filter(|_| !not_a_folder) {
            errors.insert(0, FieldError::of(error));
        }
        return Err(errors);
    }
    plan::plan(&input, &env).map_err(|error| vec![FieldError::of(error)])
}

/// A folder the result's files can be written to: there and writable, or missing under a
/// writable folder (the build makes it, as buildx does). Writing is tried, so a read-only mount
/// and a folder of another user are both found (permission bits alone do not tell root's case).
fn writable_folder(folder: &Path) -> Result<(), BuildError> {
    let unusable = |reason: String| BuildError::OutputFolderUnusable { path: folder.display().to_string(), reason };
    if !folder.is_absolute() {
        return Err(unusable("it is not a full path".into()));
    }
    let existing = folder.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    if !existing.is_dir() {
        return Err(unusable(format!("{} is a file", existing.display())));
    }
    let probe = existing.join(format!(".assemble-write-check-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(error) => Err(unusable(format!("{} cannot be written: {}", existing.display(), io_words(&error)))),
    }
}

/// An I/O error's words without Rust's `(os error N)`.
fn io_words(err: &std::io::Error) -> String {
    let text = err.to_string();
    text.split(" (os error").next().unwrap_or(&text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Place;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("assemble-window-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn base(dir: &Path) -> BuildInput {
        std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
        BuildInput { context: dir.to_path_buf(), ..Default::default() }
    }

    fn fields(errors: &[FieldError]) -> Vec<(Option<&str>, String)> {
        errors.iter().map(|e| (e.field.as_deref(), e.error.sentence(Place::App))).collect()
    }

    #[test]
    fn good_entries_become_the_cli_s_flags() {
        let dir = temp_dir("good");
        let secret = dir.join("a, \"token\"");
        std::fs::write(&secret, "s3cret").unwrap();
        let out = dir.join("out/new");
        let entries = WindowEntries {
            secrets: vec![SecretRow { id: " tok ".into(), file: secret.display().to_string() }, SecretRow::default()],
            ssh: false,
            cache_to: "localhost:5000/app:cache".into(),
            cache_from: "localhost:5000/app:cache".into(),
            output_folder: out.display().to_string(),
        };
        let plan = plan(&base(&dir), &entries, |_| None).unwrap();
        assert_eq!(plan.secrets.sources["tok"], crate::buildkit::secrets::SecretSource::File(secret.clone()));
        assert_eq!(plan.solve.cache.exports[0].describe(), "registry localhost:5000/app:cache (mode=max)");
        assert_eq!(plan.solve.cache.imports[0].describe(), "registry localhost:5000/app:cache");
        assert_eq!(plan.outputs[0].dest, outputs::Destination::Folder(out.clone()));
        assert!(!out.exists(), "the check does not make the folder");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_window_builds_folders_not_standard_input_or_urls() {
        for typed in ["-", "https://example.com/app.git", "git@example.com:app.git"] {
            let input = BuildInput { context: typed.into(), ..Default::default() };
            let errors = plan(&input, &WindowEntries::default(), |_| None).unwrap_err();
            assert_eq!(
                fields(&errors),
                [(Some("folder"), format!("{typed} is not a folder; choose the folder to build (the build context)"))]
            );
        }
    }

    #[test]
    fn every_bad_entry_is_a_sentence_for_its_own_field() {
        let dir = temp_dir("bad");
        let file = dir.join("token");
        std::fs::write(&file, "x").unwrap();
        let file = file.display().to_string();
        let entries = WindowEntries {
            secrets: vec![
                SecretRow { id: "".into(), file: file.clone() },
                SecretRow { id: "tok".into(), file: file.clone() },
                SecretRow { id: "tok".into(), file: file.clone() },
                SecretRow { id: "gone".into(), file: "/nowhere/token".into() },
                SecretRow { id: "nofile".into(), file: " ".into() },
            ],
            ssh: true,
            cache_to: "Bad Ref".into(),
            cache_from: "localhost:5000/ok:cache".into(),
            output_folder: file.clone(),
        };
        let mut input = base(&dir);
        input.tags = vec!["Not A Name".into()];
        let errors = plan(&input, &entries, |_| None).unwrap_err();
        let got = fields(&errors);
        let at = |field: &str| {
            got.iter().find(|(f, _)| *f == Some(field)).map(|(_, s)| s.clone()).unwrap_or_else(|| panic!("{got:?}"))
        };
        assert_eq!(got.len(), 8, "{got:#?}");
        assert!(at("names").contains("is not a valid image name"));
        assert!(at("secret-0").starts_with("This secret has no id"), "{}", at("secret-0"));
        assert!(!got.iter().any(|(f, _)| *f == Some("secret-1")));
        assert_eq!(at("secret-2"), "The id tok is given twice; give each secret its own id");
        assert!(
            at("secret-3").starts_with("Cannot read /nowhere/token (No such file or directory)"),
            "{}",
            at("secret-3")
        );
        assert!(at("secret-4").starts_with("Secret nofile has no file"));
        assert!(at("ssh").contains("SSH_AUTH_SOCK") && !at("ssh").contains("--ssh"), "{}", at("ssh"));
        assert!(at("cache_to").starts_with("\"Bad Ref\" is not a valid image name"), "{}", at("cache_to"));
        assert!(at("output").contains("is a file"), "{}", at("output"));
        for (_, sentence) in &got {
            for flag in ["--secret", "--ssh", "--cache", "--output", "-o ", "--tag", "-t "] {
                assert!(!sentence.contains(flag), "the app names no flag: {sentence}");
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_output_folder_must_be_writable_and_a_full_path() {
        let dir = temp_dir("out");
        assert!(writable_folder(&dir.join("new/deeper")).is_ok());
        let file = dir.join("f");
        std::fs::write(&file, "").unwrap();
        let under_file = writable_folder(&file.join("out")).unwrap_err().sentence(Place::App);
        assert!(under_file.contains(&format!("{} is a file", file.display())), "{under_file}");
        assert!(writable_folder(Path::new("relative/out")).is_err());
        // /proc refuses new files, even to root.
        let refused = writable_folder(Path::new("/proc/assemble-out")).unwrap_err().sentence(Place::App);
        assert!(refused.contains("/proc cannot be written"), "{refused}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
