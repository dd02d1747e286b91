//! The relay itself: one thread per direction per connection, bytes moved by `splice(2)` inside
//! the kernel (large buffers where it cannot), half-close propagated so that protocols which shut
//! down their write side (HTTP/1.0, `nc -q`) still work.
use std::{
    io::{self, Read, Write},
    net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream},
    thread,
};

use crate::{
    args::{Config, Target},
    netns,
    pool::Pool,
    splice,
};

/// Large enough that a registry push is not limited by syscalls per byte.
const BUFFER_SIZE: usize = 256 * 1024;

/// Binds both loopback addresses (IPv6 only when the namespace has it) in the namespace it was
/// started in, then, for the host's loopback, moves to the engine's namespace; relays until killed.
pub fn serve(config: &Config) -> io::Result<()> {
    let listeners = bind_loopback(config.port)?;
    let destinations = match config.target {
        Target::Address(address) => vec![address],
        Target::HostLoopback => {
            netns::enter_parents_namespace()?;
            // IPv4 first: what "localhost" mostly is; then IPv6, for a service bound to [::1] only.
            vec![
                SocketAddr::from((Ipv4Addr::LOCALHOST, config.port)),
                SocketAddr::from((Ipv6Addr::LOCALHOST, config.port)),
            ]
        }
    };
    // The start waits for this line: listening, and (for the host's loopback) on the host.
    println!("assemble-proxy: relaying localhost:{} to {}", config.port, describe(config.target));
    let handles: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let destinations = destinations.clone();
            thread::spawn(move || accept_loop(listener, destinations))
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

fn describe(target: Target) -> String {
    match target {
        Target::HostLoopback => "the host's loopback".into(),
        Target::Address(address) => address.to_string(),
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

pub fn accept_loop(listener: TcpListener, destinations: Vec<SocketAddr>) -> io::Result<()> {
    loop {
        let (client, _) = listener.accept()?;
        let destinations = destinations.clone();
        Pool::shared().run(move || {
            if let Err(err) = relay_connection(client, &destinations) {
                eprintln!("assemble-proxy: connection to {destinations:?} failed: {err}");
            }
        });
    }
}

/// The first destination that accepts, in order.
fn connect(destinations: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut last = io::Error::other("no destination");
    for destination in destinations {
        match TcpStream::connect(destination) {
            Ok(stream) => return Ok(stream),
            Err(err) => last = err,
        }
    }
    Err(last)
}

fn relay_connection(client: TcpStream, destinations: &[SocketAddr]) -> io::Result<()> {
    let upstream = connect(destinations)?;
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    let (client_read, upstream_write) = (client.try_clone()?, upstream.try_clone()?);
    let (result, to_upstream) = std::sync::mpsc::channel();
    Pool::shared().run(move || {
        let _ = result.send(pump(client_read, upstream_write));
    });
    let to_client = pump(upstream, client);
    let to_upstream = to_upstream.recv().unwrap_or_else(|_| Err(io::Error::other("relay thread panicked")));
    to_client.and(to_upstream)
}

/// Moves bytes until EOF, then half-closes the destination so the peer sees the end of the stream.
fn pump(from: TcpStream, to: TcpStream) -> io::Result<()> {
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
fn copy(mut from: &TcpStream, mut to: &TcpStream) -> io::Result<()> {
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
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || accept_loop(listener, vec![target]));
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
        let to = TcpStream::connect(sink_addr).unwrap();
        copy(&from, &to).unwrap();
        drop(to);
        writer.join().unwrap();
        assert_eq!(reader.join().unwrap(), payload);
    }

    #[test]
    fn tries_the_next_destination_when_one_refuses() {
        let refused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let server = upper_echo_server();
        let relay = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = relay.local_addr().unwrap();
        thread::spawn(move || accept_loop(relay, vec![refused, server]));
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
}
