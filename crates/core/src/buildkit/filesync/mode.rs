//! Go's `os.FileMode` bits, which the receiver reads an entry's mode as (fsutil is Go): a Unix
//! `st_mode` turned into them, and which entries' contents the receiver may ask for.
pub(super) const GO_MODE_DIR: u32 = 1 << 31;
pub(super) const GO_MODE_SYMLINK: u32 = 1 << 27;
pub(super) const GO_MODE_DEVICE: u32 = 1 << 26;
pub(super) const GO_MODE_NAMED_PIPE: u32 = 1 << 25;
pub(super) const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
pub(super) const GO_MODE_CHAR_DEVICE: u32 = 1 << 21;
pub(super) const GO_MODE_STICKY: u32 = 1 << 20;
/// Every type bit: an entry with none of them is a regular file, whose contents can be asked for.
const GO_MODE_TYPE: u32 =
    GO_MODE_DIR | GO_MODE_SYMLINK | GO_MODE_NAMED_PIPE | GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE | (1 << 24) | (1 << 19);

/// A Unix `st_mode` as Go's `os.FileMode`.
pub fn go_mode(unix: u32) -> u32 {
    const S_IFMT: u32 = 0o170000;
    let mut mode = unix & 0o777;
    mode |= match unix & S_IFMT {
        0o040000 => GO_MODE_DIR,
        0o120000 => GO_MODE_SYMLINK,
        0o010000 => GO_MODE_NAMED_PIPE,
        0o060000 => GO_MODE_DEVICE,
        0o020000 => GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
        _ => 0,
    };
    if unix & 0o4000 != 0 {
        mode |= GO_MODE_SETUID;
    }
    if unix & 0o2000 != 0 {
        mode |= GO_MODE_SETGID;
    }
    if unix & 0o1000 != 0 {
        mode |= GO_MODE_STICKY;
    }
    mode
}

/// Whether the receiver may ask for an entry's contents (fsutil's `fileCanRequestData`).
pub(super) fn can_request_data(go_mode: u32) -> bool {
    go_mode & GO_MODE_TYPE == 0
}
