//! Durable execution: a run created by `begin` and carried out one stage per `advance` call (as the DR
//! automation's state machine does, one Lambda invocation per call), calls killed anywhere, retried calls,
//! and the lock handed from call to call. In-memory backend, paused virtual time.

#[path = "support/memory_env.rs"]
mod memory_env;

use memory_env::{EAST, Env, WEST, finished_counts};

use std::time::Duration;

use lifeboat_runbook::{
    DrSettings, EngineError, EngineOptions, Journal, JournalEvent, LockOwner, Plan, RunId, RunKind,
    RunOutcome, RunRequest, RunResult, Slice,
};

/// What one call may take here (a Lambda invocation's time left, minus the margin).
const BUDGET: Duration = Duration::from_secs(600);

fn request(kind: RunKind) -> RunRequest {
    let (from, to) = match kind {
        RunKind::Failback => (WEST, EAST),
        _ => (EAST, WEST),
    };
    RunRequest {
        kind,
        from: from.into(),
        to: to.into(),
        settings: DrSettings::default(),
        allow_data_loss: true,
    }
}

/// The owner a state machine execution uses for every call of its run (its token is derived from the
/// execution, so a retried call is the same owner).
fn owner(run: &RunId) -> LockOwner {
    LockOwner {
        run_id: run.clone(),
        token: format!("execution-of-{run}"),
        host: "state-machine".into(),
        pid: 0,
    }
}

/// Calls `advance` until the run ends; returns the result and the steps each call started with.
async fn drive(env: &Env, run: &RunId) -> (RunResult, Vec<Vec<String>>) {
    let owner = owner(run);
    let mut starts = Vec::new();
    for _ in 0..100 {
        match env.engine().advance(run, &owner, BUDGET).await.unwrap() {
            Slice::Continue { next, .. } => starts.push(next),
            Slice::Finished(result) => return (*result, starts),
        }
    }
    panic!("run {run} did not finish in 100 calls");
}

