//! The engine against the in-memory backend, journal and coordination, in paused virtual time.

#[path = "support/memory_env.rs"]
mod memory_env;

use memory_env::{EAST, Env, WEST, finished_counts};

use std::time::Duration;

use lifeboat_runbook::backend::{BackendError, BackendErrorKind};
use lifeboat_runbook::journal::{RunState, StepOutcome};
use lifeboat_runbook::{
    DrSettings, EngineError, EpochStore, Journal, JournalEvent, Plan, RunId, RunKind, RunOutcome,
    RunRequest, RunResult,
};

impl Env {
    async fn run(&self, kind: RunKind, from: &str, to: &str) -> Result<RunResult, EngineError> {
        self.engine().start(&request(kind, from, to)).await
    }

    async fn only_run(&self) -> RunId {
        let runs = self.journal.list().await.unwrap();
        assert_eq!(runs.len(), 1, "expected exactly one run, got {runs:?}");
        runs[0].clone()
    }
}

fn request(kind: RunKind, from: &str, to: &str) -> RunRequest {
    RunRequest {
        kind,
        from: from.into(),
        to: to.into(),
        settings: DrSettings::default(),
        allow_data_loss: true,
    }
}

fn step_order(events: &[JournalEvent]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for e in events {
        if let JournalEvent::StepStarted { step, .. } = e
            && !order.contains(step)
        {
            order.push(step.clone());
        }
    }
    order
}

fn assert_moved_to(env: &Env, region: &str) {
    let w = env.backend.world();
    assert_eq!(w.active, region, "control state active region");
    assert_eq!(w.writer, region, "database writer");
    assert_eq!(w.traffic, region, "traffic");
    assert_eq!(w.recorded_active, region, "recorded active region");
    assert!(!w.fence_raised, "fence must be lowered at the end");
}

