//! Plans: the ordered stages of a runbook, each stage one step or several in parallel.
//!
//! The three runbooks are built here from the settings; `lifeboat plan` prints them without a backend.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Mode, RunKind};
use crate::settings::DrSettings;

/// What a step does. The id (`as_str`) is stable: it is journaled and resume matches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepAction {
    /// Failback: the region returned to is reachable and healthy (re-protect may be pending).
    PreflightFailback,
    /// Failback: make the region returned to a replica of the current primary again.
    Reprotect,
    /// Readiness verdict for this runbook; NOT READY refuses the run before anything changes.
    Preflight,
    PrescaleStandby,
    RaiseFence,
    WaitDrained,
    WaitLease,
    Promote,
    ShiftTraffic,
    LowerFence,
    Verify,
    Notify,
    RecordActiveRegion,
}

impl StepAction {
    pub fn as_str(self) -> &'static str {
        match self {
            StepAction::PreflightFailback => "preflight-failback",
            StepAction::Reprotect => "reprotect",
            StepAction::Preflight => "preflight",
            StepAction::PrescaleStandby => "prescale-standby",
            StepAction::RaiseFence => "raise-fence",
            StepAction::WaitDrained => "wait-drained",
            StepAction::WaitLease => "wait-lease",
            StepAction::Promote => "promote",
            StepAction::ShiftTraffic => "shift-traffic",
            StepAction::LowerFence => "lower-fence",
            StepAction::Verify => "verify",
            StepAction::Notify => "notify",
            StepAction::RecordActiveRegion => "record-active-region",
        }
    }

    /// Whether the step acts under the run's fencing epoch in a run of `kind`: the epoch is allocated
    /// (once) before the first such step. A run that moves no role (reprotect) fences nothing and takes no
    /// epoch.
    pub fn needs_epoch(self, kind: RunKind) -> bool {
        kind.moves_active_role()
            && !matches!(
                self,
                StepAction::PreflightFailback
                    | StepAction::Reprotect
                    | StepAction::Preflight
                    | StepAction::PrescaleStandby
            )
    }

    /// One line for `lifeboat plan`.
    pub fn describe(self, kind: RunKind, from: &str, to: &str) -> String {
        match self {
            StepAction::PreflightFailback => {
                format!(
                    "check that {to} is reachable and healthy again and whether it replicates from {from}"
                )
            }
            StepAction::Reprotect => {
                format!("make {to} a replicating replica of {from} again (no-op if it is)")
            }
            StepAction::Preflight => match kind {
                RunKind::Failover => format!("check that {to} can take over ({from} may be gone)"),
                _ => format!(
                    "readiness: {to} healthy, replicating, lag under the threshold; refuse if NOT READY"
                ),
            },
            StepAction::PrescaleStandby => {
                format!("raise capacity in {to} (database minimum capacity, concurrency)")
            }
            StepAction::RaiseFence => {
                format!("raise the write fence in {from} under the run's new epoch")
            }
            StepAction::WaitDrained => {
                format!("wait until {to} has applied everything {from} committed")
            }
            StepAction::WaitLease => format!(
                "wait out the write lease of {from} so a cut-off region stops acknowledging writes"
            ),
            StepAction::Promote => match kind {
                RunKind::Failover => {
                    format!("promote {to}'s database, allowing data loss (failover)")
                }
                _ => format!("promote {to}'s database (switchover, no data loss)"),
            },
            StepAction::ShiftTraffic => format!("send traffic to {to}"),
            StepAction::LowerFence => {
                format!("publish {to} as active under the run's epoch, fence lowered")
            }
            StepAction::Verify => {
                format!("make a real request served by {to}; its success ends the RTO")
            }
            StepAction::Notify => "notify operators".to_owned(),
            StepAction::RecordActiveRegion => {
                format!("record {to} as the environment's active region")
            }
        }
    }
}

/// How often a step is tried and how long to wait between attempts (doubling, capped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Total attempts, at least 1.
    pub attempts: u32,
    #[serde(with = "millis")]
    pub initial_backoff: Duration,
    #[serde(with = "millis")]
    pub max_backoff: Duration,
}

impl RetryPolicy {
    pub const fn new(attempts: u32, initial_backoff: Duration, max_backoff: Duration) -> Self {
        RetryPolicy {
            attempts,
            initial_backoff,
            max_backoff,
        }
    }

    pub const fn once() -> Self {
        RetryPolicy::new(1, Duration::ZERO, Duration::ZERO)
    }

