//! The tasks of the DR state machine (one function invocation each; the messages are named in
//! [`lifeboat_contract::automation`]):
//!
//! - `decide`: the automation policy on an alarm event ([`crate::lambda::decide`]);
//! - `begin`: creates the decided run ([`Engine::begin`]). Its id and lock owner derive from the execution,
//!   so a retried `begin` finds the run the first attempt created instead of starting a second one;
//! - `advance`: runs the next stage ([`Engine::advance`]) within the invocation's budget; the state machine
//!   calls it again until the run has finished. A killed invocation is retried with the same input, and
//!   the steps it left started run again (every backend operation is idempotent);
//! - `report-failure`: tells the operators that the execution failed and how to continue the run.
//!
//! Expected ends of a run (refused, failed, locked by another run) are answers; only what a retry can cure
//! (the journal or the lock store unreachable) is an error.

use std::time::Duration;

use lifeboat_contract::automation::{self, action, field, request as req, run as handle};
use lifeboat_runbook::{
    DrSettings, Engine, EngineError, EngineOptions, LockOwner, Notification, RunId, RunKind,
    RunRequest, RunResult, Slice,
};
use serde_json::{Value, json};

use crate::AwsEnvironment;
use crate::lambda::TaskFailure;

/// Handles the task event `task` (the value under [`automation::TASK_KEY`]).
pub async fn handle(
    env: &AwsEnvironment,
    settings: &DrSettings,
    task: &Value,
    budget: Duration,
) -> Result<Value, TaskFailure> {
    let name = task.get(automation::ACTION).and_then(Value::as_str);
    match name {
        Some(action::DECIDE) => {
            let alarm = task.get(field::ALARM).cloned().unwrap_or(Value::Null);
            Ok(crate::lambda::decide(env, settings, &alarm).await)
        }
        Some(action::BEGIN) => begin(env, settings, task).await,
        Some(action::ADVANCE) => advance(env, task, budget).await,
        Some(action::REPORT_FAILURE) => Ok(report_failure(env, task).await),
        _ => Err(TaskFailure(format!(
            "task {task} has no known {:?} (expected one of {:?})",
            automation::ACTION,
            [
                action::DECIDE,
                action::BEGIN,
                action::ADVANCE,
                action::REPORT_FAILURE
            ]
        ))),
    }
}

fn text<'a>(value: &'a Value, key: &str, what: &str) -> Result<&'a str, TaskFailure> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| TaskFailure(format!("{what} has no text field {key:?}: {value}")))
}

/// The run id and lock owner of the run an execution creates (`escalation`: the failover that follows
/// its switchover).
pub fn run_identity(
    execution: &str,
    started: time::OffsetDateTime,
    escalation: bool,
) -> (RunId, LockOwner) {
    let seed = if escalation {
        format!("{execution}/failover")
    } else {
        execution.to_owned()
    };
    // An execution started by `lifeboat` is named after its run; one started by EventBridge is not.
    let run_id = match RunId::parse(&seed) {
        Ok(id) if !escalation => id,
        _ => RunId::derived(started, &seed),
    };
    let owner = LockOwner {
        run_id: run_id.clone(),
        token: format!("execution:{seed}"),
        host: "step-functions".into(),
        pid: 0,
    };
    (run_id, owner)
}

fn started_at(task: &Value) -> Result<time::OffsetDateTime, TaskFailure> {
    let started = text(task, field::STARTED, "the begin task")?;
    time::OffsetDateTime::parse(started, &time::format_description::well_known::Rfc3339).map_err(
        |e| {
            TaskFailure(format!(
                "{:?} {started:?} is not an RFC 3339 time: {e}",
                field::STARTED
            ))
        },
    )
}

