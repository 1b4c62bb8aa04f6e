//! The part of the environment's configuration the runbooks need.
//!
//! Kept as a small struct of its own so the engine can be driven without a whole configuration (tests, the
//! DR Lambda's environment variables); the CLI builds it from `lifeboat.toml` (`[regions]` and `[dr]`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrSettings {
    /// The configured home region (`regions.primary`): where failback returns to.
    pub primary_region: String,
    /// The configured standby region (`regions.standby`).
    pub standby_region: String,
    /// Recovery time objective (`dr.rto_seconds`): the report compares the measured RTO with it.
    pub rto_seconds: u64,
    /// Recovery point objective (`dr.rpo_seconds`): the report compares the failover data-loss estimate.
    pub rpo_seconds: u64,
    /// A switchover is refused when the standby lags more than this (`dr.max_switchover_lag_seconds`).
    pub max_switchover_lag_seconds: u64,
    /// Whether a failover may be started without `--allow-data-loss`, and whether automation may escalate
    /// to one (`dr.allow_data_loss`).
    pub allow_data_loss: bool,
    /// Bound of the promote step of a switchover, and of an automated switchover attempt
    /// (`dr.switchover_timeout_seconds`).
    pub switchover_timeout_seconds: u64,
    /// Automation does not start a run within this long of the previous one (`dr.cooldown_seconds`).
    pub cooldown_seconds: u64,
    /// Automation acts only after the primary-health alarms have been in ALARM this long
    /// (`dr.alarm_min_seconds`).
    pub alarm_min_seconds: u64,
    /// How long a region may keep acknowledging writes on control state it can no longer refresh
    /// (`local.lease_ms` locally; the storefront's control refresh bound on AWS). A failover waits it out.
    pub write_lease_ms: u64,
}

impl Default for DrSettings {
    /// The documented defaults of `lifeboat.toml`.
    fn default() -> Self {
        DrSettings {
            primary_region: "us-east-1".into(),
            standby_region: "us-west-2".into(),
            rto_seconds: 300,
            rpo_seconds: 5,
            max_switchover_lag_seconds: 5,
            allow_data_loss: false,
            switchover_timeout_seconds: 900,
            cooldown_seconds: 1800,
            alarm_min_seconds: 180,
            write_lease_ms: 1000,
        }
    }
}

impl DrSettings {
    /// The configured pair of regions.
    pub fn region_pair(&self) -> lifeboat_contract::RegionPair<'_> {
        lifeboat_contract::RegionPair::new(&self.primary_region, &self.standby_region)
    }

    pub fn is_known_region(&self, region: &str) -> bool {
        self.region_pair().contains(region)
    }

    pub fn switchover_timeout(&self) -> Duration {
        Duration::from_secs(self.switchover_timeout_seconds)
    }

    pub fn write_lease(&self) -> Duration {
        Duration::from_millis(self.write_lease_ms)
    }
}
