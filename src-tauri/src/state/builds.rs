//! The Builds window's follows: a new follow of a kind ends the one before (the window follows
//! again when the backend or its engine changes).
use super::FollowSlot;

#[derive(Default)]
pub struct BuildsFollows {
    /// The follow of the list.
    pub list: FollowSlot,
    /// The follow of the build in detail.
    pub detail: FollowSlot,
}
