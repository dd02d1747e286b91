//! The relay itself: one thread per direction per connection, bytes moved by `splice(2)` inside
//! the kernel (large buffers where it cannot), half-close propagated so that protocols which shut
//! down their write side (HTTP/1.0, `nc -q`) still work. At most `max_connections` connections are
//! relayed at once: past that a connection is accepted and closed at once, and the refusal logged
//! (at most once a second, with a count), so a flood costs the host neither threads nor log space.
use std::{
    io::{self, Read, Write},
    net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream},
    os::{
        fd::{AsRawFd, RawFd},
        unix::net::{UnixListener, UnixStream},
    },
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use crate::{
    args::{Config, Listen, Target},
    netns,
    pool::Pool,
    splice,
};

/// Large enough that a registry push is not limited by syscalls per byte.
const BUFFER_SIZE: usize = 256 * 1024;

/// How often refusals are logged at most.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(1);

/// Binds its listeners in the namespace it was started in, then, for the host's loopback, moves to
/// the engine's namespace; relays until killed.
pub fn serve(config: &Config) -> io::Result<()> {
    let listeners = match &config.listen {
        Listen::Loopback(port) => bind_loopback(*port)?.into_iter().map(Listener::Tcp).collect(),
        Listen::Unix(path) => {
            // A socket left by an earlier run of this relay would make the bind fail.
            let _ = std::fs::remove_file(path);
            vec![Listener::Unix(UnixListener::bind(path)?)]
        }
    };
    let destination = match (&config.target, config.port()) {
        (Target::Address(address), _) => Destination::Tcp(vec![*address]),
        (Target::Unix(path), _) => Destination::Unix(path.clone()),
        (Target::HostLoopback, Some(port)) => {
            netns::enter_parents_namespace()?;
            // IPv4 first: what "localhost" mostly is; then IPv6, for a service bound to [::1] only.
            Destination::Tcp(vec![
                SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
            ])
        }
        (Target::HostLoopback, None) => return Err(io::Error::other("--host-loopback needs --port")),
    };
    let gate = Gate::new(config.max_connections, describe_listen(&config.listen));
    // The start waits for this line: listening, and (for the host's loopback) on the host.
    println!(
        "assemble-proxy: relaying {} to {} (at most {} connections at once)",
        describe_listen(&config.listen),
        describe(&config.target),
        config.max_connections
    );
    let handles: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let (destination, gate) = (destination.clone(), gate.clone());
            thread::spawn(move || accept_loop(listener, destination, gate))
        })
        .collect();
    for handle in handles {
        // accept_loop only returns on a listener error; keep serving on the other listener.
        if let Ok(Err(err)) = handle.join() {
            eprintln!("assemble-proxy: listener stopped: {err}");
        }
    }
    Err(io::Error::other("all listeners stopped"))
}

fn describe_listen(listen: &Listen) -> String {
    match listen {
        Listen::Loopback(port) => format!("localhost:{port}"),
        Listen::Unix(path) => format!("unix:{}", path.display()),
    }
}

fn describe(target: &Target) -> String {
    match target {
        Target::HostLoopback => "the host's loopback".into(),
        Target::Address(address) => address.to_string(),
        Target::Unix(path) => format!("unix:{}", path.display()),
    }
}

pub fn bind_loopback(port: u16) -> io::Result<Vec<TcpListener>> {
    let v4 = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    let mut listeners = vec![v4];
    match TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))) {
        Ok(v6) => listeners.push(v6),
        // A namespace with IPv6 disabled has no ::1; IPv4 loopback alone is then "localhost".
        Err(err) => eprintln!("assemble-proxy: not listening on [::1]:{port}: {err}"),
    }
    Ok(listeners)
}

/// The count of connections being relayed, shared by the relay's listeners, and the refusals not
/// yet logged.
#[derive(Clone)]
pub struct Gate {
    open: Arc<AtomicUsize>,
    max: usize,
    what: Arc<str>,
    refusals: Arc<Mutex<Refusals>>,
}

struct Refusals {
    unlogged: usize,
    last_log: Option<Instant>,
}