    /// Wait before attempt `next_attempt` (2, 3, ...).
    pub fn backoff_before(&self, next_attempt: u32) -> Duration {
        let doublings = next_attempt.saturating_sub(2).min(16);
        self.initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSpec {
    pub action: StepAction,
    /// Bound of each attempt.
    #[serde(with = "millis", rename = "timeout_ms")]
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// The step needs the region being left. In ungraceful mode it gets the short bound below and is
    /// skipped (journaled with the error) when it fails.
    pub needs_source_region: bool,
}

impl StepSpec {
    pub fn id(&self) -> &'static str {
        self.action.as_str()
    }

    fn new(action: StepAction, timeout: Duration, retry: RetryPolicy) -> Self {
        StepSpec {
            action,
            timeout,
            retry,
            needs_source_region: false,
        }
    }

    fn needing_source(mut self) -> Self {
        self.needs_source_region = true;
        self
    }

    /// Bound and retries as this step runs in `mode`.
    pub fn effective(&self, mode: Mode) -> (Duration, RetryPolicy) {
        if mode == Mode::Ungraceful && self.needs_source_region {
            (self.timeout.min(UNGRACEFUL_STEP_BOUND), RetryPolicy::once())
        } else {
            (self.timeout, self.retry)
        }
    }
}

/// How long a step that needs a lost region may try in ungraceful mode before it is skipped.
pub const UNGRACEFUL_STEP_BOUND: Duration = Duration::from_secs(10);

/// Steps that run together; the next stage starts when all of them ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub steps: Vec<StepSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub kind: RunKind,
    pub mode: Mode,
    pub from: String,
    pub to: String,
    pub stages: Vec<Stage>,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

impl Plan {
    /// The runbook of `kind` moving the active role from `from` to `to`.
    pub fn build(kind: RunKind, from: &str, to: &str, settings: &DrSettings) -> Plan {
        use StepAction as A;
        let standard = RetryPolicy::new(3, secs(1), secs(10));
        let one = |spec: StepSpec| Stage { steps: vec![spec] };
        let drain_bound = secs(
            settings
                .max_switchover_lag_seconds
                .saturating_mul(10)
                .max(60),
        );
        let lease_bound = settings.write_lease().saturating_mul(3) + secs(10);
        let promote = StepSpec::new(
            A::Promote,
            settings.switchover_timeout(),
            RetryPolicy::new(2, secs(5), secs(5)),
        );
        let tail = vec![
            one(StepSpec::new(A::ShiftTraffic, secs(120), standard)),
            one(StepSpec::new(A::LowerFence, secs(30), standard)),
            one(StepSpec::new(
                A::Verify,
                secs(120),
                RetryPolicy::new(5, secs(1), secs(10)),
            )),
            Stage {
                steps: vec![
                    StepSpec::new(A::Notify, secs(30), standard),
                    StepSpec::new(A::RecordActiveRegion, secs(30), standard),
                ],
            },
        ];
        let switchover_stages = |tail: Vec<Stage>| {
            let mut stages = vec![
                one(StepSpec::new(A::Preflight, secs(60), standard)),
                one(StepSpec::new(A::PrescaleStandby, secs(300), standard)),
                one(StepSpec::new(A::RaiseFence, secs(30), standard).needing_source()),
                one(StepSpec::new(
                    A::WaitDrained,
                    drain_bound,
                    RetryPolicy::new(5, secs(1), secs(5)),
                )
                .needing_source()),
                one(promote.clone()),
            ];
            stages.extend(tail);
            stages
        };
        let reprotect_stages = vec![
            one(StepSpec::new(A::PreflightFailback, secs(60), standard)),
            one(StepSpec::new(
                A::Reprotect,
                secs(900),
                RetryPolicy::new(2, secs(5), secs(5)),
            )),
        ];
        let stages = match kind {
            RunKind::Switchover => switchover_stages(tail),
            RunKind::Failback => {
                let mut stages = reprotect_stages.clone();
                stages.extend(switchover_stages(tail));
                stages
            }
            // The failback's first half; the operator is told when the region is protected again.
            RunKind::Reprotect => {
                let mut stages = reprotect_stages.clone();
                stages.push(one(StepSpec::new(A::Notify, secs(30), standard)));
                stages
            }
            RunKind::Failover => {
                let mut stages = vec![
                    one(StepSpec::new(A::Preflight, secs(60), standard)),
                    Stage {
                        steps: vec![
                            StepSpec::new(A::PrescaleStandby, secs(300), standard),
                            StepSpec::new(A::RaiseFence, secs(30), standard).needing_source(),
                        ],
                    },
                    one(StepSpec::new(
                        A::WaitLease,
                        lease_bound,
                        RetryPolicy::once(),
                    )),
                    one(promote),
                ];
                stages.extend(tail);
                stages
            }
        };
        Plan {
            kind,
            mode: kind.mode(),
            from: from.to_owned(),
            to: to.to_owned(),
            stages,
        }
    }

    /// Step ids stage by stage (what the journal records).
    pub fn stage_ids(&self) -> Vec<Vec<String>> {
        self.stages
            .iter()
            .map(|s| s.steps.iter().map(|st| st.id().to_owned()).collect())
            .collect()
    }

    /// Step ids in execution order (parallel steps in their listed order).
    pub fn step_ids(&self) -> Vec<&'static str> {
        self.stages
            .iter()
            .flat_map(|s| s.steps.iter().map(StepSpec::id))
            .collect()
    }

