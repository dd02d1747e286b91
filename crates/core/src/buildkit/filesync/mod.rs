//! The sending side of BuildKit's file transfer (`moby.filesync.v1.FileSync/DiffCopy`, tonistiigi/fsutil's
//! `Send`): a folder walked in the order the receiver checks (depth first, names in byte order),
//! filtered by the patterns BuildKit asks for ([`walk`](mod@walk)), one STAT packet per entry, then the
//! contents of the files the receiver asks for (REQ), each as DATA packets ended by an empty one,
//! until FIN ([`send`]). Modes travel as Go's ([`mode`]). The receiver keeps what it got last time
//! under the session's shared key, so it asks only for files whose metadata changed: the
//! modification times, modes and sizes sent here decide that.
pub mod mode;
pub mod send;
#[cfg(test)]
mod testing;
pub mod walk;

pub use send::{send_entries, TransferCount, TransferFailure};
pub use walk::{walk, walk_counting, SyncDir, TransferFilter, Walk, WalkedEntry};
