//! The app's part in the soak: while the tray app runs it keeps the sidecars repaired through
//! `assemble_core::live::keeper::keep`. The soak runs that same function in-process, so the faults meet
//! what a user with the app open would have.
use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use assemble_core::{
    backend::sidecars::Repairs,
    engine::{Engine, EngineChoice},
    live::keeper,
    Backend, Names, ShutdownTrigger,
};
use tokio::task::JoinHandle;

#[derive(Default)]
pub struct KeeperCounts {
    pub repairs: AtomicUsize,
    pub failures: AtomicUsize,
}

pub struct Keeper {
    pub counts: Arc<KeeperCounts>,
    shutdown: ShutdownTrigger,
    task: JoinHandle<()>,
}

impl Keeper {
    /// Keeps `names`' sidecars repaired on the engine at `host`, as the app does for its engine.
    pub fn spawn(names: Names, host: String) -> Self {
        let counts = Arc::new(KeeperCounts::default());
        let shutdown = ShutdownTrigger::new();
        let (listener, task_counts) = (shutdown.subscribe(), counts.clone());
        let task = tokio::spawn(async move {
            let choice = || EngineChoice::host(host.clone());
            let connect = || {
                let names = names.clone();
                async move { Ok(Backend::new(Engine::connect(&choice()).await?, names)) }
            };
            let on_repair = |result: &assemble_core::Result<Repairs>| {
                match result {
                    Ok(repairs) if !repairs.is_empty() => task_counts.repairs.fetch_add(1, Ordering::SeqCst),
                    Ok(_) => 0,
                    Err(_) => task_counts.failures.fetch_add(1, Ordering::SeqCst),
                };
            };
            keeper::keep(names.clone(), choice, connect, listener, |_| {}, on_repair).await;
        });
        Self { counts, shutdown, task }
    }

    /// Its task only ends when told to: one that ended by itself panicked or lost its watcher.
    pub fn died(&self) -> bool {
        self.task.is_finished()
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        let _ = self.task.await;
    }
}