    /// The JSON `lifeboat plan --json` prints.
    pub fn to_json(&self) -> serde_json::Value {
        let steps: Vec<serde_json::Value> = self
            .stages
            .iter()
            .enumerate()
            .flat_map(|(index, stage)| {
                let parallel = stage.steps.len() > 1;
                stage.steps.iter().map(move |spec| {
                    let (timeout, retry) = spec.effective(self.mode);
                    serde_json::json!({
                        "id": spec.id(),
                        "stage": index + 1,
                        "parallel": parallel,
                        "description": spec.action.describe(self.kind, &self.from, &self.to),
                        "timeout_ms": u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                        "attempts": retry.attempts,
                        "initial_backoff_ms": u64::try_from(retry.initial_backoff.as_millis()).unwrap_or(u64::MAX),
                        "skippable": self.mode == Mode::Ungraceful && spec.needs_source_region,
                    })
                })
            })
            .collect();
        serde_json::json!({
            "kind": self.kind,
            "mode": self.mode,
            "from": self.from,
            "to": self.to,
            "steps": steps,
        })
    }

    /// The readable listing `lifeboat plan` prints.
    pub fn render_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!(
            "{} {} → {} ({} mode)\n",
            self.kind, self.from, self.to, self.mode
        );
        let mut n = 0;
        for (index, stage) in self.stages.iter().enumerate() {
            for spec in &stage.steps {
                n += 1;
                let (timeout, retry) = spec.effective(self.mode);
                let parallel = if stage.steps.len() > 1 {
                    format!(" [parallel, stage {}]", index + 1)
                } else {
                    String::new()
                };
                let skip = if self.mode == Mode::Ungraceful && spec.needs_source_region {
                    ", skipped on failure"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "{n:>2}. {:<21} {} (timeout {}s, {} attempt{}{skip}){parallel}",
                    spec.id(),
                    spec.action.describe(self.kind, &self.from, &self.to),
                    timeout.as_secs(),
                    retry.attempts,
                    if retry.attempts == 1 { "" } else { "s" },
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switchover_follows_the_documented_order() {
        let plan = Plan::build(
            RunKind::Switchover,
            "us-east-1",
            "us-west-2",
            &DrSettings::default(),
        );
        assert_eq!(
            plan.step_ids(),
            [
                "preflight",
                "prescale-standby",
                "raise-fence",
                "wait-drained",
                "promote",
                "shift-traffic",
                "lower-fence",
                "verify",
                "notify",
                "record-active-region"
            ]
        );
        assert_eq!(plan.mode, Mode::Graceful);
    }

    #[test]
    fn failover_waits_out_the_lease_instead_of_draining_and_bounds_the_fence_of_the_lost_region() {
        let plan = Plan::build(
            RunKind::Failover,
            "us-east-1",
            "us-west-2",
            &DrSettings::default(),
        );
        let ids = plan.step_ids();
        assert!(!ids.contains(&"wait-drained"));
        let lease = ids.iter().position(|s| *s == "wait-lease").unwrap();
        let promote = ids.iter().position(|s| *s == "promote").unwrap();
        assert!(lease < promote);
        let fence = plan
            .stages
            .iter()
            .flat_map(|s| &s.steps)
            .find(|s| s.action == StepAction::RaiseFence)
            .unwrap();
        let (bound, retry) = fence.effective(plan.mode);
        assert_eq!(bound, UNGRACEFUL_STEP_BOUND);
        assert_eq!(retry.attempts, 1);
        assert_eq!(
            plan.stages[1].steps.len(),
            2,
            "prescale and fence run in parallel"
        );
    }

    #[test]
    fn failback_reprotects_then_switches_over() {
        let plan = Plan::build(
            RunKind::Failback,
            "us-west-2",
            "us-east-1",
            &DrSettings::default(),
        );
        let ids = plan.step_ids();
        assert_eq!(&ids[..3], ["preflight-failback", "reprotect", "preflight"]);
        assert!(ids.contains(&"wait-drained"));
        let json = plan.to_json();
        assert_eq!(json["steps"][0]["id"], "preflight-failback");
        assert_eq!(json["steps"].as_array().unwrap().len(), ids.len());
    }

    #[test]
    fn reprotect_is_the_failbacks_first_half_and_moves_no_role() {
        let plan = Plan::build(
            RunKind::Reprotect,
            "us-west-2",
            "us-east-1",
            &DrSettings::default(),
        );
        assert_eq!(
            plan.step_ids(),
            ["preflight-failback", "reprotect", "notify"]
        );
        assert!(
            plan.stages
                .iter()
                .flat_map(|s| &s.steps)
                .all(|s| !s.action.needs_epoch(RunKind::Reprotect)),
            "nothing is fenced or promoted"
        );
        assert!(!RunKind::Reprotect.moves_active_role());
        assert_eq!("reprotect".parse::<RunKind>(), Ok(RunKind::Reprotect));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let r = RetryPolicy::new(6, Duration::from_millis(100), Duration::from_millis(350));
        assert_eq!(r.backoff_before(2), Duration::from_millis(100));
        assert_eq!(r.backoff_before(3), Duration::from_millis(200));
        assert_eq!(r.backoff_before(4), Duration::from_millis(350));
    }
}
