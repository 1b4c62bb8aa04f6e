//! The AWS backend against a local AWS emulator (moto) in two regions, driven through the runbook engine.
//!
//! The environment is the shared fixture in `support/fixture.rs` (Aurora promotions answered by an SDK-level
//! mock, everything else by the emulator); it needs `LIFEBOAT_TEST_AWS_ENDPOINT`.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/states.rs"]
mod states;

use std::collections::BTreeMap;
use std::time::Duration;

use fixture::{Fixture, PRIMARY, STANDBY};
use lifeboat_runbook::coordination::{EpochStore, LockOwner, RunLock};
use lifeboat_runbook::journal::{Journal, JournalError, JournalEvent, RunState};
use lifeboat_runbook::{BoxFuture, DrBackend, Engine, EngineOptions, RunId, RunKind, RunOutcome};

fn step_starts(state: &RunState) -> BTreeMap<String, u32> {
    state.starts.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_then_failback_moves_everything_and_back() {
    let f = Fixture::create().await;
    let env = f.environment();

    let before = env.backend.readiness().await.unwrap();
    let verdict = lifeboat_runbook::readiness::assess(
        RunKind::Switchover,
        &before,
        PRIMARY,
        STANDBY,
        &f.settings,
    );
    assert!(
        verdict.ready,
        "fixture should be ready for a switchover: {:?}\n{}",
        verdict.reasons,
        before.render_text()
    );
    assert_eq!(
        before.region(STANDBY).unwrap().dns_target.as_deref(),
        Some(PRIMARY)
    );

    let engine = Engine::new(
        &*env.backend,
        &*env.journal,
        &*env.journal,
        &*env.journal,
        &*env.reports,
    );
    let result = engine
        .start(&f.request(RunKind::Switchover, PRIMARY, STANDBY))
        .await
        .unwrap();
    assert_eq!(
        result.outcome(),
        RunOutcome::Succeeded,
        "{}",
        result.report.render_text()
    );

    // Every effect, read back through the API.
    for region in [PRIMARY, STANDBY] {
        assert_eq!(
            f.param(region, &f.topology.ssm_active_region()).await,
            STANDBY
        );
        assert_eq!(f.param(region, &f.topology.ssm_fence()).await, "lowered");
    }
    let epoch_after_switchover: u64 = f
        .param(STANDBY, &f.topology.ssm_epoch())
        .await
        .parse()
        .unwrap();
    assert_eq!(epoch_after_switchover, 1);
    assert_eq!(
        f.dns_answer().await,
        STANDBY,
        "Route 53 answers the failover record with the standby"
    );
    assert_eq!(
        f.standby_min_capacity().await,
        Some(4.0),
        "standby minimum capacity pre-scaled to the primary's peak"
    );
    let concurrency = f.clients.regions[STANDBY]
        .lambda()
        .get_function_concurrency()
        .function_name(&f.topology.storefront_function)
        .send()
        .await
        .unwrap()
        .reserved_concurrent_executions();
    assert_eq!(
        concurrency,
        Some(50),
        "standby storefront concurrency matched to the primary's"
    );
    let arn_standby = f.clients.regions[STANDBY]
        .rds()
        .describe_db_clusters()
        .db_cluster_identifier(f.topology.cluster_id(STANDBY).unwrap())
        .send()
        .await
        .unwrap()
        .db_clusters()[0]
        .db_cluster_arn()
        .unwrap()
        .to_owned();
    assert_eq!(
        f.model.state().aurora.switchovers,
        vec![arn_standby],
        "one SwitchoverGlobalCluster to the standby"
    );
    assert!(f.model.state().aurora.failovers.is_empty());
    assert!(
        f.model.invocations(STANDBY) > 0,
        "verify made a real request to the new primary"
    );
    let messages = f.messages(STANDBY).await;
    assert!(
        messages
            .iter()
            .any(|m| m.contains(result.report.run_id.as_str())),
        "an SNS notification with the run id reached the subscribed queue: {messages:?}"
    );
    assert!(
        result.report.rto_ms.is_some(),
        "RTO measured up to the first successful request"
    );
    assert_eq!(result.report.rpo.estimated_loss_window_ms, Some(0));

    // The report is in S3 and the journal lists the run.
    let key = env.reports.json_key(result.report.run_id.as_str());
    let bucket = &f.topology.assets_buckets[STANDBY];
    let object = f.clients.regions[STANDBY]
        .s3()
        .get_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("report s3://{bucket}/{key} missing: {e:?}"));
    let stored: serde_json::Value =
        serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(stored["outcome"], "succeeded");
    assert_eq!(stored["to"], STANDBY);
    let runs = lifeboat_runbook::journal::list_runs(&*env.journal)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);

    // Failback to the primary.
    let after = env.backend.readiness().await.unwrap();
    assert_eq!(
        after.region(PRIMARY).unwrap().dns_target.as_deref(),
        Some(STANDBY)
    );
    let result = engine
        .start(&f.request(RunKind::Failback, STANDBY, PRIMARY))
        .await
        .unwrap();
    assert_eq!(
        result.outcome(),
        RunOutcome::Succeeded,
        "{}",
        result.report.render_text()
    );
    for region in [PRIMARY, STANDBY] {
        assert_eq!(
            f.param(region, &f.topology.ssm_active_region()).await,
            PRIMARY
        );
    }
    let epoch_after_failback: u64 = f
        .param(PRIMARY, &f.topology.ssm_epoch())
        .await
        .parse()
        .unwrap();
    assert!(
        epoch_after_failback > epoch_after_switchover,
        "epoch {epoch_after_failback} must exceed {epoch_after_switchover}"
    );
    assert_eq!(
        f.dns_answer().await,
        PRIMARY,
        "Route 53 answers the primary again"
    );
    let readiness = env.backend.readiness().await.unwrap();
    assert_eq!(
        readiness.region(PRIMARY).unwrap().dns_target.as_deref(),
        Some(PRIMARY)
    );
    assert_eq!(f.model.state().aurora.switchovers.len(), 2);
    assert!(f.model.invocations(PRIMARY) > 0);
    let runs = lifeboat_runbook::journal::list_runs(&*env.journal)
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.outcome == RunOutcome::Succeeded));
}

