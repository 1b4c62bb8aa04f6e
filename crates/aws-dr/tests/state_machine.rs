//! The DR automation as AWS runs it: the synthesized state machine definition executed by the Step
//! Functions model (`support/states.rs`), each task a call of the DR function's handler, against the
//! emulator plus the model of what it lacks (`support/model.rs`). Invocations are killed in the middle of
//! `promote`, as Lambda's timeout would, and the state machine's retry carries the run on.
//!
//! Needs `LIFEBOAT_TEST_AWS_ENDPOINT`.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/states.rs"]
mod states;

use std::cell::Cell;
use std::time::Duration;

use fixture::{Fixture, PRIMARY, STANDBY};
use lifeboat_runbook::{Journal, JournalEvent, RunId, RunOutcome};
use serde_json::{Value, json};
use states::{Execution, TaskError};

/// The budget an invocation gets (Lambda's 900 s minus the handler's margin): never the binding bound
/// here, the kill is.
const BUDGET: Duration = Duration::from_secs(840);

/// Executes the synthesized definition from `event`. The first `advance` invocation during which Aurora
/// has accepted an operation (a switchover or a failover: `promote` is waiting for it) is killed, as
/// Lambda kills an invocation at its timeout: the handler's future is dropped where it stands and the
/// task fails with the error Lambda reports for a timed-out function.
async fn execute_killing_promote(
    f: &Fixture,
    settings: &lifeboat_runbook::DrSettings,
    event: Value,
) -> (Execution, bool) {
    execute_in(f, &f.environment(), settings, event).await
}

