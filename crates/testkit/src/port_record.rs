//! The backend's port record read from the outside, as a check of the product must: its own
//! reading of the file's format, never the core's parser, so that a bug in the core's reading
//! cannot hide from the soak's invariants.
//!
//! The format, as the core writes it (`record_text` in `crates/core/src/backend/sidecars/record.rs`)
//! and README describes it: the file `/etc/assemble-ports` in the backend container holds the
//! proxied ports as decimal numbers joined by `,` (nothing for no port), then one newline. The
//! newline marks a whole record: the engine rewrites the file in place, so a read in the middle
//! of a rewrite may find it without one. A backend made before records existed has no file; its
//! `com.docker.assemble.backend.ports` label (the same list, without the newline) is its set.
use std::{collections::BTreeSet, time::Duration};

use bollard::{query_parameters::DownloadFromContainerOptionsBuilder, Docker};
use futures_util::TryStreamExt;

/// Where the record is, in the backend container.
pub const PORT_RECORD_PATH: &str = "/etc/assemble-ports";

/// How often a record met in the middle of its rewrite is read again, and how long apart.
const REREADS: usize = 5;
const REREAD_PAUSE: Duration = Duration::from_millis(20);

/// What a record's text says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordReading {
    /// A whole record: these ports are proxied.
    Ports(BTreeSet<u16>),
    /// No newline at the end yet: met while it was being rewritten.
    Incomplete,
    /// Not something the product writes; says what is wrong.
    Damaged(String),
}

/// Reads the record file's text.
pub fn parse_port_record(text: &str) -> RecordReading {
    let Some(list) = text.strip_suffix('\n') else { return RecordReading::Incomplete };
    match parse_port_list(list) {
        Ok(ports) => RecordReading::Ports(ports),
        Err(reason) => RecordReading::Damaged(reason),
    }
}

/// Reads a port list as the product writes it (in the record and in the `ports` label): decimal
/// ports from 1 to 65535, each once, joined by `,`; empty for none.
pub fn parse_port_list(list: &str) -> Result<BTreeSet<u16>, String> {
    let mut ports = BTreeSet::new();
    if list.is_empty() {
        return Ok(ports);
    }
    for part in list.split(',') {
        // Only digits: the product writes no sign, no space and no second line.
        let port = Some(part)
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{part:?} in {list:?} is not a port from 1 to 65535"))?;
        if !ports.insert(port) {
            return Err(format!("port {port} is listed twice in {list:?}"));
        }
    }
    Ok(ports)
}

/// The ports the backend container `id` proxies now: its record, or, when it has none, its
/// `ports` label (`label`). An error names what could not be read.
pub async fn read_live_ports(docker: &Docker, id: &str, label: Option<&str>) -> Result<BTreeSet<u16>, String> {
    let short = &id[..id.len().min(12)];
    for _ in 0..REREADS {
        let text = match download_record(docker, id).await {
            Ok(Some(text)) => text,
            Ok(None) => {
                let label =
                    label.ok_or_else(|| format!("backend {short} has neither a port record nor a ports label"))?;
                return parse_port_list(label)
                    .map_err(|reason| format!("the ports label of backend {short}: {reason}"));
            }
            Err(reason) => return Err(reason),
        };
        match parse_port_record(&text) {
            RecordReading::Ports(ports) => return Ok(ports),
            RecordReading::Damaged(reason) => {
                return Err(format!("the port record of backend {short} is damaged: {reason}"))
            }
            RecordReading::Incomplete => tokio::time::sleep(REREAD_PAUSE).await,
        }
    }
    Err(format!("the port record of backend {short} stayed incomplete over {REREADS} reads"))
}

/// The record file's text, through the engine's archive API (which reads a stopped container's
/// files too); `None` when the container has no such file.
async fn download_record(docker: &Docker, id: &str) -> Result<Option<String>, String> {
    let options = DownloadFromContainerOptionsBuilder::default().path(PORT_RECORD_PATH).build();
    let archive: Vec<u8> =
        match docker.download_from_container(id, Some(options)).map_ok(|chunk| chunk.to_vec()).try_concat().await {
            Ok(archive) => archive,
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return Ok(None),
            Err(err) => return Err(format!("reading {PORT_RECORD_PATH} of {id}: {err}")),
        };
    let mut tar = tar::Archive::new(archive.as_slice());
    let mut entries = tar.entries().map_err(|e| format!("reading the archive of {PORT_RECORD_PATH}: {e}"))?;
    let mut entry = match entries.next() {
        Some(Ok(entry)) => entry,
        Some(Err(err)) => return Err(format!("reading the archive of {PORT_RECORD_PATH}: {err}")),
        None => return Err(format!("the engine sent an empty archive for {PORT_RECORD_PATH}")),
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text)
        .map_err(|e| format!("reading {PORT_RECORD_PATH} of {id} as text: {e}"))?;
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(list: &[u16]) -> RecordReading {
        RecordReading::Ports(list.iter().copied().collect())
    }

    #[test]
    fn a_whole_record_is_its_ports() {
        assert_eq!(parse_port_record("5000,6000\n"), ports(&[5000, 6000]));
        assert_eq!(parse_port_record("7000\n"), ports(&[7000]));
        assert_eq!(parse_port_record("65535,1\n"), ports(&[1, 65535]));
        // No port proxied: an empty list, still ended.
        assert_eq!(parse_port_record("\n"), ports(&[]));
    }

    #[test]
    fn a_record_without_its_newline_is_being_rewritten() {
        assert_eq!(parse_port_record(""), RecordReading::Incomplete);
        assert_eq!(parse_port_record("5000,60"), RecordReading::Incomplete);
    }

    #[test]
    fn anything_the_product_does_not_write_is_damaged() {
        for text in [
            "5000,\n",
            ",5000\n",
            "5000,,6000\n",
            "0\n",
            "65536\n",
            "+5000\n",
            " 5000\n",
            "5000\n6000\n",
            "5000,5000\n",
            "x\n",
        ] {
            assert!(matches!(parse_port_record(text), RecordReading::Damaged(_)), "{text:?} was accepted");
        }
    }

    #[test]
    fn the_label_has_the_records_list_without_the_newline() {
        assert_eq!(parse_port_list("5000,6000"), Ok([5000, 6000].into_iter().collect()));
        assert_eq!(parse_port_list(""), Ok(BTreeSet::new()));
        assert!(parse_port_list("5000\n").is_err());
    }

    /// The independent reader and the core's writer agree on the format; only the writer is the
    /// core's here, so a bug in the core's parser still cannot hide behind this reader.
    #[test]
    fn what_the_core_writes_reads_back_as_the_same_ports() {
        use assemble_core::{backend::sidecars::record, PortSet};
        assert_eq!(record::PORT_RECORD, PORT_RECORD_PATH);
        for list in [vec![], vec![5000], vec![80, 5000, 65535]] {
            let written = record::record_text(&PortSet::from_ports(list.clone()));
            assert_eq!(parse_port_record(&written), ports(&list), "{written:?}");
            assert_eq!(parse_port_list(&PortSet::from_ports(list.clone()).to_label()), Ok(list.into_iter().collect()));
        }
    }
}
