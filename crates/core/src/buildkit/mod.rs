//! BuildKit, as a client speaks to it: the control API over an exec stream ([`client`]), the
//! session on which BuildKit calls us back ([`session`]: the build's folders through
//! [`filesync`], filtered by [`dockerignore`]'s rules, and the registry credentials of
//! [`registry_auth`]; `--secret` through [`secrets`], `--ssh` through [`ssh`], the exporters'
//! files back through [`filesend`]), the build history ([`history`]), a build's progress read once
//! for every face ([`progress`]: the steps, buildx's plain text, rawjson), buildx's prune options
//! ([`prune`]), and platforms read by containerd's rules with those a daemon builds for, natively
//! or through its emulators ([`platform`]). Nothing here knows our backend, names or labels: the
//! backend hands a client the container to reach.
pub mod client;
pub mod content;
pub mod dockerignore;
pub mod error;
pub mod filesend;
pub mod filesync;
pub mod history;
pub mod platform;
pub mod progress;
pub mod prune;
pub mod registry_auth;
pub mod secrets;
pub mod session;
pub mod ssh;

pub(crate) use client::status_error;
pub use client::{BuildkitClient, CacheRecord, CacheTotals, Worker};
