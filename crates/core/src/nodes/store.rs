//! The node list: which contexts host a node, with the platforms declared for each. One file,
//! `nodes.json`, beside the settings file (the settings are the wish for the local backend's next
//! start; this is the list of the other engines). The running containers remain the truth for
//! what each node runs.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::NodeError;
use crate::Result;

/// One node as the list keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Its name: buildx's node name (the context's, see `builder::node_name`).
    pub name: String,
    /// The docker context that reaches its engine.
    pub context: String,
    /// The platforms declared for it (`--platform`); empty: what its workers list.
    #[serde(default)]
    pub platforms: Vec<String>,
}

/// Where the node list is: beside the settings file.
pub fn path() -> PathBuf {
    crate::settings::path().with_file_name("nodes.json")
}

/// The list in `file`; a missing file is an empty list.
pub fn load(file: &Path) -> Result<Vec<NodeEntry>> {
    let text = match std::fs::read(file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(store_error(file, format!("cannot be read: {err}"))),
    };
    serde_json::from_slice(&text)
        .map_err(|err| store_error(file, format!("is not a valid node list ({err}); fix or remove it")))
}

/// Writes the list atomically (a temporary file renamed over the old one).
pub fn save(file: &Path, nodes: &[NodeEntry]) -> Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|err| store_error(file, format!("cannot be written: {err}")))?;
    let text =
        serde_json::to_vec_pretty(nodes).map_err(|err| store_error(file, format!("cannot be written: {err}")))?;
    let temporary = file.with_extension("json.tmp");
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, file))
        .map_err(|err| store_error(file, format!("cannot be written: {err}")))
}

fn store_error(file: &Path, problem: String) -> crate::Error {
    NodeError::Store { path: file.display().to_string(), problem }.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_list_is_empty_and_a_saved_one_reads_back() {
        let dir = std::env::temp_dir().join(format!("assemble-nodes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = dir.join("nodes.json");
        assert_eq!(load(&file).expect("empty"), vec![]);
        let nodes =
            vec![NodeEntry { name: "armbox".into(), context: "armbox".into(), platforms: vec!["linux/arm64".into()] }];
        save(&file, &nodes).expect("saved");
        assert_eq!(load(&file).expect("read"), nodes);
        std::fs::write(&file, "not json").expect("spoil");
        assert!(load(&file).expect_err("refused").to_string().contains("is not a valid node list"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
