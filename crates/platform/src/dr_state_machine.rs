//! The DR state machine of each region: the durable home of an automated run.
//!
//! A Lambda invocation lasts at most 15 minutes and nothing finishes what a killed one started; a run may
//! take longer than that (a young alarm waited for, Aurora's switchover, DNS, a failover after a switchover
//! that did not succeed). The state machine carries the run instead, one short function invocation per task
//! ([`lifeboat_contract::automation`]):
//!
//! 1. `Decide` applies the automation policy to the alarm event; a young alarm is waited for in a Wait
//!    state (`WaitForAlarm`), not in the function.
//! 2. `BeginRun` creates the run (journal + lock), whose id and lock owner derive from the execution's
//!    name, so a retried `BeginRun` finds the same run.
//! 3. `Advance` runs one stage per invocation until the run has finished.
//! 4. A switchover that did not succeed, with `dr.allow_data_loss`, is followed by `BeginFailover`.
//! 5. Whatever stops the execution early is reported to the operators (`ReportFailure`), naming the run
//!    and how to continue it (`lifeboat resume`).
//!
//! Every task is retried on any error with backoff: a killed or failed invocation is called again with the
//! same input, and the engine runs the steps it left started again (every step is idempotent). Error names
//! and retry semantics: <https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html>.
//!
//! An execution started by hand (`{"decision": {"decision": "act", "request": {...}}}` as input) skips
//! the policy and begins the requested run.

use lifeboat_cfn::resources::{events, iam, stepfunctions};
use lifeboat_cfn::{Expr, get_att, r, sub};
use lifeboat_config::Config;
use lifeboat_contract::automation::{self, action, decision, field, run};
use serde_json::{Value, json};

use crate::util::{Stack, allow, assume_role, inline_policy};

/// Logical id of the state machine in the DR automation stack.
pub const STATE_MACHINE: &str = "DrStateMachine";
/// The placeholder of the function's ARN in the definition ([`definition`]), filled by
/// `DefinitionSubstitutions`.
pub const FUNCTION_ARN_PLACEHOLDER: &str = "DrAutomationFunctionArn";
/// A task's own timeout: longer than the function's (900 s), so a task never times out while its
/// invocation still runs (Step Functions would retry beside a live invocation); the function's timeout is
/// what ends a hung invocation.
pub const TASK_TIMEOUT_SECONDS: u64 = 960;
/// The bound of a whole execution: a run that is still not finished a day later needs an operator.
pub const EXECUTION_TIMEOUT_SECONDS: u64 = 86_400;
/// Retries of a task on any error: 5 s, 10 s, 20 s, 40 s, 80 s apart (155 s in all, inside the engine's
/// 300 s hand-over lease, so the run keeps its lock while its call is retried).
pub const TASK_RETRY_ATTEMPTS: u64 = 5;
pub const TASK_RETRY_INTERVAL_SECONDS: u64 = 5;
pub const TASK_RETRY_BACKOFF_RATE: f64 = 2.0;

/// A task invoking the DR function with `{"lifeboat-task": payload}`.
fn task(payload: Value, result_path: &str, next: &str, catch: Option<&str>) -> Value {
    let mut state = json!({
        "Type": "Task",
        "Resource": format!("${{{FUNCTION_ARN_PLACEHOLDER}}}"),
        "Parameters": { automation::TASK_KEY: payload },
        "ResultPath": result_path,
        "TimeoutSeconds": TASK_TIMEOUT_SECONDS,
        "Retry": [{
            "ErrorEquals": ["States.ALL"],
            "IntervalSeconds": TASK_RETRY_INTERVAL_SECONDS,
            "MaxAttempts": TASK_RETRY_ATTEMPTS,
            "BackoffRate": TASK_RETRY_BACKOFF_RATE
        }],
        "Next": next
    });
    if let Some(handler) = catch {
        state["Catch"] = json!([{
            "ErrorEquals": ["States.ALL"],
            "ResultPath": format!("$.{}", field::ERROR),
            "Next": handler
        }]);
    }
    state
}

