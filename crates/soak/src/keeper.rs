//! The app's part in the soak: while the tray app runs it follows Docker events and has the core
//! repair the sidecars after each burst (src-tauri/src/live.rs). The soak runs the same core
//! calls in-process, so the faults meet what a user with the app open would have.
use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc,
};

use assemble_core::{engine::Engine, keeper, watch, Backend, Names};
use tokio::{sync::Notify, task::JoinHandle};

#[derive(Default)]
pub struct KeeperCounts {
    pub repairs: AtomicUsize,
    pub failures: AtomicUsize,
}

pub struct Keeper {
    pub counts: Arc<KeeperCounts>,
    stop: Arc<AtomicBool>,
    tasks: [JoinHandle<()>; 2],
}

impl Keeper {
    pub fn spawn(names: Names) -> Self {
        let counts = Arc::new(KeeperCounts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let due = Arc::new(Notify::new());
        let (watch_stop, watch_due, watch_names) = (stop.clone(), due.clone(), names.clone());
        let watcher = tokio::spawn(async move {
            watch::watch(watch_names, Default::default, |_| {
                watch_due.notify_one();
                !watch_stop.load(Ordering::SeqCst)
            })
            .await;
        });
        let (repair_stop, repair_counts) = (stop.clone(), counts.clone());
        let repairer = tokio::spawn(async move {
            let connect = || {
                let names = names.clone();
                async move { Ok(Backend::new(Engine::connect(&Default::default()).await?, names)) }
            };
            keeper::repair_whenever(&due, connect, |result| {
                match result {
                    Ok(repairs) if !repairs.is_empty() => repair_counts.repairs.fetch_add(1, Ordering::SeqCst),
                    Ok(_) => 0,
                    Err(_) => repair_counts.failures.fetch_add(1, Ordering::SeqCst),
                };
                !repair_stop.load(Ordering::SeqCst)
            })
            .await;
        });
        Self { counts, stop, tasks: [watcher, repairer] }
    }

    /// Its tasks only end when told to: one that ended by itself panicked.
    pub fn died(&self) -> bool {
        self.tasks.iter().any(|t| t.is_finished())
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.abort();
        }
    }
}
