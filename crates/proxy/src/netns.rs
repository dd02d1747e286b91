//! Leaving the backend's network namespace for the engine's own, so that the relay reaches the
//! host's loopback. The relay binds its listeners first, in the backend's namespace (the sidecar
//! joins it with `network_mode: container:<backend>`), then moves itself into the namespace of its
//! parent, the container shim, which runs where the engine runs: the host (on Docker Desktop, its
//! VM). Sockets keep the namespace they were made in, so the listeners stay reachable only from
//! inside the backend, and every connection the relay makes afterwards starts on the host.
//!
//! `setns(2)` moves only the calling thread, and threads inherit their creator's namespace, so
//! this runs on the main thread before any other exists. It needs the parent's PID (`pid: host`)
//! and CAP_SYS_ADMIN and CAP_SYS_PTRACE; once there, the relay becomes `nobody` (uid and gid 65534,
//! no supplementary groups: CAP_SETUID and CAP_SETGID), keeps no capability and can gain none
//! (no_new_privs). Every capability the sidecar was given is spent before the first client byte.
use std::{fs::File, io, os::fd::AsRawFd, os::unix::fs::MetadataExt};

const CLONE_NEWNET: i32 = 0x4000_0000;
const PR_SET_NO_NEW_PRIVS: i32 = 38;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Who the relay is once it has entered the host's namespace: `nobody`, as on every Linux.
pub const UNPRIVILEGED: u32 = 65534;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

extern "C" {
    fn setns(fd: i32, nstype: i32) -> i32;
    fn getppid() -> i32;
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    fn capset(header: *mut CapHeader, data: *const CapData) -> i32;
    fn setgroups(size: usize, list: *const u32) -> i32;
    fn setresgid(rgid: u32, egid: u32, sgid: u32) -> i32;
    fn setresuid(ruid: u32, euid: u32, suid: u32) -> i32;
}

/// A network namespace's identity: the device and inode of its `ns/net` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceId {
    dev: u64,
    ino: u64,
}

impl std::fmt::Display for NamespaceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "net:[{}]", self.ino)
    }
}

fn identity(file: &File) -> io::Result<NamespaceId> {
    let meta = file.metadata()?;
    Ok(NamespaceId { dev: meta.dev(), ino: meta.ino() })
}

fn namespace_of(path: &str) -> io::Result<NamespaceId> {
    identity(&File::open(path)?).map_err(|err| io::Error::new(err.kind(), format!("reading {path}: {err}")))
}

/// The check the move must pass: the namespace to enter is not the one the relay listens in (then
/// "the host's loopback" would be the backend's own, and the relay would relay to itself), and
/// after the move the thread is where it meant to go. Fails closed, with a sentence.
pub fn check_move(own: NamespaceId, target: NamespaceId, after: Option<NamespaceId>, path: &str) -> io::Result<()> {
    if target == own {
        return Err(io::Error::other(format!(
            "{path} ({target}) is the sidecar's own network namespace, not the engine's: the sidecar must run in the \
             host's PID namespace beside the engine's shim; refusing to relay"
        )));
    }
    if let Some(after) = after {
        if after != target {
            return Err(io::Error::other(format!(
                "after entering {path} ({target}) the relay is in {after}; refusing to relay"
            )));
        }
    }
    Ok(())
}

/// Moves the calling thread into its parent's network namespace, checked by inode, then drops to
/// `nobody` with no capability.
pub fn enter_parents_namespace() -> io::Result<()> {
    let own = namespace_of("/proc/thread-self/ns/net")?;
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { getppid() };
    let path = format!("/proc/{parent}/ns/net");
    let namespace = File::open(&path).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!(
                "cannot open {path} (the engine's network namespace): {err}; the sidecar needs the host's PID \
                 namespace and the SYS_ADMIN and SYS_PTRACE capabilities"
            ),
        )
    })?;
    let target = identity(&namespace)?;
    check_move(own, target, None, &path)?;
    // SAFETY: a namespace descriptor we opened; only this thread moves.
    if unsafe { setns(namespace.as_raw_fd(), CLONE_NEWNET) } != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("cannot enter {path}: {err}")));
    }
    check_move(own, target, Some(namespace_of("/proc/thread-self/ns/net")?), &path)?;
    drop_privileges()
}

/// No capability left, none to regain, and not root: the relay only moves bytes from here on.
fn drop_privileges() -> io::Result<()> {
    let step = |what: &str, result: i32| {
        if result == 0 {
            Ok(())
        } else {
            let err = io::Error::last_os_error();
            Err(io::Error::new(err.kind(), format!("cannot drop privileges ({what}): {err}")))
        }
    };
    // SAFETY: each call takes plain values (and setgroups an empty list); they act on the whole
    // process (glibc applies the ID changes to every thread; there is only this one yet).
    unsafe {
        step("no_new_privs", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        // Groups first: after the uid changes, CAP_SETGID is gone.
        step("setgroups", setgroups(0, std::ptr::null()))?;
        step("setresgid 65534", setresgid(UNPRIVILEGED, UNPRIVILEGED, UNPRIVILEGED))?;
        step("setresuid 65534", setresuid(UNPRIVILEGED, UNPRIVILEGED, UNPRIVILEGED))?;
    }
    // Leaving uid 0 clears the permitted and effective sets; clear them all the same, and the
    // inheritable one, so that nothing depends on that rule.
    let mut header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let data = [CapData::default(); 2];
    // SAFETY: version 3 takes two data elements, which we own; pid 0 is this thread.
    step("capset", unsafe { capset(&mut header, data.as_ptr()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entering_the_own_namespace_or_landing_elsewhere_fails_closed() {
        let own = NamespaceId { dev: 4, ino: 4026531840 };
        let host = NamespaceId { dev: 4, ino: 4026531992 };
        assert!(check_move(own, host, None, "/proc/1/ns/net").is_ok());
        assert!(check_move(own, host, Some(host), "/proc/1/ns/net").is_ok());
        let same = check_move(own, own, None, "/proc/1/ns/net").unwrap_err().to_string();
        assert!(
            same.contains("is the sidecar's own network namespace") && same.contains("refusing to relay"),
            "{same}"
        );
        let astray = check_move(own, host, Some(own), "/proc/1/ns/net").unwrap_err().to_string();
        assert!(astray.contains("the relay is in net:[4026531840]"), "{astray}");
    }

    #[test]
    fn a_namespace_is_known_by_its_inode() {
        let a = namespace_of("/proc/self/ns/net").unwrap();
        let b = namespace_of("/proc/thread-self/ns/net").unwrap();
        assert_eq!(a, b, "a process's threads share its network namespace");
    }
}
