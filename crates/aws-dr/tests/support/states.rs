//! A model of AWS Step Functions running the DR state machine's definition, for the tests: moto can store
//! a state machine but does not run Lambda tasks, so the synthesized definition is executed here, state by
//! state, calling the DR function's handler in process for each task.
//!
//! Only what the definition uses is modelled, each rule following the Amazon States Language as AWS
//! documents it:
//!
//! - paths (`$`, `$.a.b`, the context object's `$$.Execution.Name` and `$$.Execution.StartTime`) and
//!   `Parameters` fields ending in `.$`
//!   (<https://docs.aws.amazon.com/step-functions/latest/dg/input-output-inputpath-params.html>);
//! - `ResultPath` placing a task's result (or a caught error) into its input
//!   (<https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultpath.html>);
//! - Choice rules `IsPresent`, `StringEquals`, `BooleanEquals`, `And`, and `Default`; no match and no
//!   default is the error `States.NoChoiceMatched`
//!   (<https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html>);
//! - Wait with `SecondsPath` (the model records the wait instead of sleeping);
//! - `Retry` (a retrier matches by `ErrorEquals`, `States.ALL` matches every error; `MaxAttempts` retries
//!   after the first attempt, `IntervalSeconds` growing by `BackoffRate`) and then `Catch` with the error
//!   output `{"Error", "Cause"}`
//!   (<https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html>);
//! - a task invoking a Lambda function by its ARN gets the function's answer as its result; a function
//!   error (an unhandled error or the function's timeout) is the task's error.

// Each test binary uses a part of the model.
#![allow(
    dead_code,
    reason = "shared by several test binaries, each of which uses part of it"
)]

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value, json};

/// A task's failure as Step Functions sees it.
#[derive(Debug, Clone)]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

/// One state entered, for assertions.
#[derive(Debug, Clone)]
pub struct Entered {
    pub state: String,
    /// The task payload (for tasks) or the state input.
    pub input: Value,
    /// For tasks: every attempt's outcome (`Ok` result or the error name).
    pub attempts: Vec<Result<Value, String>>,
}

/// How an execution ended.
#[derive(Debug)]
pub struct Execution {
    /// `SUCCEEDED` or `FAILED`.
    pub status: &'static str,
    /// The terminal state's name.
    pub ended_in: String,
    pub output: Value,
    pub history: Vec<Entered>,
    /// Seconds waited in Wait states.
    pub waited_seconds: Vec<u64>,
}

impl Execution {
    pub fn entered(&self, state: &str) -> Vec<&Entered> {
        self.history.iter().filter(|e| e.state == state).collect()
    }
}

pub type Invoke<'a> =
    dyn FnMut(Value) -> Pin<Box<dyn Future<Output = Result<Value, TaskError>> + 'a>> + 'a;

/// Reads `path` in `input` (`$` or `$.a.b`), or in the context object (`$$.…`).
fn read_path(path: &str, input: &Value, context: &Value) -> Option<Value> {
    let (root, rest) = if let Some(rest) = path.strip_prefix("$$") {
        (context, rest)
    } else {
        (input, path.strip_prefix('$')?)
    };
    let mut at = root;
    for key in rest.split('.').filter(|k| !k.is_empty()) {
        at = at.get(key)?;
    }
    Some(at.clone())
}

