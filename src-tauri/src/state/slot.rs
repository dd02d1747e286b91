//! The one live follow of a kind (the Builds window's list, or its detail; the log viewer's
//! reading; the build's Cancel). Taking the slot ends the follow that held it at once, even one
//! waiting on a quiet stream of an engine left behind.
use tokio::sync::watch;

/// The one live follow of a kind. Taking the slot ends the follow that held it at once, even one
/// waiting on a quiet stream of an engine left behind.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
