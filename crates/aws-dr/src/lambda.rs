//! The DR automation Lambda's events: the cross-region probe, and the tasks of the DR state machine
//! ([`crate::tasks`]), whose first task applies the runbook crate's policy
//! ([`lifeboat_runbook::policy::decide`]) to an EventBridge "CloudWatch Alarm State Change" event.
//!
//! The policy acts only on the active region's health alarm, after it has been in ALARM for
//! `dr.alarm_min_seconds`, with the standby ready and no run within `dr.cooldown_seconds`. Acting means a
//! switchover bounded by `dr.switchover_timeout_seconds`; only if that fails and `dr.allow_data_loss` is
//! set, a failover. A young alarm is waited for by the state machine (a Wait state), not by the function.
//! When automation may not act, operators get an SNS message saying why.

use std::time::Duration;

use lifeboat_contract::automation;
use lifeboat_runbook::policy::{AlarmEvent, Decision, PolicyInput};
use lifeboat_runbook::{DrBackend, DrSettings, Notification, Readiness};
use serde_json::{Value, json};

use lifeboat_config::names::{
    PROBE_DIMENSION_ENVIRONMENT, PROBE_DIMENSION_REGION, PROBE_EVENT_KEY, PROBE_METRIC,
    PROBE_NAMESPACE,
};

use crate::AwsEnvironment;
use crate::topology::Topology;

/// The policy's decision for one event: the pure part of the handler.
pub fn decision_for(
    event: &AlarmEvent,
    topology: &Topology,
    settings: &DrSettings,
    readiness: &Readiness,
    last_run_started_at: Option<time::OffsetDateTime>,
    now: time::OffsetDateTime,
) -> Decision {
    let active = readiness
        .active_region()
        .unwrap_or_else(|| topology.primary_region.clone());
    let alarms = topology.alarms_watching(&active);
    lifeboat_runbook::policy::decide(
        event,
        &PolicyInput {
            settings,
            primary_health_alarms: alarms,
            active_region: &active,
            readiness,
            last_run_started_at,
            now,
        },
    )
}

/// The cross-region probe (the schedule sends `{"lifeboat-probe": {"region": <watched>}}` every minute):
/// asks the watched region's storefront function for `/health/deep` as its load balancer would, and
/// publishes `Lifeboat/DR RegionHealthy` (1 healthy, 0 anything else, an unreachable region included) in
/// this function's region, where the probe alarm on it lives. The alarm's state change is what may then
/// start a run; the probe itself never acts.
pub async fn probe_region(env: &AwsEnvironment, watched: &str) -> Value {
    let topology = env.backend.topology();
    let clients = env.backend.clients();
    let health = match clients.region(watched) {
        Ok(c) => {
            crate::observe::invoke_health(
                c,
                &topology.storefront_function,
                &topology.deep_health_path,
                &[],
            )
            .await
        }
        Err(e) => lifeboat_runbook::readiness::Health::Unhealthy(e.message),
    };
    let healthy = health == lifeboat_runbook::readiness::Health::Healthy;
    let here = match clients.region(&env.coordination_region) {
        Ok(c) => c,
        Err(e) => {
            return json!({ "probe": watched, "healthy": healthy, "published": false, "error": e.message });
        }
    };
    let datum = aws_sdk_cloudwatch::types::MetricDatum::builder()
        .metric_name(PROBE_METRIC)
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name(PROBE_DIMENSION_ENVIRONMENT)
                .value(&topology.prefix)
                .build(),
        )
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name(PROBE_DIMENSION_REGION)
                .value(watched)
                .build(),
        )
        .value(if healthy { 1.0 } else { 0.0 })
        .unit(aws_sdk_cloudwatch::types::StandardUnit::Count)
        .build();
    let published = here
        .cloudwatch()
        .put_metric_data()
        .namespace(PROBE_NAMESPACE)
        .metric_data(datum)
        .send()
        .await;
    let detail = match &health {
        lifeboat_runbook::readiness::Health::Healthy => "healthy".to_owned(),
        other => format!("{other:?}"),
    };
    tracing::info!(probe = %watched, healthy, %detail, "probed");
    match published {
        Ok(_) => {
            json!({ "probe": watched, "healthy": healthy, "detail": detail, "published": true })
        }
        Err(e) => {
            let e = crate::errors::sdk_error("publishing the probe metric", &here.region, e);
            json!({ "probe": watched, "healthy": healthy, "detail": detail, "published": false, "error": e.message })
        }
    }
}

