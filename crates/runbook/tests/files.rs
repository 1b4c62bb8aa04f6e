//! The file journal, the file lock/epoch (between threads standing in for processes) and a whole run on
//! files.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use lifeboat_runbook::coordination::LockOwner;
use lifeboat_runbook::journal::list_runs;
use lifeboat_runbook::memory::MemoryBackend;
use lifeboat_runbook::{
    DrSettings, Engine, EpochStore, FileCoordination, FileJournal, FileReportSink, Journal,
    JournalError, JournalEvent, LockError, RunId, RunKind, RunLock, RunOutcome, RunRequest,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn started(run_id: &RunId) -> JournalEvent {
    JournalEvent::RunStarted {
        run_id: run_id.clone(),
        kind: RunKind::Switchover,
        mode: RunKind::Switchover.mode(),
        from: "us-east-1".into(),
        to: "us-west-2".into(),
        stages: vec![vec!["preflight".into()]],
        settings: DrSettings::default(),
        owner: "test".into(),
        backend: "memory".into(),
        at: time::OffsetDateTime::now_utc(),
    }
}

#[tokio::test]
async fn the_file_journal_appends_reads_lists_and_ignores_a_torn_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::new(dir.path().join("runs"));
    assert!(
        journal.list().await.unwrap().is_empty(),
        "a missing root is an empty journal"
    );
    let run = RunId::new(time::OffsetDateTime::now_utc());
    journal.create(&run, &started(&run)).await.unwrap();
    assert!(matches!(
        journal.create(&run, &started(&run)).await,
        Err(JournalError::AlreadyExists(_))
    ));
    let step = JournalEvent::StepStarted {
        step: "preflight".into(),
        attempt: 1,
        at: time::OffsetDateTime::now_utc(),
    };
    journal.append(&run, &step).await.unwrap();
    assert_eq!(
        journal.read(&run).await.unwrap(),
        vec![started(&run), step.clone()]
            .into_iter()
            .map(|e| match e {
                JournalEvent::RunStarted { .. } => journal_first(&journal, &run),
                other => other,
            })
            .collect::<Vec<_>>()
    );

    // A crash in the middle of a write leaves an unterminated line: it is not an event.
    let path = journal.run_dir(&run).join("events.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"event\":\"step-fin");
    std::fs::write(&path, text).unwrap();
    assert_eq!(journal.read(&run).await.unwrap().len(), 2);

    let summaries = list_runs(&journal).await.unwrap();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].outcome, RunOutcome::Interrupted);
    assert_eq!((summaries[0].steps_done, summaries[0].steps_total), (0, 1));

    let unknown = RunId::parse("nope").unwrap();
    assert!(matches!(
        journal.read(&unknown).await,
        Err(JournalError::UnknownRun(_))
    ));
    assert!(matches!(
        journal.append(&unknown, &step).await,
        Err(JournalError::UnknownRun(_))
    ));
}

fn journal_first(journal: &FileJournal, run: &RunId) -> JournalEvent {
    let text = std::fs::read_to_string(journal.run_dir(run).join("events.jsonl")).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

#[test]
fn of_many_simultaneous_acquirers_of_the_file_lock_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let contenders = 8;
    let barrier = Arc::new(Barrier::new(contenders));
    let handles: Vec<_> = (0..contenders)
        .map(|i| {
            let coordination = FileCoordination::new(dir.path());
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let run = RunId::parse(&format!("run-{i}")).unwrap();
                let owner = LockOwner::for_this_process(&run);
                barrier.wait();
                runtime().block_on(coordination.acquire(&owner, Duration::from_secs(30)))
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(LockError::Held { .. })))
    );
}

