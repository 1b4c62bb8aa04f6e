//! The control state a storefront instance reads to decide whether it may accept writes.
//!
//! On AWS it comes from the control items of the DR journal table (a DynamoDB global table, see
//! [`item`]); in the local runtime from the control server's `GET /v1/control?region=<region>` (which also
//! renews that region's lease). Both produce this shape.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlState {
    /// The region that may accept writes.
    pub active_region: String,
    /// The fencing epoch: raised by one at every role change. Writers carry it; the database rejects older ones.
    pub epoch: u64,
    /// The write fence: while raised, no region accepts writes (set during a switchover, before promotion).
    pub fence_raised: bool,
    /// How long (ms) a reader may act on this state without refreshing it. A region that cannot refresh
    /// (cut off) stops acknowledging writes when this runs out; the orchestrator waits it out before promoting.
    pub lease_ms: u64,
}

impl ControlState {
    /// Whether an instance in `region` may accept a write under this state (ignoring lease age, which only
    /// the reader can know).
    pub fn allows_writes_in(&self, region: &str) -> bool {
        !self.fence_raised && self.active_region == region
    }
}

/// The control items in the DR journal table: one per region, written by the runbooks (through any
/// replica that answers), read by every storefront from its own region's replica and the other region's.
///
/// | `pk` | `sk` | attributes |
/// |---|---|---|
/// | [`item::PARTITION`] | `<region>` | [`item::ACTIVE_REGION`] (S), [`item::EPOCH`] (N), [`item::FENCE`] (S `raised`/`lowered`), [`item::UPDATED_AT`] (S, RFC 3339) |
///
/// Both items share one partition key, so one Query reads them; at one read per storefront environment
/// per lease that is 0.5 read units (eventually consistent, under 4 KB), see docs/aws-dr.md.
pub mod item {
    pub const PARTITION_KEY: &str = "pk";
    pub const SORT_KEY: &str = "sk";
    pub const PARTITION: &str = "control";
    pub const ACTIVE_REGION: &str = "active_region";
    pub const EPOCH: &str = "epoch";
    pub const FENCE: &str = "fence";
    pub const UPDATED_AT: &str = "updated_at";
}

/// How the write fence is spelled in the SSM fence parameter and the control items' [`item::FENCE`]
/// attribute: written by the runbooks and `deploy`, read by the storefronts and readiness.
pub mod fence {
    pub const RAISED: &str = "raised";
    pub const LOWERED: &str = "lowered";

    pub fn word(raised: bool) -> &'static str {
        if raised { RAISED } else { LOWERED }
    }

    /// `None` for anything but the two words.
    pub fn parse(word: &str) -> Option<bool> {
        match word {
            RAISED => Some(true),
            LOWERED => Some(false),
            _ => None,
        }
    }
}

/// The state a reader acts on, from control states published for either region and read from any replica:
/// the one with the newest epoch. At equal epochs a raised fence wins (a run is between raising and lowering
/// it). A region whose own item still says "active" after the other region moved on to a newer epoch is
/// therefore passive from the moment the newer item is seen: the runbook that could not reach it still
/// fences it.
pub fn newest<'a>(states: impl IntoIterator<Item = &'a ControlState>) -> Option<ControlState> {
    states
        .into_iter()
        .max_by_key(|s| (s.epoch, s.fence_raised))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(active: &str, epoch: u64, fence_raised: bool) -> ControlState {
        ControlState {
            active_region: active.into(),
            epoch,
            fence_raised,
            lease_ms: 1000,
        }
    }

    #[test]
    fn the_newest_epoch_wins_and_a_raised_fence_wins_a_tie() {
        let own = state("us-east-1", 4, false);
        let moved_on = state("us-west-2", 5, false);
        assert_eq!(newest([&own, &moved_on]), Some(moved_on.clone()));
        assert_eq!(newest([&moved_on, &own]), Some(moved_on));
        let fencing = state("us-east-1", 5, true);
        let lowered = state("us-east-1", 5, false);
        assert!(newest([&lowered, &fencing]).unwrap().fence_raised);
        assert!(newest([&fencing, &lowered]).unwrap().fence_raised);
        assert_eq!(newest([]), None);
    }

    #[test]
    fn only_the_active_region_writes_and_only_without_fence() {
        let mut s = ControlState {
            active_region: "us-east-1".into(),
            epoch: 3,
            fence_raised: false,
            lease_ms: 1000,
        };
        assert!(s.allows_writes_in("us-east-1"));
        assert!(!s.allows_writes_in("us-west-2"));
        s.fence_raised = true;
        assert!(!s.allows_writes_in("us-east-1"));
    }
}
