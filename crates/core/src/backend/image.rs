//! Making sure an image is on the engine: inspect, else pull with progress.
use std::collections::HashMap;

use bollard::{query_parameters::CreateImageOptionsBuilder, Docker};
use futures_util::StreamExt;

use crate::{
    backend::{
        error::BackendError,
        progress::{Reporter, StartEvent},
    },
    engine::{is_connection_failure, is_not_found},
    Error, Result,
};

/// Pulls `image` unless the engine has it. Returns whether a pull happened.
pub async fn ensure(docker: &Docker, image: &str, report: Reporter<'_>) -> Result<bool> {
    match docker.inspect_image(image).await {
        Ok(_) => {
            report(StartEvent::ImagePresent { image: image.to_string() });
            return Ok(false);
        }
        Err(err) if is_not_found(&err) => {}
        Err(err) => return Err(Error::docker(format!("inspecting image {image}"))(err)),
    }
    pull(docker, image, report).await?;
    Ok(true)
}

async fn pull(docker: &Docker, image: &str, report: Reporter<'_>) -> Result<()> {
    let (from_image, tag) = split_reference(image);
    let options = CreateImageOptionsBuilder::default().from_image(from_image).tag(tag).build();
    let mut stream = docker.create_image(Some(options), None, None);
    let mut layers = LayerProgress::default();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let (Some(id), Some(status)) = (info.id.as_deref(), info.status.as_deref()) {
                    let detail = info.progress_detail.as_ref();
                    layers.update(id, status, detail.and_then(|d| d.current), detail.and_then(|d| d.total));
                    report(layers.event(image));
                }
            }
            Err(err) if is_connection_failure(&err) => {
                return Err(Error::docker(format!("pulling image {image}"))(err));
            }
            Err(err) => {
                return Err(
                    BackendError::ImageUnavailable { image: image.to_string(), reason: pull_reason(&err) }.into()
                );
            }
        }
    }
    // A pull that "succeeds" without producing the image (some engines) is still a failure.
    docker
        .inspect_image(image)
        .await
        .map_err(|err| BackendError::ImageUnavailable { image: image.to_string(), reason: pull_reason(&err) })?;
    report(StartEvent::PullDone { image: image.to_string() });
    Ok(())
}

fn pull_reason(err: &bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.trim().to_string(),
        bollard::errors::Error::DockerStreamError { error } => error.trim().to_string(),
        other => other.to_string(),
    }
}

/// `repo[:tag][@digest]` into what the pull API wants; a bare name means `latest`.
pub fn split_reference(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    match image.rsplit_once(':') {
        // A colon before the last '/' belongs to a registry host:port, not a tag.
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

/// Per-layer byte counts of a pull, summed for one progress bar.
#[derive(Default)]
struct LayerProgress {
    layers: HashMap<String, (u64, u64, bool)>,
}

impl LayerProgress {
    fn update(&mut self, id: &str, status: &str, current: Option<i64>, total: Option<i64>) {
        // Status lines about the whole image ("Pulling from …", "Digest: …") have no layer.
        if status.starts_with("Pulling from") || status.starts_with("Digest") || status.starts_with("Status") {
            return;
        }
        let entry = self.layers.entry(id.to_string()).or_insert((0, 0, false));
        if status == "Downloading" {
            entry.0 = current.unwrap_or(0).max(0) as u64;
            entry.1 = total.unwrap_or(0).max(0) as u64;
        }
        if matches!(status, "Download complete" | "Pull complete" | "Already exists") {
            entry.0 = entry.1;
            entry.2 = status != "Download complete";
        }
    }

    fn event(&self, image: &str) -> StartEvent {
        StartEvent::PullProgress {
            image: image.to_string(),
            downloaded: self.layers.values().map(|l| l.0).sum(),
            total: self.layers.values().map(|l| l.1).sum(),
            layers_done: self.layers.values().filter(|l| l.2).count(),
            layers: self.layers.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_like_docker_pull() {
        assert_eq!(split_reference("moby/buildkit:v0.25.1"), ("moby/buildkit", "v0.25.1"));
        assert_eq!(split_reference("moby/buildkit"), ("moby/buildkit", "latest"));
        assert_eq!(split_reference("localhost:5000/bk"), ("localhost:5000/bk", "latest"));
        assert_eq!(split_reference("localhost:5000/bk:1"), ("localhost:5000/bk", "1"));
        assert_eq!(split_reference("bk@sha256:abc"), ("bk@sha256:abc", ""));
    }

    #[test]
    fn layer_progress_sums_bytes_and_counts_finished_layers() {
        let mut progress = LayerProgress::default();
        progress.update("img", "Pulling from moby/buildkit", None, None);
        progress.update("a", "Downloading", Some(50), Some(100));
        progress.update("b", "Downloading", Some(10), Some(300));
        progress.update("c", "Already exists", None, None);
        progress.update("a", "Pull complete", None, None);
        match progress.event("img") {
            StartEvent::PullProgress { downloaded, total, layers_done, layers, .. } => {
                assert_eq!((downloaded, total, layers_done, layers), (110, 400, 2, 3));
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
}