/// When the newest run in the journal started.
async fn last_run_started(env: &AwsEnvironment) -> Option<time::OffsetDateTime> {
    use lifeboat_runbook::journal::{Journal, JournalEvent};
    let ids = env.journal.list().await.ok()?;
    let last = ids.last()?;
    match env.journal.read(last).await.ok()?.first()? {
        JournalEvent::RunStarted { at, .. } => Some(*at),
        _ => None,
    }
}

/// Why a task failed: the function answers with an error, so the state machine's retry and catch rules
/// apply.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TaskFailure(pub String);

/// One invocation of the DR automation function. `budget` is the time the invocation may still use for
/// runbook steps (the Lambda deadline minus a margin for journaling the hand-over).
pub async fn invoke(
    env: &AwsEnvironment,
    settings: &DrSettings,
    event: &Value,
    budget: Duration,
) -> Result<Value, TaskFailure> {
    match event.get(automation::TASK_KEY) {
        Some(task) => crate::tasks::handle(env, settings, task, budget).await,
        None => Ok(handle(env, settings, event).await),
    }
}

/// Handles an event that is not a state machine task: the cross-region probe, or an alarm state change
/// delivered straight to the function (only the policy's decision is answered: runs are carried out by the
/// DR state machine, which the alarm rule starts).
pub async fn handle(env: &AwsEnvironment, settings: &DrSettings, event: &Value) -> Value {
    if let Some(probe) = event.get(PROBE_EVENT_KEY) {
        return match probe.get("region").and_then(Value::as_str) {
            Some(watched) => probe_region(env, watched).await,
            None => {
                json!({ "decision": "ignore", "reason": format!("{PROBE_EVENT_KEY} event without a region: {probe}") })
            }
        };
    }
    decide(env, settings, event).await
}

/// The automation policy applied to one alarm state change event, as the state machine's `decide` task
/// answers it (see [`lifeboat_contract::automation::decision`]). A decision to only notify has notified
/// when this returns.
pub async fn decide(env: &AwsEnvironment, settings: &DrSettings, event: &Value) -> Value {
    use automation::decision as d;
    let event = match serde_json::from_value::<AlarmEvent>(event.clone()) {
        Ok(e) => e,
        Err(e) => {
            let reason = format!("not a CloudWatch alarm state change event: {e}");
            tracing::warn!(%reason, "ignored");
            return json!({ d::DECISION: d::IGNORE, d::REASON: reason });
        }
    };
    let readiness = match env.backend.readiness().await {
        Ok(r) => r,
        Err(e) => {
            let reason = format!("readiness could not be observed: {}", e.message);
            notify(env, &reason).await;
            return json!({ d::DECISION: d::NOTIFY_ONLY, d::REASON: reason });
        }
    };
    let last = last_run_started(env).await;
    let decision = decision_for(
        &event,
        env.backend.topology(),
        settings,
        &readiness,
        last,
        time::OffsetDateTime::now_utc(),
    );
    tracing::info!(alarm = %event.detail.alarm_name, state = %event.detail.state.value, decision = ?decision, "policy decided");
    match decision {
        Decision::Wait { recheck_in, reason } => json!({
            d::DECISION: d::WAIT,
            d::REASON: reason,
            // A Wait state counts whole seconds; never zero, so the loop always makes progress.
            d::WAIT_SECONDS: recheck_in.as_secs_f64().ceil().max(1.0) as u64,
        }),
        Decision::Ignore { reason } => json!({ d::DECISION: d::IGNORE, d::REASON: reason }),
        Decision::NotifyOnly { reason } => {
            notify(env, &reason).await;
            json!({ d::DECISION: d::NOTIFY_ONLY, d::REASON: reason })
        }
        // One coordinator per move: the automation of the region the move goes to. Both regions hear every
        // alarm; the target is the one that survives the move's cause, and its replica of the journal
        // table holds the run's lock, so two regions never act on one alarm with two locks.
        Decision::Act { to, reason, .. } if to != env.coordination_region => json!({
            d::DECISION: d::IGNORE,
            d::REASON: format!(
                "{reason}; a move to {to} is carried out by {to}'s DR automation, {} only watches",
                env.coordination_region
            ),
        }),
        Decision::Act {
            kind,
            from,
            to,
            switchover_timeout,
            escalate_to_failover,
            reason,
        } => {
            use automation::request as r;
            json!({
                d::DECISION: d::ACT,
                d::REASON: reason,
                d::REQUEST: {
                    r::KIND: kind.as_str(),
                    r::FROM: from,
                    r::TO: to,
                    r::ALLOW_DATA_LOSS: false,
                    r::ESCALATE: escalate_to_failover,
                    r::TIMEOUT_SECONDS: switchover_timeout.as_secs(),
                },
            })
        }
    }
}

