//! The messages between the DR automation state machine and the DR automation function.
//!
//! The state machine (synthesized by the platform crate) invokes the function once per task with
//! `{"lifeboat-task": {"action": ..., ...}}`; the function answers with the JSON the state machine's
//! Choice states read. Both sides name every key through this module, so the definition and the handler
//! cannot drift apart.

/// The key of a task event (the function's other events are the probe and, from older templates, raw
/// alarm events).
pub const TASK_KEY: &str = "lifeboat-task";
/// The field naming the task.
pub const ACTION: &str = "action";

/// The tasks.
pub mod action {
    /// Apply the automation policy to an alarm state change: `{"alarm": <EventBridge event>}` →
    /// a [`super::decision`] answer.
    pub const DECIDE: &str = "decide";
    /// Create the run a decision asked for, without running a step: `{"execution", "started",
    /// "request", "escalation"}` → a [`super::run`] handle.
    pub const BEGIN: &str = "begin";
    /// Run the next stage of a run: `{"run": <handle>}` → the handle, updated.
    pub const ADVANCE: &str = "advance";
    /// Tell the operators that the execution failed: `{"error": {"Error", "Cause"}, "run"?}`.
    pub const REPORT_FAILURE: &str = "report-failure";
}

/// Fields of a task event besides [`ACTION`].
pub mod field {
    pub const ALARM: &str = "alarm";
    /// The state machine execution's name (`$$.Execution.Name`): the run id and the lock owner derive from
    /// it, so a retried `begin` is the same run.
    pub const EXECUTION: &str = "execution";
    /// The execution's start time (`$$.Execution.StartTime`).
    pub const STARTED: &str = "started";
    pub const REQUEST: &str = "request";
    /// `true` on the failover that follows an automated switchover that did not succeed.
    pub const ESCALATION: &str = "escalation";
    pub const RUN: &str = "run";
    pub const ERROR: &str = "error";
}

/// The answer of `decide`, kept by the state machine at `$.decision`.
pub mod decision {
    /// The field holding one of the values below.
    pub const DECISION: &str = "decision";
    pub const REASON: &str = "reason";
    /// With `wait`: seconds until the alarm is old enough to decide again.
    pub const WAIT_SECONDS: &str = "wait_seconds";
    /// With `act`: what to run (`kind`, `from`, `to`, `allow_data_loss`, `escalate`).
    pub const REQUEST: &str = "request";

    pub const ACT: &str = "act";
    pub const WAIT: &str = "wait";
    pub const IGNORE: &str = "ignore";
    pub const NOTIFY_ONLY: &str = "notify-only";
}

/// The run handle `begin` and `advance` answer with, kept by the state machine at `$.run`.
pub mod run {
    pub const RUN_ID: &str = "run_id";
    pub const KIND: &str = "kind";
    /// The lock owner every call of the run presents.
    pub const OWNER: &str = "owner";
    /// `false` while stages remain.
    pub const FINISHED: &str = "finished";
    /// Once finished: `succeeded`, `failed`, `refused`.
    pub const OUTCOME: &str = "outcome";
    /// Whether a switchover that does not succeed is followed by a failover (copied from the request).
    pub const ESCALATE: &str = "escalate";
    /// The run's bound in seconds (an automated switchover's `dr.switchover_timeout_seconds`), if any.
    pub const TIMEOUT_SECONDS: &str = "timeout_seconds";
    pub const SUCCEEDED: &str = "succeeded";
    pub const SWITCHOVER: &str = "switchover";
}

/// The request of a run, inside a decision.
pub mod request {
    pub const KIND: &str = "kind";
    pub const FROM: &str = "from";
    pub const TO: &str = "to";
    pub const ALLOW_DATA_LOSS: &str = "allow_data_loss";
    pub const ESCALATE: &str = "escalate";
    pub const TIMEOUT_SECONDS: &str = "timeout_seconds";
}
