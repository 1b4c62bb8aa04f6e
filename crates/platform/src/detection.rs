//! Detection of a region's loss on Route 53 health checks, in us-east-1, whatever the primary region.
//!
//! Route 53 publishes health-check metrics to CloudWatch only in US East (N. Virginia)
//! (<https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/monitoring-cloudwatch.html>,
//! <https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/monitoring-health-checks.html>), and an alarm
//! can only watch metrics of its own region, so alarms on them can only live there. This stack, always in us-east-1, holds one detection health check per region (never touched by
//! the DR runbooks, unlike the failover records' checks, so its status is the region's real health), an alarm
//! on each named by the region it watches, and an EventBridge rule that forwards their state changes to the
//! default event bus of every region of the pair other than us-east-1, where the DR automation's rule picks
//! them up. When us-east-1 is one of the pair, its own automation sees the events on its own bus.
//!
//! These alarms die with us-east-1. The loss of us-east-1 (or of any region) is also detected from the other
//! region by the cross-region probe of [`crate::dr_automation`], which does not depend on us-east-1.

use lifeboat_cfn::resources::{cloudwatch, events, iam, route53};
use lifeboat_cfn::{Expr, get_att, r};
use lifeboat_config::names::ROUTE53_METRICS_REGION;
use lifeboat_config::{Config, Role};
use serde_json::{Value, json};

use crate::util::{Stack, allow, arn_in, assume_role, inline_policy, stack_id};

pub const COMPONENT: &str = "detection";
/// Manifest id of the detection stack (one stack, in us-east-1, for both regions).
pub const STACK_ID: &str = "detection-route53";

/// The EventBridge pattern matching state changes of the Route 53 health alarms of both regions.
pub fn health_alarm_pattern(config: &Config) -> Value {
    let names = config.names();
    json!({
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": { "alarmName": Role::BOTH.iter().map(|role| names.health_alarm(config.region(*role))).collect::<Vec<_>>() }
    })
}

/// The regions of the pair whose event bus gets the alarm events forwarded (all but us-east-1, where the
/// events are emitted).
pub fn forwarded_to(config: &Config) -> Vec<&str> {
    Role::BOTH
        .iter()
        .map(|role| config.region(*role))
        .filter(|region| *region != ROUTE53_METRICS_REGION)
        .collect()
}

pub fn build(config: &Config) -> Stack {
    let names = config.names();
    // The role of us-east-1 when it is one of the pair; only descriptive for a stack that serves both.
    let role = Role::BOTH
        .into_iter()
        .find(|role| config.region(*role) == ROUTE53_METRICS_REGION)
        .unwrap_or(Role::Primary);
    let mut s = Stack::new(
        config,
        COMPONENT,
        role,
        "Route 53 detection health checks, their alarms and the forwarding of their events",
    );
    s.id = STACK_ID.to_string();
    s.template.name = STACK_ID.to_string();
    s.name = format!("{}-{STACK_ID}", names.prefix());
    s.region = ROUTE53_METRICS_REGION.to_string();
    s.template.description = format!(
        "lifeboat {}: Route 53 detection health checks of both regions and their alarms ({ROUTE53_METRICS_REGION}, where Route 53 publishes its metrics)",
        names.prefix()
    );

    for role in Role::BOTH {
        health_check_and_alarm(config, &mut s, role);
    }
    forward_rule(config, &mut s);
    s
}