async fn notify(env: &AwsEnvironment, reason: &str) {
    let backend = &env.backend;
    let region = env.coordination_region.clone();
    let notification = Notification {
        subject: "lifeboat DR automation: operator decision needed".into(),
        message: format!("The DR automation did not act on its own: {reason}"),
    };
    if let Err(e) = backend.notify_operators(&region, &notification).await {
        tracing::error!(error = %e.message, "could not notify operators");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_runbook::RunKind;
    use lifeboat_runbook::readiness::{
        DatabaseReadiness, DatabaseRole, Health, RegionReadiness, RegionRole,
    };

    const PRIMARY: &str = "us-east-1";
    const STANDBY: &str = "us-west-2";

    /// An event exactly as EventBridge delivers it (documented shape), for `alarm` entering `state` at `at`.
    fn event(alarm: &str, state: &str, at: &str) -> AlarmEvent {
        let text = format!(
            r#"{{
  "version": "0",
  "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
  "detail-type": "CloudWatch Alarm State Change",
  "source": "aws.cloudwatch",
  "account": "123456789012",
  "time": "{at}",
  "region": "us-east-1",
  "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}"],
  "detail": {{
    "alarmName": "{alarm}",
    "state": {{
      "value": "{state}",
      "reason": "Threshold Crossed: 1 out of the last 1 datapoints [0.0 (25/11/26 10:00:00)] was less than the threshold (1.0).",
      "reasonData": "{{\"version\":\"1.0\",\"queryDate\":\"2026-11-25T10:01:00.000+0000\"}}",
      "timestamp": "{at}"
    }},
    "previousState": {{
      "value": "OK",
      "reason": "Threshold Crossed",
      "timestamp": "2026-11-25T08:00:00.000+0000"
    }},
    "configuration": {{
      "metrics": [{{
        "id": "m1",
        "metricStat": {{
          "metric": {{ "namespace": "AWS/Route53", "name": "HealthCheckStatus", "dimensions": {{ "HealthCheckId": "abc" }} }},
          "period": 60,
          "stat": "Minimum"
        }},
        "returnData": true
      }}]
    }}
  }}
}}"#
        );
        AlarmEvent::from_json(&text).unwrap()
    }

    fn region(name: &str, role: RegionRole, db: DatabaseRole, alarms: &[&str]) -> RegionReadiness {
        RegionReadiness {
            region: name.into(),
            reachable: true,
            role,
            storefront: Health::Healthy,
            database: DatabaseReadiness {
                role: db,
                replication_lag_ms: (db == DatabaseRole::Replica).then_some(0),
                replicating: (db == DatabaseRole::Replica).then_some(true),
            },
            session_replica: Health::Healthy,
            asset_replication: Health::Healthy,
            alarms_firing: alarms.iter().map(|a| (*a).to_owned()).collect(),
            active_region_parameter: Some(PRIMARY.into()),
            epoch: Some(1),
            fence_raised: Some(false),
            dns_target: Some(PRIMARY.into()),
            notes: vec![],
            restartable: false,
        }
    }

    fn setup(primary_alarms: &[&str]) -> (Topology, DrSettings, Readiness) {
        let config = lifeboat_config::Config::default();
        let topology = Topology::from_config(&config);
        let settings = crate::topology::settings_from_config(&config);
        let mut primary = region(
            PRIMARY,
            RegionRole::Active,
            DatabaseRole::Writer,
            primary_alarms,
        );
        primary.storefront = Health::Unhealthy("GET /health/deep failed".into());
        let readiness = Readiness {
            observed_at: time::OffsetDateTime::now_utc(),
            regions: vec![
                primary,
                region(STANDBY, RegionRole::Passive, DatabaseRole::Replica, &[]),
            ],
        };
        (topology, settings, readiness)
    }

    fn at(text: &str) -> time::OffsetDateTime {
        lifeboat_runbook::policy::parse_alarm_timestamp(text).unwrap()
    }

    #[test]
    fn a_long_standing_primary_health_alarm_triggers_a_switchover() {
        let (topology, settings, readiness) = setup(&["lifeboat-dev-us-east-1-health"]);
        let e = event(
            "lifeboat-dev-us-east-1-health",
            "ALARM",
            "2026-11-25T10:00:00.000+0000",
        );
        let d = decision_for(
            &e,
            &topology,
            &settings,
            &readiness,
            None,
            at("2026-11-25T10:05:00.000+0000"),
        );
        match d {
            Decision::Act {
                kind,
                from,
                to,
                escalate_to_failover,
                ..
            } => {
                assert_eq!(kind, RunKind::Switchover);
                assert_eq!((from.as_str(), to.as_str()), (PRIMARY, STANDBY));
                assert!(
                    !escalate_to_failover,
                    "no escalation without dr.allow_data_loss"
                );
            }
            other => panic!("expected act, got {other:?}"),
        }
    }

    #[test]
    fn a_young_alarm_an_ok_event_another_alarm_and_a_recent_run_do_not_act() {
        let (topology, settings, readiness) = setup(&["lifeboat-dev-us-east-1-health"]);
        let now = at("2026-11-25T10:05:00.000+0000");
        let young = event(
            "lifeboat-dev-us-east-1-health",
            "ALARM",
            "2026-11-25T10:04:30.000+0000",
        );
        assert!(matches!(
            decision_for(&young, &topology, &settings, &readiness, None, now),
            Decision::Wait { .. }
        ));
        let ok = event(
            "lifeboat-dev-us-east-1-health",
            "OK",
            "2026-11-25T10:00:00.000+0000",
        );
        assert!(matches!(
            decision_for(&ok, &topology, &settings, &readiness, None, now),
            Decision::Ignore { .. }
        ));
        let other = event(
            "lifeboat-dev-us-east-1-5xx",
            "ALARM",
            "2026-11-25T10:00:00.000+0000",
        );
        assert!(matches!(
            decision_for(&other, &topology, &settings, &readiness, None, now),
            Decision::Ignore { .. }
        ));
        let old = event(
            "lifeboat-dev-us-east-1-health",
            "ALARM",
            "2026-11-25T10:00:00.000+0000",
        );
        let recent_run = Some(at("2026-11-25T09:50:00.000+0000"));
        let d = decision_for(&old, &topology, &settings, &readiness, recent_run, now);
        assert!(
            !matches!(d, Decision::Act { .. }),
            "within the cooldown automation must not act: {d:?}"
        );
    }

    #[test]
    fn an_unready_standby_is_left_to_an_operator() {
        let (topology, settings, mut readiness) = setup(&["lifeboat-dev-us-east-1-health"]);
        readiness.regions[1].storefront =
            Health::Unhealthy("GET https://standby/health/deep answered 503".into());
        let e = event(
            "lifeboat-dev-us-east-1-health",
            "ALARM",
            "2026-11-25T10:00:00.000+0000",
        );
        let d = decision_for(
            &e,
            &topology,
            &settings,
            &readiness,
            None,
            at("2026-11-25T10:05:00.000+0000"),
        );
        assert!(
            matches!(d, Decision::NotifyOnly { .. }),
            "a standby that does not answer is not ready: {d:?}"
        );
    }

    #[test]
    fn the_alarms_acted_on_follow_the_active_region() {
        let topology = Topology::from_config(&lifeboat_config::Config::default());
        assert_eq!(
            topology.alarms_watching(PRIMARY),
            [
                "lifeboat-dev-us-east-1-health",
                "lifeboat-dev-us-east-1-probe-from-us-west-2"
            ]
        );
        assert_eq!(
            topology.alarms_watching(STANDBY),
            [
                "lifeboat-dev-us-west-2-health",
                "lifeboat-dev-us-west-2-probe-from-us-east-1"
            ]
        );
        assert_eq!(
            topology.alarm_subject_region("lifeboat-dev-us-west-2-probe-from-us-east-1"),
            Some(STANDBY)
        );
        assert_eq!(
            topology.alarm_subject_region("other-dev-us-west-2-health"),
            None
        );
    }
}