fn begin(escalation: bool) -> Value {
    json!({
        automation::ACTION: action::BEGIN,
        format!("{}.$", field::EXECUTION): "$$.Execution.Name",
        format!("{}.$", field::STARTED): "$$.Execution.StartTime",
        format!("{}.$", field::REQUEST): format!("$.decision.{}", decision::REQUEST),
        field::ESCALATION: escalation
    })
}

/// The definition (Amazon States Language), with the function's ARN as
/// `${`[`FUNCTION_ARN_PLACEHOLDER`]`}`.
pub fn definition() -> Value {
    let run_path = |key: &str| format!("$.run.{key}");
    let report = "ReportFailure";
    // Its own failure is caught too (into `$.reported`, keeping the error it reports), and the execution
    // fails either way.
    let mut report_state = task(
        json!({ automation::ACTION: action::REPORT_FAILURE, "state.$": "$" }),
        "$.reported",
        "RunDidNotSucceed",
        None,
    );
    report_state["Catch"] = json!([{
        "ErrorEquals": ["States.ALL"],
        "ResultPath": "$.reported",
        "Next": "RunDidNotSucceed"
    }]);
    json!({
        "Comment": "lifeboat DR automation: decide on an alarm, then carry the run out one stage per invocation",
        "StartAt": "Start",
        "TimeoutSeconds": EXECUTION_TIMEOUT_SECONDS,
        "States": {
            "Start": {
                "Type": "Choice",
                "Choices": [{ "Variable": "$.decision", "IsPresent": true, "Next": "Decided" }],
                "Default": "ReadAlarm"
            },
            "ReadAlarm": {
                "Type": "Pass",
                "Parameters": { format!("{}.$", field::ALARM): "$" },
                "Next": "Decide"
            },
            "Decide": task(
                json!({ automation::ACTION: action::DECIDE, format!("{}.$", field::ALARM): "$.alarm" }),
                "$.decision",
                "Decided",
                Some(report)
            ),
            "Decided": {
                "Type": "Choice",
                "Choices": [
                    { "Variable": format!("$.decision.{}", decision::DECISION), "StringEquals": decision::ACT, "Next": "BeginRun" },
                    { "Variable": format!("$.decision.{}", decision::DECISION), "StringEquals": decision::WAIT, "Next": "WaitForAlarm" }
                ],
                "Default": "NoRun"
            },
            "WaitForAlarm": {
                "Type": "Wait",
                "SecondsPath": format!("$.decision.{}", decision::WAIT_SECONDS),
                "Next": "Decide"
            },
            "NoRun": { "Type": "Succeed" },
            "BeginRun": task(begin(false), "$.run", "RunState", Some(report)),
            "Advance": task(
                json!({ automation::ACTION: action::ADVANCE, format!("{}.$", field::RUN): "$.run" }),
                "$.run",
                "RunState",
                Some(report)
            ),
            "RunState": {
                "Type": "Choice",
                "Choices": [
                    { "Variable": run_path(run::FINISHED), "BooleanEquals": false, "Next": "Advance" },
                    { "Variable": run_path(run::OUTCOME), "StringEquals": run::SUCCEEDED, "Next": "RunSucceeded" },
                    { "And": [
                        { "Variable": run_path(run::ESCALATE), "BooleanEquals": true },
                        { "Variable": run_path(run::KIND), "StringEquals": run::SWITCHOVER }
                    ], "Next": "BeginFailover" }
                ],
                "Default": report
            },
            "BeginFailover": task(begin(true), "$.run", "RunState", Some(report)),
            "RunSucceeded": { "Type": "Succeed" },
            report: report_state,
            "RunDidNotSucceed": {
                "Type": "Fail",
                "Error": "RunDidNotSucceed",
                "Cause": "The automated run did not succeed or the state machine stopped early; operators were notified with the run id"
            }
        }
    })
}

