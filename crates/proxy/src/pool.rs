//! Threads that wait for work, so that a new connection does not pay for spawning its two relay
//! threads, which is most of what a connection costs us. A job goes to an idle thread when there
//! is one, else to a new thread; a thread left idle for ten seconds ends. A thread that cannot be
//! made (the sidecar's pids limit) is not fatal: the job is dropped, which closes its sockets.
//!
//! An idle thread is reserved by the submitter (the idle count goes down) before the job is sent,
//! so every job sent has a thread that will take it, and a job never waits behind a long relay.
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc, Arc, Mutex, OnceLock,
    },
    thread,
    time::Duration,
};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long an idle thread waits for work before it ends: long enough to serve a burst of
/// connections warm, short enough that a flood's threads are soon given back.
const IDLE: Duration = Duration::from_secs(10);

/// A relay thread's stack: it only calls `splice` and `read`/`write` (its buffer is on the heap),
/// and a small stack keeps a sidecar with hundreds of connections small.
const STACK: usize = 128 * 1024;

pub struct Pool {
    idle: Arc<AtomicUsize>,
    jobs: Mutex<mpsc::Sender<Job>>,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
}

impl Pool {
    fn new() -> Self {
        let (jobs, queue) = mpsc::channel();
        Self { idle: Arc::new(AtomicUsize::new(0)), jobs: Mutex::new(jobs), queue: Arc::new(Mutex::new(queue)) }
    }

    /// The relay's one pool.
    pub fn shared() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(Pool::new)
    }

    /// Runs `job` on an idle thread, or on a new one. When no thread can be made, `job` is dropped
    /// unrun and the error returned.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let job: Job = Box::new(job);
        if !reserve(&self.idle) {
            return self.spawn(job);
        }
        // Sending never panics, so the lock is never poisoned; take it back if it were.
        let sent = self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).send(job);
        if let Err(mpsc::SendError(job)) = sent {
            // The queue is gone (it never is while the pool lives): run it on a new thread.
            return self.spawn(job);
        }
        Ok(())
    }

    fn spawn(&self, first: Job) -> std::io::Result<()> {
        let (idle, queue) = (self.idle.clone(), self.queue.clone());
        let spawned = thread::Builder::new().stack_size(STACK).spawn(move || {
            first();
            loop {
                idle.fetch_add(1, Ordering::SeqCst);
                let next = queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv_timeout(IDLE);
                match next {
                    Ok(job) => job(),
                    // Idle too long: leave, unless a submitter reserved this thread meanwhile,
                    // in which case its job is on the way.
                    Err(mpsc::RecvTimeoutError::Timeout) if reserve(&idle) => return,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        match queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv() {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        });
        spawned.map(|_| ())
    }
}

/// Takes one idle thread, if there is one.
fn reserve(idle: &AtomicUsize) -> bool {
    idle.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_runs_even_when_all_threads_are_busy_for_long() {
        let pool = Pool::new();
        let (done, finished) = mpsc::channel();
        let (release, hold) = mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        // Ten jobs that block until released, then ten quick ones: the quick ones may not wait.
        for _ in 0..10 {
            let hold = hold.clone();
            pool.run(move || {
                let _ = hold.lock().map(|h| h.recv());
            })
            .unwrap();
        }
        for i in 0..10 {
            let done = done.clone();
            pool.run(move || done.send(i).unwrap()).unwrap();
        }
        let mut seen: Vec<i32> = (0..10).map(|_| finished.recv_timeout(Duration::from_secs(5)).unwrap()).collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        for _ in 0..10 {
            release.send(()).unwrap();
        }
    }

    #[test]
    fn idle_threads_are_reused() {
        let pool = Pool::new();
        let (done, finished) = mpsc::channel();
        let mut threads = std::collections::HashSet::new();
        for _ in 0..50 {
            let done = done.clone();
            pool.run(move || done.send(thread::current().id()).unwrap()).unwrap();
            threads.insert(finished.recv_timeout(Duration::from_secs(5)).unwrap());
            // Let the thread come back to the pool before the next job.
            while pool.idle.load(Ordering::SeqCst) == 0 {
                thread::yield_now();
            }
        }
        assert_eq!(threads.len(), 1, "one thread served all fifty jobs in turn");
    }
}
