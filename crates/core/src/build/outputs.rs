//! `-o/--output` as buildx reads it: `type=local,dest=DIR`, `type=tar,dest=FILE|-`,
//! `type=oci|docker,dest=FILE` (or an OCI layout folder with `tar=false`), `type=image|registry`
//! with its attributes, and the short forms
//! `-o DIR` and `-o -`. `dest` stays with us (the files come back through the session); every other
//! attribute goes to BuildKit's exporter as given.
use std::{collections::BTreeMap, path::PathBuf};

use crate::build::{error::BuildError, session_flags::csv_fields};

/// Where an output's files go on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Nowhere here (an image pushed, or kept in the cache).
    None,
    /// A folder (`local`).
    Folder(PathBuf),
    /// A file (`tar`, `oci`, `docker`).
    File(PathBuf),
    /// An OCI layout folder (`oci`, `docker` with `tar=false`): the session's content store
    /// `export`, then `index.json`.
    Layout(PathBuf),
    /// Our standard output (`dest=-`).
    Stdout,
}

/// One checked `-o`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// BuildKit's exporter: `local`, `tar`, `oci`, `docker` or `image`.
    pub exporter: String,
    /// The exporter's attributes (not `dest`).
    pub attrs: BTreeMap<String, String>,
    /// Where its files go.
    pub dest: Destination,
}

impl OutputSpec {
    /// What it did, for the end of a build.
    pub fn sentence(&self) -> Option<String> {
        match &self.dest {
            Destination::Folder(dir) => Some(format!("Wrote the result to the folder {}", dir.display())),
            Destination::File(file) => Some(format!("Wrote the result ({}) to {}", self.exporter, file.display())),
            Destination::Layout(dir) => {
                Some(format!("Wrote the result ({} layout) to the folder {}", self.exporter, dir.display()))
            }
            Destination::Stdout | Destination::None => None,
        }
    }
}

/// The `-o` values, checked as buildx checks them. `names` are the `-t` names (an image output
/// without `name` gets them); `stdout_is_terminal` refuses a tar to a terminal.
pub fn outputs(
    given: &[String],
    names: &[String],
    platforms: usize,
    stdout_is_terminal: bool,
) -> Result<Vec<OutputSpec>, BuildError> {
    let mut specs = Vec::new();
    for text in given {
        specs.push(output(text, names, platforms, stdout_is_terminal)?);
    }
    // BuildKit's client has one store for them (`export`).
    if specs.iter().filter(|s| matches!(s.dest, Destination::Layout(_))).count() > 1 {
        return Err(BuildError::InvalidOutput {
            given: given.join(" "),
            reason: "several outputs write an OCI layout folder (tar=false); BuildKit takes one, so keep one".into(),
        });
    }
    if specs.iter().filter(|s| s.dest == Destination::Stdout).count() > 1 {
        return Err(BuildError::InvalidOutput {
            given: given.join(" ").to_string(),
            reason: "several outputs write to the standard output; give all but one a dest file".into(),
        });
    }
    Ok(specs)
}