#[tokio::test(start_paused = true)]
async fn each_call_runs_one_stage_and_the_run_ends_as_one_uninterrupted_run_would() {
    for kind in [RunKind::Switchover, RunKind::Failover] {
        let env = Env::new();
        let run = RunId::parse("durable-1").unwrap();
        env.engine()
            .begin(&request(kind), &run, &owner(&run))
            .await
            .unwrap();
        assert!(
            env.backend.calls().is_empty(),
            "begin runs no step: {:?}",
            env.backend.calls()
        );
        let (result, starts) = drive(&env, &run).await;
        assert_eq!(
            result.outcome(),
            RunOutcome::Succeeded,
            "{kind}: {}",
            result.report.message
        );
        let plan = Plan::build(kind, EAST, WEST, &DrSettings::default());
        // The first call runs the first stage; every later call starts where the previous one stopped.
        let expected: Vec<Vec<String>> = plan.stage_ids().into_iter().skip(1).collect();
        assert_eq!(starts, expected, "{kind}");
        let w = env.backend.world();
        assert_eq!(
            (w.active.as_str(), w.writer.as_str(), w.traffic.as_str()),
            (WEST, WEST, WEST)
        );
        assert!(!w.fence_raised);
        let calls = env.backend.call_counts();
        assert!(calls.values().all(|n| *n == 1), "{kind}: {calls:?}");
        let events = env.journal.events(&run);
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, JournalEvent::RunResumed { .. })),
            "uninterrupted calls are one run, not resumes"
        );
        assert!(
            env.coordination.holder().is_none(),
            "the lock is released at the end"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_on_a_finished_run_acts_on_nothing_and_answers_the_same() {
    let env = Env::new();
    let run = RunId::parse("durable-2").unwrap();
    env.engine()
        .begin(&request(RunKind::Switchover), &run, &owner(&run))
        .await
        .unwrap();
    let (first, _) = drive(&env, &run).await;
    let calls = env.backend.call_counts();
    let events = env.journal.events(&run).len();
    let again = env
        .engine()
        .advance(&run, &owner(&run), BUDGET)
        .await
        .unwrap();
    let Slice::Finished(again) = again else {
        panic!("a finished run has nothing to continue");
    };
    assert_eq!(again.outcome(), first.outcome());
    assert_eq!(again.report.rto_ms, first.report.rto_ms);
    assert_eq!(env.backend.call_counts(), calls, "no step ran again");
    assert_eq!(env.journal.events(&run).len(), events, "nothing journaled");
}

#[tokio::test(start_paused = true)]
async fn a_retried_begin_is_the_same_run_and_another_request_under_its_id_is_refused() {
    let env = Env::new();
    let run = RunId::parse("durable-3").unwrap();
    let engine = env.engine();
    engine
        .begin(&request(RunKind::Switchover), &run, &owner(&run))
        .await
        .unwrap();
    // Its answer was lost; the orchestrator calls again with the same input.
    engine
        .begin(&request(RunKind::Switchover), &run, &owner(&run))
        .await
        .unwrap();
    assert_eq!(env.journal.list().await.unwrap(), vec![run.clone()]);
    let other = engine
        .begin(&request(RunKind::Failover), &run, &owner(&run))
        .await;
    assert!(matches!(other, Err(EngineError::Invalid(_))), "{other:?}");
    let (result, _) = drive(&env, &run).await;
    assert_eq!(result.outcome(), RunOutcome::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn between_calls_the_lock_stays_with_the_run() {
    let env = Env::new();
    let run = RunId::parse("durable-4").unwrap();
    env.engine()
        .begin(&request(RunKind::Switchover), &run, &owner(&run))
        .await
        .unwrap();
    let slice = env
        .engine()
        .advance(&run, &owner(&run), BUDGET)
        .await
        .unwrap();
    assert!(matches!(slice, Slice::Continue { .. }));
    // The orchestrator waits (a retry delay, a slow transition) longer than the running lease.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let intruder = env.engine().start(&request(RunKind::Switchover)).await;
    assert!(
        matches!(intruder, Err(EngineError::Locked(_))),
        "another run must not start between two calls of a run: {intruder:?}"
    );
    let (result, _) = drive(&env, &run).await;
    assert_eq!(result.outcome(), RunOutcome::Succeeded);
}

/// Kills the k-th call's process right after journal write `k` of the whole run, then lets the orchestrator
/// retry that call with the same input. Returns `None` once `k` is past the run's last write.
async fn kill_a_call_and_retry(kind: RunKind, k: usize) -> Option<Env> {
    let env = Env::new();
    if kind == RunKind::Failback {
        env.backend.update_world(|w| {
            w.active = WEST.into();
            w.writer = WEST.into();
            w.traffic = WEST.into();
            w.recorded_active = WEST.into();
            w.replica_ok = false;
            w.epoch = 1;
        });
    }
    let run = RunId::parse("durable-kill").unwrap();
    let owner = owner(&run);
    env.journal.crash_after(k);
    let mut killed = false;
    loop {
        let call = async {
            let engine = env.engine();
            if env.journal.list().await.unwrap().is_empty() {
                engine.begin(&request(kind), &run, &owner).await.unwrap();
                None
            } else {
                Some(engine.advance(&run, &owner, BUDGET).await.unwrap())
            }
        };
        let slice = tokio::select! {
            slice = call => slice,
            () = env.journal.crashed() => {
                killed = true;
                // The orchestrator retries the call after its interval.
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        if let Some(Slice::Finished(result)) = slice {
            assert_eq!(
                result.outcome(),
                RunOutcome::Succeeded,
                "{kind} killed at write {k}: {}",
                result.report.message
            );
            break;
        }
    }
    killed.then_some(env)
}

#[tokio::test(start_paused = true)]
async fn a_call_killed_after_any_journal_write_is_retried_and_every_effect_happens_once() {
    for kind in [RunKind::Switchover, RunKind::Failover, RunKind::Failback] {
        let mut kills = 0;
        for k in 0.. {
            let Some(env) = kill_a_call_and_retry(kind, k).await else {
                break;
            };
            kills += 1;
            let run = RunId::parse("durable-kill").unwrap();
            let target = if kind == RunKind::Failback {
                EAST
            } else {
                WEST
            };
            let w = env.backend.world();
            assert_eq!(
                (w.active.as_str(), w.writer.as_str(), w.traffic.as_str()),
                (target, target, target),
                "{kind} killed at write {k}"
            );
            assert!(
                !w.fence_raised,
                "{kind} killed at write {k}: fence left raised"
            );
            let effects = env.backend.effects();
            let mut unique = effects.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique,
                {
                    let mut e = effects.clone();
                    e.sort();
                    e
                },
                "{kind} killed at write {k}: an effect happened twice: {effects:?}"
            );
            let events = env.journal.events(&run);
            let finished = finished_counts(&events);
            assert!(
                finished.values().all(|n| *n == 1),
                "{kind} killed at write {k}: a step finished twice: {finished:?}"
            );
            let ends = events
                .iter()
                .filter(|e| matches!(e, JournalEvent::RunFinished { .. }))
                .count();
            assert_eq!(
                ends, 1,
                "{kind} killed at write {k}: the run finished {ends} times"
            );
            assert!(env.coordination.holder().is_none());
        }
        assert!(
            kills >= 20,
            "{kind}: only {kills} kill points were exercised"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_that_runs_out_of_budget_mid_step_hands_over_and_the_next_call_finishes_the_step() {
    let env = Env::new();
    let run = RunId::parse("durable-5").unwrap();
    env.engine()
        .begin(&request(RunKind::Switchover), &run, &owner(&run))
        .await
        .unwrap();
    // Promote takes 50 s here; calls may take 30 s each.
    env.backend.delay("promote", Duration::from_secs(50));
    let budget = Duration::from_secs(30);
    let mut calls = 0;
    let result = loop {
        calls += 1;
        assert!(calls < 50, "the run does not progress");
        match env
            .engine()
            .advance(&run, &owner(&run), budget)
            .await
            .unwrap()
        {
            Slice::Continue { .. } => {}
            Slice::Finished(result) => break *result,
        }
        if calls == 20 {
            env.backend.delay("promote", Duration::from_secs(1));
        }
    };
    assert_eq!(
        result.outcome(),
        RunOutcome::Succeeded,
        "{}",
        result.report.message
    );
    let events = env.journal.events(&run);
    assert!(
        events.iter().any(
            |e| matches!(e, JournalEvent::RunResumed { owner, .. } if owner.contains("promote"))
        ),
        "the interrupted promote is journaled as taken over"
    );
    assert_eq!(finished_counts(&events).get("promote"), Some(&1));
}

/// Real time: the run's start is a wall-clock instant in its journal (the calls are separate processes).
#[tokio::test]
async fn the_run_bound_counts_across_calls() {
    let env = Env::new();
    let run = RunId::parse("durable-6").unwrap();
    let options = EngineOptions {
        run_timeout: Some(Duration::from_secs(3)),
        ..EngineOptions::default()
    };
    env.engine()
        .with_options(options.clone())
        .begin(&request(RunKind::Switchover), &run, &owner(&run))
        .await
        .unwrap();
    // Every stage fits one call, but together they do not fit the run's bound.
    env.backend
        .delay("prescale-standby", Duration::from_millis(1500));
    env.backend
        .delay("raise-fence", Duration::from_millis(1000));
    env.backend
        .delay("wait-drained", Duration::from_millis(1000));
    let engine = env.engine().with_options(options);
    let result = loop {
        match engine.advance(&run, &owner(&run), BUDGET).await.unwrap() {
            Slice::Continue { .. } => {}
            Slice::Finished(result) => break *result,
        }
    };
    assert_eq!(result.outcome(), RunOutcome::Failed);
    assert!(
        result.report.message.contains("did not finish within 3s"),
        "{}",
        result.report.message
    );
    assert_ne!(env.backend.world().writer, WEST, "promote never ran");
}
