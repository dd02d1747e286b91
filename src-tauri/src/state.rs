//! What the app remembers between commands: the engine handle, the latest snapshot, the
//! settings, and which operation (if any) is under way.
use std::{sync::Mutex, time::Duration};

use assemble_core::{
    backend::builder::BuilderRegistration,
    engine::{Engine, EngineView},
    live::{
        notice::{LossWatch, Notice},
        status,
    },
    settings, Backend, Error, Names, Settings, Shutdown, ShutdownTrigger, Snapshot, State,
};
use tauri::async_runtime::JoinHandle;
use tokio::sync::{watch, Notify};

use crate::errors::CommandError;

/// What the window hears while following: the lines kept now and the search's count, never the
/// lines themselves.
#[derive(serde::Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogCount {
    /// The number of the first kept line.
    pub first: u64,
    /// The number the next line will get.
    pub end: u64,
    /// Lines that match the search.
    pub matches: usize,
}

/// A reading of the backend's logs into the store: the counts it has reached, and how it ended.
/// The Logs window starts one as it opens, before its page has loaded (see `log_view::start_feed`), and
/// the page attaches to it.
#[derive(Clone)]
pub struct LogFeed {
    pub counts: watch::Receiver<LogCount>,
    pub outcome: watch::Receiver<Option<Result<(), CommandError>>>,
}

pub struct AppState {
    pub names: Names,
    backend: Mutex<Option<Backend>>,
    latest: Mutex<Snapshot>,
    /// Every snapshot shown, for those that follow them (the tray).
    shown: watch::Sender<Snapshot>,
    /// The operation under way, if any; watched by Quit, which waits for it to end.
    operation: watch::Sender<Option<State>>,
    settings: Mutex<Settings>,
    settings_warning: Mutex<Option<String>>,
    /// Fired by Quit: a start rolls back, log follows and background tasks end.
    shutdown: ShutdownTrigger,
    /// The last start, stop or restart that failed, until the next one begins; a panel opened
    /// later shows it too.
    action_error: Mutex<Option<CommandError>>,
    /// What the last registration of the buildx builder did, for the engine in use.
    builder: Mutex<Option<BuilderRegistration>>,
    /// Tells a loss of the running backend that no operation of ours caused.
    losses: Mutex<LossWatch>,
    /// Numbers the readings in the order they began, so that a slow one never replaces a newer one.
    readings: std::sync::atomic::AtomicU64,
    /// The number of the reading shown now.
    shown_reading: Mutex<u64>,
    /// A registration of the builder is under way (one at a time).
    registering: std::sync::atomic::AtomicBool,
    /// Asks the live loop to read the state again (an operation ended, even by a panic).
    pub refresh_due: Notify,
    /// Tasks Quit waits for after the shutdown fired (the keeper, which ends between repairs).
    background: Mutex<Vec<JoinHandle<()>>>,
    /// The Builds window's follow of the list: a new one ends the one before.
    pub builds_follow: FollowSlot,
    /// The Builds window's follow of the build in detail: a new one ends the one before.
    pub build_follow: FollowSlot,
    /// The log viewer's follow: a new one, `stop_logs` or a switch of engine ends the one before.
    pub logs_follow: FollowSlot,
    /// The log viewer's lines (log_view.rs).
    logs: Mutex<assemble_core::logs::store::LogStore>,
    /// The log feed the Logs window's opening started, until its page takes it.
    log_feed: Mutex<Option<LogFeed>>,
    /// A build of the Build window runs (one at a time).
    building: std::sync::atomic::AtomicBool,
    /// Ended by Cancel in the Build window: the build under way holds it.
    build_cancel_slot: FollowSlot,
}

