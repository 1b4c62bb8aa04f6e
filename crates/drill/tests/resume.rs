//! `kill -9` of `lifeboat` itself at each step boundary of a local switchover under load: `lifeboat resume`
//! finishes the switchover, and the client ledger still checks out against the new primary.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use lifeboat_drill::ledger::Client;
use lifeboat_drill::load::{Load, LoadConfig, catalog};
use lifeboat_drill::verify;
use lifeboat_local::events;
use support::{TestRuntime, text};

/// The switchover's steps that act on the runtime, in order (the runbook crate's plan). `preflight` only
/// reads and writes no event of its own; the boundary after it is the start of `prescale-standby`, which the
/// first kill (at the end of `prescale-standby`) covers together with its own end.
const STEPS: [&str; 9] = [
    "prescale-standby",
    "raise-fence",
    "wait-drained",
    "promote",
    "shift-traffic",
    "lower-fence",
    "verify",
    "notify",
    "record-active-region",
];

#[test]
fn a_switchover_killed_at_every_step_boundary_is_finished_by_resume() {
    let rt = TestRuntime::up();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = rt.runtime();
    let front_door = runtime.front_door_url();
    let products = tokio
        .block_on(catalog(&front_door, 3))
        .expect("the catalog through the front door");

    // Kill after step k finished, for every boundary but the last (after the last step there is nothing
    // left to resume).
    for (boundary, step) in STEPS.iter().enumerate().take(STEPS.len() - 1) {
        let before = tokio
            .block_on(runtime.control().state())
            .expect("control state");
        let tag = format!(
            "resume-{boundary}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let _guard = tokio.enter();
        let load = Load::start(LoadConfig::new(
            &front_door,
            30.0,
            &tag,
            Client::FrontDoor,
            products.clone(),
        ))
        .unwrap();
        std::thread::sleep(Duration::from_millis(500));

        let since = events::now_ms();
        let mut switchover = rt
            .command()
            .args(["switchover", "--target", "local", "--yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting lifeboat switchover");
        // Wait for the boundary: this step's end in the event log.
        let deadline = Instant::now() + Duration::from_secs(60);
        let run_id = loop {
            let finished = runtime
                .events()
                .read_since(since)
                .unwrap()
                .into_iter()
                .find(|e| e.kind == events::KIND_STEP_FINISHED && e.step.as_deref() == Some(step));
            if let Some(e) = finished {
                break e.run_id.expect("step events carry their run id");
            }
            if let Ok(Some(status)) = switchover.try_wait() {
                panic!("the switchover exited ({status}) before step {step} finished");
            }
            assert!(
                Instant::now() < deadline,
                "step {step} did not finish within 60 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        switchover.kill().expect("kill -9 of lifeboat"); // SIGKILL
        let _ = switchover.wait();

        let resumed = rt.lifeboat(&["resume", "--target", "local", &run_id]);
        assert!(
            resumed.status.success(),
            "resume after a kill at the end of {step} failed:\n{}",
            text(&resumed)
        );

        let after = tokio
            .block_on(runtime.control().state())
            .expect("control state");
        assert_ne!(
            after.active_region, before.active_region,
            "after {step}: the switchover did not complete"
        );
        assert!(!after.fence_raised, "after {step}: the fence is still up");
        assert!(after.epoch > before.epoch);

        // Writes come back, then the ledger is checked against the new primary.
        std::thread::sleep(Duration::from_millis(1000));
        load.stop_now();
        let ledger = tokio.block_on(load.finish());
        let stored = tokio
            .block_on(verify::stored_orders(
                &runtime.admin_db_url(&after.active_region).unwrap(),
                &format!("{tag}-"),
            ))
            .unwrap();
        let step_events = runtime.events().read_since(since).unwrap();
        let fence = lifeboat_drill::run::fence_instant(&step_events, since as i64, after.epoch);
        assert!(
            fence.is_some(),
            "after {step}: no raise-fence step in the event log"
        );
        let v = verify::check(&ledger, &stored, fence.as_slice());
        assert!(v.acknowledged > 0, "after {step}: nothing was acknowledged");
        assert!(v.passed(), "after a kill at the end of {step}: {v:?}");
        let after_recovery = ledger.acks.iter().any(|a| a.region == after.active_region);
        assert!(
            after_recovery,
            "after {step}: no checkout succeeded on the new primary"
        );
    }
    rt.down_and_check_clean();
}
