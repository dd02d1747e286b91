//! The live set of proxied host ports. A container's labels cannot change, so the backend's `ports`
//! label only says what it was started with; the live set changes with `ports add`/`rm`, a start
//! that asks a running backend for other ports, and the app's settings, with no restart.
//!
//! The host owns the set. Its authority ([`authority`]) is what this machine's start request and
//! later changes asked for: the host record ([`HostRecord`], a file in the runtime folder keyed by
//! engine and backend ID), else (after a reboot, or on another machine) the backend's `ports` label;
//! with the ports of the sidecars that a host made for this backend (only a host creates them).
//! The record inside the backend ([`PORT_RECORD`], rewritten with every change) is only read to
//! narrow it ([`narrow`]): root in the backend can write that file, so a port that only it names is
//! never relayed, and `info` and `ports` say so. The sidecars follow the live set (the repair),
//! never the other way round, so a sidecar that someone removes comes back. A backend made before
//! records existed has none: its label is its set.
use bollard::query_parameters::{DownloadFromContainerOptionsBuilder, UploadToContainerOptionsBuilder};
use futures_util::TryStreamExt;
use serde::Serialize;

use crate::{
    backend::{error::BackendError, lock::OperationLock, sidecars, spec::files_tar, Backend, OurContainer, Presence},
    engine::{is_conflict, is_not_found},
    ports::PortSet,
    Error, Result,
};

/// Where the record is, in the backend container.
pub const PORT_RECORD: &str = "/etc/assemble-ports";

/// The host's record of one backend's live ports: a file in the runtime folder (`$XDG_RUNTIME_DIR`
/// or the temp folder, as the operation lock), keyed by the engine's endpoint and the backend's ID,
/// written before the backend's own record at every start and change, removed when it stops.
#[derive(Debug, Clone)]
pub struct HostRecord {
    path: std::path::PathBuf,
}

impl HostRecord {
    /// The record of backend `id` on `endpoint`'s engine.
    pub fn of(endpoint: &crate::engine::Endpoint, id: &str) -> Self {
        let short = &id[..id.len().min(12)];
        let name = format!("assemble-backend-ports-{}-{short}", endpoint.file_key());
        Self { path: crate::names::runtime_dir().join(name) }
    }

    /// The ports it records; `None` when there is no record here (another machine, a reboot) or
    /// it is not one we wrote.
    pub fn read(&self) -> Option<PortSet> {
        match parse_record(&std::fs::read_to_string(&self.path).ok()?) {
            RecordText::Complete(ports) => Some(ports),
            _ => None,
        }
    }

    /// Writes it whole (a temporary file renamed over it, so a reader never meets half of it).
    pub fn write(&self, ports: &PortSet) -> Result<()> {
        let temporary = self.path.with_extension("tmp");
        std::fs::write(&temporary, record_text(ports))
            .and_then(|()| std::fs::rename(&temporary, &self.path))
            .map_err(Error::io(format!("writing the host's port record {}", self.path.display())))
    }

    /// Removes it; one that is not there is already gone.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The ports the host stands behind for a backend: its host record, else the backend's label (what
/// start was asked), with the ports of the sidecars a host made for it.
pub fn authority(
    host_record: Option<PortSet>,
    label: &PortSet,
    sidecar_ports: impl IntoIterator<Item = u16>,
) -> PortSet {
    host_record.unwrap_or_else(|| label.clone()).union(&PortSet::from_ports(sidecar_ports))
}

/// The live set, and the ports only the backend's record names: the record may narrow the host's
/// authority, never widen it. Without a record (a backend from before records), the authority.
pub fn narrow(authority: &PortSet, record: Option<&PortSet>) -> (PortSet, PortSet) {
    match record {
        None => (authority.clone(), PortSet::none()),
        Some(record) => {
            (PortSet::from_ports(record.iter().filter(|p| authority.contains(*p))), record.without(authority))
        }
    }
}

/// What `info` and `ports` say of each port only the backend's record names.
pub fn unrelayed_notices(ports: &PortSet) -> Vec<String> {
    ports.iter().map(|port| format!("port {port} is named only inside the backend; not relayed")).collect()
}

/// How often a record met in the middle of its rewrite is read again.
const INCOMPLETE_READS: usize = 5;

/// The record's text: the label form (`5000,6000`, empty for none) and a newline. The newline
/// marks it complete: the engine rewrites a file in place, so a read may meet it empty.
pub fn record_text(ports: &PortSet) -> String {
    format!("{}\n", ports.to_label())
}

/// What a record's text says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordText {
    /// A whole record.
    Complete(PortSet),
    /// Met while it was being rewritten: read it again.
    Incomplete,
    /// Not a record we wrote.
    Damaged,
}