impl AppState {
    /// Runs `work` on the log viewer's store. The lock is never held across an await.
    pub fn with_logs<T>(&self, work: impl FnOnce(&mut assemble_core::logs::store::LogStore) -> T) -> T {
        let mut store = self.logs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut store)
    }

    /// Keeps `feed` for the Logs window's page to take (one at a time: a newer one replaces it).
    /// Claims the one build the app runs at a time; `None` while another runs.
    pub fn begin_build(&self) -> Option<BuildGuard<'_>> {
        use std::sync::atomic::Ordering;
        self.building.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).ok()?;
        Some(BuildGuard(&self.building))
    }

    /// A build of the app runs now.
    pub fn build_under_way(&self) -> bool {
        self.building.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Resolves when the user cancels the build under way.
    pub fn build_cancel(&self) -> Superseded {
        self.build_cancel_slot.take()
    }

    /// Cancels the build under way, if any.
    pub fn cancel_build(&self) {
        self.build_cancel_slot.end();
    }

    pub fn offer_log_feed(&self, feed: LogFeed) {
        *lock(&self.log_feed) = Some(feed);
    }

    /// The feed offered and not yet taken, if any.
    pub fn claim_log_feed(&self) -> Option<LogFeed> {
        // One that ended before its page came (an engine switch, a window closed) is no use.
        lock(&self.log_feed).take().filter(|feed| feed.outcome.borrow().is_none())
    }

    /// Ends the log viewer's reading, and forgets a feed no page took: the window is gone.
    pub fn end_log_feed(&self) {
        self.logs_follow.end();
        lock(&self.log_feed).take();
    }

    /// The state for the current user, with the settings file's settings.
    pub fn load() -> Self {
        Self::new(Names::for_current_user(), settings::load())
    }

    pub fn new(names: Names, loaded: settings::Loaded) -> Self {
        let first = Snapshot::new(State::Stopped, names.backend(), None, None);
        Self {
            latest: Mutex::new(first.clone()),
            shown: watch::channel(first).0,
            names,
            backend: Mutex::new(None),
            operation: watch::channel(None).0,
            settings: Mutex::new(loaded.settings),
            settings_warning: Mutex::new(loaded.warning),
            shutdown: ShutdownTrigger::new(),
            action_error: Mutex::new(None),
            losses: Mutex::new(LossWatch::default()),
            builder: Mutex::new(None),
            readings: Default::default(),
            shown_reading: Mutex::new(0),
            registering: Default::default(),
            refresh_due: Notify::new(),
            background: Mutex::new(Vec::new()),
            logs_follow: Default::default(),
            logs: Mutex::new(Default::default()),
            log_feed: Mutex::new(None),
            building: Default::default(),
            build_cancel_slot: Default::default(),
            builds_follow: Default::default(),
            build_follow: Default::default(),
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
        let changed = before.is_some() && after.is_some() && before != after;
        if changed {
            // Another engine, another backend: its builder is registered anew.
            *lock(&self.builder) = None;
        }
        changed
    }

    /// Tells the followers (see [`AppState::follow_shown`]) that `snapshot` is now shown.
    pub fn show(&self, snapshot: Snapshot) {
        self.shown.send_replace(snapshot);
    }

    /// The snapshots as they are shown, from now on.
    pub fn follow_shown(&self) -> watch::Receiver<Snapshot> {
        self.shown.subscribe()
    }

    pub fn latest(&self) -> Snapshot {
        lock(&self.latest).clone()
    }

    /// A number for a reading about to begin.
    pub fn begin_reading(&self) -> u64 {
        self.readings.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    }

    /// Stores reading number `reading` unless a newer one is shown already (readings overlap: a
    /// slow one that began before a start ended must not bring back what the start changed).
    pub fn store_reading(&self, reading: u64, snapshot: Snapshot) -> Option<Snapshot> {
        let mut shown = lock(&self.shown_reading);
        if reading < *shown {
            return None;
        }
        *shown = reading;
        Some(self.store(snapshot))
    }

    /// Claims the one registration of the builder for the engine in use, when none was made.
    pub fn claim_builder_registration(&self) -> bool {
        lock(&self.builder).is_none() && !self.registering.swap(true, std::sync::atomic::Ordering::SeqCst)
    }

    /// Stores a fresh reading, shown through the lens of an operation under way.
    pub fn store(&self, snapshot: Snapshot) -> Snapshot {
        let snapshot = snapshot.with_builder(lock(&self.builder).as_ref());
        let shown = match *self.operation.borrow() {
            Some(op) => snapshot.during(op),
            None => snapshot,
        };
        *lock(&self.latest) = shown.clone();
        shown
    }

    /// Marks an operation as under way until the guard is dropped (also by a panic, so the app
    /// cannot stay "Starting…"). Refused while another one is under way (single flight) and once
    /// Quit was asked.
    pub fn begin(&self, op: State) -> Result<OperationGuard<'_>, Error> {
        let mut refusal = None;
        self.operation.send_if_modified(|operation| {
            refusal = if self.shutdown.is_triggered() {
                Some(Error::Quitting)
            } else if operation.is_some() {
                Some(Error::OperationUnderWay)
            } else {
                *operation = Some(op);
                None
            };
            refusal.is_none()
        });
        match refusal {
            Some(error) => Err(error),
            None => {
                lock(&self.losses).expect_change();
                Ok(OperationGuard { state: self })
            }
        }
    }

    /// Waits until no operation is under way.
    pub async fn operation_ended(&self) {
        let _ = self.operation.subscribe().wait_for(Option::is_none).await;
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

    /// The notice for a snapshot just shown, if it shows a loss nobody asked for.
    pub fn loss(&self, shown: &Snapshot) -> Option<Notice> {
        lock(&self.losses).observe(shown)
    }

    /// What the last registration of the builder did; `None` before any.
    pub fn builder(&self) -> Option<BuilderRegistration> {
        lock(&self.builder).clone()
    }

    pub fn set_builder(&self, registration: BuilderRegistration) {
        *lock(&self.builder) = Some(registration);
        self.registering.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn action_error(&self) -> Option<CommandError> {
        lock(&self.action_error).clone()
    }

    pub fn set_action_error(&self, error: Option<CommandError>) {
        *lock(&self.action_error) = error;
    }

    /// Tells every task to end: a start under way rolls back, log follows end.
    pub fn quit(&self) {
        self.shutdown.trigger();
    }

    pub fn quitting(&self) -> bool {
        self.shutdown.is_triggered()
    }

    /// Has Quit wait for `task`, which ends by itself once the shutdown fired.
    pub fn track(&self, task: JoinHandle<()>) {
        lock(&self.background).push(task);
    }

    /// Waits, at most `limit`, for the operation under way and then the tracked tasks to end;
    /// `false` when time ran out.
    pub async fn wind_down(&self, limit: Duration) -> bool {
        let tasks = std::mem::take(&mut *lock(&self.background));
        let all = async {
            self.operation_ended().await;
            for task in tasks {
                let _ = task.await;
            }
        };
        tokio::time::timeout(limit, all).await.is_ok()
    }

    /// A listener for Quit, for one task.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.subscribe()
    }

    /// A snapshot for an engine that cannot be reached (or found).
    pub fn unavailable(&self, engine: Option<EngineView>, err: &assemble_core::Error) -> Snapshot {
        status::unavailable(self.names.backend(), engine, err)
    }
}

/// An operation under way; dropping it ends the operation.
pub struct OperationGuard<'a> {
    state: &'a AppState,
}

