//! The engine and the backend the app works on, the settings that choose them, and what
//! registering the buildx builder did there.
use std::sync::Mutex;

use assemble_core::{
    backend::builder::BuilderRegistration,
    engine::{Engine, EngineView},
    live::status,
    settings, Backend, Names, Settings, Snapshot,
};

use super::lock;

/// The engine handle for the app's user, the settings (the wish for the next start, and the
/// engine to use), and the builder registration, which belongs to the engine in use.
pub struct Connection {
    pub names: Names,
    /// One lock: a change of settings or of engine also changes the handle or the registration.
    inner: Mutex<Inner>,
}

struct Inner {
    backend: Option<Backend>,
    settings: Settings,
    settings_warning: Option<String>,
    /// What the last registration of the buildx builder did, for the engine in use.
    builder: Option<BuilderRegistration>,
    /// A registration of the builder is under way (one at a time).
    registering: bool,
}

impl Connection {
    pub fn new(names: Names, loaded: settings::Loaded) -> Self {
        let inner = Inner {
            backend: None,
            settings: loaded.settings,
            settings_warning: loaded.warning,
            builder: None,
            registering: false,
        };
        Self { names, inner: Mutex::new(inner) }
    }

    /// The engine handle, connecting on first use (and after the engine was lost or changed) to
    /// the engine the settings and docker's own configuration choose.
    pub async fn backend(&self) -> assemble_core::Result<Backend> {
        if let Some(backend) = lock(&self.inner).backend.clone() {
            return Ok(backend);
        }
        let engine = Engine::connect(&self.settings().engine_choice()).await?;
        let backend = Backend::new(engine, self.names.clone());
        lock(&self.inner).backend = Some(backend.clone());
        Ok(backend)
    }

    /// The engine the watcher reached (or none, when it lost it). Returns whether it is another
    /// engine than before.
    pub fn set_engine(&self, engine: Option<Engine>) -> bool {
        let mut inner = lock(&self.inner);
        let before = inner.backend.as_ref().map(|b| b.engine().endpoint().view());
        let after = engine.as_ref().map(|e| e.endpoint().view());
        inner.backend = engine.map(|e| Backend::new(e, self.names.clone()));
        let changed = before.is_some() && after.is_some() && before != after;
        if changed {
            // Another engine, another backend: its builder is registered anew.
            inner.builder = None;
        }
        changed
    }

    pub fn settings(&self) -> Settings {
        lock(&self.inner).settings.clone()
    }

    pub fn set_settings(&self, settings: Settings) {
        let mut inner = lock(&self.inner);
        if inner.settings.engine_choice() != settings.engine_choice() {
            // Another engine is wished for: the next call connects to it.
            inner.backend = None;
        }
        inner.settings = settings;
        inner.settings_warning = None;
    }

    pub fn settings_warning(&self) -> Option<String> {
        lock(&self.inner).settings_warning.clone()
    }

    /// What the last registration of the builder did; `None` before any.
    pub fn builder(&self) -> Option<BuilderRegistration> {
        lock(&self.inner).builder.clone()
    }

    /// Claims the one registration of the builder for the engine in use, when none was made.
    pub fn claim_builder_registration(&self) -> bool {
        let mut inner = lock(&self.inner);
        if inner.builder.is_some() || inner.registering {
            return false;
        }
        inner.registering = true;
        true
    }

    pub fn set_builder(&self, registration: BuilderRegistration) {
        let mut inner = lock(&self.inner);
        inner.builder = Some(registration);
        inner.registering = false;
    }

    /// A snapshot for an engine that cannot be reached (or found).
    pub fn unavailable(&self, engine: Option<EngineView>, err: &assemble_core::Error) -> Snapshot {
        status::unavailable(self.names.backend(), engine, err)
    }
}
