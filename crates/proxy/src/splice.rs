//! Zero-copy relaying on Linux: `splice(2)` moves the bytes socket → pipe → socket inside the
//! kernel, so they are never copied through user space. Declared here rather than taken from the
//! `libc` crate because the relay is built by rustc alone; std links the C library anyway.
use std::{io, os::fd::AsRawFd};

const SPLICE_F_MOVE: u32 = 1;
// Never SPLICE_F_MORE: like MSG_MORE it corks the socket, and a request-reply exchange then waits.
const O_CLOEXEC: i32 = 0o2_000_000;
const F_SETPIPE_SZ: i32 = 1031;
/// Asked for; the kernel may give less (pipe-max-size), which only means more rounds.
const PIPE_SIZE: i32 = 1024 * 1024;
const EINVAL: i32 = 22;

extern "C" {
    fn pipe2(fds: *mut i32, flags: i32) -> i32;
    fn splice(fd_in: i32, off_in: *mut i64, fd_out: i32, off_out: *mut i64, len: usize, flags: u32) -> isize;
    fn fcntl(fd: i32, cmd: i32, ...) -> i32;
    fn close(fd: i32) -> i32;
}

struct Pipe {
    read: i32,
    write: i32,
    capacity: usize,
}

impl Pipe {
    fn new() -> io::Result<Self> {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 writes two descriptors into the array we own.
        if unsafe { pipe2(fds.as_mut_ptr(), O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fcntl on a descriptor we just opened; failure leaves the default size.
        let size = unsafe { fcntl(fds[1], F_SETPIPE_SZ, PIPE_SIZE) };
        let capacity = if size > 0 { size as usize } else { 64 * 1024 };
        Ok(Self { read: fds[0], write: fds[1], capacity })
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // SAFETY: we own both descriptors and close each once.
        unsafe {
            close(self.read);
            close(self.write);
        }
    }
}

fn splice_all(from: i32, to: i32, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: plain descriptors, no offsets (sockets and pipes have none).
        let n = unsafe { splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, SPLICE_F_MOVE) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// What became of a zero-copy attempt.
pub enum Outcome {
    /// The stream ended (or failed) after this many bytes.
    Done(io::Result<u64>),
    /// This kernel or socket cannot splice, and nothing was moved: copy instead.
    Unsupported,
}

/// Moves bytes from `from` to `to` until EOF.
pub fn pump(from: &impl AsRawFd, to: &impl AsRawFd) -> Outcome {
    let pipe = match Pipe::new() {
        Ok(pipe) => pipe,
        Err(_) => return Outcome::Unsupported,
    };
    let (from, to) = (from.as_raw_fd(), to.as_raw_fd());
    let mut moved: u64 = 0;
    loop {
        let n = match splice_all(from, pipe.write, pipe.capacity) {
            Ok(0) => return Outcome::Done(Ok(moved)),
            Ok(n) => n,
            Err(err) if moved == 0 && err.raw_os_error() == Some(EINVAL) => return Outcome::Unsupported,
            Err(err) => return Outcome::Done(Err(err)),
        };
        let mut left = n;
        while left > 0 {
            match splice_all(pipe.read, to, left) {
                Ok(0) => {
                    return Outcome::Done(Err(io::Error::new(io::ErrorKind::WriteZero, "the peer stopped reading")))
                }
                Ok(m) => left -= m,
                Err(err) => return Outcome::Done(Err(err)),
            }
        }
        moved += n as u64;
    }
}
