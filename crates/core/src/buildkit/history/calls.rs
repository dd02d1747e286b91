//! The history's questions to BuildKit, as calls of the client: every build, one build by its
//! ref, its recorded steps, and how a running build ended.
use bollard_buildkit_proto::moby::buildkit::v1::{BuildHistoryRequest, StatusRequest, StatusResponse};
use futures_util::StreamExt;

use crate::buildkit::error::BuildkitError;
use crate::buildkit::{
    history::build::{build_from_record, Build, BuildStatus},
    status_error, BuildkitClient,
};
use crate::Result;

impl BuildkitClient {
    /// The recorded progress of build `reference` (finished, or running: then to its end), as
    /// BuildKit replays it.
    pub async fn recorded_progress(&self, reference: &str) -> Result<Vec<StatusResponse>> {
        let request = StatusRequest { r#ref: reference.to_string() };
        let mut stream = self.control().status(request).await.map_err(status_error("replay the build"))?.into_inner();
        let mut responses = Vec::new();
        while let Some(response) = stream.next().await {
            responses.push(response.map_err(status_error("replay the build"))?);
        }
        Ok(responses)
    }

    /// `build` as its record says once it has ended. BuildKit closes a build's progress a moment
    /// before it records the end, so a running build's record is awaited, for at most `patience`;
    /// after that (or for a finished build) it is returned as it is.
    pub async fn ended(&self, build: Build, patience: std::time::Duration) -> Build {
        if build.status != BuildStatus::Running {
            return build;
        }
        let request = BuildHistoryRequest { r#ref: build.reference.clone(), early_exit: false, ..Default::default() };
        let ending = async {
            let mut events = self.control().listen_build_history(request).await.ok()?.into_inner();
            while let Some(Ok(event)) = events.next().await {
                let ended = event.record.as_ref().map(build_from_record).filter(|b| b.status != BuildStatus::Running);
                if ended.is_some() {
                    return ended;
                }
            }
            None
        };
        tokio::time::timeout(patience, ending).await.ok().flatten().unwrap_or(build)
    }

    /// The build `reference` names: BuildKit's ref, or buildx's `builder/node/ref`.
    pub async fn find_build(&self, reference: &str) -> Result<Build> {
        let wanted = reference.rsplit('/').next().unwrap_or(reference);
        self.builds()
            .await?
            .into_iter()
            .find(|b| b.reference == wanted)
            .ok_or_else(|| BuildkitError::UnknownBuild(reference.to_string()).into())
    }

    /// Every build BuildKit remembers, finished and running, newest first.
    pub async fn builds(&self) -> Result<Vec<Build>> {
        let request = BuildHistoryRequest { early_exit: true, ..Default::default() };
        let mut stream =
            self.control().listen_build_history(request).await.map_err(status_error("list its builds"))?.into_inner();
        let mut builds: Vec<Build> = Vec::new();
        while let Some(event) = stream.next().await {
            let event = event.map_err(status_error("list its builds"))?;
            if let Some(record) = event.record {
                let build = build_from_record(&record);
                // A record can come twice (started, then completed): the later one is the truth.
                builds.retain(|b| b.reference != build.reference);
                builds.push(build);
            }
        }
        builds.sort_by(|a, b| {
            b.created_seconds.total_cmp(&a.created_seconds).then_with(|| b.reference.cmp(&a.reference))
        });
        Ok(builds)
    }
}
