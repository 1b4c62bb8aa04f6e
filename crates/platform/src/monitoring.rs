//! Monitoring, per region: a KMS-encrypted SNS topic with the configured e-mail subscriptions, alarms on
//! everything a failover decision or a DR drill looks at, and a dashboard. The primary stack also holds the
//! Route 53 health checks that guard the failover records (Route 53 is global). The alarms that detect a
//! region's loss are elsewhere: see [`crate::detection`].
//!
//! Alarms are named by the region they watch (`<project>-<env>-<region>-<what>`), and the ones that only
//! have data in one role (replication into a secondary, replication out of the active bucket) exist in both
//! regions, so they follow the roles after a switchover: the one in the region currently in the other role
//! has no data and stays without data (or OK), harmlessly.

use lifeboat_cfn::resources::{cloudwatch, route53, sns};
use lifeboat_cfn::{Expr, r, sub};
use lifeboat_config::{Config, Role};
use serde_json::{Value, json};

use crate::util::{Stack, kms_key, policy_document, stack_id};

pub const COMPONENT: &str = "monitoring";

/// One alarm: what it watches and when it fires.
struct AlarmSpec {
    id: &'static str,
    /// Suffix of the alarm name (`<project>-<env>-<role>-<suffix>`).
    suffix: &'static str,
    description: String,
    metric: Metric,
    period: u32,
    evaluation_periods: u32,
    threshold: f64,
    comparison: &'static str,
    treat_missing: &'static str,
}

/// One input of a metric-math alarm: id, namespace, metric name, dimensions, statistic.
type MathInput = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, Expr)>,
    &'static str,
);

