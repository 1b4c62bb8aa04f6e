//! DR automation, per region: the DR automation Lambda function (the orchestrator's runbooks; code location
//! from parameters), an EventBridge rule on state changes of the alarms that watch either region, with its
//! invoke permission, the cross-region probe of the other region (a schedule invoking the function and an
//! alarm on what it reports), a role limited to what a failover needs on this environment's resources, and
//! the SSM endpoint parameters.
//!
//! Detection survives the loss of either region: each region's function is triggered by the alarms that live
//! in its own region (the probe alarm on the other region) and by the Route 53 health alarms, which live in
//! us-east-1 and reach the other regions' buses through the forwarding rule of [`crate::detection`]. Both
//! regions receive the alarms of both regions; the policy acts only on those of the region active at the
//! time, so automation follows the roles after a switchover, and the journal lock lets one run act.
//!
//! The DR control state (active region, epoch, fence) is not a stack resource: a template update or a stack
//! deletion would reset or delete live state. `lifeboat deploy` creates those parameters once, if absent.
//!
//! The primary stack also holds the DynamoDB global table for the run journal and lock (replicated to the
//! standby region) and the Route 53 failover record pair.

use lifeboat_cfn::resources::{cloudwatch, dynamodb, events, iam, lambda, route53, ssm};
use lifeboat_cfn::{Expr, get_att, join, r, sub};
use lifeboat_config::names::{
    PROBE_DIMENSION_ENVIRONMENT, PROBE_DIMENSION_REGION, PROBE_METRIC, PROBE_NAMESPACE,
};
use lifeboat_config::{Config, Role};
use lifeboat_contract::manifest::ArtifactPart;
use serde_json::{Value, json};

use crate::util::{Stack, allow, arn_in, assume_role, inline_policy, log_group, stack_id};

pub const COMPONENT: &str = "dr-automation";
/// The artifact name of the DR automation code package in the manifest.
pub const ARTIFACT: &str = "dr-automation";
/// Key attributes of the journal table (both strings).
pub const JOURNAL_PARTITION_KEY: &str = "pk";
pub const JOURNAL_SORT_KEY: &str = "sk";
/// Initial value of the fencing epoch parameter (created by `lifeboat deploy`, not by a stack).
pub const INITIAL_EPOCH: &str = "1";
pub use lifeboat_config::names::PROBE_EVENT_KEY;
/// How often each region probes the other.
pub const PROBE_SCHEDULE: &str = "rate(1 minute)";

/// Environment variables of the DR automation function.
pub mod env {
    pub const PROJECT: &str = "LIFEBOAT_PROJECT";
    pub const ENVIRONMENT: &str = "LIFEBOAT_ENVIRONMENT";
    pub const REGION: &str = "LIFEBOAT_REGION";
    pub const PRIMARY_REGION: &str = "LIFEBOAT_PRIMARY_REGION";
    pub const STANDBY_REGION: &str = "LIFEBOAT_STANDBY_REGION";
    pub const DOMAIN: &str = "LIFEBOAT_DOMAIN";
    pub const RECORD: &str = "LIFEBOAT_RECORD";
    pub const JOURNAL_TABLE: &str = "JOURNAL_TABLE";
    pub const CONTROL_SSM_PREFIX: &str = "CONTROL_SSM_PREFIX";
    pub const TOPIC_ARN: &str = "TOPIC_ARN";
    pub const GLOBAL_CLUSTER_ID: &str = "GLOBAL_CLUSTER_ID";
    pub const HOSTED_ZONE_ID: &str = "HOSTED_ZONE_ID";
    pub const PRIMARY_HEALTH_CHECK_ID: &str = "PRIMARY_HEALTH_CHECK_ID";
    pub const STANDBY_HEALTH_CHECK_ID: &str = "STANDBY_HEALTH_CHECK_ID";
    /// Prefix of the `[dr]` settings: `LIFEBOAT_DR_RTO_SECONDS`, ...
    pub const DR_PREFIX: &str = "LIFEBOAT_DR_";
}

/// The EventBridge pattern matching state changes of the alarms that watch either region (which of them
/// matters depends on which region is active when they fire: the policy decides).
pub fn alarm_event_pattern(config: &Config) -> Value {
    json!({
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": { "alarmName": config.names().automation_alarms() }
    })
}

/// The event the probe schedule of a region sends its DR automation function.
pub fn probe_event(watched_region: &str) -> Value {
    json!({ PROBE_EVENT_KEY: { "region": watched_region } })
}

