//! The DR automation policy fed the documented EventBridge alarm-state-change events.

use lifeboat_runbook::memory::MemoryBackend;
use lifeboat_runbook::policy::{AlarmEvent, Decision, PolicyInput, decide, parse_alarm_timestamp};
use lifeboat_runbook::{DrBackend, DrSettings, Readiness, RunKind};
use time::macros::datetime;

const ALARM: &str = include_str!("fixtures/alarm-primary-health-alarm.json");
const OK: &str = include_str!("fixtures/alarm-primary-health-ok.json");
const UNRELATED: &str = include_str!("fixtures/alarm-unrelated-alarm.json");
const STANDBY: &str = include_str!("fixtures/alarm-standby-health-alarm.json");

/// The alarms watching the active region (us-east-1 here): the standby's alarm is not one of them.
fn health_alarms() -> Vec<String> {
    vec!["lifeboat-dev-storefront-5xx-primary".into()]
}

async fn readiness(prepare: impl FnOnce(&MemoryBackend)) -> Readiness {
    let backend = MemoryBackend::new("us-east-1", "us-west-2");
    backend.update_world(|w| {
        w.alarms.insert(
            "us-east-1".into(),
            vec!["lifeboat-dev-storefront-5xx-primary".into()],
        );
    });
    prepare(&backend);
    backend.readiness().await.unwrap()
}

fn decide_at(
    event: &str,
    settings: &DrSettings,
    readiness: &Readiness,
    now: time::OffsetDateTime,
    last: Option<time::OffsetDateTime>,
) -> Decision {
    let event = AlarmEvent::from_json(event).unwrap();
    let alarms = health_alarms();
    decide(
        &event,
        &PolicyInput {
            settings,
            primary_health_alarms: &alarms,
            active_region: "us-east-1",
            readiness,
            last_run_started_at: last,
            now,
        },
    )
}

// The fixture's alarm entered ALARM at 10:04:40.985.
const LONG_AFTER: time::OffsetDateTime = datetime!(2026-11-25 10:08:00 UTC);

#[tokio::test]
async fn a_primary_health_alarm_held_long_enough_with_a_ready_standby_acts_with_a_switchover() {
    let settings = DrSettings::default();
    let r = readiness(|_| {}).await;
    let decision = decide_at(ALARM, &settings, &r, LONG_AFTER, None);
    let Decision::Act {
        kind,
        from,
        to,
        switchover_timeout,
        escalate_to_failover,
        ..
    } = decision
    else {
        panic!("expected act, got {decision:?}");
    };
    assert_eq!(
        (kind, from.as_str(), to.as_str()),
        (RunKind::Switchover, "us-east-1", "us-west-2")
    );
    assert_eq!(switchover_timeout.as_secs(), 900);
    assert!(
        !escalate_to_failover,
        "no escalation unless dr.allow_data_loss"
    );
    let allowing = DrSettings {
        allow_data_loss: true,
        ..DrSettings::default()
    };
    assert!(matches!(
        decide_at(ALARM, &allowing, &r, LONG_AFTER, None),
        Decision::Act {
            escalate_to_failover: true,
            ..
        }
    ));
}

#[tokio::test]
async fn when_the_primary_is_unreachable_the_event_alone_is_enough() {
    let r = readiness(|b| {
        b.update_world(|w| {
            w.unreachable.insert("us-east-1".into());
        })
    })
    .await;
    assert!(matches!(
        decide_at(ALARM, &DrSettings::default(), &r, LONG_AFTER, None),
        Decision::Act { .. }
    ));
}

#[tokio::test]
async fn a_young_alarm_waits_for_the_rest_of_the_minimum() {
    let r = readiness(|_| {}).await;
    let now = datetime!(2026-11-25 10:05:40.985 UTC);
    match decide_at(ALARM, &DrSettings::default(), &r, now, None) {
        Decision::Wait { recheck_in, reason } => {
            assert_eq!(recheck_in.as_secs(), 120);
            assert!(reason.contains("dr.alarm_min_seconds"), "{reason}");
        }
        other => panic!("expected wait, got {other:?}"),
    }
}

