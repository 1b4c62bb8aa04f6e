//! What the local runtime needs from the configuration (`[local]`, `[regions]`, `[dr]` of `lifeboat.toml`).
//!
//! A struct of its own so the runtime can be driven without a whole configuration file (tests, drills),
//! and so it can be stored in `runtime.json` for the supervisor, which reads nothing else.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{LocalError, Result};

/// MariaDB replication between the two regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicationMode {
    /// A commit returns once the standby has the transaction (or after `semi_sync_timeout_ms`).
    SemiSync,
    /// A commit returns at once; the standby may lag and a failover may lose the tail.
    Async,
}

impl ReplicationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicationMode::SemiSync => "semi-sync",
            ReplicationMode::Async => "async",
        }
    }
}

impl std::str::FromStr for ReplicationMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "semi-sync" => Ok(ReplicationMode::SemiSync),
            "async" => Ok(ReplicationMode::Async),
            other => Err(format!(
                "unknown replication mode {other:?}: expected semi-sync or async"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalSettings {
    /// `<local.state_dir>`: the runtime keeps everything under `<state_dir>/local/`.
    pub state_dir: PathBuf,
    /// The front door listens here on 127.0.0.1; the control server, the databases and the storefronts use
    /// the next ports (see [`crate::Ports`]).
    pub base_port: u16,
    /// `regions.primary`: the region active after `up`.
    pub primary_region: String,
    /// `regions.standby`.
    pub standby_region: String,
    pub replication: ReplicationMode,
    pub semi_sync_timeout_ms: u32,
    /// How often the front door and the supervisor probe each region.
    pub probe_interval_ms: u32,
    /// Failed probes in a row before a region counts as down.
    pub failure_threshold: u32,
    /// How long a storefront may act on control state without renewing it.
    pub lease_ms: u32,
    /// Whether the supervisor's DR automation may fail over (and so may lose the writes not yet
    /// replicated) when a switchover is not possible. Default: `dr.allow_data_loss`.
    pub automatic_failover: bool,
    /// The supervisor's DR automation watches but starts nothing: a drill that moves the roles itself sets
    /// this, so a slow health answer under its load cannot start a runbook of its own.
    #[serde(default)]
    pub automation_paused: bool,
    /// The `dr.*` values the runbooks need, as JSON (the runbook crate's `DrSettings`), so the supervisor
    /// can run them without reading the configuration file again.
    #[serde(default)]
    pub dr: serde_json::Value,
    /// The storefront binary; `None`: next to the running executable, or `LIFEBOAT_STOREFRONT_BIN`.
    #[serde(default)]
    pub storefront_bin: Option<PathBuf>,
    /// The `lifeboat` executable the supervisor runs as; `None`: `LIFEBOAT_BIN`, else the running
    /// executable.
    #[serde(default)]
    pub lifeboat_bin: Option<PathBuf>,
}

impl LocalSettings {
    /// Settings with the documented defaults of `[local]` for a state directory and base port.
    pub fn new(state_dir: impl Into<PathBuf>, base_port: u16) -> Self {
        LocalSettings {
            state_dir: state_dir.into(),
            base_port,
            primary_region: "us-east-1".into(),
            standby_region: "us-west-2".into(),
            replication: ReplicationMode::SemiSync,
            semi_sync_timeout_ms: 2000,
            probe_interval_ms: 1000,
            failure_threshold: 3,
            lease_ms: 1000,
            automatic_failover: false,
            automation_paused: false,
            dr: serde_json::Value::Null,
            storefront_bin: None,
            lifeboat_bin: None,
        }
    }

    /// Checks what the runtime relies on; errors name the setting.
    pub fn validate(&self) -> Result<()> {
        if self.primary_region == self.standby_region {
            return Err(LocalError::Usage(format!(
                "regions.primary and regions.standby are both {:?}: the local runtime needs two regions",
                self.primary_region
            )));
        }
        for region in [&self.primary_region, &self.standby_region] {
            let ok = !region.is_empty()
                && region.len() <= 32
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(LocalError::Usage(format!(
                    "region name {region:?} is not usable locally: lower-case letters, digits and '-', at most 32"
                )));
            }
        }
        if !(1024..=65_000).contains(&self.base_port) {
            return Err(LocalError::Usage(format!(
                "local.base_port {} is outside 1024..=65000 (the runtime uses a few ports from there up)",
                self.base_port
            )));
        }
        if self.probe_interval_ms < 50 || self.failure_threshold == 0 || self.lease_ms < 100 {
            return Err(LocalError::Usage(
                "local.probe_interval_ms must be >= 50, local.failure_threshold >= 1 and local.lease_ms >= 100".into(),
            ));
        }
        Ok(())
    }

    pub fn ports(&self) -> Ports {
        Ports {
            front_door: self.base_port,
            control: self.base_port + 1,
            database: self.base_port + 2,
            storefront: self.base_port + 3,
        }
    }
}

/// The ports of one runtime. The databases and storefronts of both regions use the same port numbers,
/// each on its own region's address (every region is its own network namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    /// HAProxy on 127.0.0.1.
    pub front_door: u16,
    /// The control server on the bridge address the regions reach.
    pub control: u16,
    pub database: u16,
    pub storefront: u16,
}

impl LocalSettings {
    /// The runtime's settings from a validated configuration: `[local]`, `[regions]`, and `[dr]` (whose
    /// `allow_data_loss` is the default for automatic failover).
    pub fn from_config(config: &lifeboat_config::Config) -> Self {
        let local = &config.local;
        let dr = lifeboat_runbook::DrSettings {
            primary_region: config.regions.primary.clone(),
            standby_region: config.regions.standby.clone(),
            rto_seconds: u64::from(config.dr.rto_seconds),
            rpo_seconds: u64::from(config.dr.rpo_seconds),
            max_switchover_lag_seconds: u64::from(config.dr.max_switchover_lag_seconds),
            allow_data_loss: config.dr.allow_data_loss,
            switchover_timeout_seconds: u64::from(config.dr.switchover_timeout_seconds),
            cooldown_seconds: u64::from(config.dr.cooldown_seconds),
            alarm_min_seconds: u64::from(config.dr.alarm_min_seconds),
            write_lease_ms: u64::from(local.lease_ms),
        };
        LocalSettings {
            state_dir: PathBuf::from(&local.state_dir),
            base_port: local.base_port,
            primary_region: config.regions.primary.clone(),
            standby_region: config.regions.standby.clone(),
            replication: match local.replication {
                lifeboat_config::Replication::SemiSync => ReplicationMode::SemiSync,
                lifeboat_config::Replication::Async => ReplicationMode::Async,
            },
            semi_sync_timeout_ms: local.semi_sync_timeout_ms,
            probe_interval_ms: local.probe_interval_ms,
            failure_threshold: local.failure_threshold,
            lease_ms: local.lease_ms,
            automatic_failover: config.dr.allow_data_loss,
            automation_paused: false,
            dr: serde_json::to_value(dr).unwrap_or_default(),
            storefront_bin: None,
            lifeboat_bin: None,
        }
    }
}
