//! Readiness: what a backend observes in each region, and the pure verdict the runbooks gate on.
//!
//! A backend fills a [`Readiness`] ([`crate::DrBackend::readiness`]); anything it could not observe is
//! `None` (or [`Health::Unknown`]) with the reason in `notes`, never a guess. [`assess`] turns it into a
//! READY / NOT READY [`Verdict`] with every reason, for a given runbook and direction.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::model::RunKind;
use crate::settings::DrSettings;

/// Everything observed about both regions at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: time::OffsetDateTime,
    /// One entry per region of the pair (order: as the backend lists them, usually primary first).
    pub regions: Vec<RegionReadiness>,
}

/// The role a region plays, as the control state says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegionRole {
    Active,
    Passive,
    Unknown,
}

/// The database's role in a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseRole {
    /// Accepts writes (Aurora writer cluster; MariaDB with read_only off).
    Writer,
    /// A replica of the other region (Aurora secondary; MariaDB replica).
    Replica,
    /// Neither writer nor replicating: promoted but not yet re-protected, or detached.
    Detached,
    Unknown,
}

/// Health of a component that is either fine, broken, or not observable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "kebab-case")]
pub enum Health {
    Healthy,
    Unhealthy(String),
    Unknown(String),
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy)
    }

    fn describe(&self) -> String {
        match self {
            Health::Healthy => "healthy".into(),
            Health::Unhealthy(why) => format!("unhealthy ({why})"),
            Health::Unknown(why) => format!("unknown ({why})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseReadiness {
    pub role: DatabaseRole,
    /// Replication lag behind the writer in milliseconds, when this database is a replica and it is known.
    pub replication_lag_ms: Option<u64>,
    /// Whether replication from the writer is running (`None`: not a replica, or not observable).
    pub replicating: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionReadiness {
    pub region: String,
    /// Whether the backend could reach the region's control plane at all.
    pub reachable: bool,
    pub role: RegionRole,
    /// A real request against the region's storefront health endpoint.
    pub storefront: Health,
    pub database: DatabaseReadiness,
    /// The session table replica (DynamoDB global table replica; the local session store).
    pub session_replica: Health,
    /// Asset replication into (or out of) this region.
    pub asset_replication: Health,
    /// Names of the alarms in ALARM in this region.
    pub alarms_firing: Vec<String>,
    /// The active-region parameter as this region's control store holds it.
    pub active_region_parameter: Option<String>,
    /// The fencing epoch as this region's control store holds it.
    pub epoch: Option<u64>,
    /// Whether the write fence is raised, as this region's control store holds it.
    pub fence_raised: Option<bool>,
    /// The region DNS (or the local front door) currently sends traffic to.
    pub dns_target: Option<String>,
    /// Anything the backend could not observe, and why.
    pub notes: Vec<String>,
    /// What is wrong with the region is only stopped parts that re-protecting it starts again (a crashed
    /// database server, a region whose processes were killed while its network is there). A failback's
    /// preflight lets such a region through: its `reprotect` step restarts them, and the switchover
    /// preflight after it checks the region in full.
    #[serde(default)]
    pub restartable: bool,
}

impl RegionReadiness {
    /// An entry that says only that the region could not be reached; used by backends for a region that
    /// is gone and by tests.
    pub fn unreachable(region: &str, why: &str) -> Self {
        RegionReadiness {
            region: region.to_owned(),
            reachable: false,
            role: RegionRole::Unknown,
            storefront: Health::Unknown(why.to_owned()),
            database: DatabaseReadiness {
                role: DatabaseRole::Unknown,
                replication_lag_ms: None,
                replicating: None,
            },
            session_replica: Health::Unknown(why.to_owned()),
            asset_replication: Health::Unknown(why.to_owned()),
            alarms_firing: Vec::new(),
            active_region_parameter: None,
            epoch: None,
            fence_raised: None,
            dns_target: None,
            notes: vec![why.to_owned()],
            restartable: false,
        }
    }
}

impl Readiness {
    pub fn region(&self, region: &str) -> Option<&RegionReadiness> {
        self.regions.iter().find(|r| r.region == region)
    }

    /// The region that is active: the active-region parameter published under the newest epoch where one is
    /// readable, else the region whose role is Active. `None` when nothing says.
    pub fn active_region(&self) -> Option<String> {
        // The regions can disagree: one that returns from an outage still holds the control state it had
        // before it was cut off. The state published under the newest epoch is the truth.
        self.regions
            .iter()
            .filter(|r| r.active_region_parameter.is_some())
            .max_by_key(|r| r.epoch.unwrap_or(0))
            .and_then(|r| r.active_region_parameter.clone())
            .or_else(|| {
                self.regions
                    .iter()
                    .find(|r| r.role == RegionRole::Active)
                    .map(|r| r.region.clone())
            })
    }

    /// A readable multi-line summary (what `lifeboat status` prints).
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for r in &self.regions {
            let _ = writeln!(out, "{} ({})", r.region, role_name(r.role));
            let _ = writeln!(
                out,
                "  reachable:          {}",
                if r.reachable { "yes" } else { "no" }
            );
            let _ = writeln!(out, "  storefront:         {}", r.storefront.describe());
            let lag = r
                .database
                .replication_lag_ms
                .map_or("-".to_owned(), |ms| format!("{ms} ms"));
            let replicating = match r.database.replicating {
                Some(true) => "replicating",
                Some(false) => "not replicating",
                None => "-",
            };
            let _ = writeln!(
                out,
                "  database:           {} (lag {lag}, {replicating})",
                db_role_name(r.database.role)
            );
            let _ = writeln!(
                out,
                "  session replica:    {}",
                r.session_replica.describe()
            );
            let _ = writeln!(
                out,
                "  asset replication:  {}",
                r.asset_replication.describe()
            );
            let alarms = if r.alarms_firing.is_empty() {
                "none".to_owned()
            } else {
                r.alarms_firing.join(", ")
            };
            let _ = writeln!(out, "  alarms firing:      {alarms}");
            let _ = writeln!(
                out,
                "  active-region param: {}",
                r.active_region_parameter.as_deref().unwrap_or("-")
            );
            let _ = writeln!(
                out,
                "  epoch / fence:      {} / {}",
                opt(r.epoch),
                match r.fence_raised {
                    Some(true) => "raised",
                    Some(false) => "lowered",
                    None => "-",
                }
            );
            let _ = writeln!(
                out,
                "  traffic goes to:    {}",
                r.dns_target.as_deref().unwrap_or("-")
            );
            for note in &r.notes {
                let _ = writeln!(out, "  note: {note}");
            }
        }
        out
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".to_owned(), |v| v.to_string())
}

fn role_name(role: RegionRole) -> &'static str {
    match role {
        RegionRole::Active => "active",
        RegionRole::Passive => "passive",
        RegionRole::Unknown => "role unknown",
    }
}

fn db_role_name(role: DatabaseRole) -> &'static str {
    match role {
        DatabaseRole::Writer => "writer",
        DatabaseRole::Replica => "replica",
        DatabaseRole::Detached => "detached",
        DatabaseRole::Unknown => "unknown",
    }
}

/// READY / NOT READY with every reason (all failing checks, not just the first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub ready: bool,
    /// Why not ready (empty when ready).
    pub reasons: Vec<String>,
    /// Things worth knowing that do not block (e.g. "re-protect needed first" for failback).
    pub warnings: Vec<String>,
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        if self.ready { "READY" } else { "NOT READY" }
    }
}

