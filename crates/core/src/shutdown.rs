//! One signal that tells every long-running task to end, in the manner of mini-redis's
//! `Shutdown`: the owner keeps a [`ShutdownTrigger`], each task holds a [`Shutdown`] and ends
//! (or rolls back what it was doing) when it fires. A task that subscribes after the trigger
//! fired sees it at once.
use tokio::sync::watch;

/// Fires the shutdown for every [`Shutdown`] made from it.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

impl Default for ShutdownTrigger {
    fn default() -> Self {
        Self { sender: watch::channel(false).0 }
    }
}

impl ShutdownTrigger {
    /// A trigger that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells every task to end. Idempotent.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Whether [`ShutdownTrigger::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow()
    }

    /// A listener for one task.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown { receiver: self.sender.subscribe() }
    }
}

/// A task's view of the shutdown signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

impl Shutdown {
    /// Whether the shutdown has fired.
    pub fn is_shutdown(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Completes when the shutdown fires (at once if it has), or when the trigger is gone, which
    /// also means nobody is left to wait for the task.
    pub async fn recv(&mut self) {
        let _ = self.receiver.wait_for(|fired| *fired).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_listener_hears_it_even_the_late_ones() {
        let trigger = ShutdownTrigger::new();
        let mut early = trigger.subscribe();
        assert!(!early.is_shutdown());
        let waiting = tokio::spawn(async move { early.recv().await });
        trigger.trigger();
        waiting.await.expect("the early listener ends");
        let mut late = trigger.subscribe();
        assert!(late.is_shutdown());
        tokio::time::timeout(std::time::Duration::from_secs(5), late.recv()).await.expect("at once for a late one");
    }

    #[tokio::test]
    async fn a_dropped_trigger_releases_the_listeners() {
        let trigger = ShutdownTrigger::new();
        let mut listener = trigger.subscribe();
        drop(trigger);
        tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv()).await.expect("released");
    }
}
