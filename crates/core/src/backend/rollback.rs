//! Taking back what a start (or a repair) created when it fails or is interrupted, and saying so
//! when that fails too. Drop-safe: a [`Created`] dropped with objects still in it (its future was
//! dropped mid-way) removes them in a task of its own, so no half-made backend stays behind.
use bollard::{
    query_parameters::{RemoveContainerOptionsBuilder, RemoveVolumeOptions},
    Docker,
};

use crate::{
    backend::error::{BackendError, Leftover},
    engine::{is_conflict, is_not_found},
    Error,
};

/// What an operation created so far, in order.
pub(crate) struct Created {
    docker: Docker,
    objects: Vec<Leftover>,
}

impl Created {
    pub(crate) fn new(docker: &Docker) -> Self {
        Self { docker: docker.clone(), objects: Vec::new() }
    }

    pub(crate) fn container(&mut self, id: &str) {
        self.objects.push(Leftover::Container(id.to_string()));
    }

    pub(crate) fn volume(&mut self, name: &str) {
        self.objects.push(Leftover::Volume(name.to_string()));
    }

    /// Forgets a container removed by other means.
    pub(crate) fn forget_container(&mut self, id: &str) {
        self.objects.retain(|o| o != &Leftover::Container(id.to_string()));
    }

    /// Forgets a volume removed by other means.
    pub(crate) fn forget_volume(&mut self, name: &str) {
        self.objects.retain(|o| o != &Leftover::Volume(name.to_string()));
    }

    /// Removes everything now, newest first: a part given up while the operation goes on. A
    /// removal that fails is [`BackendError::RollbackIncomplete`] with `cause`.
    pub(crate) async fn undo(mut self, cause: Error) -> Result<(), Error> {
        let objects = std::mem::take(&mut self.objects);
        let (failures, left) = remove_all(&self.docker, objects).await;
        if failures.is_empty() {
            Ok(())
        } else {
            Err(BackendError::RollbackIncomplete { cause: Box::new(cause), failures, left }.into())
        }
    }

    /// The operation succeeded: everything stays.
    pub(crate) fn keep(mut self) {
        self.objects.clear();
    }

    /// Ends `result`: on success everything stays; on failure everything is removed, newest
    /// first, and a removal that fails turns the error into [`BackendError::RollbackIncomplete`].
    pub(crate) async fn settle<T>(mut self, result: Result<T, Error>) -> Result<T, Error> {
        let cause = match result {
            Ok(value) => {
                self.keep();
                return Ok(value);
            }
            Err(cause) => cause,
        };
        let objects = std::mem::take(&mut self.objects);
        let (failures, left) = remove_all(&self.docker, objects).await;
        if failures.is_empty() {
            Err(cause)
        } else {
            Err(BackendError::RollbackIncomplete { cause: Box::new(cause), failures, left }.into())
        }
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if self.objects.is_empty() {
            return;
        }
        let (docker, objects) = (self.docker.clone(), std::mem::take(&mut self.objects));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let (failures, _) = remove_all(&docker, objects).await;
                    for failure in failures {
                        eprintln!("assemble: after an interrupted start, {failure}");
                    }
                });
            }
            Err(_) => eprintln!(
                "assemble: an interrupted start left {objects:?}; remove them with docker rm -f / docker volume rm"
            ),
        }
    }
}

/// Removes `objects` newest first; returns a sentence per failure and what is left.
async fn remove_all(docker: &Docker, objects: Vec<Leftover>) -> (Vec<String>, Vec<Leftover>) {
    let (mut failures, mut left) = (Vec::new(), Vec::new());
    for object in objects.into_iter().rev() {
        let outcome = match &object {
            Leftover::Container(id) => {
                let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
                docker.remove_container(id, Some(options)).await.map_err(|e| (format!("container {id}"), e))
            }
            Leftover::Volume(name) => {
                docker.remove_volume(name, None::<RemoveVolumeOptions>).await.map_err(|e| (format!("volume {name}"), e))
            }
        };
        match outcome {
            Ok(()) => {}
            // Already gone, or being removed: the goal is reached.
            Err((_, err)) if is_not_found(&err) || is_conflict(&err) && matches!(object, Leftover::Container(_)) => {}
            Err((what, err)) => {
                failures.push(format!("could not remove {what} ({})", crate::failure::engine_message(&err)));
                left.push(object);
            }
        }
    }
    left.reverse();
    (failures, left)
}