/// Whether `kind` may move the active role from `from` to `to` given what was observed.
///
/// - switchover: both regions reachable; `to` has a healthy storefront, a replica database that is
///   replicating with lag within `max_switchover_lag_seconds`, healthy session and asset replication, no
///   alarm firing in `to`; `from` is the active one and its storefront answers.
/// - failover: only `to` matters: reachable, storefront healthy, database present (replica or detached);
///   `from` may be gone. Alarms in `to` block.
/// - failback: `to` (the region returned to) must be reachable and healthy; if its database is not yet a
///   replicating replica that is a warning (the runbook re-protects it first), not a refusal; then the same
///   lag bound as a switchover applies at the switchover preflight.
pub fn assess(
    kind: RunKind,
    readiness: &Readiness,
    from: &str,
    to: &str,
    settings: &DrSettings,
) -> Verdict {
    let mut reasons = Vec::new();
    let mut warnings = Vec::new();
    if from == to {
        reasons.push(format!("source and target are the same region ({from})"));
    }
    let Some(target) = readiness.region(to) else {
        reasons.push(format!("no readiness was observed for target region {to}"));
        return Verdict {
            ready: false,
            reasons,
            warnings,
        };
    };
    let mut target_reasons = Vec::new();
    if !target.reachable {
        target_reasons.push(format!("target region {to} is not reachable"));
    }
    if !target.storefront.is_healthy() {
        target_reasons.push(format!(
            "storefront in {to} is {}",
            target.storefront.describe()
        ));
    }
    if !target.alarms_firing.is_empty() {
        target_reasons.push(format!(
            "alarms firing in {to}: {}",
            target.alarms_firing.join(", ")
        ));
    }
    if matches!(kind, RunKind::Failback | RunKind::Reprotect) && target.restartable {
        // Reprotect restarts what is stopped; the switchover preflight after it sees the region whole.
        warnings.extend(
            target_reasons
                .into_iter()
                .map(|r| format!("{r}: reprotect restarts it first")),
        );
    } else {
        reasons.extend(target_reasons);
    }
    let source = readiness.region(from);
    match kind {
        RunKind::Switchover => {
            check_replica(target, to, settings, &mut reasons);
            if !target.session_replica.is_healthy() {
                reasons.push(format!(
                    "session replica in {to} is {}",
                    target.session_replica.describe()
                ));
            }
            if !target.asset_replication.is_healthy() {
                reasons.push(format!(
                    "asset replication into {to} is {}",
                    target.asset_replication.describe()
                ));
            }
            match source {
                None => reasons.push(format!(
                    "no readiness was observed for source region {from}"
                )),
                Some(s) => {
                    if !s.reachable {
                        reasons.push(format!(
                            "source region {from} is not reachable: a switchover needs both regions (use failover)"
                        ));
                    } else if !s.storefront.is_healthy() {
                        reasons.push(format!(
                            "storefront in {from} is {}",
                            s.storefront.describe()
                        ));
                    }
                }
            }
            if let Some(active) = readiness.active_region()
                && active != from
            {
                reasons.push(format!("{from} is not the active region ({active} is)"));
            }
        }
        RunKind::Failover => {
            if target.database.role == DatabaseRole::Unknown {
                reasons.push(format!("database in {to} could not be observed"));
            }
            if let Some(s) = source
                && s.reachable
                && s.storefront.is_healthy()
            {
                warnings.push(format!(
                        "{from} looks healthy: a switchover would lose no data (failover may lose the last writes)"
                    ));
            }
        }
        RunKind::Failback | RunKind::Reprotect => {
            let replicating = target.database.role == DatabaseRole::Replica
                && target.database.replicating == Some(true);
            if !replicating {
                warnings.push(format!(
                    "database in {to} is not replicating from {from}: it is re-protected first"
                ));
            }
            match source {
                Some(s) if s.reachable => {}
                _ => reasons.push(format!("current primary region {from} is not reachable")),
            }
        }
    }
    Verdict {
        ready: reasons.is_empty(),
        reasons,
        warnings,
    }
}