fn logical_prefix(config: &Config, role: Role) -> String {
    // Logical ids by region, like the alarm names: `UsEast1`, `UsWest2`.
    config
        .region(role)
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// One region's detection health check (same endpoint, path and thresholds as the routing check) and the
/// alarm on it.
fn health_check_and_alarm(config: &Config, s: &mut Stack, role: Role) {
    let names = config.names();
    let region = config.region(role);
    let id = logical_prefix(config, role);
    let dns = s.input(
        &format!("{id}AlbDnsName"),
        &stack_id(crate::compute::COMPONENT, role),
        "AlbDnsName",
    );
    let hc = &config.health_check;
    // Route 53 health checkers do not validate the certificate of an HTTPS endpoint, so the load balancer's
    // own name works with the shop's certificate (the same holds for the routing checks in `monitoring`;
    // <https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-creating-values.html>).
    let https = crate::compute::protocol(config, role) == "HTTPS";
    let mut check = json!({
        "Type": if https { "HTTPS" } else { "HTTP" },
        "FullyQualifiedDomainName": dns,
        "Port": if https { 443 } else { 80 },
        "ResourcePath": hc.path,
        "RequestInterval": hc.interval_seconds,
        "FailureThreshold": hc.failure_threshold,
    });
    if https {
        check["EnableSNI"] = json!(true);
    }
    let check_id = format!("{id}DetectionHealthCheck");
    s.template.add(
        &check_id,
        route53::HealthCheck {
            health_check_config: Expr::json(check),
        },
    );

    // The alarm fires only after the region has been unhealthy for `alarm_min_seconds` (anti-flapping).
    let minutes = config.dr.alarm_min_seconds.div_ceil(60).max(1);
    let alarm_id = format!("{id}HealthAlarm");
    s.template.add(
        &alarm_id,
        cloudwatch::Alarm {
            alarm_name: Some(names.health_alarm(region).into()),
            alarm_description: Some(
                format!(
                    "{region} failed its Route 53 detection health check ({} {}) for {minutes} minute(s)",
                    if https { "HTTPS" } else { "HTTP" },
                    hc.path
                )
                .into(),
            ),
            namespace: Some("AWS/Route53".into()),
            metric_name: Some("HealthCheckStatus".into()),
            dimensions: Some(Expr::json(
                json!([{ "Name": "HealthCheckId", "Value": r(&check_id) }]),
            )),
            statistic: Some("Minimum".into()),
            period: Some(60.into()),
            evaluation_periods: minutes.into(),
            datapoints_to_alarm: Some(minutes.into()),
            threshold: Some(1.0.into()),
            comparison_operator: "LessThanThreshold".into(),
            // Here, in us-east-1, a check that stops reporting is as bad as one that fails.
            treat_missing_data: Some("breaching".into()),
            ..Default::default()
        },
    );
    s.output(
        &format!("{id}DetectionHealthCheckId"),
        r(&check_id),
        &format!("Route 53 detection health check of {region}"),
    );
    s.output(
        &format!("{id}HealthAlarmName"),
        names.health_alarm(region).into(),
        &format!("Alarm on the detection health check of {region}"),
    );
}

/// Forwards the health alarms' state changes to the default event bus of each region of the pair other than
/// us-east-1. Cross-Region event bus targets need a role allowed to put events on the target bus
/// (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html>).
fn forward_rule(config: &Config, s: &mut Stack) {
    let targets_regions = forwarded_to(config);
    if targets_regions.is_empty() {
        return;
    }
    let buses: Vec<(String, Expr)> = targets_regions
        .iter()
        .map(|region| {
            (
                region.to_string(),
                arn_in("events", region, "event-bus/default"),
            )
        })
        .collect();
    s.template.add(
        "ForwardEventsRole",
        iam::Role {
            assume_role_policy_document: assume_role("events.amazonaws.com"),
            description: Some(
                "Forwards the Route 53 health alarms' events to the DR automation's regions".into(),
            ),
            policies: Some(Expr::json(json!([inline_policy(
                "forward-health-alarm-events",
                vec![allow(
                    &["events:PutEvents"],
                    buses.iter().map(|(_, arn)| arn.clone()).collect()
                )]
            )]))),
            managed_policy_arns: None,
        },
    );
    let targets: Vec<Value> = buses
        .iter()
        .map(|(region, arn)| {
            json!({
                "Id": format!("bus-{region}"),
                "Arn": arn,
                "RoleArn": get_att("ForwardEventsRole", "Arn")
            })
        })
        .collect();
    s.template.add(
        "ForwardHealthAlarmsRule",
        events::Rule {
            name: Some(format!("{}-forward-health-alarms", config.names().prefix()).into()),
            description: Some(
                "Route 53 health alarm state changes go to the DR automation of both regions"
                    .into(),
            ),
            event_pattern: Some(Expr::json(health_alarm_pattern(config))),
            state: Some("ENABLED".into()),
            targets: Some(Expr::json(Value::Array(targets))),
        },
    );
}