async fn begin(
    env: &AwsEnvironment,
    settings: &DrSettings,
    task: &Value,
) -> Result<Value, TaskFailure> {
    let execution = text(task, field::EXECUTION, "the begin task")?;
    let started = started_at(task)?;
    let escalation = task
        .get(field::ESCALATION)
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let request = task.get(field::REQUEST).unwrap_or(&Value::Null);
    let kind_text = text(request, req::KIND, "the run request")?;
    let kind: RunKind = serde_json::from_value(Value::String(kind_text.to_owned()))
        .map_err(|e| TaskFailure(format!("the run request's kind {kind_text:?}: {e}")))?;
    let from = text(request, req::FROM, "the run request")?;
    let to = text(request, req::TO, "the run request")?;
    let allow_data_loss = request
        .get(req::ALLOW_DATA_LOSS)
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let escalate = request
        .get(req::ESCALATE)
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let timeout = request.get(req::TIMEOUT_SECONDS).and_then(Value::as_u64);
    let (kind, allow_data_loss, escalate, timeout) = if escalation {
        // The failover after a switchover that did not succeed: allowed by dr.allow_data_loss (the policy
        // asks for it only then), and not bounded by the switchover's timeout.
        (RunKind::Failover, true, false, None)
    } else {
        (kind, allow_data_loss, escalate, timeout)
    };
    let (run_id, owner) = run_identity(execution, started, escalation);
    let run_request = RunRequest {
        kind,
        from: from.to_owned(),
        to: to.to_owned(),
        settings: settings.clone(),
        allow_data_loss,
    };
    let base = json!({
        handle::RUN_ID: run_id.as_str(),
        handle::KIND: kind.as_str(),
        handle::OWNER: owner,
        handle::ESCALATE: escalate,
        handle::TIMEOUT_SECONDS: timeout,
    });
    match engine(env, timeout)
        .begin(&run_request, &run_id, &owner)
        .await
    {
        Ok(_) => {
            tracing::info!(run = %run_id, %kind, %from, %to, "run created");
            Ok(with(base, json!({ handle::FINISHED: false })))
        }
        Err(e @ (EngineError::Locked(_) | EngineError::Refused(_) | EngineError::Invalid(_))) => {
            tracing::warn!(run = %run_id, error = %e, "run not created");
            Ok(with(
                base,
                json!({
                    handle::FINISHED: true,
                    handle::OUTCOME: "refused",
                    handle::ESCALATE: false,
                    "message": e.to_string(),
                }),
            ))
        }
        Err(e) => Err(TaskFailure(format!("creating run {run_id}: {e}"))),
    }
}

/// The engine on `env`'s backend and journal table (journal, lock and epoch), with the run's bound.
fn engine(env: &AwsEnvironment, timeout_seconds: Option<u64>) -> Engine<'_> {
    let journal = &*env.journal;
    Engine::new(&*env.backend, journal, journal, journal, &*env.reports).with_options(
        EngineOptions {
            run_timeout: timeout_seconds.map(Duration::from_secs),
            ..EngineOptions::default()
        },
    )
}

/// `base` with the fields of `more` set.
fn with(mut base: Value, more: Value) -> Value {
    if let (Some(b), Value::Object(m)) = (base.as_object_mut(), more) {
        b.extend(m);
    }
    base
}

async fn advance(
    env: &AwsEnvironment,
    task: &Value,
    budget: Duration,
) -> Result<Value, TaskFailure> {
    let run = task
        .get(field::RUN)
        .ok_or_else(|| TaskFailure(format!("the advance task has no {:?}: {task}", field::RUN)))?;
    let run_id = RunId::parse(text(run, handle::RUN_ID, "the run handle")?).map_err(TaskFailure)?;
    let owner: LockOwner = run
        .get(handle::OWNER)
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| TaskFailure(format!("the run handle's owner is not a lock owner: {e}")))?
        .ok_or_else(|| TaskFailure(format!("the run handle has no {:?}: {run}", handle::OWNER)))?;
    let timeout = run.get(handle::TIMEOUT_SECONDS).and_then(Value::as_u64);
    match engine(env, timeout).advance(&run_id, &owner, budget).await {
        Ok(Slice::Continue { next, .. }) => {
            tracing::info!(run = %run_id, next = ?next, "stage done, run continues");
            Ok(with(
                run.clone(),
                json!({ handle::FINISHED: false, "next": next }),
            ))
        }
        Ok(Slice::Finished(result)) => {
            tracing::info!(run = %run_id, outcome = %result.outcome().as_str(), "run finished");
            Ok(with(run.clone(), finished(&result)))
        }
        Err(e) => Err(TaskFailure(format!("advancing run {run_id}: {e}"))),
    }
}