/// Reads [`record_text`]'s form back.
pub fn parse_record(text: &str) -> RecordText {
    match text.strip_suffix('\n') {
        None => RecordText::Incomplete,
        Some(label) if label.contains('\n') => RecordText::Damaged,
        Some(label) => PortSet::from_label(label).map_or(RecordText::Damaged, RecordText::Complete),
    }
}

/// A change of the live ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortEdit {
    /// Also proxy these (`ports add`).
    Add(PortSet),
    /// Stop proxying these (`ports rm`); each must be proxied now.
    Remove(PortSet),
    /// Proxy exactly these (a start with other ports, the settings window).
    Set(PortSet),
}

impl PortEdit {
    /// `ports add`'s ports as typed, checked by the `--allow-host-port` rule; a bad one is told
    /// in the command's terms.
    pub fn add<S: AsRef<str>>(typed: &[S]) -> Result<Self> {
        Ok(PortEdit::Add(Self::parse("add", typed)?))
    }

    /// `ports rm`'s ports as typed, as [`PortEdit::add`].
    pub fn remove<S: AsRef<str>>(typed: &[S]) -> Result<Self> {
        Ok(PortEdit::Remove(Self::parse("rm", typed)?))
    }

    fn parse<S: AsRef<str>>(verb: &'static str, typed: &[S]) -> Result<PortSet> {
        PortSet::parse_change(typed).map_err(|source| BackendError::InvalidPortChange { verb, source }.into())
    }

    /// The set after the edit, from the set proxied now.
    pub fn apply(&self, current: &PortSet) -> Result<PortSet> {
        match self {
            PortEdit::Add(ports) => Ok(current.union(ports)),
            PortEdit::Remove(ports) => match ports.iter().find(|p| !current.contains(*p)) {
                Some(port) => Err(BackendError::PortNotProxied { port }.into()),
                None => Ok(current.without(ports)),
            },
            PortEdit::Set(ports) => Ok(ports.clone()),
        }
    }
}

/// What a change of the live ports did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortChange {
    /// The backend container, the same before and after.
    pub backend_id: String,
    /// The ports proxied now.
    pub ports: PortSet,
    /// Ports that were added.
    pub added: Vec<u16>,
    /// Ports that were removed.
    pub removed: Vec<u16>,
}

impl PortChange {
    /// Nothing changed: the backend already proxied exactly these ports.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// One line for the user.
    pub fn sentence(&self) -> String {
        let list = |ports: &[u16]| ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!("added {}", list(&self.added)));
        }
        if !self.removed.is_empty() {
            parts.push(format!("removed {}", list(&self.removed)));
        }
        if parts.is_empty() {
            format!("The backend already proxies host ports {}; nothing changed.", self.ports)
        } else {
            format!("Host ports {} (live, no restart): now proxying {}.", parts.join(", "), self.ports)
        }
    }
}