/// As [`execute_killing_promote`], with the function's environment `env`.
async fn execute_in(
    f: &Fixture,
    env: &lifeboat_aws_dr::AwsEnvironment,
    settings: &lifeboat_runbook::DrSettings,
    event: Value,
) -> (Execution, bool) {
    let definition = lifeboat_platform::dr_state_machine::definition();
    let killed = Cell::new(false);
    let (killed_ref, model) = (&killed, &f.model);
    let mut invoke = move |payload: Value| -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Value, TaskError>> + '_>,
    > {
        Box::pin(async move {
            let task = &payload[lifeboat_contract::automation::TASK_KEY];
            let advancing = task[lifeboat_contract::automation::ACTION] == "advance";
            let call = lifeboat_aws_dr::lambda::invoke(env, settings, &payload, BUDGET);
            let accepted = || {
                let s = model.state();
                !s.aurora.switchovers.is_empty() || !s.aurora.failovers.is_empty()
            };
            let in_promote = async {
                loop {
                    if accepted() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            };
            if advancing && !killed_ref.get() && !accepted() {
                tokio::select! {
                    answer = call => answer.map_err(|e| TaskError { error: "RustLambdaError".into(), cause: e.to_string() }),
                    () = in_promote => {
                        killed_ref.set(true);
                        Err(TaskError {
                            error: "Sandbox.Timedout".into(),
                            cause: "Task timed out after 900.00 seconds".into(),
                        })
                    }
                }
            } else {
                call.await.map_err(|e| TaskError {
                    error: "RustLambdaError".into(),
                    cause: e.to_string(),
                })
            }
        })
    };
    let execution = states::run(
        &definition,
        "3c7f0e9a-3a55-4a0c-bb0f-4f0d2f1e9a77_alarm",
        "2026-12-03T10:00:00.000Z",
        event,
        &mut invoke,
    )
    .await;
    (execution, killed.get())
}

/// Every run in the journal with its events.
async fn runs(f: &Fixture) -> Vec<(RunId, Vec<JournalEvent>)> {
    let env = f.environment();
    let mut out = Vec::new();
    for id in env.journal.list().await.unwrap() {
        let events = env.journal.read(&id).await.unwrap();
        out.push((id, events));
    }
    out
}

fn count(events: &[JournalEvent], what: impl Fn(&JournalEvent) -> bool) -> usize {
    events.iter().filter(|e| what(e)).count()
}

fn step_finished(step: &'static str) -> impl Fn(&JournalEvent) -> bool {
    move |e| matches!(e, JournalEvent::StepFinished { step: s, outcome, .. } if s == step && outcome.is_final())
}

fn step_started(step: &'static str) -> impl Fn(&JournalEvent) -> bool {
    move |e| matches!(e, JournalEvent::StepStarted { step: s, .. } if s == step)
}

fn run_finished(e: &JournalEvent) -> bool {
    matches!(e, JournalEvent::RunFinished { .. })
}

fn outcome(events: &[JournalEvent]) -> Option<RunOutcome> {
    events.iter().rev().find_map(|e| match e {
        JournalEvent::RunFinished { outcome, .. } => Some(*outcome),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automated_switchover_killed_in_promote_finishes_once_with_each_effect_once() {
    let f = Fixture::create().await;
    let alarm = f.fire_probe_alarm().await;
    // The primary cannot be reached from the internet (its load balancer's path); its storefront, APIs and
    // database still answer, so the policy's switchover passes preflight.
    f.model
        .update(PRIMARY, |r| r.reachable_from_internet = false);
    let ten_minutes_ago = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let (execution, killed) = execute_killing_promote(
        &f,
        &f.settings,
        fixture::alarm_event(&alarm, "ALARM", STANDBY, ten_minutes_ago),
    )
    .await;

    assert!(
        killed,
        "an invocation was killed while promote waited for Aurora: {execution:#?}"
    );
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    assert_eq!(execution.ended_in, "RunSucceeded");
    assert_eq!(execution.entered("BeginRun").len(), 1);
    assert!(execution.entered("BeginFailover").is_empty());
    let advances = execution.entered("Advance");
    let failed_attempts: Vec<_> = advances
        .iter()
        .flat_map(|e| e.attempts.iter())
        .filter_map(|a| a.as_ref().err())
        .collect();
    assert_eq!(
        failed_attempts,
        ["Sandbox.Timedout"],
        "one killed invocation, retried"
    );
    // Every call of the run presents the owner derived from the execution, the retried one included.
    for advance in &advances {
        let owner = &advance.input[lifeboat_contract::automation::TASK_KEY]["run"]["owner"];
        assert_eq!(
            owner["token"],
            "execution:3c7f0e9a-3a55-4a0c-bb0f-4f0d2f1e9a77_alarm"
        );
    }

    let runs = runs(&f).await;
    assert_eq!(
        runs.len(),
        1,
        "one run: {:?}",
        runs.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    let (_, events) = &runs[0];
    assert_eq!(outcome(events), Some(RunOutcome::Succeeded));
    assert_eq!(
        count(events, run_finished),
        1,
        "the run finished exactly once"
    );
    assert_eq!(
        count(events, step_started("promote")),
        2,
        "promote ran again after the kill"
    );
    assert_eq!(count(events, step_finished("promote")), 1);
    assert!(
        events.iter().any(
            |e| matches!(e, JournalEvent::RunResumed { owner, .. } if owner.contains("promote"))
        ),
        "the journal says the next invocation took over the interrupted promote"
    );
    // Each step ended once.
    for step in [
        "preflight",
        "raise-fence",
        "shift-traffic",
        "lower-fence",
        "verify",
        "notify",
        "record-active-region",
    ] {
        let n = count(
            events,
            |e| matches!(e, JournalEvent::StepFinished { step: s, .. } if s == step),
        );
        assert_eq!(n, 1, "{step} ended {n} times");
    }

    {
        let model = f.model.state();
        assert_eq!(
            model.aurora.switchovers.len(),
            1,
            "Aurora was asked once: {:?}",
            model.aurora.switchovers
        );
        assert!(model.aurora.failovers.is_empty());
        assert_eq!(model.aurora.writer_region(), Some(STANDBY));
    }
    assert_eq!(f.dns_answer().await, STANDBY, "customers go to the standby");
    assert_eq!(
        f.param(STANDBY, &f.topology.ssm_active_region()).await,
        STANDBY
    );
    assert_eq!(
        f.param(STANDBY, &f.topology.ssm_fence()).await,
        lifeboat_contract::control::fence::LOWERED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_primary_lost_the_refused_switchover_escalates_to_a_failover_that_survives_a_kill()
{
    let f = Fixture::create().await;
    let alarm = f.fire_probe_alarm().await;
    f.model.lose_region(PRIMARY);
    let mut settings = f.settings.clone();
    settings.allow_data_loss = true;
    let ten_minutes_ago = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let (execution, killed) = execute_killing_promote(
        &f,
        &settings,
        fixture::alarm_event(&alarm, "ALARM", STANDBY, ten_minutes_ago),
    )
    .await;

    assert!(
        killed,
        "an invocation was killed while promote waited for Aurora"
    );
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    assert_eq!(execution.entered("BeginRun").len(), 1);
    assert_eq!(
        execution.entered("BeginFailover").len(),
        1,
        "escalated once"
    );

    let runs = runs(&f).await;
    assert_eq!(runs.len(), 2, "the switchover, then the failover");
    let failover = runs
        .iter()
        .find(|(_, events)| matches!(events.first(), Some(JournalEvent::RunStarted { kind, .. }) if *kind == lifeboat_runbook::RunKind::Failover))
        .expect("a failover run");
    let switchover = runs.iter().find(|r| r.0 != failover.0).unwrap();
    assert_ne!(outcome(&switchover.1), Some(RunOutcome::Succeeded));
    assert_eq!(count(&switchover.1, run_finished), 1);
    assert_eq!(outcome(&failover.1), Some(RunOutcome::Succeeded));
    assert_eq!(count(&failover.1, run_finished), 1);
    assert_eq!(count(&failover.1, step_started("promote")), 2);
    assert_eq!(count(&failover.1, step_finished("promote")), 1);

    {
        let model = f.model.state();
        assert_eq!(
            model.aurora.failovers.len(),
            1,
            "Aurora was asked once: {:?}",
            model.aurora.failovers
        );
        assert_eq!(model.aurora.writer_region(), Some(STANDBY));
    }
    assert_eq!(f.dns_answer().await, STANDBY);
    assert_eq!(
        f.param(STANDBY, &f.topology.ssm_active_region()).await,
        STANDBY
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_young_alarm_is_waited_for_by_the_state_machine_not_the_function() {
    let f = Fixture::create().await;
    let alarm = f.fire_probe_alarm().await;
    f.model.update(PRIMARY, |r| r.storefront_up = false);
    let env = f.environment();
    let settings = &f.settings;
    let just_now = time::OffsetDateTime::now_utc() - time::Duration::seconds(30);
    let definition = lifeboat_platform::dr_state_machine::definition();
    let decisions = Cell::new(0);
    let env_ref = &env;
    let decisions_ref = &decisions;
    let mut invoke = move |payload: Value| -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Value, TaskError>> + '_>,
    > {
        Box::pin(async move {
            let task = &payload[lifeboat_contract::automation::TASK_KEY];
            if task["action"] == "decide" {
                decisions_ref.set(decisions_ref.get() + 1);
                if decisions_ref.get() == 3 {
                    // The alarm went back to OK while the state machine waited.
                    let mut ok = task["alarm"].clone();
                    ok["detail"]["state"]["value"] = json!("OK");
                    let mut payload = payload.clone();
                    payload[lifeboat_contract::automation::TASK_KEY]["alarm"] = ok;
                    return lifeboat_aws_dr::lambda::invoke(env_ref, settings, &payload, BUDGET)
                        .await
                        .map_err(|e| TaskError {
                            error: "RustLambdaError".into(),
                            cause: e.to_string(),
                        });
                }
            }
            lifeboat_aws_dr::lambda::invoke(env_ref, settings, &payload, BUDGET)
                .await
                .map_err(|e| TaskError {
                    error: "RustLambdaError".into(),
                    cause: e.to_string(),
                })
        })
    };
    let started = std::time::Instant::now();
    let execution = states::run(
        &definition,
        "young-alarm",
        "2026-12-03T10:00:00.000Z",
        fixture::alarm_event(&alarm, "ALARM", STANDBY, just_now),
        &mut invoke,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the function never sleeps for the alarm"
    );
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    assert_eq!(execution.ended_in, "NoRun");
    assert_eq!(
        execution.output["decision"]["decision"], "ignore",
        "{:#}",
        execution.output
    );
    let waits = &execution.waited_seconds;
    assert_eq!(waits.len(), 2, "{waits:?}");
    let minimum = f.settings.alarm_min_seconds;
    assert!(
        waits[0] > 0 && waits[0] <= minimum - 29,
        "the first wait is the rest of the alarm's minimum age ({minimum} s): {waits:?}"
    );
    assert!(runs(&f).await.is_empty(), "no run was created");
}

#[test]
fn the_definition_is_what_the_stack_deploys_and_its_retries_fit_inside_the_run_lease() {
    use lifeboat_platform::dr_state_machine as sm;
    let definition = sm::definition();
    let config = lifeboat_config::Config::default();
    let synthesized = lifeboat_platform::platform::synthesize(&config).unwrap();
    for stack in ["dr-automation-primary", "dr-automation-standby"] {
        let template = synthesized
            .template(stack)
            .expect("a DR automation stack")
            .to_json();
        assert_eq!(
            template["Resources"][sm::STATE_MACHINE]["Properties"]["Definition"],
            definition,
            "{stack}"
        );
    }
    // Every Retry of every task: the delays of all retries together stay inside the lease the engine
    // leaves between calls, so a retried call finds the lock still its own.
    let handover = lifeboat_runbook::EngineOptions::default().handover_ttl;
    for (name, state) in definition["States"].as_object().unwrap() {
        for retrier in state["Retry"].as_array().into_iter().flatten() {
            let interval = retrier["IntervalSeconds"].as_f64().unwrap();
            let rate = retrier["BackoffRate"].as_f64().unwrap();
            let attempts = retrier["MaxAttempts"].as_u64().unwrap();
            let total: f64 = (0..attempts).map(|i| interval * rate.powi(i as i32)).sum();
            assert!(
                Duration::from_secs_f64(total) < handover,
                "{name}: retries take {total} s, the hand-over lease is {handover:?}"
            );
            // A task never times out before the function does (it would be retried beside a live
            // invocation).
            assert!(state["TimeoutSeconds"].as_u64().unwrap() > 900, "{name}");
        }
    }
}

/// The DR function as deployed in the standby region: its environment variables and its role's statements
/// taken from the synthesized `dr-automation-standby` template (intrinsics resolved to the fixture's
/// resources), its clients the fixture's recorded ones.
async fn as_deployed(
    f: &Fixture,
) -> (
    lifeboat_aws_dr::AwsEnvironment,
    lifeboat_runbook::DrSettings,
    Vec<Value>,
) {
    use fixture::iam;
    let synthesis = lifeboat_platform::platform::synthesize(&f.config).unwrap();
    let template = synthesis
        .template("dr-automation-standby")
        .unwrap()
        .to_json();
    let checks: std::collections::BTreeMap<String, String> = f
        .model
        .state()
        .health_checks
        .iter()
        .map(|(id, region)| (region.clone(), id.clone()))
        .collect();
    let reports_bucket = f.config.names().reports_bucket_in(STANDBY, iam::ACCOUNT);
    let topic = |region: &str| {
        format!(
            "arn:aws:sns:{region}:{}:{}",
            iam::ACCOUNT,
            f.topology.topic_name
        )
    };
    let values: std::collections::BTreeMap<String, String> = [
        ("HostedZoneId", f.model.zone_id().unwrap()),
        ("PrimaryHealthCheckId", checks[PRIMARY].clone()),
        ("StandbyHealthCheckId", checks[STANDBY].clone()),
        ("TopicArn", topic(STANDBY)),
        (
            "TopicKeyArn",
            format!("arn:aws:kms:{STANDBY}:{}:key/topic", iam::ACCOUNT),
        ),
        ("ReportsBucket", reports_bucket.clone()),
        (
            "ReportsBucket.Arn",
            format!("arn:aws:s3:::{reports_bucket}"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let resources = &template["Resources"];
    let variables = iam::resolve(
        &resources["DrAutomationFunction"]["Properties"]["Environment"]["Variables"],
        STANDBY,
        &values,
    );
    let (mut topology, settings) = lifeboat_aws_dr::topology::from_env(&|key| {
        variables
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
    .unwrap();
    topology.bounds = f.topology.bounds.clone();
    f.direct[STANDBY]
        .s3()
        .create_bucket()
        .bucket(&reports_bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let statements = iam::role_statements(&template, "DrAutomationRole")
        .iter()
        .map(|s| iam::resolve(s, STANDBY, &values))
        .collect();
    let env = lifeboat_aws_dr::AwsEnvironment::from_clients(f.clients.clone(), topology, STANDBY);
    (env, settings, statements)
}

/// Statements that AWS services use on the function's behalf rather than its code, each with who uses
/// it: they cannot be seen in the code's requests.
fn used_by_a_service(statement: &Value) -> Option<&'static str> {
    let actions = statement["Action"].to_string();
    if actions.contains("logs:") {
        Some("Lambda writes the function's logs with its role")
    } else if actions.contains("ec2:") {
        Some("Lambda manages the function's network interfaces in the VPC with its role")
    } else if actions.contains("kms:") {
        Some(
            "S3 and SNS use the keys with the caller's permissions when it writes an encrypted object or publishes to an encrypted topic",
        )
    } else if actions.contains("sqs:SendMessage") {
        Some(
            "Lambda sends a failed asynchronous event to the function's failure destination with its role",
        )
    } else {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dr_roles_statements_allow_every_call_of_a_switchover_a_failover_and_the_probe_and_each_is_needed()
 {
    use fixture::iam;
    let mut statements: Vec<Value> = Vec::new();
    let mut needed: std::collections::BTreeMap<usize, Vec<(String, String)>> =
        std::collections::BTreeMap::new();
    let mut denied = Vec::new();
    for scenario in ["switchover", "failover"] {
        let f = Fixture::create().await;
        let alarm = f.fire_probe_alarm().await;
        let (env, mut settings, role) = as_deployed(&f).await;
        statements = role;
        if scenario == "switchover" {
            f.model
                .update(PRIMARY, |r| r.reachable_from_internet = false);
        } else {
            f.model.lose_region(PRIMARY);
            settings.allow_data_loss = true;
        }
        let probe = lifeboat_aws_dr::lambda::invoke(
            &env,
            &settings,
            &lifeboat_platform::dr_automation::probe_event(PRIMARY),
            BUDGET,
        )
        .await
        .unwrap();
        assert_eq!(probe["published"], true, "{scenario}: {probe}");
        let ten_minutes_ago = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
        let (execution, killed) = execute_in(
            &f,
            &env,
            &settings,
            fixture::alarm_event(&alarm, "ALARM", STANDBY, ten_minutes_ago),
        )
        .await;
        assert!(killed);
        assert_eq!(execution.status, "SUCCEEDED", "{scenario}: {execution:#?}");
        let verdict = iam::evaluate(&statements, &f.calls.calls());
        denied.extend(verdict.denied.into_iter().map(|d| (scenario, d)));
        for (i, pairs) in verdict.needed {
            needed.entry(i).or_default().extend(pairs);
        }
    }
    assert!(
        denied.is_empty(),
        "calls the DR role does not allow:\n{}",
        denied
            .iter()
            .map(|(s, (a, r))| format!("  {s}: {a} on {r}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Deleting any statement makes a call of these runs fail: each one is the only statement allowing
    // at least one call, unless a service uses it on the function's behalf.
    let mut unneeded = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        match (needed.get(&i), used_by_a_service(statement)) {
            (Some(calls), _) => {
                println!(
                    "statement {i} {} needed by {:?}",
                    statement["Action"],
                    calls.first().unwrap()
                );
            }
            (None, Some(reason)) => println!("statement {i} {}: {reason}", statement["Action"]),
            (None, None) => unneeded.push(format!("{i}: {statement}")),
        }
    }
    assert!(
        unneeded.is_empty(),
        "statements no call of a switchover, a failover or the probe needs:\n{}",
        unneeded.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_regions_hear_the_alarm_at_once_and_exactly_one_run_proceeds() {
    let f = Fixture::create().await;
    let alarm = f.fire_probe_alarm().await;
    f.model
        .update(PRIMARY, |r| r.reachable_from_internet = false);
    let ten_minutes_ago = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let event = fixture::alarm_event(&alarm, "ALARM", STANDBY, ten_minutes_ago);
    // Each region's state machine, its function coordinating in its own region's replica.
    let in_primary = lifeboat_aws_dr::AwsEnvironment::from_clients(
        f.clients.clone(),
        f.topology.clone(),
        PRIMARY,
    );
    let in_standby = f.environment();
    let (primary, standby) = tokio::join!(
        states::execute(&in_primary, &f.settings, "from-primary", event.clone()),
        states::execute(&in_standby, &f.settings, "from-standby", event),
    );
    assert_eq!(primary.ended_in, "NoRun", "{primary:#?}");
    let reason = primary.output["decision"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("carried out by us-west-2's DR automation"),
        "{reason}"
    );
    assert_eq!(standby.ended_in, "RunSucceeded", "{standby:#?}");
    for env in [&in_primary, &in_standby] {
        let runs = env.journal.list().await.unwrap();
        assert!(runs.len() <= 1, "{runs:?}");
    }
    assert_eq!(
        in_standby.journal.list().await.unwrap().len(),
        1,
        "the run lives in the target region's replica"
    );
    let model = f.model.state();
    assert_eq!(model.aurora.switchovers.len(), 1);
    assert_eq!(model.aurora.writer_region(), Some(STANDBY));
}

/// An operator's execution (the input names the run; the execution is named after a new run id): the
/// policy is skipped, the run carries the execution's name as its id and runs to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_started_by_hand_runs_the_requested_move_under_its_own_name() {
    let f = Fixture::create().await;
    let env = f.environment();
    let run_id = lifeboat_runbook::RunId::new(time::OffsetDateTime::now_utc());
    let input = json!({
        "decision": {
            "decision": "act",
            "reason": "operator",
            "request": {
                "kind": "switchover",
                "from": PRIMARY,
                "to": STANDBY,
                "allow_data_loss": false,
                "escalate": false
            }
        }
    });
    let execution = states::execute(&env, &f.settings, run_id.as_str(), input).await;
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    assert!(
        execution.entered("Decide").is_empty(),
        "no policy for a requested move"
    );
    assert_eq!(execution.output["run"]["run_id"], run_id.as_str());
    assert_eq!(execution.output["run"]["outcome"], "succeeded");
    let runs = env.journal.list().await.unwrap();
    assert_eq!(runs, vec![run_id]);
    assert_eq!(f.model.state().aurora.writer_region(), Some(STANDBY));
}
