//! The operations a target environment performs for the runbooks.
//!
//! # Contract
//!
//! Implemented by the AWS backend (RDS, Route 53, SSM, SNS, CloudWatch, ...), the local two-region runtime
//! (MariaDB, HAProxy, the control server) and [`crate::memory::MemoryBackend`] for tests.
//!
//! - **Idempotent.** The engine journals a step before it starts and after it ends; a step that started
//!   but has no end event (the process died) is run again on resume, and a failed attempt is retried. So
//!   every operation must succeed when its effect is already in place: promoting a region that is already
//!   the writer is a success, raising a fence already raised at that epoch is a success, shifting traffic
//!   that already points at the target is a success. An operation must never undo a later state (raising
//!   the fence at epoch 5 when the control store already holds epoch 6 is an error, not a rewrite).
//! - **Directions come from the context.** `ctx.from` is the region losing the active role, `ctx.to` the
//!   one gaining it. Operations never pick regions themselves.
//! - **Bounded by the engine.** The engine wraps every call in the step's timeout and drops the future
//!   when it expires; an operation may wait internally (e.g. poll until replication has drained) but must
//!   be cancel-safe: dropping it leaves nothing half-done that a re-run cannot finish.
//! - **Errors say what and where.** A [`BackendError`] names the resource and region; its kind tells the
//!   engine whether a retry can help. No secrets in messages.
//! - **Send + Sync.** Stages run steps concurrently on the same backend.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::BoxFuture;
use crate::model::{Mode, RunId, RunKind};
use crate::readiness::Readiness;

/// What an operation knows about the run it is part of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepContext {
    pub run_id: RunId,
    pub kind: RunKind,
    pub mode: Mode,
    /// The step id (`promote`, `raise-fence`, ...), for logs and idempotency keys.
    pub step: String,
    /// 1 for the first attempt of this step in this process.
    pub attempt: u32,
    /// The region losing the active role.
    pub from: String,
    /// The region gaining the active role.
    pub to: String,
    /// The fencing epoch of this run: allocated once per run before the first step that changes roles,
    /// then the same on every attempt and after resume. `None` only for steps before that (preflight,
    /// prescale, reprotect).
    pub epoch: Option<u64>,
}

impl StepContext {
    /// The run's epoch, or an error naming the step if the engine has not allocated one (a bug).
    pub fn require_epoch(&self) -> Result<u64, BackendError> {
        self.epoch.ok_or_else(|| {
            BackendError::new(
                BackendErrorKind::Rejected,
                format!("step {} needs the run's epoch and has none", self.step),
            )
        })
    }
}

/// What an operation reports back; journaled with the step's end event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutput {
    /// One readable line: what was done or found (e.g. "aurora global cluster shop-gc: writer is now us-west-2").
    pub detail: String,
    /// Replication lag (ms) the operation last saw, when it looked: `wait_drained` and `promote` report it;
    /// a failover's data-loss estimate is the last one seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_lag_ms: Option<u64>,
    /// `verify` only: the instant the first real request succeeded on the new primary (RTO ends here).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub first_success_at: Option<time::OffsetDateTime>,
}

impl StepOutput {
    pub fn detail(detail: impl Into<String>) -> Self {
        StepOutput {
            detail: detail.into(),
            ..Default::default()
        }
    }

    pub fn with_lag_ms(mut self, lag_ms: u64) -> Self {
        self.replication_lag_ms = Some(lag_ms);
        self
    }

    pub fn with_first_success_at(mut self, at: time::OffsetDateTime) -> Self {
        self.first_success_at = Some(at);
        self
    }
}

/// A message for operators (SNS on AWS; the log and state directory locally).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub subject: String,
    pub message: String,
}

/// Whether retrying could help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendErrorKind {
    /// An endpoint could not be reached or answered with a transient error: retrying may help.
    Unavailable,
    /// Not yet in the wanted state (e.g. replication still lagging): retrying may help.
    NotYet,
    /// The environment refused the operation (bad state, permissions, wrong epoch): retrying will not help.
    Rejected,
    /// Anything else.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct BackendError {
    pub kind: BackendErrorKind,
    pub message: String,
}

