//! The DR automation policy: what to do about one CloudWatch "Alarm State Change" event from EventBridge.
//!
//! Pure: the caller (the DR automation Lambda in the AWS adapter) hands in the event, the settings, the
//! current readiness and when the last run started; the policy answers [`Decision::Act`] (try a switchover
//! bounded by `dr.switchover_timeout_seconds`, and escalate to a failover only when `dr.allow_data_loss` is
//! set), [`Decision::Wait`] (the alarm is real but young: look again later), [`Decision::NotifyOnly`]
//! (something is wrong but automation must not act: tell an operator) or [`Decision::Ignore`].
//!
//! Automation acts only when all hold: the event is an ALARM of one of the alarms that watch the region
//! active at the time, it has been in ALARM at least `dr.alarm_min_seconds`, the standby is ready to take
//! over, and no run started within `dr.cooldown_seconds` (anti-flapping).
//!
//! Which region is active changes at every switchover, and so do the alarms that matter: the caller passes
//! the alarms watching the active region (`Names::alarms_watching(active)` in lifeboat-config), and the
//! alarms of the other region are ignored. Where an alarm lives says nothing about the region it watches
//! (Route 53 health alarms live in us-east-1, a probe alarm in the region that probes), so the event's
//! region is not compared with the active region; it only says where to look for the alarm's current state.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, EngineError, RunRequest, RunResult};
use crate::model::{RunKind, RunOutcome};
use crate::readiness::{Readiness, assess};
use crate::settings::DrSettings;

/// The EventBridge event, as documented for `detail-type: "CloudWatch Alarm State Change"`. Only the
/// fields the policy reads are required; the rest of the document is ignored.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct AlarmEvent {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    /// The region the alarm lives in.
    pub region: String,
    #[serde(default)]
    pub time: Option<String>,
    pub detail: AlarmDetail,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmDetail {
    pub alarm_name: String,
    pub state: AlarmState,
    #[serde(default)]
    pub previous_state: Option<AlarmState>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmState {
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub value: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// When the alarm entered this state, e.g. `2026-11-25T10:04:40.985+0000`.
    pub timestamp: String,
}

impl AlarmEvent {
    /// Parses the event JSON; the error says which field is missing or malformed.
    pub fn from_json(text: &str) -> Result<AlarmEvent, String> {
        serde_json::from_str(text)
            .map_err(|e| format!("not a CloudWatch alarm state change event: {e}"))
    }
}

/// Parses the timestamps CloudWatch puts in alarm events (`+0000` offsets without a colon) as well as
/// RFC 3339.
pub fn parse_alarm_timestamp(text: &str) -> Result<time::OffsetDateTime, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let bytes = text.as_bytes();
    let n = bytes.len();
    if n > 5
        && (bytes[n - 5] == b'+' || bytes[n - 5] == b'-')
        && bytes[n - 4..].iter().all(u8::is_ascii_digit)
    {
        let fixed = format!("{}:{}", &text[..n - 2], &text[n - 2..]);
        if let Ok(t) = time::OffsetDateTime::parse(&fixed, &Rfc3339) {
            return Ok(t);
        }
    }
    Err(format!(
        "alarm timestamp {text:?} is neither RFC 3339 nor CloudWatch's 2026-01-01T00:00:00.000+0000 form"
    ))
}

