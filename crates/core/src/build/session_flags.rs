//! `--secret` and `--ssh` as buildx reads them, checked before anything is sent: a secret's file
//! must be there and small enough, each ID given once, and an ssh agent must be reachable. Only
//! where each value comes from is kept; secret values are read when BuildKit asks for them.
use std::path::{Path, PathBuf};

use crate::build::error::BuildError;
use crate::buildkit::{
    secrets::{SecretSource, SecretStore, MAX_SECRET_SIZE},
    ssh::{AgentSource, SshAgents},
};

/// Splits a CSV record as Go's `encoding/csv` (buildx's `csvvalue`) does: fields separated by
/// commas, a field in double quotes may hold commas, `""` inside quotes is one quote.
pub(crate) fn csv_fields(text: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if at_start => {
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            current.push('"');
                        }
                        Some('"') => break,
                        Some(other) => current.push(other),
                        None => return Err("a quote is not closed".into()),
                    }
                }
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err("text follows a closing quote".into());
                }
                at_start = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut current));
                at_start = true;
            }
            other => {
                current.push(other);
                at_start = false;
            }
        }
    }
    fields.push(current);
    Ok(fields)
}

/// The `--secret` values, resolved as buildx (and BuildKit's secret store) resolve them.
pub fn secrets(given: &[String], env: &impl Fn(&str) -> Option<String>) -> Result<SecretStore, BuildError> {
    let mut store = SecretStore::default();
    for text in given {
        let (id, source) = secret(text, env)?;
        if store.sources.insert(id.clone(), source).is_some() {
            return Err(BuildError::DuplicateSecret { id });
        }
    }
    Ok(store)
}

fn secret(text: &str, env: &impl Fn(&str) -> Option<String>) -> Result<(String, SecretSource), BuildError> {
    let invalid = |reason: String| BuildError::InvalidSecret { given: text.to_string(), reason };
    let (mut id, mut src, mut var, mut kind) = (String::new(), String::new(), String::new(), None);
    for field in csv_fields(text).map_err(invalid)? {
        let Some((key, value)) = field.split_once('=') else {
            return Err(invalid(format!("{field:?} is not a key=value pair")));
        };
        match key.trim().to_lowercase().as_str() {
            "type" if value == "file" || value == "env" => kind = Some(value.to_string()),
            "type" => return Err(invalid(format!("{value:?} is not a secret type (file or env)"))),
            "id" => id = value.to_string(),
            "source" | "src" => src = value.to_string(),
            "env" => var = value.to_string(),
            other => return Err(invalid(format!("{other:?} is not one of its keys (id, src, env, type)"))),
        }
    }
    // `type=env,src=VAR` names the variable in src.
    if kind.as_deref() == Some("env") && var.is_empty() {
        var = std::mem::take(&mut src);
    }
    if id.is_empty() {
        return Err(BuildError::SecretWithoutId { given: text.to_string() });
    }
    if src.is_empty() && var.is_empty() {
        // Neither: the variable named like the ID if there is one, else the file.
        if env(&id).is_some() {
            var = id.clone();
        } else {
            src = id.clone();
        }
    }
    if !var.is_empty() {
        return Ok((id, SecretSource::Env(var)));
    }
    let path = PathBuf::from(&src);
    let metadata = std::fs::metadata(&path).map_err(|e| BuildError::SecretUnreadable {
        id: id.clone(),
        path: src.clone(),
        reason: io_reason(&e),
    })?;
    if metadata.is_dir() {
        return Err(BuildError::SecretUnreadable { id, path: src, reason: "it is a folder".into() });
    }
    if metadata.len() > MAX_SECRET_SIZE {
        return Err(BuildError::SecretTooBig { id, size: metadata.len() });
    }
    Ok((id, SecretSource::File(path)))
}

/// The `--ssh` values (`default`, `ID`, `ID=SOCKET`, `ID=KEY[,KEY…]`), as buildx reads them.
pub fn ssh(given: &[String], env: &impl Fn(&str) -> Option<String>) -> Result<SshAgents, BuildError> {
    let mut agents = SshAgents::default();
    for text in given {
        let (id, paths) = match text.split_once('=') {
            Some((id, paths)) => (id, paths.split(',').filter(|p| !p.is_empty()).map(PathBuf::from).collect()),
            None => (text.as_str(), Vec::new()),
        };
        let id = if id.is_empty() { "default".to_string() } else { id.to_string() };
        if agents.agents.contains_key(&id) {
            return Err(BuildError::DuplicateSsh { id });
        }
        let source = agent(&id, paths, env)?;
        agents.agents.insert(id, source);
    }
    Ok(agents)
}

fn agent(id: &str, paths: Vec<PathBuf>, env: &impl Fn(&str) -> Option<String>) -> Result<AgentSource, BuildError> {
    let paths = if paths.is_empty() {
        match env("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
            Some(socket) => vec![PathBuf::from(socket)],
            None => return Err(BuildError::NoSshAgent { id: id.to_string() }),
        }
    } else {
        paths
    };
    let (mut sockets, mut keys) = (Vec::new(), Vec::new());
    for path in paths {
        let metadata = std::fs::metadata(&path).map_err(|e| BuildError::SshPathUnusable {
            id: id.to_string(),
            path: path.display().to_string(),
            reason: io_reason(&e),
        })?;
        if is_socket(&metadata) {
            sockets.push(path);
        } else if metadata.is_file() {
            keys.push(path);
        } else {
            return Err(BuildError::SshPathUnusable {
                id: id.to_string(),
                path: path.display().to_string(),
                reason: "it is neither an agent's socket nor a key file".into(),
            });
        }
    }
    match (sockets.len(), keys.is_empty()) {
        (0, _) => Ok(AgentSource::Keys(keys)),
        (1, true) => Ok(AgentSource::Socket(sockets.remove(0))),
        _ => Err(BuildError::InvalidSsh {
            id: id.to_string(),
            reason: "give one agent socket, or key files, not both or several sockets".into(),
        }),
    }
}