/// The record of container `id`; `None` when it has none (made before records existed).
pub(in crate::backend) async fn read(backend: &Backend, id: &str) -> Result<Option<PortSet>> {
    for _ in 0..INCOMPLETE_READS {
        let Some(text) = download(backend, id).await? else { return Ok(None) };
        match parse_record(&text) {
            RecordText::Complete(ports) => return Ok(Some(ports)),
            RecordText::Damaged => {
                return Err(BackendError::PortRecordDamaged {
                    record: PORT_RECORD,
                    name: backend.names.backend(),
                    text,
                }
                .into())
            }
            // Caught in the middle of a rewrite, which takes a moment: read it again.
            RecordText::Incomplete => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    Err(BackendError::PortRecordDamaged { record: PORT_RECORD, name: backend.names.backend(), text: String::new() }
        .into())
}

async fn download(backend: &Backend, id: &str) -> Result<Option<String>> {
    let options = DownloadFromContainerOptionsBuilder::default().path(PORT_RECORD).build();
    let archive: Vec<u8> = match backend
        .docker
        .download_from_container(id, Some(options))
        .map_ok(|chunk| chunk.to_vec())
        .try_concat()
        .await
    {
        Ok(archive) => archive,
        // No record (a backend from before records), or a container on its way out.
        Err(err) if is_not_found(&err) || is_conflict(&err) => return Ok(None),
        Err(err) => return Err(Error::docker(format!("reading the port record of {}", backend.names.backend()))(err)),
    };
    let mut entries = tar::Archive::new(archive.as_slice());
    let mut read = || -> std::io::Result<Option<String>> {
        let mut text = String::new();
        if let Some(entry) = entries.entries()?.next() {
            std::io::Read::read_to_string(&mut entry?, &mut text)?;
            return Ok(Some(text));
        }
        Ok(None)
    };
    read().map_err(Error::io(format!("reading the port record of {}", backend.names.backend())))
}

/// Rewrites the record of container `id`.
async fn write(backend: &Backend, id: &str, ports: &PortSet) -> Result<()> {
    let tar = files_tar(&[(PORT_RECORD, &record_text(ports))]).map_err(Error::io("packing the port record"))?;
    let options = UploadToContainerOptionsBuilder::default().path("/").build();
    backend
        .docker
        .upload_to_container(id, Some(options), bollard::body_full(tar.into()))
        .await
        .map_err(Error::docker(format!("writing the port record of {}", backend.names.backend())))
}

/// Changes the ports the running backend proxies, live: the same container and cache, no
/// BuildKit restart. Under the operation lock, and the edit applies to the set read under it,
/// so two changes (or a change and a stop) never interleave or lose one another. A port to
/// remove that is not proxied, or a sidecar name held by a container that is not ours, refuses
/// the change before anything is touched; a change that fails half way is put back.
pub(in crate::backend) async fn change(backend: &Backend, edit: &PortEdit) -> Result<PortChange> {
    let _lock = OperationLock::acquire(&backend.names, backend.engine.endpoint()).await?;
    let container = match backend.presence().await? {
        Presence::Ours(container) if container.running => *container,
        Presence::Foreign => return Err(BackendError::ForeignContainer { name: backend.names.backend() }.into()),
        _ => return Err(BackendError::PortsNeedARunningBackend.into()),
    };
    change_locked(backend, container, edit).await
}

/// [`change`] for a caller that holds the operation lock and has read the running `container`
/// under it.
pub(in crate::backend) async fn change_locked(
    backend: &Backend,
    mut container: OurContainer,
    edit: &PortEdit,
) -> Result<PortChange> {
    let current = container.config.ports.clone();
    let wanted = edit.apply(&current)?;
    let wanted = &wanted;
    let change = PortChange {
        backend_id: container.id.clone(),
        ports: wanted.clone(),
        added: wanted.iter().filter(|p| !current.contains(*p)).collect(),
        removed: current.iter().filter(|p| !wanted.contains(*p)).collect(),
    };
    if change.is_empty() {
        return Ok(change);
    }
    sidecars::check_new_names(backend, &PortSet::from_ports(change.added.iter().copied())).await?;
    // The host's record first: it is the authority; the backend's own only narrows it.
    let host_record = HostRecord::of(backend.engine.endpoint(), &container.id);
    host_record.write(wanted)?;
    if let Err(err) = write(backend, &container.id, wanted).await {
        // Nothing changed in the backend: the host's record goes back to what runs.
        let _ = host_record.write(&current);
        return Err(err);
    }
    container.config.ports = wanted.clone();
    match sidecars::repair_running(backend, &container).await {
        Ok(_) => Ok(change),
        Err(err) => {
            // Back to the ports it had, and their sidecars; the first error is the one to tell.
            container.config.ports = current.clone();
            let written = match host_record.write(&current) {
                Ok(()) => write(backend, &container.id, &current).await,
                Err(again) => Err(again),
            };
            let restored = match written {
                Ok(()) => sidecars::repair_running(backend, &container).await.map(|_| ()),
                Err(again) => Err(again),
            };
            match restored {
                Ok(()) => Err(err),
                Err(again) => {
                    Err(BackendError::PortChangeNotUndone { first: Box::new(err), undo: Box::new(again) }.into())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_a_partial_one_is_read_again() {
        let ports = PortSet::from_ports([6000, 5000]);
        assert_eq!(parse_record(&record_text(&ports)), RecordText::Complete(ports));
        assert_eq!(parse_record(&record_text(&PortSet::none())), RecordText::Complete(PortSet::none()));
        // The engine rewrites in place: empty, or cut before the newline.
        assert_eq!(parse_record(""), RecordText::Incomplete);
        assert_eq!(parse_record("5000,60"), RecordText::Incomplete);
        assert_eq!(parse_record("5000,x\n"), RecordText::Damaged);
        assert_eq!(parse_record("5000\n6000\n"), RecordText::Damaged);
    }

    #[test]
    fn the_backends_record_only_narrows_what_the_host_stands_behind() {
        let set = |ports: &[u16]| PortSet::from_ports(ports.iter().copied());
        // Root in the backend adds 7777 to its record: not relayed, and told.
        let authority = authority(None, &set(&[5000]), []);
        assert_eq!(narrow(&authority, Some(&set(&[5000, 7777]))), (set(&[5000]), set(&[7777])));
        assert_eq!(unrelayed_notices(&set(&[7777])), ["port 7777 is named only inside the backend; not relayed"]);
        // It may drop one: narrowing is allowed.
        assert_eq!(narrow(&authority, Some(&set(&[]))), (set(&[]), set(&[])));
        // No record (a backend from before records): the authority.
        assert_eq!(narrow(&authority, None), (set(&[5000]), set(&[])));
    }

    #[test]
    fn the_host_record_wins_over_the_label_and_sidecars_a_host_made_count() {
        let set = |ports: &[u16]| PortSet::from_ports(ports.iter().copied());
        // `ports add 6000` then `ports rm 5000` on this machine.
        assert_eq!(authority(Some(set(&[6000])), &set(&[5000]), []), set(&[6000]));
        // After a reboot (no host record) the label, with the sidecars hosts made.
        assert_eq!(authority(None, &set(&[5000]), [6000]), set(&[5000, 6000]));
    }

    #[test]
    fn edits_apply_to_the_set_proxied_now() {
        let now = PortSet::from_ports([5000, 6000]);
        let set = |ports: &[u16]| PortSet::from_ports(ports.iter().copied());
        assert_eq!(PortEdit::Add(set(&[6000, 7000])).apply(&now).ok(), Some(set(&[5000, 6000, 7000])));
        assert_eq!(PortEdit::Remove(set(&[5000])).apply(&now).ok(), Some(set(&[6000])));
        assert!(matches!(
            PortEdit::Remove(set(&[5000, 7000])).apply(&now),
            Err(Error::Backend(BackendError::PortNotProxied { port: 7000 }))
        ));
        assert_eq!(PortEdit::Set(set(&[])).apply(&now).ok(), Some(set(&[])));
    }

    #[test]
    fn ports_to_add_or_remove_are_told_in_their_commands_terms() {
        assert_eq!(PortEdit::add(&["7000,6000"]).ok(), Some(PortEdit::Add(PortSet::from_ports([6000, 7000]))));
        assert_eq!(PortEdit::remove(&["5000"]).ok(), Some(PortEdit::Remove(PortSet::from_ports([5000]))));
        let zero = PortEdit::add(&["0"]).unwrap_err();
        assert!(matches!(zero, Error::Backend(BackendError::InvalidPortChange { verb: "add", .. })), "{zero:?}");
        assert_eq!(
            zero.to_string(),
            "0 is not a port to add; give ports from 1 to 65535 (to proxy none, remove each with `ports rm`)"
        );
        let none = PortEdit::remove::<&str>(&[]).unwrap_err();
        assert!(matches!(none, Error::Backend(BackendError::InvalidPortChange { verb: "rm", .. })), "{none:?}");
    }

    #[test]
    fn a_change_says_what_it_did() {
        let change = |added: Vec<u16>, removed: Vec<u16>, ports: &[u16]| PortChange {
            backend_id: "b1".into(),
            ports: PortSet::from_ports(ports.iter().copied()),
            added,
            removed,
        };
        assert_eq!(
            change(vec![6000], vec![5000], &[6000, 7000]).sentence(),
            "Host ports added 6000, removed 5000 (live, no restart): now proxying 6000,7000."
        );
        assert_eq!(
            change(vec![], vec![], &[5000]).sentence(),
            "The backend already proxies host ports 5000; nothing changed."
        );
        assert_eq!(
            change(vec![], vec![5000], &[]).sentence(),
            "Host ports removed 5000 (live, no restart): now proxying none."
        );
    }
}