#[tokio::test(start_paused = true)]
async fn switchover_runs_every_step_in_plan_order_and_moves_every_piece() {
    let env = Env::new();
    let result = env.run(RunKind::Switchover, EAST, WEST).await.unwrap();
    assert_eq!(
        result.outcome(),
        RunOutcome::Succeeded,
        "{}",
        result.report.message
    );
    assert_moved_to(&env, WEST);
    let run = env.only_run().await;
    let events = env.journal.events(&run);
    let plan = Plan::build(RunKind::Switchover, EAST, WEST, &DrSettings::default());
    let expected: Vec<String> = plan.step_ids().into_iter().map(String::from).collect();
    let order = step_order(&events);
    // The last stage runs notify and record-active-region together; everything before is strictly ordered.
    assert_eq!(order[..8], expected[..8]);
    let mut tail = order[8..].to_vec();
    tail.sort();
    assert_eq!(tail, ["notify", "record-active-region"]);
    assert_eq!(
        env.backend.effects(),
        [
            "prescale us-west-2",
            "raise-fence us-east-1 epoch 1",
            "promote us-west-2",
            "shift-traffic us-west-2",
            "lower-fence us-west-2 epoch 1",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(env.backend.effects().into_iter().skip(5))
        .collect::<Vec<_>>()
    );
    assert!(env.backend.effects().contains(&"notify".to_string()));
    assert!(
        env.backend
            .effects()
            .contains(&"record-active-region us-west-2".to_string())
    );
    assert_eq!(env.backend.world().epoch, 1);

    let report = &result.report;
    assert_eq!(report.steps.len(), expected.len());
    assert!(
        report
            .steps
            .iter()
            .all(|s| s.outcome == "succeeded" && s.attempts == 1),
        "{:?}",
        report.steps
    );
    assert!(
        report.rto_ms.is_some(),
        "RTO is measured from the verify step"
    );
    assert_eq!(report.rpo.estimated_loss_window_ms, Some(0));
    assert_eq!(report.epoch, Some(1));
    let before = report.readiness_before.as_ref().expect("readiness before");
    assert_eq!(before.verdict.as_ref().unwrap().label(), "READY");
    let after = report.readiness_after.as_ref().expect("readiness after");
    assert_eq!(
        after.readiness.region(WEST).unwrap().dns_target.as_deref(),
        Some(WEST)
    );
    let text = report.render_text();
    assert!(
        text.contains("RTO:") && text.contains("RPO:") && text.contains("wait-drained"),
        "{text}"
    );
    assert_eq!(env.reports.reports().len(), 1);
    assert!(
        env.coordination.holder().is_none(),
        "the lock is released at the end"
    );
    let notification = &env.backend.world().notifications[0];
    assert!(notification.message.contains(run.as_str()));
}

#[tokio::test(start_paused = true)]
async fn steps_of_a_parallel_stage_overlap_and_the_stage_takes_as_long_as_the_slowest() {
    let env = Env::new();
    env.backend
        .delay("prescale-standby", Duration::from_secs(4));
    env.backend.delay("raise-fence", Duration::from_secs(4));
    let start = tokio::time::Instant::now();
    let result = env.run(RunKind::Failover, EAST, WEST).await.unwrap();
    assert_eq!(
        result.outcome(),
        RunOutcome::Succeeded,
        "{}",
        result.report.message
    );
    let events = env.journal.events(&env.only_run().await);
    let position = |pred: &dyn Fn(&JournalEvent) -> bool| events.iter().position(pred).unwrap();
    let started = |name: &str| {
        let name = name.to_owned();
        position(&move |e| matches!(e, JournalEvent::StepStarted { step, .. } if *step == name))
    };
    let finished = |name: &str| {
        let name = name.to_owned();
        position(&move |e| matches!(e, JournalEvent::StepFinished { step, .. } if *step == name))
    };
    assert!(started("raise-fence") < finished("prescale-standby"));
    assert!(started("prescale-standby") < finished("raise-fence"));
    // 4 s for the parallel stage plus the 1 s write lease; sequential would be at least 9 s.
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "took {:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_is_retried_with_backoff_and_journaled() {
    let env = Env::new();
    env.backend.fail(
        "shift-traffic",
        2,
        BackendError::unavailable("route 53 throttled"),
    );
    let result = env.run(RunKind::Switchover, EAST, WEST).await.unwrap();
    assert_eq!(result.outcome(), RunOutcome::Succeeded);
    let step = result
        .report
        .steps
        .iter()
        .find(|s| s.id == "shift-traffic")
        .unwrap();
    assert_eq!(step.attempts, 3);
    let events = env.journal.events(&env.only_run().await);
    let retries: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            JournalEvent::StepAttemptFailed {
                step,
                retry_in_ms,
                error,
                ..
            } if step == "shift-traffic" => {
                assert!(error.contains("throttled"));
                Some(*retry_in_ms)
            }
            _ => None,
        })
        .collect();
    assert_eq!(retries, [1000, 2000], "backoff doubles");
    assert_eq!(env.backend.call_counts()["shift-traffic"], 3);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_exceeds_its_timeout_is_abandoned_and_retried() {
    let env = Env::new();
    env.backend
        .hang("lower-fence", 1, Duration::from_secs(3600));
    let result = env.run(RunKind::Switchover, EAST, WEST).await.unwrap();
    assert_eq!(result.outcome(), RunOutcome::Succeeded);
    let events = env.journal.events(&env.only_run().await);
    assert!(events.iter().any(|e| matches!(e,
        JournalEvent::StepAttemptFailed { step, error, .. } if step == "lower-fence" && error.contains("timed out after 30"))));
    assert_eq!(
        result
            .report
            .steps
            .iter()
            .find(|s| s.id == "lower-fence")
            .unwrap()
            .attempts,
        2
    );
    assert_moved_to(&env, WEST);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_step_is_not_retried_pauses_the_run_and_resume_finishes_it() {
    let env = Env::new();
    env.backend.fail(
        "promote",
        1,
        BackendError::rejected("global cluster is modifying"),
    );
    let result = env.run(RunKind::Switchover, EAST, WEST).await.unwrap();
    assert_eq!(result.outcome(), RunOutcome::Failed);
    assert!(
        result
            .report
            .message
            .contains("promote: global cluster is modifying"),
        "{}",
        result.report.message
    );
    assert!(result.report.message.contains("lifeboat resume"));
    assert_eq!(env.backend.call_counts()["promote"], 1);
    assert!(!env.backend.call_counts().contains_key("shift-traffic"));
    let w = env.backend.world();
    assert!(
        w.fence_raised,
        "the run stopped with writes fenced, as journaled"
    );
    assert!(
        env.coordination.holder().is_none(),
        "a failed run releases the lock"
    );

    let run = env.only_run().await;
    let resumed = env.engine().resume(&run).await.unwrap();
    assert_eq!(
        resumed.outcome(),
        RunOutcome::Succeeded,
        "{}",
        resumed.report.message
    );
    assert_moved_to(&env, WEST);
    let calls = env.backend.call_counts();
    for step in ["prescale-standby", "raise-fence", "wait-drained"] {
        assert_eq!(
            calls[step], 1,
            "{step} finished before the failure and must not run again"
        );
    }
    assert_eq!(calls["promote"], 2);
    let state = RunState::from_events(&env.journal.events(&run)).unwrap();
    assert_eq!(state.epoch, Some(1), "resume keeps the run's epoch");
    assert_eq!(env.coordination.current().await.unwrap(), 1);
    assert!(matches!(
        env.engine().resume(&run).await,
        Err(EngineError::NothingToResume { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn failover_skips_steps_that_need_the_lost_region_and_reports_the_loss_window() {
    let env = Env::new();
    env.backend.update_world(|w| {
        w.unreachable.insert(EAST.into());
        w.replication_lag_ms = 1500;
    });
    let result = env.run(RunKind::Failover, EAST, WEST).await.unwrap();
    assert_eq!(
        result.outcome(),
        RunOutcome::Succeeded,
        "{}",
        result.report.message
    );
    let fence = result
        .report
        .steps
        .iter()
        .find(|s| s.id == "raise-fence")
        .unwrap();
    assert_eq!(fence.outcome, "skipped");
    assert_eq!(fence.attempts, 1, "a skippable step gets one short attempt");
    assert!(
        fence.detail.contains("us-east-1 is unreachable"),
        "{}",
        fence.detail
    );
    assert_eq!(result.report.rpo.estimated_loss_window_ms, Some(1500));
    assert!(result.report.rpo.basis.contains("promote"));
    let w = env.backend.world();
    assert_eq!(w.writer, WEST);
    assert_eq!(w.active, WEST);
    assert_eq!(
        w.epoch, 1,
        "the new epoch is published in the surviving region"
    );
    assert!(
        !w.replica_ok,
        "the lost region is detached until failback re-protects it"
    );
    assert!(
        result
            .report
            .render_text()
            .contains("1.500s estimated data-loss window")
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_step_that_the_surviving_region_needs_fails_a_failover() {
    let env = Env::new();
    env.backend.update_world(|w| {
        w.unreachable.insert(EAST.into());
    });
    env.backend
        .fail("promote", 5, BackendError::rejected("not allowed"));
    let result = env.run(RunKind::Failover, EAST, WEST).await.unwrap();
    assert_eq!(result.outcome(), RunOutcome::Failed);
    assert_eq!(
        result
            .report
            .steps
            .iter()
            .find(|s| s.id == "promote")
            .unwrap()
            .outcome,
        "failed"
    );
}

#[tokio::test(start_paused = true)]
async fn failover_is_refused_without_permission_and_nothing_is_journaled() {
    let env = Env::new();
    let mut req = request(RunKind::Failover, EAST, WEST);
    req.allow_data_loss = false;
    let err = env.engine().start(&req).await.unwrap_err();
    assert!(matches!(err, EngineError::Refused(_)));
    assert!(err.to_string().contains("--allow-data-loss"), "{err}");
    assert!(env.journal.list().await.unwrap().is_empty());
    assert!(env.backend.calls().is_empty());
    // The configuration can give the permission instead of the flag.
    req.settings.allow_data_loss = true;
    assert!(env.engine().start(&req).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_standby_that_is_not_ready_refuses_the_switchover_before_anything_changes() {
    let env = Env::new();
    env.backend.update_world(|w| w.replication_lag_ms = 9000);
    let result = env.run(RunKind::Switchover, EAST, WEST).await.unwrap();
    assert_eq!(result.outcome(), RunOutcome::Refused);
    assert!(
        result.report.message.contains("9000 ms"),
        "{}",
        result.report.message
    );
    assert!(env.backend.effects().is_empty());
    assert_eq!(
        env.coordination.current().await.unwrap(),
        0,
        "no epoch is spent on a refused run"
    );
}

#[tokio::test(start_paused = true)]
async fn bad_regions_are_invalid() {
    let env = Env::new();
    assert!(matches!(
        env.run(RunKind::Switchover, EAST, EAST).await,
        Err(EngineError::Invalid(_))
    ));
    assert!(matches!(
        env.run(RunKind::Switchover, EAST, "eu-west-1").await,
        Err(EngineError::Invalid(_))
    ));
}

/// Kills the run right after journal write `k` (the process dies there), then resumes it in a new engine.
async fn crash_and_resume(
    kind: RunKind,
    from: &str,
    to: &str,
    k: usize,
    prepare: &dyn Fn(&Env),
) -> Option<Env> {
    let env = Env::new();
    prepare(&env);
    env.journal.crash_after(k);
    let finished = tokio::select! {
        result = env.run(kind, from, to) => Some(result.unwrap()),
        () = env.journal.crashed() => None,
    };
    if let Some(result) = finished {
        // k is past the run's last write: nothing to resume.
        assert_eq!(result.outcome(), RunOutcome::Succeeded);
        return None;
    }
    let runs = env.journal.list().await.unwrap();
    if runs.is_empty() {
        return Some(env); // died before the run existed: nothing happened
    }
    let resumed = env.engine().resume(&runs[0]).await.unwrap();
    assert_eq!(
        resumed.outcome(),
        RunOutcome::Succeeded,
        "after crash at write {k}: {}",
        resumed.report.message
    );
    Some(env)
}

#[tokio::test(start_paused = true)]
async fn a_switchover_killed_after_any_journal_write_is_finished_by_resume_with_each_effect_once() {
    let mut boundaries_between_steps = 0;
    for k in 0.. {
        let Some(env) = crash_and_resume(RunKind::Switchover, EAST, WEST, k, &|_| {}).await else {
            break;
        };
        let runs = env.journal.list().await.unwrap();
        if runs.is_empty() {
            assert!(env.backend.calls().is_empty());
            continue;
        }
        assert_moved_to(&env, WEST);
        let effects = env.backend.effects();
        let mut unique = effects.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            effects.len(),
            "crash at write {k}: an effect happened twice: {effects:?}"
        );
        assert_eq!(
            effects.len(),
            7,
            "crash at write {k}: every effect happened: {effects:?}"
        );
        let events = env.journal.events(&runs[0]);
        let finished = finished_counts(&events);
        assert!(
            finished.values().all(|n| *n == 1),
            "crash at write {k}: a step finished twice: {finished:?}"
        );
        assert_eq!(finished.len(), 10);
        let epochs = events
            .iter()
            .filter(|e| matches!(e, JournalEvent::EpochAllocated { .. }))
            .count();
        assert!(
            epochs <= 1,
            "crash at write {k}: the epoch was allocated {epochs} times"
        );
        assert_eq!(env.backend.world().epoch, 1);

        // A crash right after a step's end event is a boundary between two steps: nothing runs twice.
        // Writes 0..k happened before the crash; events[k - 1] is the last one.
        let at_boundary = matches!(
            events.get(k.wrapping_sub(1)),
            Some(JournalEvent::StepFinished { .. }) | Some(JournalEvent::EpochAllocated { .. })
        );
        if at_boundary {
            boundaries_between_steps += 1;
            let calls = env.backend.call_counts();
            assert!(
                calls.values().all(|n| *n == 1),
                "crash at boundary write {k}: {calls:?}"
            );
        }
    }
    assert!(
        boundaries_between_steps >= 9,
        "only {boundaries_between_steps} step boundaries were exercised"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failover_and_a_failback_killed_anywhere_are_finished_by_resume() {
    let lost = |env: &Env| {
        env.backend.update_world(|w| {
            w.unreachable.insert(EAST.into());
            w.replication_lag_ms = 200;
        })
    };
    let mut cases = 0;
    for k in 0.. {
        let Some(env) = crash_and_resume(RunKind::Failover, EAST, WEST, k, &lost).await else {
            break;
        };
        if !env.journal.list().await.unwrap().is_empty() {
            let w = env.backend.world();
            assert_eq!(
                (w.writer.as_str(), w.active.as_str(), w.traffic.as_str()),
                (WEST, WEST, WEST),
                "failover crash at {k}"
            );
            cases += 1;
        }
    }
    assert!(cases > 10);
    let after_failover = |env: &Env| {
        env.backend.update_world(|w| {
            w.active = WEST.into();
            w.writer = WEST.into();
            w.traffic = WEST.into();
            w.recorded_active = WEST.into();
            w.replica_ok = false;
            w.epoch = 1;
        })
    };
    for k in 0.. {
        let Some(env) = crash_and_resume(RunKind::Failback, WEST, EAST, k, &after_failover).await
        else {
            break;
        };
        if !env.journal.list().await.unwrap().is_empty() {
            assert_moved_to(&env, EAST);
            assert!(env.backend.world().replica_ok);
            let reprotects = env
                .backend
                .effects()
                .iter()
                .filter(|e| e.starts_with("reprotect"))
                .count();
            assert_eq!(reprotects, 1, "failback crash at {k}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn of_two_concurrent_runs_exactly_one_proceeds() {
    let env = Env::new();
    // Long enough that the runs overlap: the first holds the lock while the second asks for it.
    env.backend
        .delay("prescale-standby", Duration::from_secs(1));
    let (a, b) = tokio::join!(
        env.run(RunKind::Switchover, EAST, WEST),
        env.run(RunKind::Switchover, EAST, WEST)
    );
    let (ok, locked): (Vec<_>, Vec<_>) = [a, b].into_iter().partition(Result::is_ok);
    assert_eq!(ok.len(), 1);
    assert_eq!(locked.len(), 1);
    let err = locked.into_iter().next().unwrap().unwrap_err();
    assert!(matches!(err, EngineError::Locked(_)), "{err}");
    assert!(err.to_string().contains("locked by run"), "{err}");
    assert_eq!(
        env.journal.list().await.unwrap().len(),
        1,
        "the refused run left no journal"
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_keeps_its_lease_alive_while_it_is_long() {
    let env = Env::new();
    // Much longer than the 30 s lease: renewal must keep the lock ours (another run would be refused).
    env.backend
        .delay("prescale-standby", Duration::from_secs(200));
    let (result, other) = tokio::join!(env.run(RunKind::Switchover, EAST, WEST), async {
        tokio::time::sleep(Duration::from_secs(150)).await;
        env.run(RunKind::Switchover, EAST, WEST).await
    });
    assert_eq!(result.unwrap().outcome(), RunOutcome::Succeeded);
    assert!(matches!(other, Err(EngineError::Locked(_))));
}

#[tokio::test(start_paused = true)]
async fn the_epoch_strictly_increases_at_every_role_change() {
    let env = Env::new();
    let mut epochs = Vec::new();
    for (kind, from, to) in [
        (RunKind::Switchover, EAST, WEST),
        (RunKind::Switchover, WEST, EAST),
        (RunKind::Failover, EAST, WEST),
        (RunKind::Failback, WEST, EAST),
    ] {
        let result = env.run(kind, from, to).await.unwrap();
        assert_eq!(
            result.outcome(),
            RunOutcome::Succeeded,
            "{kind}: {}",
            result.report.message
        );
        epochs.push((result.report.epoch.unwrap(), env.backend.world().epoch));
    }
    assert_eq!(epochs, [(1, 1), (2, 2), (3, 3), (4, 4)]);
}

#[tokio::test(start_paused = true)]
async fn the_fence_refuses_to_go_back_to_an_older_epoch() {
    let env = Env::new();
    env.backend.update_world(|w| w.epoch = 7);
    let result = env.run(RunKind::Switchover, EAST, WEST).await.unwrap();
    assert_eq!(result.outcome(), RunOutcome::Failed);
    let step = result
        .report
        .steps
        .iter()
        .find(|s| s.id == "raise-fence")
        .unwrap();
    assert!(step.detail.contains("newer than 1"), "{}", step.detail);
    assert_eq!(step.attempts, 1, "a rejection is not retried");
    assert!(!env.backend.world().fence_raised);
}

#[tokio::test(start_paused = true)]
async fn failback_reprotects_the_old_primary_then_switches_back() {
    let env = Env::new();
    env.backend.update_world(|w| {
        w.unreachable.insert(EAST.into());
    });
    assert_eq!(
        env.run(RunKind::Failover, EAST, WEST)
            .await
            .unwrap()
            .outcome(),
        RunOutcome::Succeeded
    );
    // The old region is back, but its database no longer replicates.
    env.backend.update_world(|w| {
        w.unreachable.clear();
    });
    let result = env.run(RunKind::Failback, WEST, EAST).await.unwrap();
    assert_eq!(
        result.outcome(),
        RunOutcome::Succeeded,
        "{}",
        result.report.message
    );
    assert_moved_to(&env, EAST);
    assert!(
        env.backend.world().replica_ok,
        "the other region replicates again"
    );
    let first = &result.report.steps[0];
    assert_eq!(first.id, "preflight-failback");
    assert!(
        first.detail.contains("re-protected first"),
        "{}",
        first.detail
    );
    assert!(
        env.backend
            .effects()
            .contains(&"reprotect us-east-1".to_string())
    );
    let after = result
        .report
        .readiness_after
        .as_ref()
        .unwrap()
        .verdict
        .as_ref()
        .unwrap();
    assert!(
        after.ready,
        "after failback the environment is protected again: {:?}",
        after.reasons
    );
}

#[tokio::test(start_paused = true)]
async fn verify_that_never_succeeds_fails_the_run_with_no_rto() {
    let env = Env::new();
    env.backend.fail(
        "verify",
        10,
        BackendError::new(BackendErrorKind::NotYet, "checkout answered 503"),
    );
    let result = env.run(RunKind::Switchover, EAST, WEST).await.unwrap();
    assert_eq!(result.outcome(), RunOutcome::Failed);
    assert_eq!(result.report.rto_ms, None);
    let verify = result
        .report
        .steps
        .iter()
        .find(|s| s.id == "verify")
        .unwrap();
    assert_eq!((verify.outcome.as_str(), verify.attempts), ("failed", 5));
    assert_eq!(
        result
            .report
            .steps
            .iter()
            .find(|s| s.id == "notify")
            .unwrap()
            .outcome,
        "not-run"
    );
    assert!(result.report.render_text().contains("RTO: not measured"));
    let after = result
        .report
        .readiness_after
        .as_ref()
        .expect("a failed run reports readiness after too");
    assert!(after.readiness.region(EAST).is_some());
    let finished = RunState::from_events(&env.journal.events(&env.only_run().await)).unwrap();
    assert!(matches!(
        finished.finished["verify"].outcome,
        StepOutcome::Failed { .. }
    ));
}
