//! The control state a storefront instance reads to decide whether it may accept writes.
//!
//! On AWS it comes from SSM Parameter Store; in the local runtime from the control server's
//! `GET /v1/control?region=<region>` (which also renews that region's lease). Both produce this shape.

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

#[cfg(test)]
mod tests {
    use super::*;

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