/// What the policy needs besides the event.
#[derive(Debug, Clone)]
pub struct PolicyInput<'a> {
    pub settings: &'a DrSettings,
    /// Names of the alarms that mean "the active region is unhealthy", wherever they live: the alarms
    /// watching the active region (`Names::alarms_watching(active_region)`), not those of the original
    /// primary, so automation follows the roles after a switchover.
    pub primary_health_alarms: &'a [String],
    /// The region currently active (the active-region parameter).
    pub active_region: &'a str,
    pub readiness: &'a Readiness,
    /// When the last run (any kind) started, if any.
    pub last_run_started_at: Option<time::OffsetDateTime>,
    pub now: time::OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// Start a switchover from `from` to `to` bounded by `switchover_timeout`; if it does not succeed and
    /// `escalate_to_failover`, run a failover (data loss accepted by configuration).
    Act {
        kind: RunKind,
        from: String,
        to: String,
        #[serde(serialize_with = "secs")]
        switchover_timeout: Duration,
        escalate_to_failover: bool,
        reason: String,
    },
    /// The alarm is in ALARM but not yet for `dr.alarm_min_seconds`: evaluate again after `recheck_in`.
    Wait {
        #[serde(serialize_with = "secs")]
        recheck_in: Duration,
        reason: String,
    },
    /// Something is wrong, but automation may not act: tell an operator why.
    NotifyOnly { reason: String },
    /// Nothing to do.
    Ignore { reason: String },
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// Decides what to do about `event`. See the module documentation for the rules.
pub fn decide(event: &AlarmEvent, input: &PolicyInput<'_>) -> Decision {
    let ignore = |reason: String| Decision::Ignore { reason };
    if event.detail_type != "CloudWatch Alarm State Change" || event.source != "aws.cloudwatch" {
        return ignore(format!(
            "event {:?} from {:?} is not a CloudWatch alarm state change",
            event.detail_type, event.source
        ));
    }
    let alarm = &event.detail.alarm_name;
    if !input.primary_health_alarms.iter().any(|a| a == alarm) {
        return ignore(format!(
            "alarm {alarm} is not one of the alarms watching the active region {}",
            input.active_region
        ));
    }
    if event.detail.state.value != "ALARM" {
        return ignore(format!("alarm {alarm} is {}", event.detail.state.value));
    }
    let since = match parse_alarm_timestamp(&event.detail.state.timestamp) {
        Ok(t) => t,
        Err(e) => {
            return Decision::NotifyOnly {
                reason: format!("alarm {alarm} is in ALARM but {e}"),
            };
        }
    };
    let settings = input.settings;
    let Some(standby) = settings.region_pair().other_region(input.active_region) else {
        return Decision::NotifyOnly {
            reason: format!(
                "active region {} is not one of the configured pair",
                input.active_region
            ),
        };
    };
    // When the region the alarm lives in can still be observed and the alarm is not firing anywhere, it
    // recovered. (A region not observed, such as us-east-1 when it is not one of the pair, or one that is
    // unreachable, proves nothing: the event stands.)
    if let Some(home) = input.readiness.region(&event.region)
        && home.reachable
        && !input
            .readiness
            .regions
            .iter()
            .any(|r| r.alarms_firing.iter().any(|a| a == alarm))
    {
        return ignore(format!(
            "alarm {alarm} is no longer firing in {}",
            event.region
        ));
    }
    let in_alarm = Duration::try_from(input.now - since).unwrap_or(Duration::ZERO);
    let needed = Duration::from_secs(settings.alarm_min_seconds);
    if in_alarm < needed {
        return Decision::Wait {
            recheck_in: needed - in_alarm,
            reason: format!(
                "alarm {alarm} has been in ALARM for {}s; automation acts after {}s (dr.alarm_min_seconds)",
                in_alarm.as_secs(),
                needed.as_secs()
            ),
        };
    }
    if let Some(last) = input.last_run_started_at {
        let ago = Duration::try_from(input.now - last).unwrap_or(Duration::ZERO);
        if ago < Duration::from_secs(settings.cooldown_seconds) {
            return Decision::NotifyOnly {
                reason: format!(
                    "alarm {alarm} is in ALARM, but a run started {}s ago, within the {}s cooldown \
                     (dr.cooldown_seconds): an operator decides",
                    ago.as_secs(),
                    settings.cooldown_seconds
                ),
            };
        }
    }
    // Only the standby's side matters here: the active region is the one in trouble. The alarms about the
    // active region say nothing against the standby, even when they live there (the probe alarm does).
    let about_active = without_alarms(input.readiness, input.primary_health_alarms);
    let standby_verdict = assess(
        RunKind::Failover,
        &about_active,
        input.active_region,
        standby,
        settings,
    );
    if !standby_verdict.ready {
        return Decision::NotifyOnly {
            reason: format!(
                "alarm {alarm} is in ALARM, but standby {standby} is NOT READY: {}",
                standby_verdict.reasons.join("; ")
            ),
        };
    }
    Decision::Act {
        kind: RunKind::Switchover,
        from: input.active_region.to_owned(),
        to: standby.to_owned(),
        switchover_timeout: settings.switchover_timeout(),
        escalate_to_failover: settings.allow_data_loss,
        reason: format!(
            "alarm {alarm} in ALARM for {}s in {}, standby {standby} ready, no run within the cooldown",
            in_alarm.as_secs(),
            input.active_region
        ),
    }
}

