//! The automation policy after a switchover and with alarms living outside the region they watch: the alarms
//! that count are those watching the region active at the time, named by `lifeboat_config::Names` exactly
//! as the platform names them.

use lifeboat_config::Config;
use lifeboat_runbook::memory::MemoryBackend;
use lifeboat_runbook::policy::{AlarmEvent, Decision, PolicyInput, decide};
use lifeboat_runbook::{DrBackend, DrSettings, Readiness, RunKind};
use serde_json::json;
use time::macros::datetime;

const EAST: &str = "us-east-1";
const WEST: &str = "us-west-2";
const ENTERED_ALARM: &str = "2026-11-25T10:04:40.985+0000";
const LONG_AFTER: time::OffsetDateTime = datetime!(2026-11-25 10:08:00 UTC);

/// A documented CloudWatch alarm state change event for `alarm`, emitted in `region` (where it lives).
fn event(alarm: &str, region: &str, state: &str) -> AlarmEvent {
    let v = json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-11-25T10:04:41Z",
        "region": region,
        "resources": [format!("arn:aws:cloudwatch:{region}:123456789012:alarm:{alarm}")],
        "detail": {
            "alarmName": alarm,
            "previousState": { "value": "OK", "timestamp": "2026-11-25T09:58:12.441+0000" },
            "state": { "value": state, "reason": "Threshold Crossed", "timestamp": ENTERED_ALARM }
        }
    });
    AlarmEvent::from_json(&v.to_string()).unwrap()
}

/// The memory world after a switchover to us-west-2: it is active, writes, takes traffic; us-east-1
/// replicates from it. `firing` lists (region the alarm lives in, alarm) pairs.
async fn after_switchover(firing: &[(&str, String)], unreachable: &[&str]) -> Readiness {
    let backend = MemoryBackend::new(EAST, WEST);
    backend.update_world(|w| {
        w.active = WEST.into();
        w.writer = WEST.into();
        w.traffic = WEST.into();
        w.recorded_active = WEST.into();
        w.epoch = 2;
        for (region, alarm) in firing {
            w.alarms
                .entry((*region).to_string())
                .or_default()
                .push(alarm.clone());
        }
        for region in unreachable {
            w.unreachable.insert((*region).to_string());
        }
    });
    backend.readiness().await.unwrap()
}

fn decide_for(
    config: &Config,
    event: &AlarmEvent,
    active: &str,
    readiness: &Readiness,
) -> Decision {
    let settings = DrSettings {
        primary_region: config.regions.primary.clone(),
        standby_region: config.regions.standby.clone(),
        ..DrSettings::default()
    };
    // What the DR automation function passes: the alarms watching the region active now.
    let watching = config.names().alarms_watching(active);
    decide(
        event,
        &PolicyInput {
            settings: &settings,
            primary_health_alarms: &watching,
            active_region: active,
            readiness,
            last_run_started_at: None,
            now: LONG_AFTER,
        },
    )
}

fn acts_from_to(decision: &Decision, from: &str, to: &str) {
    match decision {
        Decision::Act {
            kind,
            from: f,
            to: t,
            ..
        } => {
            assert_eq!(*kind, RunKind::Switchover);
            assert_eq!((f.as_str(), t.as_str()), (from, to), "{decision:?}");
        }
        other => panic!("expected act {from} → {to}, got {other:?}"),
    }
}

#[tokio::test]
async fn after_a_switchover_the_new_primarys_route53_alarm_in_us_east_1_starts_a_failback() {
    let config = Config::default();
    let names = config.names();
    // The Route 53 health alarm watching us-west-2 lives in us-east-1, which is now the standby.
    let alarm = names.health_alarm(WEST);
    let readiness = after_switchover(&[(EAST, alarm.clone())], &[]).await;
    let decision = decide_for(&config, &event(&alarm, EAST, "ALARM"), WEST, &readiness);
    acts_from_to(&decision, WEST, EAST);
}

#[tokio::test]
async fn after_a_switchover_the_old_primarys_alarms_are_ignored() {
    let config = Config::default();
    let names = config.names();
    for alarm in names.alarms_watching(EAST) {
        let readiness = after_switchover(&[(EAST, alarm.clone())], &[]).await;
        for home in [EAST, WEST] {
            let decision = decide_for(&config, &event(&alarm, home, "ALARM"), WEST, &readiness);
            match decision {
                Decision::Ignore { reason } => {
                    assert!(reason.contains("active region us-west-2"), "{reason}")
                }
                other => panic!("{alarm}: expected ignore, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn the_probe_alarm_living_in_the_standby_acts_and_does_not_make_the_standby_unready() {
    let config = Config::default();
    let names = config.names();
    // After the switchover us-east-1 probes us-west-2: its alarm lives (and fires) in us-east-1, the target.
    let alarm = names.probe_alarm(WEST, EAST);
    assert!(names.alarms_watching(WEST).contains(&alarm));
    let readiness = after_switchover(&[(EAST, alarm.clone())], &[]).await;
    let decision = decide_for(&config, &event(&alarm, EAST, "ALARM"), WEST, &readiness);
    acts_from_to(&decision, WEST, EAST);

    // Another alarm firing in the standby still makes it not ready.
    let other = names.alarm(EAST, "aurora-replication-lag");
    let readiness = after_switchover(&[(EAST, alarm.clone()), (EAST, other.clone())], &[]).await;
    match decide_for(&config, &event(&alarm, EAST, "ALARM"), WEST, &readiness) {
        Decision::NotifyOnly { reason } => {
            let (_, why) = reason.split_once("NOT READY").expect(&reason);
            assert!(why.contains(&other), "{reason}");
            assert!(!why.contains(&alarm), "{reason}");
        }
        other => panic!("expected notify-only, got {other:?}"),
    }
}

#[tokio::test]
async fn a_lost_active_region_is_acted_on_from_the_probe_of_the_surviving_region() {
    let config = Config::default();
    let names = config.names();
    // us-west-2 (active after the switchover) is gone, with its APIs; us-east-1's probe alarm fires.
    let alarm = names.probe_alarm(WEST, EAST);
    let readiness = after_switchover(&[(EAST, alarm.clone())], &[WEST]).await;
    let decision = decide_for(&config, &event(&alarm, EAST, "ALARM"), WEST, &readiness);
    acts_from_to(&decision, WEST, EAST);
}

#[tokio::test]
async fn an_alarm_living_in_a_region_outside_the_pair_stands_on_its_event() {
    let text = "[regions]\nprimary = \"eu-west-1\"\nstandby = \"eu-central-1\"\n";
    let config = Config::from_toml_str(text, "t.toml").unwrap();
    let alarm = config.names().health_alarm("eu-west-1");
    let backend = MemoryBackend::new("eu-west-1", "eu-central-1");
    let readiness = backend.readiness().await.unwrap();
    // The Route 53 alarm lives in us-east-1, which readiness does not observe: the event alone counts.
    let decision = decide_for(
        &config,
        &event(&alarm, "us-east-1", "ALARM"),
        "eu-west-1",
        &readiness,
    );
    acts_from_to(&decision, "eu-west-1", "eu-central-1");
}

#[tokio::test]
async fn an_alarm_that_stopped_firing_where_it_lives_is_ignored() {
    let config = Config::default();
    let alarm = config.names().health_alarm(WEST);
    let readiness = after_switchover(&[], &[]).await;
    match decide_for(&config, &event(&alarm, EAST, "ALARM"), WEST, &readiness) {
        Decision::Ignore { reason } => assert!(reason.contains("no longer firing"), "{reason}"),
        other => panic!("expected ignore, got {other:?}"),
    }
}