impl Drop for OperationGuard<'_> {
    fn drop(&mut self) {
        self.state.operation.send_replace(None);
        // The snapshot shown was the operation's view: read the state again.
        self.state.refresh_due.notify_one();
    }
}

/// A poisoned lock only means a panic elsewhere; the data is still the best we have.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Never the user's settings file: the defaults, for a user of the test's own.
    pub(crate) fn test_state() -> AppState {
        AppState::new(
            Names::for_user("app-unit-test"),
            settings::Loaded { settings: Settings::default(), warning: None },
        )
    }

    #[tokio::test]
    async fn a_new_follow_ends_the_one_before_at_once_and_only_that_one() {
        let slot = FollowSlot::default();
        let mut first = slot.take();
        let mut second = slot.take();
        // The first was superseded by the second take: it resolves without anything more.
        tokio::time::timeout(std::time::Duration::from_secs(1), first.wait()).await.expect("the first follow ends");
        // The second holds the slot until a third comes.
        let held = tokio::time::timeout(std::time::Duration::from_millis(100), second.wait()).await;
        assert!(held.is_err(), "the follow that holds the slot must go on");
        let mut third = slot.take();
        tokio::time::timeout(std::time::Duration::from_secs(1), second.wait()).await.expect("the second follow ends");
        // Ending the slot (stop_logs, a switch of engine) ends its holder and starts none.
        slot.end();
        tokio::time::timeout(std::time::Duration::from_secs(1), third.wait()).await.expect("end ends the holder");
    }

    #[test]
    fn an_operation_ends_even_when_it_panics() {
        let state = test_state();
        let guard = state.begin(State::Starting).expect("nothing under way yet");
        assert!(matches!(state.begin(State::Stopping), Err(Error::OperationUnderWay)), "one operation at a time");
        assert_eq!(state.store(state.latest()).state, State::Starting, "shown through the operation's lens");
        drop(guard);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = state.begin(State::Starting).expect("free again");
            panic!("a bug in the middle of a start");
        }));
        assert!(panicked.is_err());
        assert!(state.begin(State::Stopping).is_ok(), "the panic released the operation");
    }

    #[test]
    fn a_slow_reading_never_replaces_a_newer_one() {
        let state = test_state();
        let slow = state.begin_reading();
        let fast = state.begin_reading();
        let running = Snapshot::new(State::Running, state.names.backend(), None, None);
        let stopped = Snapshot::new(State::Stopped, state.names.backend(), None, None);
        assert!(state.store_reading(fast, running).is_some());
        assert!(state.store_reading(slow, stopped).is_none(), "the older reading is dropped");
        assert_eq!(state.latest().state, State::Running);
    }

    #[test]
    fn nothing_begins_once_quit_was_asked() {
        let state = test_state();
        state.quit();
        assert!(matches!(state.begin(State::Starting), Err(Error::Quitting)));
    }
}

/// Held while the app's build runs; dropping it lets the next one begin.
pub struct BuildGuard<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for BuildGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// The one live follow of a kind (the Builds window's list, or its detail). Taking the slot ends
/// the follow that held it at once, even one waiting on a quiet stream of an engine left behind.
#[derive(Default)]
pub struct FollowSlot(watch::Sender<u64>);

impl FollowSlot {
    /// Takes the slot; the answer resolves when another follow takes it.
    pub fn take(&self) -> Superseded {
        self.0.send_modify(|generation| *generation += 1);
        // Subscribed after the change: only a later take wakes it.
        Superseded(self.0.subscribe())
    }

    /// Ends the follow that holds the slot, if any, and starts none.
    pub fn end(&self) {
        self.0.send_modify(|generation| *generation += 1);
    }
}

/// Resolves when the follow's slot was taken by another.
pub struct Superseded(watch::Receiver<u64>);

impl Superseded {
    pub async fn wait(&mut self) {
        // The slot lives as long as the app; if it is gone, so is the follow.
        let _ = self.0.changed().await;
    }
}