/// `readiness` with `alarms` removed from every region's firing alarms.
fn without_alarms(readiness: &Readiness, alarms: &[String]) -> Readiness {
    let mut filtered = readiness.clone();
    for region in &mut filtered.regions {
        region.alarms_firing.retain(|a| !alarms.contains(a));
    }
    filtered
}

/// What carrying out an [`Decision::Act`] did.
#[derive(Debug)]
pub struct AutomationOutcome {
    /// The bounded switchover attempt (`None` when another run held the lock).
    pub switchover: Option<RunResult>,
    /// The failover, when the switchover did not succeed and escalation was allowed.
    pub failover: Option<RunResult>,
    /// Whether the environment now runs on the standby.
    pub recovered: bool,
    /// Whether an operator must decide (the automation stopped short): say so in the notification.
    pub needs_operator: bool,
    /// One line for the notification and the log.
    pub summary: String,
}

/// Carries out an [`Decision::Act`]: a switchover bounded by its timeout; if it does not succeed and the
/// decision allows escalation, a failover (data loss accepted by `dr.allow_data_loss`). Returns `None` for
/// any other decision. A run already holding the lock is not an error: an operator is told.
pub async fn carry_out(
    engine: &Engine<'_>,
    decision: &Decision,
    settings: &DrSettings,
) -> Result<Option<AutomationOutcome>, EngineError> {
    let Decision::Act {
        from,
        to,
        switchover_timeout,
        escalate_to_failover,
        ..
    } = decision
    else {
        return Ok(None);
    };
    let request = |kind| RunRequest {
        kind,
        from: from.clone(),
        to: to.clone(),
        settings: settings.clone(),
        allow_data_loss: kind == RunKind::Failover && *escalate_to_failover,
    };
    let switchover = match engine
        .start_bounded(&request(RunKind::Switchover), Some(*switchover_timeout))
        .await
    {
        Ok(result) => result,
        Err(EngineError::Locked(e)) => {
            return Ok(Some(AutomationOutcome {
                switchover: None,
                failover: None,
                recovered: false,
                needs_operator: true,
                summary: format!("not started: {e}"),
            }));
        }
        Err(e) => return Err(e),
    };
    if switchover.outcome() == RunOutcome::Succeeded {
        let summary = format!(
            "switchover {} → {to} succeeded (run {})",
            from, switchover.report.run_id
        );
        return Ok(Some(AutomationOutcome {
            switchover: Some(switchover),
            failover: None,
            recovered: true,
            needs_operator: false,
            summary,
        }));
    }
    let why = format!(
        "switchover run {} {}: {}",
        switchover.report.run_id,
        switchover.outcome(),
        switchover.report.message
    );
    if !*escalate_to_failover {
        return Ok(Some(AutomationOutcome {
            switchover: Some(switchover),
            failover: None,
            recovered: false,
            needs_operator: true,
            summary: format!(
                "{why}; not escalating to a failover because dr.allow_data_loss is false: an operator decides \
                 (lifeboat failover --to {to} --allow-data-loss)"
            ),
        }));
    }
    let failover = engine.start(&request(RunKind::Failover)).await?;
    let recovered = failover.outcome() == RunOutcome::Succeeded;
    let summary = format!(
        "{why}; escalated to failover run {}: {}",
        failover.report.run_id,
        failover.outcome()
    );
    Ok(Some(AutomationOutcome {
        switchover: Some(switchover),
        failover: Some(failover),
        recovered,
        needs_operator: !recovered,
        summary,
    }))
}