#[test]
fn file_epochs_from_concurrent_allocators_are_distinct_and_each_run_gets_one() {
    let dir = tempfile::tempdir().unwrap();
    let threads = 4;
    let per_thread = 15;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let coordination = FileCoordination::new(dir.path());
            std::thread::spawn(move || {
                let rt = runtime();
                let mut mine = Vec::new();
                for n in 0..per_thread {
                    let run = RunId::parse(&format!("t{t}-r{n}")).unwrap();
                    mine.push(rt.block_on(coordination.allocate(&run)).unwrap());
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        let mine = h.join().unwrap();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "each caller sees strictly increasing epochs: {mine:?}"
        );
        all.extend(mine);
    }
    all.sort_unstable();
    let count = all.len();
    all.dedup();
    assert_eq!(all.len(), count, "no epoch was handed out twice");
    let coordination = FileCoordination::new(dir.path());
    let rt = runtime();
    assert_eq!(rt.block_on(coordination.current()).unwrap(), count as u64);
    // The latest run asking again gets the same epoch (a crash before journaling it burns none).
    let run = RunId::parse("again").unwrap();
    let epoch = rt.block_on(coordination.allocate(&run)).unwrap();
    assert_eq!(epoch, count as u64 + 1);
    assert_eq!(rt.block_on(coordination.allocate(&run)).unwrap(), epoch);
}

#[tokio::test]
async fn the_file_lock_renews_releases_and_takes_over_expired_or_dead_holders() {
    let dir = tempfile::tempdir().unwrap();
    let coordination = FileCoordination::new(dir.path());
    let a = LockOwner::for_this_process(&RunId::parse("a").unwrap());
    let b = LockOwner::for_this_process(&RunId::parse("b").unwrap());
    let lease = coordination
        .acquire(&a, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(matches!(
        coordination.acquire(&b, Duration::from_secs(30)).await,
        Err(LockError::Held { .. })
    ));
    let renewed = coordination
        .renew(&lease, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(renewed.expires_at >= lease.expires_at);
    coordination.release(&renewed).await.unwrap();
    let lease_b = coordination
        .acquire(&b, Duration::from_millis(50))
        .await
        .unwrap();
    assert!(matches!(
        coordination.renew(&lease, Duration::from_secs(1)).await,
        Err(LockError::Lost { .. })
    ));
    tokio::time::sleep(Duration::from_millis(80)).await;
    coordination
        .acquire(&a, Duration::from_secs(30))
        .await
        .expect("an expired lease can be taken over");
    assert!(matches!(
        coordination.renew(&lease_b, Duration::from_secs(1)).await,
        Err(LockError::Lost { .. })
    ));

    // A holder whose process is gone (pid that does not exist on this host) does not block.
    let mut dead = LockOwner::for_this_process(&RunId::parse("dead").unwrap());
    dead.pid = u32::MAX - 1;
    let other_dir = tempfile::tempdir().unwrap();
    let other = FileCoordination::new(other_dir.path());
    other
        .acquire(&dead, Duration::from_secs(300))
        .await
        .unwrap();
    other
        .acquire(&b, Duration::from_secs(30))
        .await
        .expect("a dead holder's lease is taken over");
}

#[tokio::test]
async fn a_whole_run_on_files_leaves_a_journal_a_report_and_a_listing() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MemoryBackend::new("us-east-1", "us-west-2");
    let journal = FileJournal::new(dir.path().join("runs"));
    let coordination = FileCoordination::new(dir.path());
    let reports = FileReportSink::new(dir.path().join("runs"));
    let engine = Engine::new(&backend, &journal, &coordination, &coordination, &reports);
    let request = RunRequest {
        kind: RunKind::Switchover,
        from: "us-east-1".into(),
        to: "us-west-2".into(),
        settings: DrSettings::default(),
        allow_data_loss: false,
    };
    let result = engine.start(&request).await.unwrap();
    assert_eq!(result.outcome(), RunOutcome::Succeeded);
    let location = result.report_location.unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&location).unwrap()).unwrap();
    assert_eq!(report["outcome"], "succeeded");
    assert_eq!(report["steps"].as_array().unwrap().len(), 10);
    assert_eq!(report["rpo"]["estimated_loss_window_ms"], 0);
    assert!(report["rto_ms"].as_u64().is_some());
    let text =
        std::fs::read_to_string(std::path::Path::new(&location).with_file_name("report.txt"))
            .unwrap();
    assert!(
        text.starts_with("switchover us-east-1 → us-west-2: succeeded"),
        "{text}"
    );
    let runs = list_runs(&journal).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].outcome, runs[0].steps_done, runs[0].epoch),
        (RunOutcome::Succeeded, 10, Some(1))
    );
    assert!(
        coordination.current_lease().unwrap().is_none(),
        "the lock was released"
    );
    // Every line of the journal is one JSON event.
    let events =
        std::fs::read_to_string(journal.run_dir(&runs[0].run_id).join("events.jsonl")).unwrap();
    for line in events.lines() {
        serde_json::from_str::<JournalEvent>(line).unwrap();
    }
}

#[tokio::test]
async fn a_holder_killed_and_left_a_zombie_does_not_block_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let coordination = FileCoordination::new(dir.path());
    // A child that exits at once and is not reaped while we look: a zombie with a real pid.
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut holder = LockOwner::for_this_process(&RunId::parse("killed").unwrap());
    holder.pid = child.id();
    coordination
        .acquire(&holder, Duration::from_secs(300))
        .await
        .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap_or_default();
    assert!(
        status.contains(") Z"),
        "the child should be a zombie now: {status}"
    );
    let other = LockOwner::for_this_process(&RunId::parse("resumer").unwrap());
    coordination
        .acquire(&other, Duration::from_secs(30))
        .await
        .expect("a zombie holder's lease is taken over");
    let _ = child.wait();
}
