//! What the app remembers between commands: the engine handle, the latest snapshot, the
//! settings, and which operation (if any) is under way.
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Mutex,
};

use assemble_core::{settings, status, Backend, Names, Settings, Snapshot, State};

pub struct AppState {
    pub names: Names,
    backend: Mutex<Option<Backend>>,
    latest: Mutex<Snapshot>,
    operation: Mutex<Option<State>>,
    settings: Mutex<Settings>,
    settings_warning: Mutex<Option<String>>,
    quitting: AtomicBool,
    /// Bumped to end a running log follow.
    pub logs_generation: std::sync::atomic::AtomicU64,
}

impl AppState {
    pub fn load() -> Self {
        let names = Names::for_current_user();
        let loaded = settings::load();
        Self {
            latest: Mutex::new(Snapshot::new(State::Stopped, names.backend(), None, None)),
            names,
            backend: Mutex::new(None),
            operation: Mutex::new(None),
            settings: Mutex::new(loaded.settings),
            settings_warning: Mutex::new(loaded.warning),
            quitting: AtomicBool::new(false),
            logs_generation: Default::default(),
        }
    }

    /// The engine handle, connecting on first use (and after the engine was lost).
    pub async fn backend(&self) -> assemble_core::Result<Backend> {
        if let Some(backend) = lock(&self.backend).clone() {
            return Ok(backend);
        }
        let docker = assemble_core::engine::connect().await?;
        let backend = Backend::new(docker, self.names.clone());
        *lock(&self.backend) = Some(backend.clone());
        Ok(backend)
    }

    pub fn set_engine(&self, docker: Option<assemble_core::engine::Docker>) {
        *lock(&self.backend) = docker.map(|d| Backend::new(d, self.names.clone()));
    }

    pub fn latest(&self) -> Snapshot {
        lock(&self.latest).clone()
    }

    /// Stores a fresh reading, shown through the lens of an operation under way.
    pub fn store(&self, snapshot: Snapshot) -> Snapshot {
        let shown = match *lock(&self.operation) {
            Some(op) => snapshot.during(op),
            None => snapshot,
        };
        *lock(&self.latest) = shown.clone();
        shown
    }

    /// Marks an operation as under way; `false` when another one already is (single flight).
    pub fn begin(&self, op: State) -> bool {
        let mut operation = lock(&self.operation);
        if operation.is_some() {
            return false;
        }
        *operation = Some(op);
        true
    }

    pub fn end(&self) {
        *lock(&self.operation) = None;
    }

    pub fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    pub fn set_settings(&self, settings: Settings) {
        *lock(&self.settings) = settings;
        *lock(&self.settings_warning) = None;
    }

    pub fn settings_warning(&self) -> Option<String> {
        lock(&self.settings_warning).clone()
    }

    pub fn quit(&self) {
        self.quitting.store(true, Ordering::SeqCst);
    }

    pub fn quitting(&self) -> bool {
        self.quitting.load(Ordering::SeqCst)
    }

    /// A snapshot for an engine that cannot be reached.
    pub fn unavailable(&self, err: &assemble_core::Error) -> Snapshot {
        status::unavailable(self.names.backend(), err)
    }
}

/// A poisoned lock only means a panic elsewhere; the data is still the best we have.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
