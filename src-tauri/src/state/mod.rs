//! What the app keeps between commands, in parts that Tauri manages one by one, so that each
//! command asks for only the parts it needs and each part has its own lock:
//! - [`Connection`]: the engine and backend the app works on, the settings that choose them, and
//!   what registering the buildx builder did there;
//! - [`Shown`]: the snapshot the windows and the tray show, in the order the readings began;
//! - [`Operations`]: the one start, stop or restart under way, the last that failed, the losses
//!   none caused, and Quit;
//! - [`LogViewer`]: the log viewer's lines, the reading that fills them, and its follow;
//! - [`BuildJob`]: the Build window's one build and its Cancel;
//! - [`BuildsFollows`]: the Builds window's follows of the list and of one build.
use std::sync::Mutex;

use assemble_core::{settings, Names};
use tauri::Runtime;

mod build;
mod builds;
mod connection;
mod log_viewer;
mod operations;
mod shown;
mod slot;

pub use build::BuildJob;
pub use builds::BuildsFollows;
pub use connection::Connection;
pub use log_viewer::{LogCount, LogFeed, LogViewer};
pub use operations::Operations;
pub use shown::Shown;
pub use slot::{FollowSlot, Superseded};

/// Every part of the app's state, made together at launch and then handed to Tauri, which
/// manages (and hands out) each on its own.
pub struct AppStates {
    pub connection: Connection,
    pub shown: Shown,
    pub operations: Operations,
    pub logs: LogViewer,
    pub build: BuildJob,
    pub follows: BuildsFollows,
}

impl AppStates {
    /// The state for the current user, with the settings file's settings.
    pub fn load() -> Self {
        Self::new(Names::for_current_user(), settings::load())
    }

    pub fn new(names: Names, loaded: settings::Loaded) -> Self {
        Self {
            shown: Shown::new(&names),
            connection: Connection::new(names, loaded),
            operations: Operations::default(),
            logs: LogViewer::default(),
            build: BuildJob::default(),
            follows: BuildsFollows::default(),
        }
    }

    /// Hands each part to Tauri, as managed state of its own.
    pub fn manage<R: Runtime>(self, builder: tauri::Builder<R>) -> tauri::Builder<R> {
        builder
            .manage(self.connection)
            .manage(self.shown)
            .manage(self.operations)
            .manage(self.logs)
            .manage(self.build)
            .manage(self.follows)
    }
}

/// A poisoned lock only means a panic elsewhere; the data is still the best we have.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
pub(crate) mod tests {
    use assemble_core::{BackendError, Error, Settings, Snapshot, State};

    use super::*;

    /// Never the user's settings file: the defaults, for a user of the test's own.
    pub(crate) fn test_state() -> AppStates {
        AppStates::new(
            Names::for_user("app-unit-test"),
            settings::Loaded { settings: Settings::default(), warning: None },
        )
    }

    #[test]
    fn an_operation_ends_even_when_it_panics() {
        let state = test_state();
        let (connection, shown, operations) = (&state.connection, &state.shown, &state.operations);
        let guard = operations.begin(State::Starting, &shown.refresh_due).expect("nothing under way yet");
        assert!(
            matches!(
                operations.begin(State::Stopping, &shown.refresh_due),
                Err(Error::Backend(BackendError::OperationUnderWay))
            ),
            "one operation at a time"
        );
        assert_eq!(
            shown.store(shown.latest(), connection, operations).state,
            State::Starting,
            "shown through the operation's lens"
        );
        drop(guard);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = operations.begin(State::Starting, &shown.refresh_due).expect("free again");
            panic!("a bug in the middle of a start");
        }));
        assert!(panicked.is_err());
        assert!(operations.begin(State::Stopping, &shown.refresh_due).is_ok(), "the panic released the operation");
    }

    #[test]
    fn a_slow_reading_never_replaces_a_newer_one() {
        let state = test_state();
        let (connection, shown, operations) = (&state.connection, &state.shown, &state.operations);
        let slow = shown.begin_reading();
        let fast = shown.begin_reading();
        let running = Snapshot::new(State::Running, connection.names.backend(), None, None);
        let stopped = Snapshot::new(State::Stopped, connection.names.backend(), None, None);
        assert!(shown.store_reading(fast, running, connection, operations).is_some());
        assert!(shown.store_reading(slow, stopped, connection, operations).is_none(), "the older reading is dropped");
        assert_eq!(shown.latest().state, State::Running);
    }

    #[test]
    fn nothing_begins_once_quit_was_asked() {
        let state = test_state();
        state.operations.quit();
        assert!(matches!(
            state.operations.begin(State::Starting, &state.shown.refresh_due),
            Err(Error::Backend(BackendError::Quitting))
        ));
    }
}