/// Adds the state machine, its role (invoking the DR function, using the audit key for its execution
/// data) and the role EventBridge starts it with. Needs `DrAutomationFunction` in the stack; `key` is the
/// customer-managed key that encrypts execution data.
pub fn add(config: &Config, s: &mut Stack, key: Expr, topic: Expr) {
    let names = config.names();
    let state_machine_arn = sub(format!(
        "arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:stateMachine:{}",
        names.dr_state_machine()
    ));
    s.template.add(
        "DrStateMachineRole",
        iam::Role {
            assume_role_policy_document: assume_role("states.amazonaws.com"),
            description: Some("DR state machine: invokes the DR automation function, nothing else".into()),
            policies: Some(Expr::json(json!([inline_policy(
                "dr-state-machine",
                vec![
                    allow(&["lambda:InvokeFunction"], vec![get_att("DrAutomationFunction", "Arn")]),
                    // Execution data encrypted with a customer-managed key: the role needs these on the key,
                    // narrowed to this state machine's encryption context
                    // (https://docs.aws.amazon.com/step-functions/latest/dg/encryption-at-rest.html).
                    json!({
                        "Effect": "Allow",
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                        "Resource": [key.clone()],
                        "Condition": { "StringEquals": {
                            "kms:EncryptionContext:aws:states:stateMachineArn": state_machine_arn.clone()
                        } }
                    })
                ]
            )]))),
            managed_policy_arns: None,
        },
    );
    s.template.add(
        STATE_MACHINE,
        stepfunctions::StateMachine {
            state_machine_name: Some(names.dr_state_machine().into()),
            state_machine_type: Some("STANDARD".into()),
            definition: Some(Expr::json(definition())),
            definition_substitutions: Some(Expr::json(json!({
                FUNCTION_ARN_PLACEHOLDER: get_att("DrAutomationFunction", "Arn")
            }))),
            role_arn: get_att("DrStateMachineRole", "Arn"),
            encryption_configuration: Some(Expr::json(json!({
                "Type": "CUSTOMER_MANAGED_KMS_KEY",
                "KmsKeyId": key,
                "KmsDataKeyReusePeriodSeconds": 300
            }))),
        },
    );
    s.template.add(
        "DrStateMachineStartRole",
        iam::Role {
            assume_role_policy_document: assume_role("events.amazonaws.com"),
            description: Some("Lets the DR alarm rule start the DR state machine".into()),
            policies: Some(Expr::json(json!([inline_policy(
                "start-dr-state-machine",
                vec![allow(&["states:StartExecution"], vec![r(STATE_MACHINE)])]
            )]))),
            managed_policy_arns: None,
        },
    );
    // An execution that ends without reaching its own report (timed out, aborted, or failed outside a
    // catch) still reaches the operators: Step Functions emits a status change event for every standard
    // workflow execution (https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html).
    s.template.add(
        "DrStateMachineEndedRule",
        events::Rule {
            name: Some(format!("{}-dr-execution-ended", names.prefix()).into()),
            description: Some("Tells the operators when a DR state machine execution ends badly".into()),
            event_pattern: Some(Expr::json(json!({
                "source": ["aws.states"],
                "detail-type": ["Step Functions Execution Status Change"],
                "detail": {
                    "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                    "stateMachineArn": [r(STATE_MACHINE)]
                }
            }))),
            state: Some("ENABLED".into()),
            targets: Some(Expr::json(json!([{
                "Id": "operators",
                "Arn": topic,
                "InputTransformer": {
                    "InputPathsMap": {
                        "status": "$.detail.status",
                        "execution": "$.detail.name",
                        "arn": "$.detail.executionArn"
                    },
                    "InputTemplate": "\"lifeboat DR automation: state machine execution <execution> ended <status> (<arn>). The run it carried may be unfinished: see `lifeboat runs`, then `lifeboat resume RUN`.\""
                }
            }]))),
        },
    );
    s.output(
        "StateMachineArn",
        r(STATE_MACHINE),
        "DR state machine (runs of the DR automation)",
    );
}