impl BackendError {
    pub fn new(kind: BackendErrorKind, message: impl Into<String>) -> Self {
        BackendError {
            kind,
            message: message.into(),
        }
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(BackendErrorKind::Unavailable, message)
    }
    pub fn not_yet(message: impl Into<String>) -> Self {
        Self::new(BackendErrorKind::NotYet, message)
    }
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::new(BackendErrorKind::Rejected, message)
    }
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(BackendErrorKind::Other, message)
    }
    /// Whether the engine should retry (within the step's retry policy).
    pub fn is_retryable(&self) -> bool {
        !matches!(self.kind, BackendErrorKind::Rejected)
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type BackendResult<T> = Result<T, BackendError>;

/// The operations of the runbooks. See the module documentation for the contract every method obeys.
pub trait DrBackend: Send + Sync {
    /// A short name for reports and logs: `aws`, `local`, `memory`.
    fn name(&self) -> &str;

    /// Observes both regions (see [`Readiness`]). Must not fail because one region is unreachable: that
    /// region's entry says so ([`crate::RegionReadiness::unreachable`]). Errors only when nothing at all
    /// could be observed. Read-only.
    fn readiness(&self) -> BoxFuture<'_, BackendResult<Readiness>>;

    /// `prescale-standby`: raise `ctx.to`'s capacity so it can take the primary's load at once (Aurora
    /// Serverless v2 minimum capacity from the primary's recent peak, Lambda concurrency; locally nothing
    /// to scale, report so). Idempotent: capacity already at or above the target is a success.
    fn prescale<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>>;

    /// `raise-fence`: stop `ctx.from` from accepting writes and publish `ctx.epoch` where its storefronts
    /// read it (SSM `/<project>/<env>/dr/{epoch,fence}`; the local control server), and where the database
    /// can enforce it, raise the database's fence row to the epoch. Returns once a storefront reading the
    /// control state after this call refuses writes. Idempotent at the same epoch; an error if the store
    /// already holds a higher epoch.
    fn raise_fence<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>>;

    /// `wait-drained`: wait until `ctx.to`'s database has applied everything `ctx.from` committed (lag 0 /
    /// GTID position reached), with writes fenced. Reports the lag it last saw. May poll internally until
    /// the engine's timeout drops it, or return [`BackendErrorKind::NotYet`] for the engine to retry.
    fn wait_drained<'a>(&'a self, ctx: &'a StepContext)
    -> BoxFuture<'a, BackendResult<StepOutput>>;

    /// `wait-lease` (failover): return once no storefront in `ctx.from` can still be acknowledging writes
    /// under an epoch older than `ctx.epoch`, i.e. the write lease a cut-off region holds has run out
    /// (the lease is renewed only by reading the control store, which now holds the new epoch or is out of
    /// reach). Typically: wait the lease duration after the epoch was published.
    fn wait_write_lease_expired<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>>;

    /// `promote`: make `ctx.to`'s database the writer. Without `allow_data_loss` a planned switchover
    /// (Aurora SwitchoverGlobalCluster; MariaDB: wait for the GTID position, stop replication, read_only
    /// off, old primary becomes a replica). With it, an unplanned failover that does not wait for the lost
    /// region (Aurora FailoverGlobalCluster with AllowDataLoss). Success when `ctx.to` already is the writer.
    /// Reports the replication lag last seen before promotion when known (the data-loss estimate).
    fn promote<'a>(
        &'a self,
        ctx: &'a StepContext,
        allow_data_loss: bool,
    ) -> BoxFuture<'a, BackendResult<StepOutput>>;

    /// `shift-traffic`: send client traffic to `ctx.to` (Route 53 through health-check state or the failover
    /// records; the local front door). Returns once the change is accepted by the traffic layer.
    fn shift_traffic<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>>;

    /// `lower-fence`: publish control state "active region `ctx.to`, epoch `ctx.epoch`, fence lowered"
    /// where `ctx.to`'s storefronts read it, so it accepts writes. Idempotent at the same epoch.
    fn lower_fence<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>>;

    /// `verify`: make a real request (a read and a write the storefront serves, through the public entry
    /// point when possible) that the new primary `ctx.to` serves, and report in
    /// [`StepOutput::first_success_at`] the instant it succeeded. May retry internally until the engine's
    /// timeout; must not report success without a successful response.
    fn verify<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>>;

    /// `notify`: tell operators (SNS topic; locally a notification file/log line). Sending twice on a
    /// re-run is acceptable (at-least-once); the message carries the run id so it can be de-duplicated.
    fn notify<'a>(
        &'a self,
        ctx: &'a StepContext,
        notification: &'a Notification,
    ) -> BoxFuture<'a, BackendResult<StepOutput>>;

    /// `record-active-region`: make `ctx.to` the environment's durable record of its primary region (the
    /// active-region parameter in both regions where readable, the local state file), so deploys, status
    /// and the next runbook see the truth. Idempotent.
    fn record_active_region<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>>;

    /// `reprotect` (failback): make `ctx.to` (the region being returned to, usually the old primary after a
    /// failover) a replicating replica of `ctx.from`'s database again, without losing what `ctx.from`
    /// holds (Aurora: re-add it to the global cluster; MariaDB: CHANGE MASTER to the current primary).
    /// Success when it already is one.
    fn reprotect<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>>;
}