/// An I/O error's words without Rust's `(os error N)`.
fn io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[cfg(unix)]
fn is_socket(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    metadata.file_type().is_socket()
}

#[cfg(not(unix))]
fn is_socket(_: &std::fs::Metadata) -> bool {
    false
}

/// For tests and the app: whether `path` is a socket.
pub fn path_is_socket(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| is_socket(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, bytes: usize) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("assemble-flags-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, vec![b'k'; bytes]).unwrap();
        path
    }

    #[test]
    fn csv_is_read_as_go_reads_it() {
        assert_eq!(csv_fields("a=1,b=2").unwrap(), ["a=1", "b=2"]);
        assert_eq!(csv_fields(r#""src=a,b",id=x"#).unwrap(), ["src=a,b", "id=x"]);
        assert_eq!(csv_fields(r#""say ""hi""""#).unwrap(), [r#"say "hi""#]);
        assert!(csv_fields(r#""open"#).is_err());
    }

    #[test]
    fn secrets_resolve_as_buildx_and_bad_ones_are_one_sentence() {
        let file = temp("token", 10);
        let src = file.display().to_string();
        let env = |k: &str| (k == "FROM_ENV" || k == "tok_env").then(|| "v".to_string());
        let store = secrets(
            &[
                format!("id=tok,src={src}"),
                "id=a,env=FROM_ENV".into(),
                "type=env,id=b,src=FROM_ENV".into(),
                "id=tok_env".into(),
                format!("ID=plain,Source={src},type=file"),
            ],
            &env,
        )
        .unwrap();
        assert_eq!(store.sources["tok"], SecretSource::File(file.clone()));
        assert_eq!(store.sources["a"], SecretSource::Env("FROM_ENV".into()));
        assert_eq!(store.sources["b"], SecretSource::Env("FROM_ENV".into()));
        assert_eq!(store.sources["tok_env"], SecretSource::Env("tok_env".into()));
        assert_eq!(store.sources["plain"], SecretSource::File(file.clone()));
        let refuse = |given: &str| secrets(&[given.to_string()], &env).unwrap_err().to_string();
        assert_eq!(
            refuse("src=/x"),
            "--secret \"src=/x\": it has no id; write it as id=ID,src=FILE or id=ID,env=VARIABLE"
        );
        assert!(refuse("id=x,src=/nowhere/at/all")
            .starts_with("--secret x: cannot read /nowhere/at/all (No such file or directory)"));
        assert!(refuse("id=x,type=ssh").contains("\"ssh\" is not a secret type"));
        assert!(refuse("id=x,color=red").contains("\"color\" is not one of its keys"));
        assert!(refuse("id").contains("\"id\" is not a key=value pair"));
        let big = temp("big", MAX_SECRET_SIZE as usize + 1).display().to_string();
        assert!(
            refuse(&format!("id=big,src={big}")).starts_with("--secret big is 512001 bytes"),
            "{}",
            refuse(&format!("id=big,src={big}"))
        );
        let twice = secrets(&[format!("id=t,src={src}"), "id=t,env=FROM_ENV".into()], &env).unwrap_err();
        assert_eq!(twice.to_string(), "--secret id=t is given twice; give each secret its own id");
    }

    #[test]
    fn ssh_takes_the_agent_of_the_environment_or_the_paths_given() {
        let dir = std::env::temp_dir().join(format!("assemble-ssh-flags-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("agent.sock");
        let _ = std::fs::remove_file(&socket);
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let key = temp("id_test", 100);
        let sock = socket.display().to_string();
        let with_agent = |k: &str| (k == "SSH_AUTH_SOCK").then(|| sock.clone());
        let agents =
            ssh(&["default".into(), format!("keys={}", key.display()), format!("other={sock}")], &with_agent).unwrap();
        assert_eq!(agents.agents["default"], AgentSource::Socket(socket.clone()));
        assert_eq!(agents.agents["keys"], AgentSource::Keys(vec![key.clone()]));
        assert_eq!(agents.agents["other"], AgentSource::Socket(socket.clone()));
        let no_agent = ssh(&["default".into()], &|_: &str| None).unwrap_err();
        assert!(no_agent.to_string().starts_with("--ssh default needs a running ssh-agent"), "{no_agent}");
        assert!(matches!(ssh(&["=".into(), "default".into()], &with_agent), Err(BuildError::DuplicateSsh { .. })));
        let mixed = ssh(&[format!("x={sock},{}", key.display())], &with_agent).unwrap_err();
        assert!(matches!(mixed, BuildError::InvalidSsh { .. }), "{mixed}");
        assert!(matches!(ssh(&["x=/no/such/key".into()], &with_agent), Err(BuildError::SshPathUnusable { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
