//! Ports for the tests' own servers (registries, sshd, a TLS engine), held until the test process
//! ends. A port found by binding port 0 and closing the socket is free only for a moment: the
//! kernel may hand it to any outgoing connection before our server binds it. So the ports come from
//! below the kernel's ephemeral range, where it never hands out ports on its own, and each one is
//! reserved with a lock file, so that two test processes (cargo runs test binaries one after the
//! other, but the UI tests and the soak run beside them) never take the same one.
use std::{
    fs::File,
    net::{Ipv4Addr, Ipv6Addr, TcpListener},
    path::PathBuf,
    sync::Mutex,
};

/// Where the lock files live; the UI tests' `conftest.free_port` uses the same folder.
fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("assemble-test-ports")
}

/// Never handed out: 5000 is the product's default port, so a developer's registry is never touched.
const AVOID: &[u16] = &[5000];

/// Lock files of the ports this process holds (kept open: the lock lives as long as the file).
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// The first port of the kernel's ephemeral range (`net.ipv4.ip_local_port_range`).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next().and_then(|first| first.parse().ok()))
        .unwrap_or(32768)
}

/// A port that nothing listens on, on any address, and that no other test process holds; it stays
/// reserved for this process until it ends.
pub fn free_port() -> u16 {
    let top = ephemeral_start();
    let bottom = 20000u16.min(top.saturating_sub(2000));
    let span = u32::from(top - bottom);
    assert!(span > 100, "the kernel's ephemeral range starts at {top}: no room below it for test ports");
    let dir = lock_dir();
    if let Err(err) = std::fs::create_dir_all(&dir) {
        panic!("cannot make {}: {err}", dir.display());
    }
    // Start somewhere different in each process, so parallel runs rarely meet on the same lock.
    let start = std::process::id() % span;
    for step in 0..span {
        let port = bottom + ((start + step * 7919) % span) as u16;
        if AVOID.contains(&port) || !bindable(port) {
            continue;
        }
        let path = dir.join(format!("{port}.lock"));
        let Ok(file) = File::options().create(true).truncate(false).write(true).open(&path) else { continue };
        if file.try_lock().is_ok() {
            HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(file);
            return port;
        }
    }
    panic!("no free port between {bottom} and {top}: every one is in use or held by another test process");
}

/// Whether `port` can be bound on all IPv4 addresses, on loopback and on IPv6.
fn bindable(port: u16) -> bool {
    let v4 = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok();
    let loopback = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok();
    // A host without IPv6 cannot bind [::]; that does not make the port busy.
    let v6 = TcpListener::bind((Ipv6Addr::UNSPECIFIED, port))
        .map(|_| true)
        .unwrap_or_else(|err| err.kind() != std::io::ErrorKind::AddrInUse);
    v4 && loopback && v6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_distinct_and_held() {
        let (a, b) = (free_port(), free_port());
        assert_ne!(a, b);
        assert!(a < ephemeral_start() && b < ephemeral_start(), "{a} {b}");
        // Another open file description cannot take the lock this process holds.
        let other = File::options().write(true).open(lock_dir().join(format!("{a}.lock"))).expect("lock file");
        assert!(other.try_lock().is_err(), "port {a} is not held");
    }
}
