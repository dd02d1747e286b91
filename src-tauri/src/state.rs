//! What the app remembers between commands: the engine handle, the latest snapshot, the
//! settings, and which operation (if any) is under way.
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Mutex,
};

use assemble_core::{
    engine::{Engine, EngineView},
    settings, status, Backend, Names, Settings, Snapshot, State,
};

pub struct AppState {
    pub names: Names,
    backend: Mutex<Option<Backend>>,
    latest: Mutex<Snapshot>,
    /// Every snapshot shown, for those that follow them (the tray).
    shown: tokio::sync::watch::Sender<Snapshot>,
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
        let first = Snapshot::new(State::Stopped, names.backend(), None, None);
        Self {
            latest: Mutex::new(first.clone()),
            shown: tokio::sync::watch::channel(first).0,
            names,
            backend: Mutex::new(None),
            operation: Mutex::new(None),
            settings: Mutex::new(loaded.settings),
            settings_warning: Mutex::new(loaded.warning),
            quitting: AtomicBool::new(false),
            logs_generation: Default::default(),
        }
    }

    /// The engine handle, connecting on first use (and after the engine was lost or changed) to
    /// the engine the settings and docker's own configuration choose.
    pub async fn backend(&self) -> assemble_core::Result<Backend> {
        if let Some(backend) = lock(&self.backend).clone() {
            return Ok(backend);
        }
        let engine = Engine::connect(&self.settings().engine_choice()).await?;
        let backend = Backend::new(engine, self.names.clone());
        *lock(&self.backend) = Some(backend.clone());
        Ok(backend)
    }

    /// The engine the watcher reached (or none, when it lost it). Returns whether it is another
    /// engine than before.
    pub fn set_engine(&self, engine: Option<Engine>) -> bool {
        let mut backend = lock(&self.backend);
        let before = backend.as_ref().map(|b| b.engine().endpoint().view());
        let after = engine.as_ref().map(|e| e.endpoint().view());
        *backend = engine.map(|e| Backend::new(e, self.names.clone()));
        before.is_some() && after.is_some() && before != after
    }

    /// Tells the followers (see [`AppState::follow_shown`]) that `snapshot` is now shown.
    pub fn show(&self, snapshot: Snapshot) {
        self.shown.send_replace(snapshot);
    }

    /// The snapshots as they are shown, from now on.
    pub fn follow_shown(&self) -> tokio::sync::watch::Receiver<Snapshot> {
        self.shown.subscribe()
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
        let mut current = lock(&self.settings);
        if current.engine_choice() != settings.engine_choice() {
            // Another engine is wished for: the next call connects to it.
            *lock(&self.backend) = None;
        }
        *current = settings;
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

    /// A snapshot for an engine that cannot be reached (or found).
    pub fn unavailable(&self, engine: Option<EngineView>, err: &assemble_core::Error) -> Snapshot {
        status::unavailable(self.names.backend(), engine, err)
    }
}

/// A poisoned lock only means a panic elsewhere; the data is still the best we have.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
