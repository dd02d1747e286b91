//! The BuildKit channel the backend keeps open across calls: opening one (an exec of `buildctl
//! dial-stdio`) costs more than the calls that use it.
use std::future::Future;

use crate::buildkit::BuildkitClient;
use crate::{backend::Backend, Result};

/// Runs `call` against BuildKit in container `container_id`, over the kept channel when it still
/// reaches this container. A kept channel that broke (BuildKit restarted under it) is replaced by a
/// new one, once; an answer from BuildKit, even a refusal, is final, so that a call with effects (a
/// purge) never runs twice.
pub(super) async fn with_buildkit<T, F, Fut>(backend: &Backend, container_id: &str, call: F) -> Result<T>
where
    F: Fn(BuildkitClient) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let kept = kept_channel(backend).filter(|(id, _)| id == container_id).map(|(_, client)| client);
    if let Some(client) = kept {
        match call(client).await {
            Err(err) if err.is_buildkit_transport() => keep_channel(backend, None),
            other => return other,
        }
    }
    let client = BuildkitClient::connect(&backend.docker, container_id).await?;
    let result = call(client.clone()).await;
    if result.is_ok() {
        keep_channel(backend, Some((container_id.to_string(), client)));
    }
    result
}

fn kept_channel(backend: &Backend) -> Option<(String, BuildkitClient)> {
    backend.channel.lock().ok().and_then(|kept| kept.clone())
}

fn keep_channel(backend: &Backend, channel: Option<(String, BuildkitClient)>) {
    if let Ok(mut kept) = backend.channel.lock() {
        *kept = channel;
    }
}
