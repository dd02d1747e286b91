//! The work under way: one start, stop or restart at a time (single flight), the last one that
//! failed, the losses of the backend that none of them caused, and Quit, which ends every task
//! and waits for the work that must finish.
use std::{sync::Mutex, time::Duration};

use assemble_core::{
    live::notice::{LossWatch, Notice},
    BackendError, Error, Shutdown, ShutdownTrigger, Snapshot, State,
};
use tauri::async_runtime::JoinHandle;
use tokio::sync::{watch, Notify};

use super::lock;
use crate::errors::CommandError;

pub struct Operations {
    /// The operation under way, if any; watched by Quit, which waits for it to end.
    operation: watch::Sender<Option<State>>,
    /// The last start, stop or restart that failed, until the next one begins; a panel opened
    /// later shows it too.
    action_error: Mutex<Option<CommandError>>,
    /// Tells a loss of the running backend that no operation of ours caused.
    losses: Mutex<LossWatch>,
    /// Fired by Quit: a start rolls back, log follows and background tasks end.
    shutdown: ShutdownTrigger,
    /// Tasks Quit waits for after the shutdown fired (the keeper, which ends between repairs).
    background: Mutex<Vec<JoinHandle<()>>>,
}

impl Default for Operations {
    fn default() -> Self {
        Self {
            operation: watch::channel(None).0,
            action_error: Mutex::new(None),
            losses: Mutex::new(LossWatch::default()),
            shutdown: ShutdownTrigger::new(),
            background: Mutex::new(Vec::new()),
        }
    }
}

impl Operations {
    /// Marks an operation as under way until the guard is dropped (also by a panic, so the app
    /// cannot stay "Starting…"). Refused while another one is under way (single flight) and once
    /// Quit was asked. When it ends, `refresh_due` asks for a new reading (the snapshot shown was
    /// the operation's view).
    pub fn begin<'a>(&'a self, op: State, refresh_due: &'a Notify) -> Result<OperationGuard<'a>, Error> {
        let mut refusal = None;
        self.operation.send_if_modified(|operation| {
            refusal = if self.shutdown.is_triggered() {
                Some(BackendError::Quitting.into())
            } else if operation.is_some() {
                Some(BackendError::OperationUnderWay.into())
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
                Ok(OperationGuard { operations: self, refresh_due })
            }
        }
    }

    /// The operation under way, if any.
    pub fn under_way(&self) -> Option<State> {
        *self.operation.borrow()
    }

    /// Waits until no operation is under way.
    pub async fn operation_ended(&self) {
        let _ = self.operation.subscribe().wait_for(Option::is_none).await;
    }

    /// The notice for a snapshot just shown, if it shows a loss nobody asked for.
    pub fn loss(&self, shown: &Snapshot) -> Option<Notice> {
        lock(&self.losses).observe(shown)
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
}

/// An operation under way; dropping it ends the operation.
pub struct OperationGuard<'a> {
    operations: &'a Operations,
    refresh_due: &'a Notify,
}

impl Drop for OperationGuard<'_> {
    fn drop(&mut self) {
        self.operations.operation.send_replace(None);
        // The snapshot shown was the operation's view: read the state again.
        self.refresh_due.notify_one();
    }
}
