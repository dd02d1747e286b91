//! The network side of the relay benchmarks: a sink on the host, and a client that runs inside the
//! backend's network namespace (this same binary, started under `nsenter -n`).
use std::{
    io::{Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    thread,
    time::{Duration, Instant},
};

/// Big enough that neither end is the bottleneck.
const BUFFER: usize = 1 << 20;

/// Accepts forever on `listener`, reading each connection to its end.
pub fn discard_sink(listener: TcpListener) {
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut stream = stream;
                let mut buffer = vec![0u8; BUFFER];
                while matches!(stream.read(&mut buffer), Ok(n) if n > 0) {}
                let _ = stream.shutdown(Shutdown::Both);
            });
        }
    });
}

/// Accepts forever on `listener`, echoing every byte back.
pub fn echo_sink(listener: TcpListener) {
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.set_nodelay(true);
                let mut buffer = [0u8; 64];
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 || stream.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// What a send measured: seconds until every stream ended, the bytes the sinks acknowledged (by
/// closing after EOF), and how many streams failed.
pub struct Sent {
    pub seconds: f64,
    pub delivered: u64,
    pub failed: usize,
}

/// Sends `bytes` over `streams` parallel connections to `target`. A failed stream is counted,
/// not hidden, and its bytes do not count as delivered.
pub fn send(target: &str, bytes: u64, streams: usize) -> std::io::Result<Sent> {
    let per_stream = bytes / streams as u64;
    let start = Instant::now();
    let workers: Vec<_> = (0..streams)
        .map(|_| {
            let target = target.to_string();
            thread::spawn(move || -> std::io::Result<u64> {
                let mut stream = TcpStream::connect(&target)?;
                let buffer = vec![0x5au8; BUFFER];
                let mut left = per_stream;
                while left > 0 {
                    let n = left.min(BUFFER as u64) as usize;
                    stream.write_all(&buffer[..n])?;
                    left -= n as u64;
                }
                stream.shutdown(Shutdown::Write)?;
                let mut rest = [0u8; 16];
                while stream.read(&mut rest)? > 0 {}
                Ok(per_stream)
            })
        })
        .collect();
    let (mut delivered, mut failed) = (0, 0);
    for worker in workers {
        match worker.join().map_err(|_| std::io::Error::other("sender thread panicked"))? {
            Ok(bytes) => delivered += bytes,
            Err(_) => failed += 1,
        }
    }
    Ok(Sent { seconds: start.elapsed().as_secs_f64(), delivered, failed })
}

/// `count` sequential connect + 1-byte echo + close; the latency of each, in microseconds.
pub fn connections(target: &str, count: usize) -> std::io::Result<Vec<f64>> {
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        let mut stream = TcpStream::connect(target)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"x")?;
        let mut reply = [0u8; 1];
        stream.read_exact(&mut reply)?;
        drop(stream);
        latencies.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Ok(latencies)
}