fn output(text: &str, names: &[String], platforms: usize, stdout_is_terminal: bool) -> Result<OutputSpec, BuildError> {
    let invalid = |reason: &str| BuildError::InvalidOutput { given: text.to_string(), reason: reason.to_string() };
    let fields = csv_fields(text).map_err(|e| invalid(&format!("{e}; write it as type=TYPE,dest=PATH")))?;
    // The short forms: `-o DIR` and `-o -`.
    let (exporter, mut attrs, dest) = if fields.len() == 1 && fields[0] == text && !text.starts_with("type=") {
        if text == "-" {
            ("tar".to_string(), BTreeMap::new(), Some("-".to_string()))
        } else {
            ("local".to_string(), BTreeMap::new(), Some(text.to_string()))
        }
    } else {
        let (mut exporter, mut dest, mut attrs) = (None, None, BTreeMap::new());
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                return Err(invalid(&format!("{field:?} is not key=value; write it as type=TYPE,dest=PATH")));
            };
            match key.trim().to_lowercase().as_str() {
                "type" => exporter = Some(value.to_string()),
                "dest" => dest = Some(value.to_string()),
                key => {
                    attrs.insert(key.to_string(), value.to_string());
                }
            }
        }
        let Some(exporter) = exporter else {
            return Err(invalid("it has no type; add type=local, tar, oci, docker, image or registry"));
        };
        (exporter, attrs, dest)
    };
    let exporter = match exporter.as_str() {
        "registry" => {
            attrs.insert("push".into(), "true".into());
            "image".to_string()
        }
        "local" | "tar" | "oci" | "docker" | "image" => exporter,
        "cacheonly" => exporter,
        other => {
            return Err(invalid(&format!(
                "{other:?} is not an output type; use local, tar, oci, docker, image, registry or cacheonly"
            )))
        }
    };
    if matches!(exporter.as_str(), "image" | "oci" | "docker") && !names.is_empty() && !attrs.contains_key("name") {
        attrs.insert("name".into(), names.join(","));
    }
    let dest = match exporter.as_str() {
        "local" => {
            let Some(dir) = dest.filter(|d| !d.is_empty()) else {
                return Err(invalid("a local output needs dest=FOLDER"));
            };
            if dir == "-" {
                return Err(invalid("a local output writes a folder, not the standard output; give dest=FOLDER"));
            }
            let path = PathBuf::from(&dir);
            if path.exists() && !path.is_dir() {
                return Err(invalid(&format!("{dir} is a file; give a folder (it is made if missing)")));
            }
            Destination::Folder(path)
        }
        "tar" | "oci" | "docker" => {
            if exporter == "docker" && platforms > 1 {
                return Err(invalid(
                    "docker exporter does not support exporting manifest lists, use the oci exporter instead",
                ));
            }
            let tar = match attrs.get("tar").map(String::as_str) {
                None => true,
                Some(value) => crate::build::attrs::parse_bool(value).ok_or_else(|| {
                    invalid(&format!("tar={value} is not true or false; tar=false writes an OCI layout folder"))
                })?,
            };
            if exporter == "tar" && !tar {
                return Err(invalid("tar= is an option of oci and docker outputs; a tar output is always a file"));
            }
            if !tar {
                let Some(dir) = dest.filter(|d| !d.is_empty()) else {
                    return Err(invalid(&format!("a {exporter} output with tar=false needs dest=FOLDER")));
                };
                if dir == "-" {
                    return Err(invalid(&format!(
                        "a {exporter} output with tar=false writes a folder, not the standard output; give dest=FOLDER"
                    )));
                }
                let path = PathBuf::from(&dir);
                if path.exists() && !path.is_dir() {
                    return Err(invalid(&format!("{dir} is a file; give a folder (it is made if missing)")));
                }
                return Ok(OutputSpec { exporter, attrs, dest: Destination::Layout(path) });
            }
            match dest.filter(|d| !d.is_empty()) {
                // A docker output without dest is --load.
                None if exporter == "docker" => {
                    return Err(invalid("give dest=FILE, or use --load to load the image into the engine"))
                }
                None => stdout(&exporter, stdout_is_terminal).map_err(|r| invalid(&r))?,
                Some(d) if d == "-" => stdout(&exporter, stdout_is_terminal).map_err(|r| invalid(&r))?,
                Some(file) => {
                    let path = PathBuf::from(&file);
                    if path.is_dir() {
                        return Err(invalid(&format!("{file} is a folder; give a file name")));
                    }
                    Destination::File(path)
                }
            }
        }
        "image" => {
            if attrs.get("push").is_some_and(|p| p.is_empty() || p == "true") && !attrs.contains_key("name") {
                return Err(invalid("pushing needs an image name; add name=NAME or -t NAME"));
            }
            Destination::None
        }
        _ => Destination::None,
    };
    Ok(OutputSpec { exporter, attrs, dest })
}

/// The files of a build's outputs being written: one task per file output.
pub(crate) struct Writers(Vec<tokio::task::JoinHandle<Result<(), String>>>);

impl Writers {
    /// Waits for every file to be complete (each ends when BuildKit's stream does, or the session).
    pub(crate) async fn finish(mut self) -> Result<(), BuildError> {
        for task in std::mem::take(&mut self.0) {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(message)) => return Err(BuildError::OutputFailed { message }),
                Err(join) => return Err(BuildError::OutputFailed { message: join.to_string() }),
            }
        }
        Ok(())
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Where each output's files go, by exporter index (the first output is exporter `first`); file
/// outputs are created now, empty, as buildx does before the build starts.
pub(crate) fn targets(
    specs: &[OutputSpec],
    first: usize,
) -> Result<(std::collections::HashMap<usize, crate::buildkit::filesend::ExportTarget>, Writers), BuildError> {
    use crate::buildkit::filesend::ExportTarget;
    use tokio::io::AsyncWriteExt;
    let mut targets = std::collections::HashMap::new();
    let mut writers = Writers(Vec::new());
    for (offset, spec) in specs.iter().enumerate() {
        let index = first + offset;
        let sink: Box<dyn tokio::io::AsyncWrite + Send + Unpin> = match &spec.dest {
            // Written through the session's content store (see run).
            Destination::None | Destination::Layout(_) => continue,
            Destination::Folder(dir) => {
                targets.insert(index, ExportTarget::Folder(dir.clone()));
                continue;
            }
            Destination::File(path) => {
                let file = std::fs::File::create(path).map_err(|e| BuildError::OutputFailed {
                    message: format!("could not create {}: {e}", path.display()),
                })?;
                Box::new(tokio::fs::File::from_std(file))
            }
            Destination::Stdout => Box::new(tokio::io::stdout()),
        };
        let (send, mut receive) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
        targets.insert(index, ExportTarget::Bytes(send));
        let name = match &spec.dest {
            Destination::File(path) => path.display().to_string(),
            _ => "the standard output".to_string(),
        };
        writers.0.push(tokio::spawn(async move {
            let mut sink = tokio::io::BufWriter::with_capacity(1 << 20, sink);
            while let Some(chunk) = receive.recv().await {
                sink.write_all(&chunk).await.map_err(|e| format!("could not write {name}: {e}"))?;
            }
            sink.flush().await.map_err(|e| format!("could not write {name}: {e}"))
        }));
    }
    Ok((targets, writers))
}