fn check_replica(
    target: &RegionReadiness,
    to: &str,
    settings: &DrSettings,
    reasons: &mut Vec<String>,
) {
    if target.database.role != DatabaseRole::Replica {
        reasons.push(format!(
            "database in {to} is {}, not a replica of the active region",
            db_role_name(target.database.role)
        ));
        return;
    }
    if target.database.replicating != Some(true) {
        reasons.push(format!("database in {to} is not replicating"));
    }
    let bound_ms = settings.max_switchover_lag_seconds.saturating_mul(1000);
    match target.database.replication_lag_ms {
        None => reasons.push(format!("replication lag in {to} is unknown")),
        Some(lag) if lag > bound_ms => reasons.push(format!(
            "replication lag in {to} is {lag} ms, over the {bound_ms} ms allowed (dr.max_switchover_lag_seconds)"
        )),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy(region: &str, active: bool) -> RegionReadiness {
        RegionReadiness {
            region: region.into(),
            reachable: true,
            role: if active {
                RegionRole::Active
            } else {
                RegionRole::Passive
            },
            storefront: Health::Healthy,
            database: DatabaseReadiness {
                role: if active {
                    DatabaseRole::Writer
                } else {
                    DatabaseRole::Replica
                },
                replication_lag_ms: (!active).then_some(200),
                replicating: (!active).then_some(true),
            },
            session_replica: Health::Healthy,
            asset_replication: Health::Healthy,
            alarms_firing: vec![],
            active_region_parameter: Some("us-east-1".into()),
            epoch: Some(3),
            fence_raised: Some(false),
            dns_target: Some("us-east-1".into()),
            notes: vec![],
            restartable: false,
        }
    }

    fn pair() -> Readiness {
        Readiness {
            observed_at: time::macros::datetime!(2026-11-25 10:00 UTC),
            regions: vec![healthy("us-east-1", true), healthy("us-west-2", false)],
        }
    }

    #[test]
    fn the_newest_epoch_says_which_region_is_active() {
        let mut r = pair();
        // The standby took over at epoch 4 while the primary was cut off; back, the primary still holds
        // what it had at epoch 3.
        r.regions[1].active_region_parameter = Some("us-west-2".into());
        r.regions[1].epoch = Some(4);
        assert_eq!(r.active_region().as_deref(), Some("us-west-2"));
        r.regions.reverse();
        assert_eq!(r.active_region().as_deref(), Some("us-west-2"));
    }

    #[test]
    fn a_healthy_pair_is_ready_for_a_switchover() {
        let v = assess(
            RunKind::Switchover,
            &pair(),
            "us-east-1",
            "us-west-2",
            &DrSettings::default(),
        );
        assert!(v.ready, "{:?}", v.reasons);
        assert_eq!(v.label(), "READY");
    }

    #[test]
    fn every_failing_check_is_a_reason() {
        let mut r = pair();
        let standby = &mut r.regions[1];
        standby.database.replication_lag_ms = Some(6000);
        standby.session_replica = Health::Unhealthy("replica ACTIVE? no: CREATING".into());
        standby.alarms_firing = vec!["db-lag".into()];
        let v = assess(
            RunKind::Switchover,
            &r,
            "us-east-1",
            "us-west-2",
            &DrSettings::default(),
        );
        assert!(!v.ready);
        assert_eq!(v.reasons.len(), 3, "{:?}", v.reasons);
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("6000 ms, over the 5000 ms"))
        );
        assert!(v.reasons.iter().any(|r| r.contains("session replica")));
        assert!(v.reasons.iter().any(|r| r.contains("db-lag")));
    }

    #[test]
    fn a_lost_primary_blocks_a_switchover_but_not_a_failover() {
        let mut r = pair();
        r.regions[0] = RegionReadiness::unreachable("us-east-1", "connection refused");
        let s = assess(
            RunKind::Switchover,
            &r,
            "us-east-1",
            "us-west-2",
            &DrSettings::default(),
        );
        assert!(
            s.reasons.iter().any(|x| x.contains("use failover")),
            "{:?}",
            s.reasons
        );
        let f = assess(
            RunKind::Failover,
            &r,
            "us-east-1",
            "us-west-2",
            &DrSettings::default(),
        );
        assert!(f.ready, "{:?}", f.reasons);
    }

    #[test]
    fn failback_to_a_detached_region_warns_that_it_is_reprotected_first() {
        let mut r = pair();
        r.regions[0].database = DatabaseReadiness {
            role: DatabaseRole::Detached,
            replication_lag_ms: None,
            replicating: None,
        };
        r.regions[0].role = RegionRole::Passive;
        r.regions[1].role = RegionRole::Active;
        r.regions[1].database.role = DatabaseRole::Writer;
        let v = assess(
            RunKind::Failback,
            &r,
            "us-west-2",
            "us-east-1",
            &DrSettings::default(),
        );
        assert!(v.ready, "{:?}", v.reasons);
        assert!(v.warnings[0].contains("re-protected first"));
        assert!(r.render_text().contains("detached"));
    }

    #[test]
    fn failback_lets_a_stopped_region_through_only_when_reprotect_can_restart_it() {
        let mut r = pair();
        r.regions[1].role = RegionRole::Active;
        r.regions[1].database.role = DatabaseRole::Writer;
        // The crashed old primary: database down, storefront unhealthy because of it.
        let down = &mut r.regions[0];
        down.role = RegionRole::Passive;
        down.reachable = false;
        down.storefront = Health::Unhealthy("the database of us-east-1 is not running".into());
        down.database = DatabaseReadiness {
            role: DatabaseRole::Unknown,
            replication_lag_ms: None,
            replicating: None,
        };
        down.alarms_firing = vec!["database-down".into()];
        let failback = |r: &Readiness| {
            assess(
                RunKind::Failback,
                r,
                "us-west-2",
                "us-east-1",
                &DrSettings::default(),
            )
        };
        let v = failback(&r);
        assert!(!v.ready, "a region nobody can restart must be refused");
        assert!(
            v.reasons.iter().any(|m| m.contains("not reachable")),
            "{:?}",
            v.reasons
        );

        r.regions[0].restartable = true;
        let v = failback(&r);
        assert!(v.ready, "{:?}", v.reasons);
        assert!(
            v.warnings
                .iter()
                .any(|w| w.contains("database-down") && w.contains("reprotect restarts it")),
            "{:?}",
            v.warnings
        );
        // Only failback: a switchover or failover into that region is still refused.
        for kind in [RunKind::Switchover, RunKind::Failover] {
            let v = assess(kind, &r, "us-west-2", "us-east-1", &DrSettings::default());
            assert!(!v.ready, "{kind:?} into a stopped region");
        }
        // Reprotect cannot fix the current primary being unreachable.
        r.regions[1] = RegionReadiness::unreachable("us-west-2", "gone");
        assert!(!failback(&r).ready);
    }
}