/// A connection's place under the gate, given back when it is dropped (both directions done).
struct Permit(Arc<AtomicUsize>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    pub fn new(max: usize, what: String) -> Self {
        Self {
            open: Arc::default(),
            max,
            what: what.into(),
            refusals: Arc::new(Mutex::new(Refusals { unlogged: 0, last_log: None })),
        }
    }

    fn enter(&self) -> Option<Permit> {
        let entered = self.open.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < self.max).then_some(n + 1));
        entered.ok().map(|_| Permit(self.open.clone()))
    }

    /// Counts a refusal and logs the count, at most once a second.
    fn refused(&self, why: &str) {
        let mut refusals = self.refusals.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        refusals.unlogged += 1;
        let due = refusals.last_log.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY);
        if due {
            eprintln!("assemble-proxy: refused {} connection(s) to {}: {why}", refusals.unlogged, self.what);
            refusals.unlogged = 0;
            refusals.last_log = Some(Instant::now());
        }
    }
}

/// A listening socket: TCP on loopback, or unix.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn accept(&self) -> io::Result<Conn> {
        match self {
            Listener::Tcp(listener) => listener.accept().map(|(stream, _)| Conn::Tcp(stream)),
            Listener::Unix(listener) => listener.accept().map(|(stream, _)| Conn::Unix(stream)),
        }
    }
}

/// Where connections go: the first TCP address that accepts, or a unix socket.
#[derive(Clone, Debug)]
pub enum Destination {
    Tcp(Vec<SocketAddr>),
    Unix(PathBuf),
}

/// A connection, either kind.
pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn try_clone(&self) -> io::Result<Conn> {
        match self {
            Conn::Tcp(s) => s.try_clone().map(Conn::Tcp),
            Conn::Unix(s) => s.try_clone().map(Conn::Unix),
        }
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.shutdown(how),
            Conn::Unix(s) => s.shutdown(how),
        }
    }

    fn no_delay(&self) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_nodelay(true),
            Conn::Unix(_) => Ok(()),
        }
    }
}

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Conn::Tcp(s) => s.as_raw_fd(),
            Conn::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Read for &Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => (&*s).read(buf),
            Conn::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => (&*s).write(buf),
            Conn::Unix(s) => (&*s).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub fn accept_loop(listener: Listener, destination: Destination, gate: Gate) -> io::Result<()> {
    loop {
        let client = listener.accept()?;
        let Some(permit) = gate.enter() else {
            // Dropping it closes it: the client sees the connection end at once.
            drop(client);
            gate.refused(&format!("{} connections are open, the most it relays at once", gate.max));
            continue;
        };
        let destination = destination.clone();
        let job = Pool::shared().run(move || {
            let _permit = permit;
            if let Err(err) = relay_connection(client, &destination) {
                eprintln!("assemble-proxy: connection to {destination:?} failed: {err}");
            }
        });
        if let Err(err) = job {
            gate.refused(&format!("no thread for it ({err})"));
        }
    }
}

/// The first destination that accepts, in order.
fn connect(destination: &Destination) -> io::Result<Conn> {
    match destination {
        Destination::Unix(path) => UnixStream::connect(path).map(Conn::Unix),
        Destination::Tcp(addresses) => {
            let mut last = io::Error::other("no destination");
            for address in addresses {
                match TcpStream::connect(address) {
                    Ok(stream) => return Ok(Conn::Tcp(stream)),
                    Err(err) => last = err,
                }
            }
            Err(last)
        }
    }
}

fn relay_connection(client: Conn, destination: &Destination) -> io::Result<()> {
    let upstream = connect(destination)?;
    client.no_delay()?;
    upstream.no_delay()?;
    let (client_read, upstream_write) = (client.try_clone()?, upstream.try_clone()?);
    let (result, to_upstream) = std::sync::mpsc::channel();
    // Without a second thread (the pids limit), the connection is closed: both sockets drop.
    Pool::shared().run(move || {
        let _ = result.send(pump(client_read, upstream_write));
    })?;
    let to_client = pump(upstream, client);
    let to_upstream = to_upstream.recv().unwrap_or_else(|_| Err(io::Error::other("relay thread panicked")));
    to_client.and(to_upstream)
}

