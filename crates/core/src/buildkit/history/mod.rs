//! The backend's builds, from BuildKit's own history (`Control.ListenBuildHistory`): every build
//! any client ran here (buildx, buildctl, our CLI), finished or running, newest first. BuildKit
//! keeps the history in its state folder, so it lives as long as the cache volume does.
//!
//! [`build`] reads a history record as a build, [`rows`] words builds and their steps for the
//! windows, [`timing`] lays a build's steps out on its time axis, `calls` asks BuildKit, and [`follow`] follows the history and a build as they change.
//! A build's steps are its recorded progress read by [`crate::buildkit::progress`], as live.
pub mod build;
mod calls;
pub mod follow;
pub mod provenance;
pub mod rows;
pub mod timing;

pub use build::{apply_event, build_from_record, Build, BuildStatus};
pub use follow::{follow_build, follow_builds};
pub use rows::{grouped, BuildRow, StepGroup, StepRow};
pub use timing::{timing, Timing};
