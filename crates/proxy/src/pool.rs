//! Threads that wait for work, so that a new connection does not pay for spawning its two relay
//! threads, which is most of what a connection costs us. A job goes to an idle thread when there
//! is one, else to a new thread; a thread left idle for ten seconds ends, each on its own clock
//! (they wait on a condition variable, never in line for a lock), so the threads of a flood are
//! all given back ten seconds after it. A thread that cannot be made (the sidecar's pids limit) is
//! not fatal: the job is dropped, which closes its sockets.
//!
//! A job is queued only while more threads wait than jobs are queued, under the same lock, so every
//! queued job has a thread that will take it, and a job never waits behind a long relay.
use std::{
    collections::VecDeque,
    sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock},
    thread,
    time::{Duration, Instant},
};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long an idle thread waits for work before it ends: long enough to serve a burst of
/// connections warm, short enough that a flood's threads are soon given back.
const IDLE: Duration = Duration::from_secs(10);

/// A relay thread's stack: it only calls `splice` and `read`/`write` (its buffer is on the heap),
/// and a small stack keeps a sidecar with hundreds of connections small.
const STACK: usize = 128 * 1024;

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    idle: usize,
    /// Threads alive, busy or idle.
    threads: usize,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    idle_for: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No job runs under the lock, so it is never poisoned; take it back if it were.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    fn new() -> Self {
        Self::ending_idle_threads_after(IDLE)
    }

    fn ending_idle_threads_after(idle_for: Duration) -> Self {
        Self { shared: Arc::new(Shared { state: Mutex::default(), work: Condvar::new(), idle_for }) }
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
        {
            let mut state = self.shared.lock();
            if state.idle > state.jobs.len() {
                state.jobs.push_back(job);
                self.shared.work.notify_one();
                return Ok(());
            }
        }
        self.spawn(job)
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        self.shared.lock().idle
    }

    #[cfg(test)]
    fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    fn spawn(&self, first: Job) -> std::io::Result<()> {
        let shared = self.shared.clone();
        self.shared.lock().threads += 1;
        let spawned = thread::Builder::new().stack_size(STACK).spawn(move || {
            first();
            while let Some(job) = next(&shared) {
                job();
            }
        });
        if spawned.is_err() {
            self.shared.lock().threads -= 1;
        }
        spawned.map(|_| ())
    }
}

/// The next job for an idle thread, or `None` when none came for [`IDLE`]: the thread ends.
fn next(shared: &Shared) -> Option<Job> {
    let mut state = shared.lock();
    state.idle += 1;
    let deadline = Instant::now() + shared.idle_for;
    loop {
        if let Some(job) = state.jobs.pop_front() {
            state.idle -= 1;
            return Some(job);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // The queue is empty under the lock: no job counts on this thread.
            state.idle -= 1;
            state.threads -= 1;
            return None;
        }
        state = shared.work.wait_timeout(state, left).unwrap_or_else(|poisoned| poisoned.into_inner()).0;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A flood's threads are given back together, each after its own idle time, not one per idle
    /// time in turn.
    #[test]
    fn idle_threads_end_together() {
        let pool = Pool::ending_idle_threads_after(Duration::from_millis(200));
        let (release, hold) = mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let (started, running) = mpsc::channel();
        for _ in 0..40 {
            let (hold, started) = (hold.clone(), started.clone());
            pool.run(move || {
                started.send(()).unwrap();
                let _ = hold.lock().map(|h| h.recv());
            })
            .unwrap();
        }
        for _ in 0..40 {
            running.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        assert_eq!(pool.threads(), 40);
        drop(release);
        let deadline = Instant::now() + Duration::from_secs(3);
        while pool.threads() > 0 {
            assert!(Instant::now() < deadline, "{} threads still alive long after their idle time", pool.threads());
            thread::sleep(Duration::from_millis(20));
        }
    }

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
            while pool.idle() == 0 {
                thread::yield_now();
            }
        }
        assert_eq!(threads.len(), 1, "one thread served all fifty jobs in turn");
    }
}