/// Moves bytes until EOF, then half-closes the destination so the peer sees the end of the stream.
fn pump(from: Conn, to: Conn) -> io::Result<()> {
    let result = match splice::pump(&from, &to) {
        splice::Outcome::Done(result) => result.map(|_| ()),
        splice::Outcome::Unsupported => copy(&from, &to),
    };
    let _ = to.shutdown(Shutdown::Write);
    if result.is_err() {
        let _ = from.shutdown(Shutdown::Read);
    }
    result
}

/// The portable way: through a user-space buffer.
fn copy(mut from: &Conn, mut to: &Conn) -> io::Result<()> {
    let mut buffer = vec![0u8; BUFFER_SIZE];
    loop {
        match from.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(n) => to.write_all(&buffer[..n])?,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => break Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// An echo server that upper-cases, so a reply proves it went through the target.
    fn upper_echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                thread::spawn(move || {
                    let mut data = Vec::new();
                    stream.read_to_end(&mut data).unwrap();
                    stream.write_all(&data.to_ascii_uppercase()).unwrap();
                });
            }
        });
        addr
    }

    fn start_relay(target: SocketAddr) -> SocketAddr {
        start_relay_to(Destination::Tcp(vec![target]), 64)
    }

    fn start_relay_to(destination: Destination, max: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let gate = Gate::new(max, format!("localhost:{}", addr.port()));
        thread::spawn(move || accept_loop(Listener::Tcp(listener), destination, gate));
        addr
    }

    #[test]
    fn relays_both_ways_and_propagates_half_close() {
        let relay = start_relay(upper_echo_server());
        let mut client = TcpStream::connect(relay).unwrap();
        client.write_all(b"hello registry").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "HELLO REGISTRY");
    }

    #[test]
    fn relays_large_payloads_intact() {
        let relay = start_relay(upper_echo_server());
        let payload: Vec<u8> = (0..3 * BUFFER_SIZE + 17).map(|i| b'a' + (i % 26) as u8).collect();
        let mut client = TcpStream::connect(relay).unwrap();
        let writer = {
            let mut client = client.try_clone().unwrap();
            let payload = payload.clone();
            thread::spawn(move || {
                client.write_all(&payload).unwrap();
                client.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).unwrap();
        writer.join().unwrap();
        assert_eq!(reply, payload.to_ascii_uppercase());
    }

    /// A request-reply exchange that keeps the connection open: nothing may wait for more data
    /// (no corking), or the reply never comes.
    #[test]
    fn relays_a_one_byte_ping_pong_at_once() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = echo.local_addr().unwrap();
        thread::spawn(move || {
            let (mut stream, _) = echo.accept().unwrap();
            let mut byte = [0u8; 1];
            while stream.read_exact(&mut byte).is_ok() {
                stream.write_all(&byte).unwrap();
            }
        });
        let mut client = TcpStream::connect(start_relay(target)).unwrap();
        client.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let began = std::time::Instant::now();
        for round in 0..10u8 {
            client.write_all(&[round]).unwrap();
            let mut reply = [0u8; 1];
            client.read_exact(&mut reply).expect("the reply did not come through the relay within 5 s");
            assert_eq!(reply, [round]);
        }
        // Not a speed claim: a corked byte waits about 200 ms per round, an uncorked one microseconds.
        let took = began.elapsed();
        assert!(took < std::time::Duration::from_secs(1), "10 round trips took {took:?}: bytes wait for more data");
    }

    #[test]
    fn the_copying_fallback_moves_the_same_bytes() {
        let source = TcpListener::bind("127.0.0.1:0").unwrap();
        let sink = TcpListener::bind("127.0.0.1:0").unwrap();
        let (source_addr, sink_addr) = (source.local_addr().unwrap(), sink.local_addr().unwrap());
        let payload: Vec<u8> = (0..BUFFER_SIZE * 2 + 5).map(|i| (i % 251) as u8).collect();
        let sent = payload.clone();
        let writer = thread::spawn(move || {
            let mut stream = TcpStream::connect(source_addr).unwrap();
            stream.write_all(&sent).unwrap();
        });
        let reader = thread::spawn(move || {
            let (mut stream, _) = sink.accept().unwrap();
            let mut data = Vec::new();
            stream.read_to_end(&mut data).unwrap();
            data
        });
        let (from, _) = source.accept().unwrap();
        let to = Conn::Tcp(TcpStream::connect(sink_addr).unwrap());
        copy(&Conn::Tcp(from), &to).unwrap();
        drop(to);
        writer.join().unwrap();
        assert_eq!(reader.join().unwrap(), payload);
    }

    #[test]
    fn tries_the_next_destination_when_one_refuses() {
        let refused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let server = upper_echo_server();
        let addr = start_relay_to(Destination::Tcp(vec![refused, server]), 64);
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(b"second").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "SECOND");
    }

    #[test]
    fn closes_the_client_when_the_target_refuses() {
        let unused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let relay = start_relay(unused); // the listener above is dropped: nothing listens there
        let mut client = TcpStream::connect(relay).unwrap();
        let mut reply = Vec::new();
        assert_eq!(client.read_to_end(&mut reply).unwrap_or(0), 0);
    }

    /// Past the cap a connection is closed at once, unrelayed; once one ends, the next is relayed.
    #[test]
    fn connections_past_the_cap_are_closed_and_the_cap_frees_up() {
        // A server that holds each connection open until told, and counts them.
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        thread::spawn(move || {
            for stream in server.incoming() {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut stream = stream.unwrap();
                thread::spawn(move || {
                    let mut data = Vec::new();
                    let _ = stream.read_to_end(&mut data);
                    let _ = stream.write_all(b"bye");
                });
            }
        });
        let relay = start_relay_to(Destination::Tcp(vec![target]), 3);
        let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(relay).unwrap()).collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        while accepted.load(Ordering::SeqCst) < 3 {
            assert!(Instant::now() < deadline, "the three connections under the cap were not relayed");
            thread::sleep(Duration::from_millis(10));
        }
        // The fourth is accepted by the kernel and closed by the relay: EOF, nothing relayed.
        let mut fourth = TcpStream::connect(relay).unwrap();
        fourth.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut reply = Vec::new();
        assert_eq!(fourth.read_to_end(&mut reply).unwrap_or(0), 0, "a connection past the cap got {reply:?}");
        assert_eq!(accepted.load(Ordering::SeqCst), 3, "a connection past the cap reached the target");
        // One ends: its place is free again.
        let first = &held[0];
        first.shutdown(Shutdown::Write).unwrap();
        let mut bye = String::new();
        (&mut &*first).read_to_string(&mut bye).unwrap();
        assert_eq!(bye, "bye");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut next = TcpStream::connect(relay).unwrap();
            // One still past the cap is closed by the relay at once, so sending on it may fail
            // (ENOTCONN, EPIPE): that is "not freed yet", as an empty reply is.
            let sent = next.write_all(b"x").and_then(|()| next.shutdown(Shutdown::Write));
            let mut reply = String::new();
            if sent.is_ok() {
                next.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let _ = next.read_to_string(&mut reply);
            }
            if reply == "bye" {
                break;
            }
            // The freed permit is given back when the relay's threads finish, a moment after EOF.
            assert!(Instant::now() < deadline, "the place of a finished connection was not freed");
            thread::sleep(Duration::from_millis(20));
        }
        drop(held);
    }

    /// The two-container design's pieces: TCP in, unix socket between, TCP out.
    #[test]
    fn relays_through_a_unix_socket_between_two_relays() {
        let dir = std::env::temp_dir().join(format!("assemble-proxy-unix-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("relay.sock");
        let server = upper_echo_server();
        let unix = UnixListener::bind(&socket).unwrap();
        let gate = Gate::new(8, "unix".into());
        thread::spawn(move || accept_loop(Listener::Unix(unix), Destination::Tcp(vec![server]), gate));
        let relay = start_relay_to(Destination::Unix(socket), 8);
        let mut client = TcpStream::connect(relay).unwrap();
        client.write_all(b"through the socket").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "THROUGH THE SOCKET");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