pub fn build(config: &Config, role: Role) -> Stack {
    let names = config.names();
    let region = config.region(role).to_string();
    let mut s = Stack::new(
        config,
        COMPONENT,
        role,
        "DR automation function, alarm trigger, cross-region probe, endpoint parameters, journal, failover records",
    );

    let networking = stack_id(crate::networking::COMPONENT, role);
    let app_subnets = s.input_list("AppSubnetIds", &networking, "AppSubnetIds");
    let security_group = s.input(
        "DrAutomationSecurityGroupId",
        &networking,
        "DrAutomationSecurityGroupId",
    );
    let networking_primary = stack_id(crate::networking::COMPONENT, Role::Primary);
    let hosted_zone = s.input("HostedZoneId", &networking_primary, "HostedZoneId");
    let monitoring_primary = stack_id(crate::monitoring::COMPONENT, Role::Primary);
    let primary_check = s.input(
        "PrimaryHealthCheckId",
        &monitoring_primary,
        "PrimaryHealthCheckId",
    );
    let standby_check = s.input(
        "StandbyHealthCheckId",
        &monitoring_primary,
        "StandbyHealthCheckId",
    );
    let monitoring = stack_id(crate::monitoring::COMPONENT, role);
    let topic = s.input("TopicArn", &monitoring, "TopicArn");
    let topic_key = s.input("TopicKeyArn", &monitoring, "TopicKeyArn");
    // The database stack first: the function acts on its clusters (by name, not by an output).
    s.needs(&stack_id(crate::database::COMPONENT, role));
    let mut albs = Vec::new();
    for r_ in Role::BOTH {
        let compute = stack_id(crate::compute::COMPONENT, r_);
        let prefix = if r_ == Role::Primary {
            "Primary"
        } else {
            "Standby"
        };
        let dns = s.input(&format!("{prefix}AlbDnsName"), &compute, "AlbDnsName");
        albs.push((r_, dns));
    }
    if role == Role::Standby {
        // The journal table's standby replica is created by the primary stack.
        s.needs(&stack_id(COMPONENT, Role::Primary));
    }

    if role == Role::Primary {
        journal_table(config, &mut s);
        failover_records(
            config,
            &mut s,
            hosted_zone.clone(),
            &albs,
            primary_check.clone(),
            standby_check.clone(),
        );
    }
    endpoint_parameters(config, &mut s, &albs);

    let code_bucket = s.artifact("DrAutomationCodeBucket", ARTIFACT, ArtifactPart::Bucket);
    let code_key = s.artifact("DrAutomationCodeKey", ARTIFACT, ArtifactPart::Key);
    let function_name = names.dr_function();
    let log_group_arn = log_group(
        &mut s,
        "DrAutomationLogGroup",
        &lifeboat_config::Names::lambda_log_group(&function_name),
    );

    let statements = role_statements(
        config,
        role,
        log_group_arn,
        &primary_check,
        &standby_check,
        &topic_key,
    );
    s.template.add(
        "DrAutomationRole",
        iam::Role {
            assume_role_policy_document: assume_role("lambda.amazonaws.com"),
            description: Some(
                "DR automation: fail over, switch over and fence this environment, nothing else"
                    .into(),
            ),
            policies: Some(Expr::json(json!([inline_policy(
                "dr-automation",
                statements
            )]))),
            managed_policy_arns: None,
        },
    );

    let dr = &config.dr;
    let mut variables = serde_json::Map::new();
    let mut set = |key: &str, value: Value| {
        variables.insert(key.to_string(), value);
    };
    set(env::PROJECT, json!(config.project.name));
    set(env::ENVIRONMENT, json!(config.project.environment));
    set(env::REGION, json!(region));
    set(env::PRIMARY_REGION, json!(config.regions.primary));
    set(env::STANDBY_REGION, json!(config.regions.standby));
    set(env::DOMAIN, json!(config.dns.domain));
    set(env::RECORD, json!(config.dns.record));
    set(env::JOURNAL_TABLE, json!(names.journal_table()));
    set(env::CONTROL_SSM_PREFIX, json!(names.ssm_prefix()));
    set(env::TOPIC_ARN, json!(topic));
    set(env::GLOBAL_CLUSTER_ID, json!(names.global_cluster_id()));
    set(env::HOSTED_ZONE_ID, json!(hosted_zone));
    set(env::PRIMARY_HEALTH_CHECK_ID, json!(primary_check));
    set(env::STANDBY_HEALTH_CHECK_ID, json!(standby_check));
    for (key, value) in [
        ("RTO_SECONDS", dr.rto_seconds.to_string()),
        ("RPO_SECONDS", dr.rpo_seconds.to_string()),
        (
            "MAX_SWITCHOVER_LAG_SECONDS",
            dr.max_switchover_lag_seconds.to_string(),
        ),
        ("ALLOW_DATA_LOSS", dr.allow_data_loss.to_string()),
        ("ALARM_MIN_SECONDS", dr.alarm_min_seconds.to_string()),
        ("COOLDOWN_SECONDS", dr.cooldown_seconds.to_string()),
        (
            "SWITCHOVER_TIMEOUT_SECONDS",
            dr.switchover_timeout_seconds.to_string(),
        ),
    ] {
        set(&format!("{}{key}", env::DR_PREFIX), json!(value));
    }
    s.template.add(
        "DrAutomationFunction",
        lambda::Function {
            function_name: Some(function_name.into()),
            description: Some(
                "DR automation: runs switchover and failover runbooks on alarm".into(),
            ),
            runtime: Some("provided.al2023".into()),
            handler: Some("bootstrap".into()),
            role: get_att("DrAutomationRole", "Arn"),
            code: Expr::json(json!({ "S3Bucket": code_bucket, "S3Key": code_key })),
            architectures: Some(Expr::list(["x86_64"])),
            memory_size: Some(256.into()),
            // Lambda's maximum. One invocation runs one stage of a run (the state machine calls again for
            // the next) and hands over a minute before its deadline; a stage still running then is run
            // again by the next invocation.
            timeout: Some(900.into()),
            environment: Some(Expr::json(json!({ "Variables": variables }))),
            vpc_config: Some(Expr::json(
                json!({ "SubnetIds": app_subnets, "SecurityGroupIds": [security_group] }),
            )),
            logging_config: Some(Expr::json(
                json!({ "LogGroup": r("DrAutomationLogGroup"), "LogFormat": "JSON" }),
            )),
            // No reserved concurrency: it would eat into small accounts' unreserved pool; the journal lock
            // already lets only one run act at a time, across both regions.
            reserved_concurrent_executions: None,
        },
    );

    let key = crate::audit::audit_key(config, &mut s);
    crate::dr_state_machine::add(config, &mut s, key, topic.clone());
    trigger(config, &mut s);
    probe(config, &mut s, role, topic.clone());

    s.output(
        "FunctionName",
        r("DrAutomationFunction"),
        "DR automation function",
    );
    s.output(
        "FunctionArn",
        get_att("DrAutomationFunction", "Arn"),
        "DR automation function ARN",
    );
    s.output(
        "ControlSsmPrefix",
        names.ssm_prefix().into(),
        "SSM prefix of the DR control parameters",
    );
    if role == Role::Primary {
        s.output(
            "JournalTableName",
            r("JournalTable"),
            "DR run journal and lock (global table)",
        );
        s.output(
            "RecordName",
            names.record_name().into(),
            "The failover record",
        );
    }
    crate::hardening::dr_automation(config, &mut s, role);
    s
}