fn finished(result: &RunResult) -> Value {
    json!({
        handle::FINISHED: true,
        handle::OUTCOME: result.outcome().as_str(),
        "message": result.report.message,
        "rto_ms": result.report.rto_ms,
        "report": result.report_location.clone().unwrap_or_else(|e| format!("not stored: {e}")),
    })
}

async fn report_failure(env: &AwsEnvironment, task: &Value) -> Value {
    // The state machine passes its whole state: the caught error and the run, where they exist.
    let state = task.get("state").unwrap_or(task);
    let error = state.get(field::ERROR).unwrap_or(&Value::Null);
    let name = error
        .get("Error")
        .and_then(Value::as_str)
        .unwrap_or("unknown error");
    let cause = error.get("Cause").and_then(Value::as_str).unwrap_or("");
    let run = state.get(field::RUN);
    let run_id = run
        .and_then(|r| r.get(handle::RUN_ID))
        .and_then(Value::as_str);
    let outcome = run
        .and_then(|r| r.get(handle::OUTCOME))
        .and_then(Value::as_str);
    let message = match (run_id, outcome) {
        (Some(id), Some(outcome)) => format!(
            "The automated run {id} ended {outcome}: {}. See `lifeboat runs` and the run's report; \
             `lifeboat resume {id}` continues a failed run.",
            run.and_then(|r| r.get("message"))
                .and_then(Value::as_str)
                .unwrap_or(cause)
        ),
        (Some(id), None) => format!(
            "The DR state machine stopped during run {id} ({name}: {cause}). The run's journal says how far it \
             got; `lifeboat resume {id}` continues it."
        ),
        _ => format!("The DR state machine stopped before a run was created ({name}: {cause})."),
    };
    let notification = Notification {
        subject: "lifeboat DR automation: the automated run did not succeed".into(),
        message: message.clone(),
    };
    let notified = env
        .backend
        .notify_operators(&env.coordination_region, &notification)
        .await;
    if let Err(e) = &notified {
        tracing::error!(error = %e.message, "could not notify operators");
    }
    json!({ "notified": notified.is_ok(), "message": message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_always_names_the_same_run_and_its_escalation_another() {
        let at = time::macros::datetime!(2026-12-03 10:00:00 UTC);
        let (a, owner_a) = run_identity("b7f5c1e2-0c1d-4a4e-9d7a-54c0e4c1a111_x", at, false);
        let (b, owner_b) = run_identity("b7f5c1e2-0c1d-4a4e-9d7a-54c0e4c1a111_x", at, false);
        assert_eq!((a.clone(), owner_a.clone()), (b, owner_b));
        let (f, owner_f) = run_identity("b7f5c1e2-0c1d-4a4e-9d7a-54c0e4c1a111_x", at, true);
        assert_ne!(a, f);
        assert_ne!(owner_a.token, owner_f.token);
        // Named by lifeboat after its run: the run keeps that id.
        let (named, _) = run_identity("20261203T100000Z-1a2b3c4d", at, false);
        assert_eq!(named.as_str(), "20261203T100000Z-1a2b3c4d");
        // An EventBridge-style name longer than a run id may be still gives a valid one.
        let long = "a".repeat(80);
        let (derived, _) = run_identity(&long, at, false);
        assert!(RunId::parse(derived.as_str()).is_ok());
        assert!(derived.as_str().starts_with("20261203T100000Z-"));
    }
}
