//! Which cache records a purge removes and a usage listing shows, with `docker buildx prune`'s
//! options: `--all` (also BuildKit's internal and frontend records), `--keep-storage SIZE` (leave
//! that much), `--filter until=DURATION` (only records unused for that long) and `--filter
//! type=TYPE` (only records of those types).
use std::time::Duration;

use serde::Serialize;

use crate::buildkit::error::BuildkitError;
use crate::{time, Result};

/// The record types BuildKit knows, as `cache usage` prints them.
pub const RECORD_TYPES: [&str; 6] =
    ["regular", "source.local", "exec.cachemount", "source.git.checkout", "frontend", "internal"];

/// What to remove (or show), parsed from the user's options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CacheFilter {
    /// Also BuildKit's internal and frontend records.
    pub all: bool,
    /// Leave this many bytes of cache.
    pub keep_storage: Option<u64>,
    /// Only records unused for at least this long.
    pub until: Option<Duration>,
    /// Only records of these types (any of them).
    pub types: Vec<String>,
}

impl CacheFilter {
    /// Every record not in use, internal and frontend ones too: what the panel's Purge removes.
    pub fn everything() -> Self {
        CacheFilter { all: true, ..Default::default() }
    }

    /// The filter for `--all`, `--keep-storage` and each `--filter KEY=VALUE`.
    pub fn parse(all: bool, keep_storage: Option<&str>, filters: &[String]) -> Result<Self> {
        let mut filter = CacheFilter { all, ..Default::default() };
        if let Some(size) = keep_storage {
            filter.keep_storage = Some(crate::units::parse_size(size)?);
        }
        for typed in filters {
            let invalid =
                || BuildkitError::InvalidCacheFilter { filter: typed.clone(), types: RECORD_TYPES.join(", ") };
            let (key, value) = typed.split_once('=').ok_or_else(invalid)?;
            match key.trim() {
                "until" => filter.until = Some(time::parse_go_duration(value.trim()).ok_or_else(invalid)?),
                "type" if RECORD_TYPES.contains(&value.trim()) => filter.types.push(value.trim().to_string()),
                _ => return Err(invalid().into()),
            }
        }
        Ok(filter)
    }

    /// BuildKit's filter strings (containerd's syntax: `type==regular`; several are "any of").
    pub fn buildkit_filters(&self) -> Vec<String> {
        self.types.iter().map(|t| format!("type=={t}")).collect()
    }

    /// BuildKit's keep-duration, in nanoseconds (0: none).
    pub fn keep_duration_nanos(&self) -> i64 {
        self.until.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, SizeError};

    #[test]
    fn buildx_prune_options_become_buildkits_request() {
        let filters = vec!["until=24h".to_string(), "type=regular".to_string(), "type=source.local".to_string()];
        let filter = CacheFilter::parse(true, Some("1GB"), &filters).expect("valid");
        assert_eq!(
            filter,
            CacheFilter {
                all: true,
                keep_storage: Some(1_000_000_000),
                until: Some(Duration::from_secs(86_400)),
                types: vec!["regular".into(), "source.local".into()],
            }
        );
        assert_eq!(filter.buildkit_filters(), vec!["type==regular", "type==source.local"]);
        assert_eq!(filter.keep_duration_nanos(), 86_400_000_000_000);
        assert_eq!(CacheFilter::parse(false, None, &[]).expect("none").keep_duration_nanos(), 0);
    }

    #[test]
    fn a_bad_filter_says_which_are_known() {
        for bad in ["until=tomorrow", "type=everything", "label=x", "until"] {
            let error = CacheFilter::parse(false, None, &[bad.to_string()]).expect_err(bad);
            assert!(
                matches!(&error, Error::Buildkit(BuildkitError::InvalidCacheFilter { filter, .. }) if filter == bad),
                "{error:?}"
            );
            assert!(error.to_string().contains("until=DURATION (such as 24h) or type=TYPE"), "{error}");
        }
        let size = CacheFilter::parse(false, Some("much"), &[]).expect_err("a size");
        assert!(matches!(size, Error::InvalidSize(SizeError(_))));
    }
}