fn role_statements(
    config: &Config,
    role: Role,
    log_group_arn: Expr,
    primary_check: &Expr,
    standby_check: &Expr,
    topic_key: &Expr,
) -> Vec<Value> {
    let names = config.names();
    let regions = [
        config.regions.primary.clone(),
        config.regions.standby.clone(),
    ];
    let each_region = |service: &str, rest: &str| -> Vec<Expr> {
        regions.iter().map(|r| arn_in(service, r, rest)).collect()
    };
    let clusters: Vec<Expr> = regions
        .iter()
        .map(|r| arn_in("rds", r, &format!("cluster:{}", names.cluster_id(r))))
        .collect();
    let global_cluster = sub(format!(
        "arn:${{AWS::Partition}}:rds::${{AWS::AccountId}}:global-cluster:{}",
        names.global_cluster_id()
    ));
    let mut rds_targets = clusters.clone();
    rds_targets.push(global_cluster.clone());
    let route53 = |rest: Expr| join("", vec![sub("arn:${AWS::Partition}:route53:::"), rest]);
    let ssm_prefix = names.ssm_prefix();
    // Every statement names the code that needs it; `aws-dr/tests/permissions.rs` checks each action the
    // runbooks call against these statements and that no statement goes unused.
    let mut statements = vec![
        // The function's own log lines.
        allow(
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            vec![join("", vec![log_group_arn, ":*".into()])],
        ),
        // Lambda manages the function's network interfaces in the VPC with the execution role.
        crate::compute::vpc_access_statement(),
        // promote: switchover or failover of the global cluster.
        allow(
            &["rds:FailoverGlobalCluster", "rds:SwitchoverGlobalCluster"],
            rds_targets,
        ),
        // prescale-standby: the target cluster's Serverless v2 minimum capacity. RDS offers no condition key
        // for which settings a ModifyDBCluster changes, so this is as narrow as IAM allows: the two clusters.
        allow(&["rds:ModifyDBCluster"], clusters),
        // readiness, wait-drained and promote observe Aurora (the automation never runs a failback, whose
        // reprotect also lists snapshots). Under `*`: DescribeGlobalClusters lists every global cluster.
        allow(
            &["rds:DescribeGlobalClusters", "rds:DescribeDBClusters"],
            vec!["*".into()],
        ),
        // shift-traffic and readiness: the two failover health checks.
        allow(
            &[
                "route53:GetHealthCheck",
                "route53:GetHealthCheckStatus",
                "route53:UpdateHealthCheck",
            ],
            vec![
                route53(join("", vec!["healthcheck/".into(), primary_check.clone()])),
                route53(join("", vec!["healthcheck/".into(), standby_check.clone()])),
            ],
        ),
        // No record listing: the health check ids come in the function's environment, so the lookup through
        // the zone's records (the command line's way) never runs here.
        // The control state: read by readiness and the epoch store (its floor), written by raise/lower-fence
        // and record-active-region.
        allow(
            &["ssm:GetParameter", "ssm:GetParameters", "ssm:PutParameter"],
            regions
                .iter()
                .flat_map(|r| {
                    [
                        arn_in("ssm", r, &format!("parameter{ssm_prefix}")),
                        arn_in("ssm", r, &format!("parameter{ssm_prefix}/*")),
                    ]
                })
                .collect(),
        ),
        // The run journal, lock and epoch.
        allow(
            &[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
            ],
            each_region("dynamodb", &format!("table/{}", names.journal_table())),
        ),
        // readiness: the sessions table's replica in each region.
        allow(
            &["dynamodb:DescribeTable"],
            each_region("dynamodb", &format!("table/{}", names.sessions_table())),
        ),
        // notify and the operator messages: the alert topic of either region (the surviving one after a
        // region is lost).
        allow(&["sns:Publish"], each_region("sns", &names.topic_name())),
        // Publishing to a topic encrypted with a customer key needs the key: this region's topic key by ARN.
        allow(
            &["kms:GenerateDataKey", "kms:Decrypt"],
            vec![topic_key.clone()],
        ),
        // readiness: alarms firing and the replication lag metric.
        allow(
            &[
                "cloudwatch:DescribeAlarms",
                "cloudwatch:GetMetricStatistics",
            ],
            vec!["*".into()],
        ),
        // prescale-standby: the storefront function's reserved concurrency.
        allow(
            &[
                "lambda:GetFunctionConcurrency",
                "lambda:PutFunctionConcurrency",
            ],
            each_region(
                "lambda",
                &format!("function:{}", names.storefront_function()),
            ),
        ),
        // readiness: the asset buckets' replication.
        allow(
            &["s3:GetReplicationConfiguration"],
            regions
                .iter()
                .map(|r| crate::util::bucket_arn(&names.assets_bucket_pattern(r)))
                .collect(),
        ),
    ];
    // The other region's topic key is a different stack's (and region's) key, unknown here by ARN: allowed
    // for any key of that region only when SNS uses it there on this function's behalf.
    let other = config.region(role.other()).to_string();
    statements.push(json!({
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": [arn_in("kms", &other, "key/*")],
        "Condition": { "StringEquals": { "kms:ViaService": format!("sns.{other}.amazonaws.com") } }
    }));
    statements.extend(probe_statements(config));
    statements
}

fn journal_table(config: &Config, s: &mut Stack) {
    let replica = |region: &str| {
        json!({
            "Region": region,
            "PointInTimeRecoverySpecification": { "PointInTimeRecoveryEnabled": true },
            "DeletionProtectionEnabled": config.deletion_protection(),
            "Tags": crate::util::tag_list(config)
        })
    };
    s.template
        .add(
            "JournalTable",
            dynamodb::GlobalTable {
                table_name: Some(config.names().journal_table().into()),
                billing_mode: Some("PAY_PER_REQUEST".into()),
                attribute_definitions: Expr::json(json!([
                    { "AttributeName": JOURNAL_PARTITION_KEY, "AttributeType": "S" },
                    { "AttributeName": JOURNAL_SORT_KEY, "AttributeType": "S" }
                ])),
                key_schema: Expr::json(json!([
                    { "AttributeName": JOURNAL_PARTITION_KEY, "KeyType": "HASH" },
                    { "AttributeName": JOURNAL_SORT_KEY, "KeyType": "RANGE" }
                ])),
                replicas: Expr::json(json!([
                    replica(&config.regions.primary),
                    replica(&config.regions.standby)
                ])),
                // Encrypted at rest with the DynamoDB-owned key: a customer key would need one key ARN per
                // replica, and the journal holds no customer data.
                sse_specification: None,
                stream_specification: Some(Expr::json(
                    json!({ "StreamViewType": "NEW_AND_OLD_IMAGES" }),
                )),
                time_to_live_specification: None,
            },
        )
        .stateful(crate::database::keep(config));
}

/// The failover pair: PRIMARY → primary load balancer (with the primary health check), SECONDARY → standby
/// load balancer. CNAMEs rather than aliases, so the configured TTL applies.
fn failover_records(
    config: &Config,
    s: &mut Stack,
    zone: Expr,
    albs: &[(Role, Expr)],
    primary_check: Expr,
    standby_check: Expr,
) {
    let names = config.names();
    for (role, dns) in albs {
        let (id, failover, check) = match role {
            Role::Primary => ("PrimaryRecord", "PRIMARY", primary_check.clone()),
            Role::Standby => ("StandbyRecord", "SECONDARY", standby_check.clone()),
        };
        s.template.add(
            id,
            route53::RecordSet {
                hosted_zone_id: zone.clone(),
                name: names.record_name().into(),
                record_type: "CNAME".into(),
                set_identifier: Some(format!("{}-{role}", names.prefix()).into()),
                failover: Some(failover.into()),
                health_check_id: Some(check),
                alias_target: None,
                ttl: Some(config.dns.ttl_seconds.to_string().into()),
                resource_records: Some(Expr::list([dns.clone()])),
            },
        );
    }
}

/// The endpoint parameters in this region: plain configuration derived from the stacks (the load balancers'
/// names), rewritten by every deploy. The control state (active region, epoch, fence) is deliberately not
/// here: see the module documentation.
fn endpoint_parameters(config: &Config, s: &mut Stack, albs: &[(Role, Expr)]) {
    let names = config.names();
    for (role, dns) in albs {
        let id = if *role == Role::Primary {
            "PrimaryEndpointParameter"
        } else {
            "StandbyEndpointParameter"
        };
        s.template.add(
            id,
            ssm::Parameter {
                name: Some(names.ssm_endpoint(config.region(*role)).into()),
                parameter_type: "String".into(),
                value: dns.clone(),
                description: Some("Public endpoint (load balancer) of a region".into()),
                tier: Some("Standard".into()),
            },
        );
    }
}

/// Name of the rule that starts the DR state machine on alarm state changes.
pub fn alarm_rule_name(config: &Config) -> String {
    format!("{}-dr-alarms", config.names().prefix())
}

/// How long EventBridge keeps retrying to start an execution for one alarm change before the event goes to
/// the failed-events queue. The decision re-reads the alarms, so a late start decides on the present; an
/// hour covers a Step Functions or IAM hiccup without acting on an alarm change hours old.
pub const ALARM_EVENT_MAX_AGE_SECONDS: u32 = 3600;

/// The rule that hands the watching alarms' state changes (emitted here, or forwarded from us-east-1) to
/// this region's DR state machine: each change starts an execution, whose first task decides. An event
/// EventBridge could not deliver (StartExecution throttled or refused through every retry) lands in the
/// failed-events queue, whose alarm tells the operators
/// (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html), instead of being dropped.
fn trigger(config: &Config, s: &mut Stack) {
    s.template.add(
        "AlarmRule",
        events::Rule {
            name: Some(alarm_rule_name(config).into()),
            description: Some(
                "State changes of the alarms watching either region start the DR automation".into(),
            ),
            event_pattern: Some(Expr::json(alarm_event_pattern(config))),
            state: Some("ENABLED".into()),
            targets: Some(Expr::json(json!([{
                "Id": "dr-state-machine",
                "Arn": r(crate::dr_state_machine::STATE_MACHINE),
                "RoleArn": get_att("DrStateMachineStartRole", "Arn"),
                "RetryPolicy": {
                    "MaximumRetryAttempts": 185,
                    "MaximumEventAgeInSeconds": ALARM_EVENT_MAX_AGE_SECONDS
                },
                "DeadLetterConfig": { "Arn": get_att(crate::hardening::FAILED_EVENTS_QUEUE, "Arn") }
            }]))),
        },
    );
}

/// The cross-region probe: every minute this region's function probes the other region and publishes
/// [`PROBE_METRIC`] here; the alarm on it lives here, so the other region's loss (its CloudWatch and
/// EventBridge included) is still seen, and its state changes reach this region's function through
/// [`trigger`].
fn probe(config: &Config, s: &mut Stack, role: Role, topic: Expr) {
    let names = config.names();
    let here = config.region(role);
    let watched = config.region(role.other());
    s.template.add(
        "ProbeSchedule",
        events::Rule {
            name: Some(format!("{}-probe-{watched}", names.prefix()).into()),
            description: Some(format!("Probes {watched} from {here} every minute").into()),
            event_pattern: None,
            state: Some("ENABLED".into()),
            targets: Some(Expr::json(json!([{
                "Id": "dr-automation-probe",
                "Arn": get_att("DrAutomationFunction", "Arn"),
                "Input": probe_event(watched).to_string()
            }]))),
        },
    );
    if let Some(rule) = s.template.resources.get_mut("ProbeSchedule")
        && let Some(properties) = rule.properties.as_object_mut()
    {
        properties.insert("ScheduleExpression".into(), json!(PROBE_SCHEDULE));
    }
    s.template.add(
        "ProbeScheduleInvokePermission",
        lambda::Permission {
            action: "lambda:InvokeFunction".into(),
            function_name: r("DrAutomationFunction"),
            principal: "events.amazonaws.com".into(),
            source_arn: Some(get_att("ProbeSchedule", "Arn")),
            source_account: None,
        },
    );
    let minutes = config.dr.alarm_min_seconds.div_ceil(60).max(1);
    s.template.add(
        "ProbeAlarm",
        cloudwatch::Alarm {
            alarm_name: Some(names.probe_alarm(watched, here).into()),
            alarm_description: Some(
                format!("{watched} answered unhealthy (or not at all) to every probe from {here} for {minutes} minute(s)")
                    .into(),
            ),
            namespace: Some(PROBE_NAMESPACE.into()),
            metric_name: Some(PROBE_METRIC.into()),
            dimensions: Some(Expr::json(json!([
                { "Name": PROBE_DIMENSION_ENVIRONMENT, "Value": names.prefix() },
                { "Name": PROBE_DIMENSION_REGION, "Value": watched }
            ]))),
            statistic: Some("Maximum".into()),
            period: Some(60.into()),
            evaluation_periods: minutes.into(),
            datapoints_to_alarm: Some(minutes.into()),
            threshold: Some(1.0.into()),
            comparison_operator: "LessThanThreshold".into(),
            // No datapoint means the probe itself did not run (a problem here, not there): no alarm.
            treat_missing_data: Some("missing".into()),
            alarm_actions: Some(Expr::list([topic.clone()])),
            ok_actions: Some(Expr::list([topic])),
            ..Default::default()
        },
    );
    s.output(
        "ProbeAlarmName",
        names.probe_alarm(watched, here).into(),
        &format!("Alarm on the probe of {watched} from {here}"),
    );
}

/// What the probe needs: invoking the storefront function of either region (the probe asks the other
/// region's; readiness and verify ask both), and publishing its metric in this region.
fn probe_statements(config: &Config) -> Vec<Value> {
    let names = config.names();
    let storefronts = Role::BOTH
        .iter()
        .map(|role| {
            arn_in(
                "lambda",
                config.region(*role),
                &format!("function:{}", names.storefront_function()),
            )
        })
        .collect();
    vec![
        allow(&["lambda:InvokeFunction"], storefronts),
        // PutMetricData has no resource-level permissions; the namespace condition is the narrowing AWS
        // offers (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html).
        json!({
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": ["*"],
            "Condition": { "StringEquals": { "cloudwatch:namespace": PROBE_NAMESPACE } }
        }),
    ]
}