enum Metric {
    Simple {
        namespace: &'static str,
        name: &'static str,
        dimensions: Vec<(&'static str, Expr)>,
        statistic: &'static str,
    },
    Percentile {
        namespace: &'static str,
        name: &'static str,
        dimensions: Vec<(&'static str, Expr)>,
        percentile: &'static str,
    },
    /// Metric math: the inputs and the expression whose value is compared.
    Math {
        inputs: Vec<MathInput>,
        expression: &'static str,
        label: &'static str,
    },
}

fn dimensions(dims: &[(&'static str, Expr)]) -> Value {
    Value::Array(
        dims.iter()
            .map(|(name, value)| json!({ "Name": name, "Value": value }))
            .collect(),
    )
}

fn add_alarm(config: &Config, s: &mut Stack, spec: AlarmSpec) {
    let topic = vec![r("AlertTopic")];
    let mut alarm = cloudwatch::Alarm {
        alarm_name: Some(
            config
                .names()
                .alarm(config.region(s.role), spec.suffix)
                .into(),
        ),
        alarm_description: Some(spec.description.into()),
        evaluation_periods: spec.evaluation_periods.into(),
        datapoints_to_alarm: Some(spec.evaluation_periods.into()),
        threshold: Some(spec.threshold.into()),
        comparison_operator: spec.comparison.into(),
        treat_missing_data: Some(spec.treat_missing.into()),
        alarm_actions: Some(Expr::List(topic.clone())),
        ok_actions: Some(Expr::List(topic)),
        ..Default::default()
    };
    match spec.metric {
        Metric::Simple {
            namespace,
            name,
            dimensions: dims,
            statistic,
        } => {
            alarm.namespace = Some(namespace.into());
            alarm.metric_name = Some(name.into());
            alarm.dimensions = Some(Expr::json(dimensions(&dims)));
            alarm.statistic = Some(statistic.into());
            alarm.period = Some(spec.period.into());
        }
        Metric::Percentile {
            namespace,
            name,
            dimensions: dims,
            percentile,
        } => {
            alarm.namespace = Some(namespace.into());
            alarm.metric_name = Some(name.into());
            alarm.dimensions = Some(Expr::json(dimensions(&dims)));
            alarm.extended_statistic = Some(percentile.into());
            alarm.period = Some(spec.period.into());
        }
        Metric::Math {
            inputs,
            expression,
            label,
        } => {
            let mut metrics: Vec<Value> = inputs
                .into_iter()
                .map(|(id, namespace, name, dims, stat)| {
                    json!({
                        "Id": id,
                        "ReturnData": false,
                        "MetricStat": {
                            "Metric": { "Namespace": namespace, "MetricName": name, "Dimensions": dimensions(&dims) },
                            "Period": spec.period,
                            "Stat": stat
                        }
                    })
                })
                .collect();
            metrics.push(json!({ "Id": "result", "Expression": expression, "Label": label, "ReturnData": true }));
            alarm.metrics = Some(Expr::json(Value::Array(metrics)));
        }
    }
    s.template.add(spec.id, alarm);
}

pub fn build(config: &Config, role: Role) -> Stack {
    let names = config.names();
    let region = config.region(role).to_string();
    let mut s = Stack::new(
        config,
        COMPONENT,
        role,
        "alert topic, health checks, alarms and dashboard",
    );

    let compute = stack_id(crate::compute::COMPONENT, role);
    let alb = s.input("AlbFullName", &compute, "AlbFullName");
    let target_group = s.input("TargetGroupFullName", &compute, "TargetGroupFullName");
    let function = s.input("StorefrontFunctionName", &compute, "FunctionName");
    let cluster = s.input(
        "ClusterId",
        &stack_id(crate::database::COMPONENT, role),
        "ClusterId",
    );
    s.needs(&stack_id(crate::storage::COMPONENT, role));
    s.needs(&stack_id(crate::storage::COMPONENT, Role::Primary));

    // Alarms and EventBridge publish to the topic, so its key must let those services use it.
    let key_arn = kms_key(
        &mut s,
        "TopicKey",
        &format!("alias/{}-alerts", names.prefix()),
        "Encrypts the alert topic",
        &["cloudwatch.amazonaws.com", "events.amazonaws.com"],
    );
    s.template.add(
        "AlertTopic",
        sns::Topic {
            topic_name: Some(names.topic_name().into()),
            display_name: Some(format!("lifeboat {}", names.prefix()).into()),
            kms_master_key_id: Some(r("TopicKey")),
        },
    );
    s.template.add(
        "AlertTopicPolicy",
        sns::TopicPolicy {
            topics: Expr::list([r("AlertTopic")]),
            policy_document: Expr::json(policy_document(vec![json!({
                "Sid": "AlarmsAndEventsPublish",
                "Effect": "Allow",
                "Principal": { "Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"] },
                "Action": "sns:Publish",
                "Resource": r("AlertTopic"),
                "Condition": { "StringEquals": { "aws:SourceAccount": r("AWS::AccountId") } }
            })])),
        },
    );
    for (index, email) in config.alerts.emails.iter().enumerate() {
        s.template.add(
            &format!("AlertEmail{}", index + 1),
            sns::Subscription {
                topic_arn: r("AlertTopic"),
                protocol: "email".into(),
                endpoint: Some(email.clone().into()),
            },
        );
    }

    if role == Role::Primary {
        health_checks(config, &mut s);
    }
    region_alarms(config, &mut s, alb, target_group, function, cluster);

    s.template.add(
        "Dashboard",
        cloudwatch::Dashboard {
            dashboard_name: Some(names.dashboard(&region).into()),
            dashboard_body: dashboard_body(config, role, &region),
        },
    );

    s.output("TopicArn", r("AlertTopic"), "Alert topic in this region");
    s.output("TopicKeyArn", key_arn, "KMS key of the alert topic");
    s
}

/// Region where Route 53 publishes health-check metrics.
pub use lifeboat_config::names::ROUTE53_METRICS_REGION;

/// The health checks that guard the failover records (the DR runbooks drive traffic with them).
fn health_checks(config: &Config, s: &mut Stack) {
    let hc = &config.health_check;
    for role in Role::BOTH {
        let compute = stack_id(crate::compute::COMPONENT, role);
        let prefix = match role {
            Role::Primary => "Primary",
            Role::Standby => "Standby",
        };
        let dns = s.input(&format!("{prefix}AlbDnsName"), &compute, "AlbDnsName");
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
        let id = format!("{prefix}HealthCheck");
        s.template.add(
            &id,
            route53::HealthCheck {
                health_check_config: Expr::json(check),
            },
        );
        s.output(
            &format!("{prefix}HealthCheckId"),
            r(&id),
            &format!("Route 53 health check of the {role} region's load balancer"),
        );
    }
}

fn region_alarms(
    config: &Config,
    s: &mut Stack,
    alb: Expr,
    target_group: Expr,
    function: Expr,
    cluster: Expr,
) {
    let names = config.names();
    let role = s.role;
    let region = config.region(role).to_string();
    let other_region = config.region(role.other()).to_string();
    let alb_dims = || vec![("LoadBalancer", alb.clone())];
    let fn_dims = || vec![("FunctionName", function.clone())];
    let cluster_dims = || vec![("DBClusterIdentifier", cluster.clone())];
    let rpo_ms = f64::from(config.dr.rpo_seconds) * 1000.0;

    let mut specs = vec![
        AlarmSpec {
            id: "Alb5xxRateAlarm",
            suffix: "alb-5xx-rate",
            description: format!(
                "More than 5 % of requests to the {role} load balancer failed with a 5xx"
            ),
            metric: Metric::Math {
                inputs: vec![
                    (
                        "target5xx",
                        "AWS/ApplicationELB",
                        "HTTPCode_Target_5XX_Count",
                        alb_dims(),
                        "Sum",
                    ),
                    (
                        "elb5xx",
                        "AWS/ApplicationELB",
                        "HTTPCode_ELB_5XX_Count",
                        alb_dims(),
                        "Sum",
                    ),
                    (
                        "requests",
                        "AWS/ApplicationELB",
                        "RequestCount",
                        alb_dims(),
                        "Sum",
                    ),
                ],
                expression: "IF(requests > 0, 100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests, 0)",
                label: "5xx rate (%)",
            },
            period: 60,
            evaluation_periods: 3,
            threshold: 5.0,
            comparison: "GreaterThanThreshold",
            treat_missing: "notBreaching",
        },
        AlarmSpec {
            id: "UnhealthyTargetsAlarm",
            suffix: "unhealthy-targets",
            description: format!("The {role} load balancer has unhealthy targets"),
            metric: Metric::Simple {
                namespace: "AWS/ApplicationELB",
                name: "UnHealthyHostCount",
                dimensions: vec![
                    ("TargetGroup", target_group.clone()),
                    ("LoadBalancer", alb.clone()),
                ],
                statistic: "Maximum",
            },
            period: 60,
            evaluation_periods: 3,
            threshold: 0.0,
            comparison: "GreaterThanThreshold",
            treat_missing: "notBreaching",
        },
        AlarmSpec {
            id: "LatencyP99Alarm",
            suffix: "latency-p99",
            description: format!(
                "p99 response time of the {role} load balancer's targets above 2 s"
            ),
            metric: Metric::Percentile {
                namespace: "AWS/ApplicationELB",
                name: "TargetResponseTime",
                dimensions: alb_dims(),
                percentile: "p99",
            },
            period: 60,
            evaluation_periods: 5,
            threshold: 2.0,
            comparison: "GreaterThanThreshold",
            treat_missing: "notBreaching",
        },
        AlarmSpec {
            id: "LambdaErrorsAlarm",
            suffix: "lambda-errors",
            description: format!(
                "The {role} storefront function failed 5 or more invocations in 5 minutes"
            ),
            metric: Metric::Simple {
                namespace: "AWS/Lambda",
                name: "Errors",
                dimensions: fn_dims(),
                statistic: "Sum",
            },
            period: 300,
            evaluation_periods: 1,
            threshold: 5.0,
            comparison: "GreaterThanOrEqualToThreshold",
            treat_missing: "notBreaching",
        },
        AlarmSpec {
            id: "LambdaThrottlesAlarm",
            suffix: "lambda-throttles",
            description: format!("The {role} storefront function is being throttled"),
            metric: Metric::Simple {
                namespace: "AWS/Lambda",
                name: "Throttles",
                dimensions: fn_dims(),
                statistic: "Sum",
            },
            period: 300,
            evaluation_periods: 1,
            threshold: 1.0,
            comparison: "GreaterThanOrEqualToThreshold",
            treat_missing: "notBreaching",
        },
        AlarmSpec {
            id: "AuroraCpuAlarm",
            suffix: "aurora-cpu",
            description: format!("Aurora CPU in the {role} region above 80 % for 10 minutes"),
            metric: Metric::Simple {
                namespace: "AWS/RDS",
                name: "CPUUtilization",
                dimensions: cluster_dims(),
                statistic: "Average",
            },
            period: 300,
            evaluation_periods: 2,
            threshold: 80.0,
            comparison: "GreaterThanThreshold",
            treat_missing: "notBreaching",
        },
        AlarmSpec {
            id: "AuroraCapacityAlarm",
            suffix: "aurora-capacity",
            description: format!(
                "Aurora Serverless v2 in the {role} region at 90 % or more of its {} ACU maximum",
                config.capacity(role).max
            ),
            metric: Metric::Simple {
                namespace: "AWS/RDS",
                name: "ServerlessDatabaseCapacity",
                dimensions: cluster_dims(),
                statistic: "Maximum",
            },
            period: 300,
            evaluation_periods: 2,
            threshold: config.capacity(role).max * 0.9,
            comparison: "GreaterThanOrEqualToThreshold",
            treat_missing: "notBreaching",
        },
        AlarmSpec {
            id: "DynamoDbReplicationLatencyAlarm",
            suffix: "dynamodb-replication-latency",
            description: format!(
                "Sessions replication from {region} to {other_region} slower than the RPO"
            ),
            metric: Metric::Simple {
                namespace: "AWS/DynamoDB",
                name: "ReplicationLatency",
                dimensions: vec![
                    ("TableName", names.sessions_table().into()),
                    ("ReceivingRegion", other_region.clone().into()),
                ],
                statistic: "Average",
            },
            period: 60,
            evaluation_periods: 5,
            threshold: rpo_ms,
            comparison: "GreaterThanThreshold",
            treat_missing: "notBreaching",
        },
    ];
    specs.extend(role_following_alarms(
        config,
        &region,
        &other_region,
        cluster_dims(),
    ));
    for spec in specs {
        add_alarm(config, s, spec);
    }
}

/// Alarms on what only one role produces data for, in both regions so they follow the roles: Aurora
/// replication lag into this region's cluster (data only while it is secondary), and asset replication out of
/// this region's bucket (data only while objects are written here, i.e. while it is active).
fn role_following_alarms(
    config: &Config,
    region: &str,
    other_region: &str,
    cluster_dims: Vec<(&'static str, Expr)>,
) -> Vec<AlarmSpec> {
    let names = config.names();
    let rpo_ms = f64::from(config.dr.rpo_seconds) * 1000.0;
    let s3_dims = || {
        vec![
            ("SourceBucket", sub(names.assets_bucket_pattern(region))),
            (
                "DestinationBucket",
                sub(names.assets_bucket_pattern(other_region)),
            ),
            (
                "RuleId",
                crate::storage::replication_rule_id(other_region).into(),
            ),
        ]
    };
    vec![
        AlarmSpec {
            id: "AuroraReplicationLagAlarm",
            suffix: "aurora-replication-lag",
            description: format!(
                "Aurora global replication lag into {region} above the RPO ({} s); only a secondary cluster \
                 reports this metric, so while {region} is primary this alarm has no data",
                config.dr.rpo_seconds
            ),
            metric: Metric::Simple {
                namespace: "AWS/RDS",
                name: "AuroraGlobalDBReplicationLag",
                dimensions: cluster_dims,
                statistic: "Maximum",
            },
            period: 60,
            evaluation_periods: 3,
            threshold: rpo_ms,
            comparison: "GreaterThanThreshold",
            // No data while this region is primary: that is no reason to alarm.
            treat_missing: "missing",
        },
        AlarmSpec {
            id: "S3ReplicationLatencyAlarm",
            suffix: "s3-replication-latency",
            description: format!(
                "Asset replication from {region} to {other_region} slower than 15 minutes (the Replication Time Control target)"
            ),
            metric: Metric::Simple {
                namespace: "AWS/S3",
                name: "ReplicationLatency",
                dimensions: s3_dims(),
                statistic: "Maximum",
            },
            period: 300,
            evaluation_periods: 1,
            threshold: 900.0,
            comparison: "GreaterThanThreshold",
            treat_missing: "notBreaching",
        },
        AlarmSpec {
            id: "S3ReplicationFailedAlarm",
            suffix: "s3-replication-failed",
            description: format!(
                "Asset objects failed to replicate from {region} to {other_region}"
            ),
            metric: Metric::Simple {
                namespace: "AWS/S3",
                name: "OperationsFailedReplication",
                dimensions: s3_dims(),
                statistic: "Sum",
            },
            period: 300,
            evaluation_periods: 1,
            threshold: 0.0,
            comparison: "GreaterThanThreshold",
            treat_missing: "notBreaching",
        },
    ]
}

/// The dashboard: one row per concern, built as JSON with `Fn::Sub` placeholders for values known only at
/// deploy time (load balancer, target group, function and cluster names come in as parameters).
fn dashboard_body(config: &Config, role: Role, region: &str) -> Expr {
    let names = config.names();
    let other = config.region(role.other());
    let widget = |title: &str, x: u32, y: u32, metrics: Value| {
        json!({
            "type": "metric", "x": x, "y": y, "width": 12, "height": 6,
            "properties": { "title": title, "region": region, "view": "timeSeries", "stat": "Sum", "period": 60, "metrics": metrics }
        })
    };
    let mut widgets = vec![
        widget(
            "Load balancer: requests and 5xx",
            0,
            0,
            json!([
                [
                    "AWS/ApplicationELB",
                    "RequestCount",
                    "LoadBalancer",
                    "${AlbFullName}"
                ],
                [".", "HTTPCode_Target_5XX_Count", ".", "."],
                [".", "HTTPCode_ELB_5XX_Count", ".", "."]
            ]),
        ),
        widget(
            "Load balancer: p99 latency (s)",
            12,
            0,
            json!([["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", "${AlbFullName}", { "stat": "p99" }]]),
        ),
        widget(
            "Storefront function",
            0,
            6,
            json!([
                [
                    "AWS/Lambda",
                    "Invocations",
                    "FunctionName",
                    "${StorefrontFunctionName}"
                ],
                [".", "Errors", ".", "."],
                [".", "Throttles", ".", "."]
            ]),
        ),
        widget(
            "Aurora: capacity (ACU), CPU (%), global replication lag (ms)",
            12,
            6,
            json!([
                ["AWS/RDS", "ServerlessDatabaseCapacity", "DBClusterIdentifier", "${ClusterId}", { "stat": "Maximum" }],
                [".", "CPUUtilization", ".", ".", { "stat": "Average" }],
                [".", "AuroraGlobalDBReplicationLag", ".", ".", { "stat": "Maximum" }]
            ]),
        ),
        widget(
            "Sessions replication latency (ms)",
            0,
            12,
            json!([["AWS/DynamoDB", "ReplicationLatency", "TableName", names.sessions_table(), "ReceivingRegion", other, { "stat": "Average" }]]),
        ),
    ];
    // Bucket names carry `${AWS::AccountId}`, resolved by the body's Fn::Sub.
    widgets.push(widget(
        &format!("Asset replication to {other}: latency (s) and failures"),
        12,
        12,
        json!([
            ["AWS/S3", "ReplicationLatency", "SourceBucket", names.assets_bucket_pattern(region), "DestinationBucket", names.assets_bucket_pattern(other), "RuleId", crate::storage::replication_rule_id(other), { "stat": "Maximum" }],
            [".", "OperationsFailedReplication", ".", ".", ".", ".", ".", ".", { "stat": "Sum" }]
        ]),
    ));
    if role == Role::Primary {
        // Route 53 publishes health-check metrics in us-east-1 only.
        let mut health = widget(
            "Route 53 health checks (1 = healthy)",
            0,
            18,
            json!([
                ["AWS/Route53", "HealthCheckStatus", "HealthCheckId", "${PrimaryHealthCheck}", { "label": "primary", "stat": "Minimum" }],
                ["AWS/Route53", "HealthCheckStatus", "HealthCheckId", "${StandbyHealthCheck}", { "label": "standby", "stat": "Minimum" }]
            ]),
        );
        health["properties"]["region"] = json!(ROUTE53_METRICS_REGION);
        widgets.push(health);
    }
    let body = json!({ "widgets": widgets });
    // Placeholders are resolved by Fn::Sub: the parameters above and the account id in bucket names.
    Expr::Sub(body.to_string())
}
