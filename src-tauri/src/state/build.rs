//! The Build window's state: the one build the app runs at a time, and its Cancel.
use std::sync::atomic::{AtomicBool, Ordering};

use super::{FollowSlot, Superseded};

#[derive(Default)]
pub struct BuildJob {
    /// A build of the Build window runs (one at a time).
    building: AtomicBool,
    /// Ended by Cancel in the Build window: the build under way holds it.
    cancel_slot: FollowSlot,
}

impl BuildJob {
    /// Claims the one build the app runs at a time; `None` while another runs.
    pub fn begin(&self) -> Option<BuildGuard<'_>> {
        self.building.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).ok()?;
        Some(BuildGuard(&self.building))
    }

    /// A build of the app runs now.
    pub fn under_way(&self) -> bool {
        self.building.load(Ordering::Acquire)
    }

    /// Resolves when the user cancels the build under way.
    pub fn cancelled(&self) -> Superseded {
        self.cancel_slot.take()
    }

    /// Cancels the build under way, if any.
    pub fn cancel(&self) {
        self.cancel_slot.end();
    }
}

/// Held while the app's build runs; dropping it lets the next one begin.
pub struct BuildGuard<'a>(&'a AtomicBool);

impl Drop for BuildGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
