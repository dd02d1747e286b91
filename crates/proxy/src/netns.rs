//! Leaving the backend's network namespace for the engine's own, so that the relay reaches the
//! host's loopback. The relay binds its listeners first, in the backend's namespace (the sidecar
//! joins it with `network_mode: container:<backend>`), then moves itself into the namespace of its
//! parent, the container shim, which runs where the engine runs: the host (on Docker Desktop, its
//! VM). Sockets keep the namespace they were made in, so the listeners stay reachable only from
//! inside the backend, and every connection the relay makes afterwards starts on the host.
//!
//! `setns(2)` moves only the calling thread, and threads inherit their creator's namespace, so
//! this runs on the main thread before any other exists. It needs the parent's PID (`pid: host`)
//! and CAP_SYS_ADMIN and CAP_SYS_PTRACE; once there, every capability is dropped for good.
use std::{fs::File, io, os::fd::AsRawFd};

const CLONE_NEWNET: i32 = 0x4000_0000;
const PR_SET_NO_NEW_PRIVS: i32 = 38;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

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
}

/// Moves the calling thread into its parent's network namespace, then drops every capability.
pub fn enter_parents_namespace() -> io::Result<()> {
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
    // SAFETY: a namespace descriptor we opened; only this thread moves.
    if unsafe { setns(namespace.as_raw_fd(), CLONE_NEWNET) } != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("cannot enter {path}: {err}")));
    }
    drop_capabilities()
}

/// No capability left, and none to regain: the relay only moves bytes from here on.
fn drop_capabilities() -> io::Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes the value 1 and zeros.
    if unsafe { prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let data = [CapData::default(); 2];
    // SAFETY: version 3 takes two data elements, which we own; pid 0 is this thread.
    if unsafe { capset(&mut header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
