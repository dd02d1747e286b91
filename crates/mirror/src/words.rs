//! How the mirror's sentences begin, so that the core can tell the mirror's own words inside
//! BuildKit's error and show them first (one home for the marker).

/// The start of every error sentence the mirror answers with.
pub const MIRROR_SAYS: &str = "local images: ";
