//! The log viewer's state: its lines (the core's compact store), the reading that fills them,
//! offered to the window's page until it takes it, and the follow that a new reading, `stop_logs`
//! or a switch of engine ends.
use std::sync::Mutex;

use assemble_core::logs::store::LogStore;
use tokio::sync::watch;

use super::{lock, FollowSlot};
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

#[derive(Default)]
pub struct LogViewer {
    /// The log viewer's lines (log_view.rs).
    store: Mutex<LogStore>,
    /// The log feed the Logs window's opening started, until its page takes it.
    feed: Mutex<Option<LogFeed>>,
    /// The log viewer's follow: a new one, `stop_logs` or a switch of engine ends the one before.
    pub follow: FollowSlot,
}

impl LogViewer {
    /// Runs `work` on the log viewer's store. The lock is never held across an await.
    pub fn with_store<T>(&self, work: impl FnOnce(&mut LogStore) -> T) -> T {
        let mut store = lock(&self.store);
        work(&mut store)
    }

    /// Keeps `feed` for the Logs window's page to take (one at a time: a newer one replaces it).
    pub fn offer_feed(&self, feed: LogFeed) {
        *lock(&self.feed) = Some(feed);
    }

    /// The feed offered and not yet taken, if any.
    pub fn claim_feed(&self) -> Option<LogFeed> {
        // One that ended before its page came (an engine switch, a window closed) is no use.
        lock(&self.feed).take().filter(|feed| feed.outcome.borrow().is_none())
    }

    /// Ends the log viewer's reading, and forgets a feed no page took: the window is gone.
    pub fn end_feed(&self) {
        self.follow.end();
        lock(&self.feed).take();
    }
}