#[tokio::test]
async fn a_run_within_the_cooldown_only_notifies() {
    let r = readiness(|_| {}).await;
    let last = datetime!(2026-11-25 09:50:00 UTC);
    match decide_at(ALARM, &DrSettings::default(), &r, LONG_AFTER, Some(last)) {
        Decision::NotifyOnly { reason } => assert!(reason.contains("cooldown"), "{reason}"),
        other => panic!("expected notify-only, got {other:?}"),
    }
    let long_ago = datetime!(2026-11-25 08:00:00 UTC);
    assert!(matches!(
        decide_at(
            ALARM,
            &DrSettings::default(),
            &r,
            LONG_AFTER,
            Some(long_ago)
        ),
        Decision::Act { .. }
    ));
}

#[tokio::test]
async fn a_standby_that_is_not_ready_only_notifies_with_the_reasons() {
    let r = readiness(|b| {
        b.update_world(|w| {
            w.alarms.insert(
                "us-west-2".into(),
                vec!["lifeboat-dev-storefront-5xx-standby".into()],
            );
        })
    })
    .await;
    match decide_at(ALARM, &DrSettings::default(), &r, LONG_AFTER, None) {
        Decision::NotifyOnly { reason } => assert!(
            reason.contains("NOT READY") && reason.contains("standby"),
            "{reason}"
        ),
        other => panic!("expected notify-only, got {other:?}"),
    }
}

#[tokio::test]
async fn ok_transitions_unrelated_alarms_standby_alarms_and_recovered_alarms_are_ignored() {
    let settings = DrSettings::default();
    let r = readiness(|_| {}).await;
    for (name, event) in [("ok", OK), ("unrelated", UNRELATED), ("standby", STANDBY)] {
        let decision = decide_at(event, &settings, &r, LONG_AFTER, None);
        assert!(
            matches!(decision, Decision::Ignore { .. }),
            "{name}: {decision:?}"
        );
    }
    let recovered = readiness(|b| b.update_world(|w| w.alarms.clear())).await;
    match decide_at(ALARM, &settings, &recovered, LONG_AFTER, None) {
        Decision::Ignore { reason } => assert!(reason.contains("no longer firing"), "{reason}"),
        other => panic!("expected ignore, got {other:?}"),
    }
}

