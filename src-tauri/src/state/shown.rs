//! What the windows and the tray are shown: the latest snapshot, stored in the order the readings
//! began and seen through an operation under way; who follows it; and the live loop's trigger to
//! read again.
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex,
};

use assemble_core::{Names, Snapshot, State};
use tokio::sync::{watch, Notify};

use super::{lock, Connection, Operations};

pub struct Shown {
    /// The snapshot shown now, with the number of the reading it came from.
    latest: Mutex<Latest>,
    /// Every snapshot shown, for those that follow them (the tray).
    shown: watch::Sender<Snapshot>,
    /// Numbers the readings in the order they began, so that a slow one never replaces a newer one.
    readings: AtomicU64,
    /// Asks the live loop to read the state again (an operation ended, even by a panic).
    pub refresh_due: Notify,
}

struct Latest {
    snapshot: Snapshot,
    /// The number of the reading shown now.
    reading: u64,
}

impl Shown {
    pub fn new(names: &Names) -> Self {
        let first = Snapshot::new(State::Stopped, names.backend(), None, None);
        Self {
            latest: Mutex::new(Latest { snapshot: first.clone(), reading: 0 }),
            shown: watch::channel(first).0,
            readings: Default::default(),
            refresh_due: Notify::new(),
        }
    }

    /// Tells the followers (see [`Shown::follow_shown`]) that `snapshot` is now shown.
    pub fn show(&self, snapshot: Snapshot) {
        self.shown.send_replace(snapshot);
    }

    /// The snapshots as they are shown, from now on.
    pub fn follow_shown(&self) -> watch::Receiver<Snapshot> {
        self.shown.subscribe()
    }

    pub fn latest(&self) -> Snapshot {
        lock(&self.latest).snapshot.clone()
    }

    /// A number for a reading about to begin.
    pub fn begin_reading(&self) -> u64 {
        self.readings.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Stores reading number `reading` unless a newer one is shown already (readings overlap: a
    /// slow one that began before a start ended must not bring back what the start changed).
    pub fn store_reading(
        &self,
        reading: u64,
        snapshot: Snapshot,
        connection: &Connection,
        operations: &Operations,
    ) -> Option<Snapshot> {
        let mut latest = lock(&self.latest);
        if reading < latest.reading {
            return None;
        }
        latest.reading = reading;
        let shown = through_the_lens(snapshot, connection, operations);
        latest.snapshot = shown.clone();
        Some(shown)
    }

    /// Stores a fresh reading, shown through the lens of an operation under way.
    pub fn store(&self, snapshot: Snapshot, connection: &Connection, operations: &Operations) -> Snapshot {
        let shown = through_the_lens(snapshot, connection, operations);
        lock(&self.latest).snapshot = shown.clone();
        shown
    }
}

/// `snapshot` with what was done about the buildx builder, during the operation under way if any.
fn through_the_lens(snapshot: Snapshot, connection: &Connection, operations: &Operations) -> Snapshot {
    let snapshot = snapshot.with_builder(connection.builder().as_ref());
    match operations.under_way() {
        Some(op) => snapshot.during(op),
        None => snapshot,
    }
}