/// `Parameters`: every field ending in `.$` replaced by the value its path selects.
fn parameters(template: &Value, input: &Value, context: &Value) -> Result<Value, TaskError> {
    match template {
        Value::Object(fields) => {
            let mut out = Map::new();
            for (key, value) in fields {
                if let Some(name) = key.strip_suffix(".$") {
                    let path = value.as_str().unwrap_or_default();
                    let selected = read_path(path, input, context).ok_or_else(|| TaskError {
                        error: "States.Runtime".into(),
                        cause: format!("the path {path} selects nothing in {input}"),
                    })?;
                    out.insert(name.to_owned(), selected);
                } else {
                    out.insert(key.clone(), parameters(value, input, context)?);
                }
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// `ResultPath`: `result` placed at `path` inside `input` (`$` replaces it; `null` would discard it).
fn place(input: &Value, path: &str, result: Value) -> Value {
    if path == "$" {
        return result;
    }
    let mut out = input.clone();
    let keys: Vec<&str> = path
        .trim_start_matches('$')
        .split('.')
        .filter(|k| !k.is_empty())
        .collect();
    let mut at = &mut out;
    for (i, key) in keys.iter().enumerate() {
        if !at.is_object() {
            *at = json!({});
        }
        let map = at.as_object_mut().expect("made an object above");
        if i + 1 == keys.len() {
            map.insert((*key).to_owned(), result);
            break;
        }
        at = map.entry((*key).to_owned()).or_insert_with(|| json!({}));
    }
    out
}

/// Evaluates one Choice rule. A comparison on a path the input does not have is an error of the execution
/// (`States.Runtime`), not a false rule: only `IsPresent` may look at a path that may be missing
/// (https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html).
fn rule_matches(rule: &Value, input: &Value, context: &Value) -> Result<bool, String> {
    if let Some(all) = rule.get("And").and_then(Value::as_array) {
        for r in all {
            if !rule_matches(r, input, context)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    let path = rule["Variable"].as_str().unwrap_or_default();
    let value = read_path(path, input, context);
    if let Some(present) = rule.get("IsPresent").and_then(Value::as_bool) {
        return Ok(value.is_some() == present);
    }
    let Some(value) = value else {
        return Err(format!(
            "the Choice rule's variable {path} is not in the input"
        ));
    };
    if let Some(expected) = rule.get("StringEquals") {
        return Ok(&value == expected);
    }
    if let Some(expected) = rule.get("BooleanEquals") {
        return Ok(&value == expected);
    }
    panic!("choice rule not modelled: {rule}");
}

fn matches_error(retrier: &Value, error: &str) -> bool {
    retrier["ErrorEquals"]
        .as_array()
        .is_some_and(|names| names.iter().any(|n| n == "States.ALL" || n == error))
}

/// Runs `definition` (the function's ARN already substituted, or not: every task calls `invoke`) from
/// `input`, as an execution named `name` started at `started`.
pub async fn run(
    definition: &Value,
    name: &str,
    started: &str,
    input: Value,
    invoke: &mut Invoke<'_>,
) -> Execution {
    let context = json!({ "Execution": { "Name": name, "StartTime": started } });
    let states = &definition["States"];
    let mut current = definition["StartAt"].as_str().unwrap().to_owned();
    let mut data = input;
    let mut history = Vec::new();
    let mut waited_seconds = Vec::new();
    for _ in 0..10_000 {
        let state = &states[&current];
        assert!(state.is_object(), "state {current} is not defined");
        let next = state["Next"].as_str().map(str::to_owned);
        match state["Type"].as_str().unwrap() {
            "Choice" => {
                history.push(Entered {
                    state: current.clone(),
                    input: data.clone(),
                    attempts: vec![],
                });
                let mut chosen = None;
                for rule in state["Choices"].as_array().unwrap() {
                    match rule_matches(rule, &data, &context) {
                        Ok(true) => {
                            chosen = Some(rule["Next"].as_str().unwrap().to_owned());
                            break;
                        }
                        Ok(false) => {}
                        Err(cause) => {
                            return Execution {
                                status: "FAILED",
                                ended_in: current,
                                output: json!({ "Error": "States.Runtime", "Cause": cause }),
                                history,
                                waited_seconds,
                            };
                        }
                    }
                }
                let chosen = chosen.or_else(|| state["Default"].as_str().map(str::to_owned));
                match chosen {
                    Some(n) => current = n,
                    None => {
                        return Execution {
                            status: "FAILED",
                            ended_in: current,
                            output: json!({"Error": "States.NoChoiceMatched"}),
                            history,
                            waited_seconds,
                        };
                    }
                }
            }
            "Pass" => {
                history.push(Entered {
                    state: current.clone(),
                    input: data.clone(),
                    attempts: vec![],
                });
                if let Some(p) = state.get("Parameters") {
                    data = parameters(p, &data, &context).expect("pass parameters");
                }
                current = next.expect("Pass has Next");
            }
            "Wait" => {
                history.push(Entered {
                    state: current.clone(),
                    input: data.clone(),
                    attempts: vec![],
                });
                let seconds = state
                    .get("SecondsPath")
                    .and_then(Value::as_str)
                    .and_then(|p| read_path(p, &data, &context))
                    .or_else(|| state.get("Seconds").cloned())
                    .and_then(|v| v.as_u64())
                    .expect("a Wait needs a whole number of seconds");
                waited_seconds.push(seconds);
                current = next.expect("Wait has Next");
            }
            "Succeed" | "Fail" => {
                let succeeded = state["Type"] == "Succeed";
                history.push(Entered {
                    state: current.clone(),
                    input: data.clone(),
                    attempts: vec![],
                });
                return Execution {
                    status: if succeeded { "SUCCEEDED" } else { "FAILED" },
                    ended_in: current,
                    output: data,
                    history,
                    waited_seconds,
                };
            }
            "Task" => {
                let payload = match state.get("Parameters") {
                    Some(p) => parameters(p, &data, &context),
                    None => Ok(data.clone()),
                };
                let mut entered = Entered {
                    state: current.clone(),
                    input: payload.clone().unwrap_or(Value::Null),
                    attempts: vec![],
                };
                let mut retries_used = vec![0_u64; state["Retry"].as_array().map_or(0, Vec::len)];
                let outcome = loop {
                    let result = match &payload {
                        Ok(p) => invoke(p.clone()).await,
                        Err(e) => Err(e.clone()),
                    };
                    entered
                        .attempts
                        .push(result.clone().map_err(|e| e.error.clone()));
                    let error = match result {
                        Ok(value) => break Ok(value),
                        Err(e) => e,
                    };
                    // The first retrier whose ErrorEquals matches decides; its attempts are its own.
                    let retriers = state["Retry"].as_array().cloned().unwrap_or_default();
                    let retry = retriers
                        .iter()
                        .enumerate()
                        .find(|(_, r)| matches_error(r, &error.error));
                    match retry {
                        Some((i, r))
                            if retries_used[i] < r["MaxAttempts"].as_u64().unwrap_or(3) =>
                        {
                            retries_used[i] += 1;
                        }
                        _ => break Err(error),
                    }
                };
                history.push(entered);
                match outcome {
                    Ok(result) => {
                        let path = state["ResultPath"].as_str().unwrap_or("$");
                        data = place(&data, path, result);
                        current = next.expect("Task has Next");
                    }
                    Err(error) => {
                        let catcher = state["Catch"]
                            .as_array()
                            .and_then(|c| c.iter().find(|c| matches_error(c, &error.error)));
                        match catcher {
                            Some(c) => {
                                let path = c["ResultPath"].as_str().unwrap_or("$");
                                data = place(
                                    &data,
                                    path,
                                    json!({ "Error": error.error, "Cause": error.cause }),
                                );
                                current = c["Next"].as_str().unwrap().to_owned();
                            }
                            None => {
                                return Execution {
                                    status: "FAILED",
                                    ended_in: current,
                                    output: json!({ "Error": error.error, "Cause": error.cause }),
                                    history,
                                    waited_seconds,
                                };
                            }
                        }
                    }
                }
            }
            other => panic!("state type {other} is not modelled"),
        }
    }
    panic!("the execution did not end within 10,000 transitions");
}

/// Runs the synthesized DR state machine from `input` with every task calling the DR function's handler
/// in process (no invocation killed), as execution `name`.
pub async fn execute(
    env: &lifeboat_aws_dr::AwsEnvironment,
    settings: &lifeboat_runbook::DrSettings,
    name: &str,
    input: Value,
) -> Execution {
    let definition = lifeboat_platform::dr_state_machine::definition();
    let mut invoke =
        |payload: Value| -> Pin<Box<dyn Future<Output = Result<Value, TaskError>> + '_>> {
            Box::pin(async move {
                lifeboat_aws_dr::lambda::invoke(
                    env,
                    settings,
                    &payload,
                    std::time::Duration::from_secs(840),
                )
                .await
                .map_err(|e| TaskError {
                    error: "RustLambdaError".into(),
                    cause: e.to_string(),
                })
            })
        };
    let started = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time formats as RFC 3339");
    run(&definition, name, &started, input, &mut invoke).await
}