#[test]
fn events_that_are_not_alarm_state_changes_are_rejected_or_ignored() {
    assert!(
        AlarmEvent::from_json(r#"{"detail-type":"x"}"#)
            .unwrap_err()
            .contains("not a CloudWatch alarm")
    );
    let mut v: serde_json::Value = serde_json::from_str(ALARM).unwrap();
    v["detail-type"] = "EC2 Instance State-change Notification".into();
    let event = AlarmEvent::from_json(&v.to_string()).unwrap();
    let settings = DrSettings::default();
    let backend_free = Readiness {
        observed_at: LONG_AFTER,
        regions: vec![],
    };
    let alarms = health_alarms();
    let input = PolicyInput {
        settings: &settings,
        primary_health_alarms: &alarms,
        active_region: "us-east-1",
        readiness: &backend_free,
        last_run_started_at: None,
        now: LONG_AFTER,
    };
    assert!(matches!(decide(&event, &input), Decision::Ignore { .. }));
}

#[test]
fn cloudwatch_timestamps_parse_in_both_forms() {
    let a = parse_alarm_timestamp("2026-11-25T10:04:40.985+0000").unwrap();
    let b = parse_alarm_timestamp("2026-11-25T10:04:40.985Z").unwrap();
    assert_eq!(a, b);
    assert!(parse_alarm_timestamp("yesterday").is_err());
}

mod carrying_out {
    use lifeboat_runbook::memory::{MemoryJournal, MemoryReportSink};
    use lifeboat_runbook::policy::carry_out;
    use lifeboat_runbook::{Engine, MemoryCoordination, RunOutcome};

    use super::*;

    struct Parts {
        backend: MemoryBackend,
        journal: MemoryJournal,
        coordination: MemoryCoordination,
        reports: MemoryReportSink,
    }

    fn parts() -> Parts {
        Parts {
            backend: MemoryBackend::new("us-east-1", "us-west-2"),
            journal: MemoryJournal::new(),
            coordination: MemoryCoordination::new(),
            reports: MemoryReportSink::new(),
        }
    }

    fn act(escalate: bool) -> Decision {
        Decision::Act {
            kind: RunKind::Switchover,
            from: "us-east-1".into(),
            to: "us-west-2".into(),
            switchover_timeout: std::time::Duration::from_secs(60),
            escalate_to_failover: escalate,
            reason: "test".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_switchover_that_succeeds_is_enough() {
        let p = parts();
        let engine = Engine::new(
            &p.backend,
            &p.journal,
            &p.coordination,
            &p.coordination,
            &p.reports,
        );
        let out = carry_out(&engine, &act(true), &DrSettings::default())
            .await
            .unwrap()
            .unwrap();
        assert!(out.recovered && !out.needs_operator, "{}", out.summary);
        assert!(out.failover.is_none());
        assert_eq!(p.backend.world().writer, "us-west-2");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_primary_escalates_to_failover_only_when_allowed() {
        let p = parts();
        p.backend.update_world(|w| {
            w.unreachable.insert("us-east-1".into());
        });
        let engine = Engine::new(
            &p.backend,
            &p.journal,
            &p.coordination,
            &p.coordination,
            &p.reports,
        );
        let out = carry_out(&engine, &act(false), &DrSettings::default())
            .await
            .unwrap()
            .unwrap();
        assert!(!out.recovered && out.needs_operator);
        assert_eq!(
            out.switchover.as_ref().unwrap().outcome(),
            RunOutcome::Refused
        );
        assert!(
            out.summary.contains("dr.allow_data_loss is false"),
            "{}",
            out.summary
        );
        assert_eq!(
            p.backend.world().writer,
            "us-east-1",
            "nothing was promoted"
        );

        let allowing = DrSettings {
            allow_data_loss: true,
            ..DrSettings::default()
        };
        let out = carry_out(&engine, &act(true), &allowing)
            .await
            .unwrap()
            .unwrap();
        assert!(out.recovered, "{}", out.summary);
        assert_eq!(
            out.failover.as_ref().unwrap().outcome(),
            RunOutcome::Succeeded
        );
        assert_eq!(p.backend.world().writer, "us-west-2");
    }

    #[tokio::test(start_paused = true)]
    async fn a_switchover_that_hangs_is_cut_at_its_timeout_and_escalated() {
        let p = parts();
        p.backend
            .hang("promote", 1, std::time::Duration::from_secs(3600));
        let engine = Engine::new(
            &p.backend,
            &p.journal,
            &p.coordination,
            &p.coordination,
            &p.reports,
        );
        let allowing = DrSettings {
            allow_data_loss: true,
            ..DrSettings::default()
        };
        let out = carry_out(&engine, &act(true), &allowing)
            .await
            .unwrap()
            .unwrap();
        let switchover = out.switchover.as_ref().unwrap();
        assert_eq!(switchover.outcome(), RunOutcome::Failed);
        assert!(
            switchover.report.message.contains("within 60s"),
            "{}",
            switchover.report.message
        );
        assert!(out.recovered, "{}", out.summary);
        assert_eq!(
            out.failover.as_ref().unwrap().report.epoch,
            Some(2),
            "the failover acts under a newer epoch"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn other_decisions_do_nothing() {
        let p = parts();
        let engine = Engine::new(
            &p.backend,
            &p.journal,
            &p.coordination,
            &p.coordination,
            &p.reports,
        );
        let notify = Decision::NotifyOnly { reason: "x".into() };
        assert!(
            carry_out(&engine, &notify, &DrSettings::default())
                .await
                .unwrap()
                .is_none()
        );
        assert!(p.backend.calls().is_empty());
    }
}