/// A journal that stops the process (never returns) when asked to record the start of one step: the run
/// ends exactly at the boundary before that step, as if the process had been killed there.
struct StopBefore<'a> {
    inner: &'a dyn Journal,
    step: &'static str,
    reached: tokio::sync::Notify,
}

impl Journal for StopBefore<'_> {
    fn create<'a>(
        &'a self,
        run_id: &'a RunId,
        first: &'a JournalEvent,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        self.inner.create(run_id, first)
    }
    fn append<'a>(
        &'a self,
        run_id: &'a RunId,
        event: &'a JournalEvent,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        if matches!(event, JournalEvent::StepStarted { step, .. } if step == self.step) {
            self.reached.notify_one();
            return Box::pin(std::future::pending());
        }
        self.inner.append(run_id, event)
    }
    fn read<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Vec<JournalEvent>, JournalError>> {
        self.inner.read(run_id)
    }
    fn list<'a>(&'a self) -> BoxFuture<'a, Result<Vec<RunId>, JournalError>> {
        self.inner.list()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_switchover_is_finished_by_resume_without_repeating_a_step() {
    let f = Fixture::create().await;
    let env = f.environment();
    let options = EngineOptions {
        lock_ttl: Duration::from_secs(2),
        run_timeout: None,
        ..EngineOptions::default()
    };

    let stopping = StopBefore {
        inner: &*env.journal,
        step: "promote",
        reached: tokio::sync::Notify::new(),
    };
    let engine = Engine::new(
        &*env.backend,
        &stopping,
        &*env.journal,
        &*env.journal,
        &*env.reports,
    )
    .with_options(options.clone());
    let request = f.request(RunKind::Switchover, PRIMARY, STANDBY);
    tokio::select! {
        result = engine.start(&request) => {
            panic!("the run should have stopped before promote, got {:?}", result.map(|r| r.outcome()));
        }
        () = stopping.reached.notified() => {}
    }

    let runs = env.journal.list().await.unwrap();
    assert_eq!(runs.len(), 1);
    let run_id = runs[0].clone();
    let state = RunState::from_events(&env.journal.read(&run_id).await.unwrap()).unwrap();
    assert_eq!(state.outcome(), RunOutcome::Interrupted);
    assert!(
        state.is_done("wait-drained") && !state.starts.contains_key("promote"),
        "{:?}",
        state.starts
    );
    assert_eq!(
        f.param(PRIMARY, &f.topology.ssm_fence()).await,
        "raised",
        "the fence stays up while interrupted"
    );
    assert!(f.model.state().aurora.switchovers.is_empty());

    // A new process: the dead one's lease runs out, then resume takes the lock and finishes.
    let holder = LockOwner::for_this_process(&RunId::parse("someone-else").unwrap());
    assert!(
        env.journal
            .acquire(&holder, Duration::from_secs(1))
            .await
            .is_err(),
        "the dead run's lease is still held"
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let engine = Engine::new(
        &*env.backend,
        &*env.journal,
        &*env.journal,
        &*env.journal,
        &*env.reports,
    )
    .with_options(options);
    let result = engine.resume(&run_id).await.unwrap();
    assert_eq!(
        result.outcome(),
        RunOutcome::Succeeded,
        "{}",
        result.report.render_text()
    );

    let state = RunState::from_events(&env.journal.read(&run_id).await.unwrap()).unwrap();
    let starts = step_starts(&state);
    for stage in &state.stages {
        for step in stage {
            assert_eq!(
                starts.get(step),
                Some(&1),
                "step {step} must have started exactly once: {starts:?}"
            );
        }
    }
    assert_eq!(f.model.state().aurora.switchovers.len(), 1);
    assert_eq!(
        f.param(STANDBY, &f.topology.ssm_active_region()).await,
        STANDBY
    );
    assert_eq!(
        f.param(STANDBY, &f.topology.ssm_epoch()).await,
        "1",
        "resume reused the run's epoch"
    );
    assert_eq!(env.journal.current().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_promotes_with_allow_data_loss_and_is_idempotent() {
    let f = Fixture::create().await;
    let env = f.environment();
    let ctx = lifeboat_runbook::StepContext {
        run_id: RunId::parse("manual-failover").unwrap(),
        kind: RunKind::Failover,
        mode: lifeboat_runbook::Mode::Ungraceful,
        step: "promote".into(),
        attempt: 1,
        from: PRIMARY.into(),
        to: STANDBY.into(),
        epoch: Some(7),
    };
    let out = env.backend.promote(&ctx, true).await.unwrap();
    assert!(out.detail.contains("is the writer"), "{}", out.detail);
    assert_eq!(
        out.replication_lag_ms,
        Some(0),
        "the lag seen before promotion is the data-loss estimate"
    );
    let again = env.backend.promote(&ctx, true).await.unwrap();
    assert!(
        again.detail.contains("already is the writer"),
        "{}",
        again.detail
    );
    {
        let aurora = &f.model.state().aurora;
        assert_eq!(
            aurora.failovers.len(),
            1,
            "a second promote must not call FailoverGlobalCluster again"
        );
        assert_eq!(
            aurora.failovers[0].1,
            Some(true),
            "AllowDataLoss must be set"
        );
        assert!(aurora.failovers[0].0.ends_with(&format!(
            ":cluster:{}",
            f.topology.cluster_id(STANDBY).unwrap()
        )));
        assert!(aurora.switchovers.is_empty());
    }

    // Fencing refuses to go back in time.
    let raise = env.backend.raise_fence(&ctx).await.unwrap();
    assert!(raise.detail.contains("epoch 7"), "{}", raise.detail);
    let old = lifeboat_runbook::StepContext {
        epoch: Some(3),
        ..ctx.clone()
    };
    let err = env.backend.raise_fence(&old).await.unwrap_err();
    assert!(
        err.message.contains("newer than this run's 3"),
        "{}",
        err.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_table_lock_admits_one_of_two_and_epochs_grow() {
    let f = Fixture::create().await;
    let env = f.environment();
    let a = LockOwner::for_this_process(&RunId::parse("run-a").unwrap());
    let b = LockOwner::for_this_process(&RunId::parse("run-b").unwrap());
    let (ra, rb) = tokio::join!(
        env.journal.acquire(&a, Duration::from_secs(30)),
        env.journal.acquire(&b, Duration::from_secs(30))
    );
    assert!(
        ra.is_ok() != rb.is_ok(),
        "exactly one of two concurrent acquisitions succeeds: {ra:?} / {rb:?}"
    );
    let lease = ra.or(rb).unwrap();
    env.journal
        .renew(&lease, Duration::from_secs(30))
        .await
        .unwrap();
    env.journal.release(&lease).await.unwrap();

    let e1 = env
        .journal
        .allocate(&RunId::parse("run-a").unwrap())
        .await
        .unwrap();
    let e1_again = env
        .journal
        .allocate(&RunId::parse("run-a").unwrap())
        .await
        .unwrap();
    let e2 = env
        .journal
        .allocate(&RunId::parse("run-b").unwrap())
        .await
        .unwrap();
    assert_eq!(e1, e1_again, "the same run gets its epoch back");
    assert!(e2 > e1);

    // The published epoch is a floor: a control store already at 41 makes the next allocation 42.
    f.clients.regions[PRIMARY]
        .ssm()
        .put_parameter()
        .name(f.topology.ssm_epoch())
        .value("41")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        env.journal
            .allocate(&RunId::parse("run-c").unwrap())
            .await
            .unwrap(),
        42
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_handler_ignores_recovery_and_switches_over_on_a_standing_alarm() {
    let f = Fixture::create().await;
    let env = f.environment();
    let alarm = f.config.names().health_alarm(PRIMARY);
    let ten_minutes_ago = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);

    let ok = lifeboat_aws_dr::lambda::handle(
        &env,
        &f.settings,
        &fixture::alarm_event(&alarm, "OK", PRIMARY, ten_minutes_ago),
    )
    .await;
    assert_eq!(ok["decision"], "ignore", "{ok}");
    assert_eq!(
        f.param(PRIMARY, &f.topology.ssm_active_region()).await,
        PRIMARY
    );

    // The primary's health alarm really is firing, and has been for ten minutes.
    f.clients.regions[PRIMARY]
        .cloudwatch()
        .set_alarm_state()
        .alarm_name(&alarm)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("health check failing")
        .send()
        .await
        .unwrap();
    // EventBridge starts the region's DR state machine with the event.
    let execution = states::execute(
        &env,
        &f.settings,
        "standing-alarm",
        fixture::alarm_event(&alarm, "ALARM", PRIMARY, ten_minutes_ago),
    )
    .await;
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    assert_eq!(execution.ended_in, "RunSucceeded");
    assert_eq!(execution.output["decision"]["decision"], "act");
    assert_eq!(execution.output["run"]["outcome"], "succeeded");
    assert!(
        execution.entered("BeginFailover").is_empty(),
        "no failover without dr.allow_data_loss"
    );
    assert_eq!(
        f.param(PRIMARY, &f.topology.ssm_active_region()).await,
        STANDBY
    );
    assert_eq!(f.dns_answer().await, STANDBY);

    // The same alarm again: it now belongs to the passive region (traffic left it on purpose), so
    // automation leaves it alone.
    let again = lifeboat_aws_dr::lambda::handle(
        &env,
        &f.settings,
        &fixture::alarm_event(&alarm, "ALARM", PRIMARY, ten_minutes_ago),
    )
    .await;
    assert_eq!(again["decision"], "ignore", "{again}");
}