fn stdout(exporter: &str, terminal: bool) -> Result<Destination, String> {
    if terminal {
        Err(format!(
            "a {exporter} output to the standard output would go to the terminal; give dest=FILE, or redirect it (> out.tar)"
        ))
    } else {
        Ok(Destination::Stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<OutputSpec, String> {
        outputs(&[text.to_string()], &["localhost:5000/app:1".into()], 1, false)
            .map(|mut o| o.remove(0))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn outputs_are_read_as_buildx_reads_them() {
        assert_eq!(one("out").unwrap().dest, Destination::Folder("out".into()));
        assert_eq!(one("out").unwrap().exporter, "local");
        let dash = one("-").unwrap();
        assert_eq!((dash.exporter.as_str(), dash.dest), ("tar", Destination::Stdout));
        let tar = one("type=tar,dest=/tmp/x.tar").unwrap();
        assert_eq!(tar.dest, Destination::File("/tmp/x.tar".into()));
        assert!(tar.attrs.is_empty(), "dest is not sent");
        let oci = one("type=oci,dest=/tmp/x.tar,Compression=zstd").unwrap();
        assert_eq!(oci.attrs["compression"], "zstd");
        assert_eq!(oci.attrs["name"], "localhost:5000/app:1");
        let registry = one("type=registry").unwrap();
        assert_eq!((registry.exporter.as_str(), registry.attrs["push"].as_str()), ("image", "true"));
        assert_eq!(one("type=image,name=x:1,push=false").unwrap().attrs["name"], "x:1");
    }

    #[test]
    fn each_bad_output_is_one_sentence() {
        assert!(one("dest=x").is_ok(), "one field without type= is a folder's name, as buildx");
        assert!(one("type=local").unwrap_err().contains("needs dest=FOLDER"));
        assert!(one("type=local,dest=-").unwrap_err().contains("not the standard output"));
        assert!(one("type=zip,dest=x").unwrap_err().contains("\"zip\" is not an output type"));
        assert!(one("dest=a,name=b").unwrap_err().contains("it has no type"));
        assert!(one("type=tar,foo").unwrap_err().contains("\"foo\" is not key=value"));
        assert_eq!(one("type=oci,dest=x,tar=false").unwrap().dest, Destination::Layout("x".into()));
        assert_eq!(one("type=docker,dest=x,tar=false").unwrap().attrs["tar"], "false", "sent to BuildKit");
        assert!(one("type=oci,tar=false").unwrap_err().contains("needs dest=FOLDER"));
        assert!(one("type=oci,dest=-,tar=false").unwrap_err().contains("not the standard output"));
        assert!(one("type=oci,dest=x,tar=maybe").unwrap_err().contains("not true or false"));
        assert!(one("type=tar,dest=x,tar=false").unwrap_err().contains("always a file"));
        let layouts =
            outputs(&["type=oci,dest=a,tar=false".into(), "type=docker,dest=b,tar=false".into()], &[], 1, false);
        assert!(layouts.unwrap_err().to_string().contains("BuildKit takes one"));
        assert!(one("type=docker").unwrap_err().contains("--load"));
        assert!(one(&format!("type=tar,dest={}", std::env::temp_dir().display())).unwrap_err().contains("is a folder"));
        let to_terminal = outputs(&["-".into()], &[], 1, true).unwrap_err();
        assert!(to_terminal.to_string().contains("would go to the terminal"), "{to_terminal}");
        let two = outputs(&["-".into(), "type=oci".into()], &[], 1, false).unwrap_err();
        assert!(two.to_string().contains("several outputs write to the standard output"));
        let lists = outputs(&["type=docker,dest=x.tar".into()], &[], 2, false).unwrap_err();
        assert!(lists.to_string().contains("manifest lists"));
        let unnamed = outputs(&["type=registry".into()], &[], 1, false).unwrap_err();
        assert!(unnamed.to_string().contains("needs an image name"));
    }
}
