//! Security hardening added to the resources the components build, kept apart from them so each choice and
//! its reason is in one place (docs/synth.md's security section lists them):
//!
//! - database: IAM database authentication, enhanced monitoring (its own role), Performance Insights
//!   encrypted with the database key, and the log groups of the exported database logs created in advance,
//!   encrypted and with a retention (RDS would create them unencrypted and kept forever);
//! - storage: a server access logs bucket per region, receiving the asset bucket's access logs;
//! - compute: the storefront function's configurable reserved concurrency, its role ARN as an output (the
//!   reports bucket denies it by ARN);
//! - DR automation: reserved concurrency, an on-failure destination for its asynchronous invocations (a
//!   KMS-encrypted SQS queue) with an alarm on the queue's depth, the reports bucket ([`crate::audit`]) and
//!   the backups ([`crate::backup`]).

use lifeboat_cfn::resources::{cloudwatch, iam, lambda, s3, sqs};
use lifeboat_cfn::{Expr, get_att, join, r, sub};
use lifeboat_config::{Config, Role};
use serde_json::json;

use crate::util::{
    Stack, allow, assume_role, block_public_access, bucket_arn, deny_insecure_transport,
    policy_document, set_properties, stack_id,
};

/// Enhanced monitoring interval of the Aurora instances, in seconds: OS metrics at this granularity show
/// what the database was doing in the minute before and after a failover.
pub const MONITORING_INTERVAL_SECONDS: u32 = 60;
/// Performance Insights retention in days (7 is the free tier).
pub const PERFORMANCE_INSIGHTS_RETENTION_DAYS: u32 = 7;
/// Prefix of the asset bucket's server access logs in the S3 logs bucket.
pub const ASSETS_ACCESS_LOG_PREFIX: &str = "assets/";
/// Server access logs are kept this long.
pub const ACCESS_LOG_DAYS: u32 = 90;
/// Lambda keeps retrying an asynchronous event for at most this long before it goes to the failed-events
/// queue (the default of six hours would leave a failover request pending far past any RTO).
pub const DR_MAXIMUM_EVENT_AGE_SECONDS: u32 = 3_600;
/// Retries of a failed asynchronous DR invocation (Lambda's maximum).
pub const DR_MAXIMUM_RETRY_ATTEMPTS: u32 = 2;
/// Failed events are kept 14 days (SQS's maximum), long enough for a human to look after a weekend.
pub const FAILED_EVENTS_RETENTION_SECONDS: u32 = 1_209_600;

/// Database stack: IAM authentication, enhanced monitoring, Performance Insights, encrypted log groups.
pub fn database(config: &Config, s: &mut Stack, role: Role) {
    let region = config.region(role).to_string();
    let mut log_groups = Vec::new();
    for (index, kind) in crate::database::LOG_EXPORTS.iter().enumerate() {
        let id = format!("DatabaseLogGroup{}", index + 1);
        crate::util::log_group(s, &id, &database_log_group(config, &region, kind));
        log_groups.push(id);
    }
    if let Some(cluster) = s.template.resources.get_mut("Cluster") {
        for id in log_groups {
            cluster.depends_on(id);
        }
    }
    set_properties(
        s,
        "Cluster",
        json!({ "EnableIAMDatabaseAuthentication": true }),
    );
    crate::backup::backups(config, s, role);
    if role == Role::Primary {
        app_secret(config, s);
    }

    s.template.add(
        "MonitoringRole",
        iam::Role {
            assume_role_policy_document: assume_role("monitoring.rds.amazonaws.com"),
            description: Some("RDS enhanced monitoring publishes OS metrics of the Aurora instances".into()),
            policies: None,
            managed_policy_arns: Some(Expr::list([sub(
                "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
            )])),
        },
    );
    let instances: Vec<String> = s
        .template
        .resources
        .iter()
        .filter(|(_, res)| res.kind == "AWS::RDS::DBInstance")
        .map(|(id, _)| id.clone())
        .collect();
    for id in instances {
        set_properties(
            s,
            &id,
            json!({
                "MonitoringInterval": MONITORING_INTERVAL_SECONDS,
                "MonitoringRoleArn": get_att("MonitoringRole", "Arn"),
                "EnablePerformanceInsights": true,
                "PerformanceInsightsKMSKeyId": get_att("DatabaseKey", "Arn"),
                "PerformanceInsightsRetentionPeriod": PERFORMANCE_INSIGHTS_RETENTION_DAYS
            }),
        );
    }
}

/// Storage stack: the region's S3 server access logs bucket, and the asset bucket logging into it.
pub fn storage(config: &Config, s: &mut Stack, role: Role) {
    let names = config.names();
    let region = config.region(role).to_string();
    let logs_name = names.s3_access_logs_bucket_pattern(&region);
    // S3 server access log delivery writes only to buckets with SSE-S3 default encryption, not SSE-KMS:
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html
    s.template
        .add(
            "S3AccessLogsBucket",
            s3::Bucket {
                bucket_name: Some(sub(logs_name.clone())),
                versioning_configuration: Some(Expr::json(json!({ "Status": "Enabled" }))),
                bucket_encryption: Some(Expr::json(json!({
                    "ServerSideEncryptionConfiguration": [{ "ServerSideEncryptionByDefault": { "SSEAlgorithm": "AES256" } }]
                }))),
                public_access_block_configuration: Some(block_public_access()),
                ownership_controls: Some(Expr::json(
                    json!({ "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }] }),
                )),
                lifecycle_configuration: Some(Expr::json(json!({
                    "Rules": [{
                        "Id": "expire-access-logs",
                        "Status": "Enabled",
                        "ExpirationInDays": ACCESS_LOG_DAYS,
                        "NoncurrentVersionExpiration": { "NoncurrentDays": 7 },
                        "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 7 }
                    }]
                }))),
                replication_configuration: None,
            },
        )
        .stateful(crate::database::keep(config));
    let logs_arn = get_att("S3AccessLogsBucket", "Arn");
    // With BucketOwnerEnforced the log delivery is granted by bucket policy, limited to the source buckets
    // of this environment in this account (same documentation page).
    let sources = vec![
        bucket_arn(&names.assets_bucket_pattern(&region)),
        bucket_arn(&names.reports_bucket_pattern(&region)),
    ];
    s.template.add(
        "S3AccessLogsBucketPolicy",
        s3::BucketPolicy {
            bucket: r("S3AccessLogsBucket"),
            policy_document: Expr::json(policy_document(vec![
                deny_insecure_transport(&logs_arn),
                json!({
                    "Sid": "S3ServerAccessLogDelivery",
                    "Effect": "Allow",
                    "Principal": { "Service": "logging.s3.amazonaws.com" },
                    "Action": "s3:PutObject",
                    "Resource": join("", vec![logs_arn.clone(), "/*".into()]),
                    "Condition": {
                        "ArnLike": { "aws:SourceArn": sources },
                        "StringEquals": { "aws:SourceAccount": r("AWS::AccountId") }
                    }
                }),
            ])),
        },
    );
    set_properties(
        s,
        "AssetsBucket",
        json!({
            "LoggingConfiguration": {
                "DestinationBucketName": r("S3AccessLogsBucket"),
                "LogFilePrefix": ASSETS_ACCESS_LOG_PREFIX
            }
        }),
    );
    if let Some(assets) = s.template.resources.get_mut("AssetsBucket") {
        assets.depends_on("S3AccessLogsBucketPolicy");
    }
    s.output(
        "S3AccessLogsBucketName",
        r("S3AccessLogsBucket"),
        "Bucket of the S3 server access logs in this region",
    );
}

/// Environment variables of the storefront for `/health/deep` (the storefront's documented contract).
pub mod health_env {
    pub const TOKEN_SECRET_ARN: &str = "HEALTH_TOKEN_SECRET_ARN";
    pub const CACHE_SECONDS: &str = "HEALTH_CACHE_SECONDS";
}

/// The health token: generated by Secrets Manager in the primary region, replicated to the standby, so the
/// health checkers (the DR automation of either region) use one token for both storefronts. Letters and
/// digits only: it travels in an HTTP header.
fn health_token_secret(config: &Config, s: &mut Stack) {
    let names = config.names();
    s.template.add(
        "HealthTokenSecret",
        lifeboat_cfn::resources::secretsmanager::Secret {
            name: Some(names.health_token_secret().into()),
            description: Some(
                format!(
                    "Token that unlocks the full /health/deep report of the {} storefronts",
                    names.prefix()
                )
                .into(),
            ),
            // The AWS-managed key: the standby replica cannot use a key of a stack deployed later, and the
            // token guards a diagnostic report, not data.
            kms_key_id: None,
            generate_secret_string: Some(Expr::json(json!({
                "PasswordLength": 48,
                "ExcludePunctuation": true,
                "IncludeSpace": false
            }))),
            replica_regions: Some(Expr::json(json!([{ "Region": config.regions.standby }]))),
        },
    );
    s.output(
        "HealthTokenSecretArn",
        r("HealthTokenSecret"),
        "Health token secret in the primary region",
    );
    let parts = lifeboat_cfn::split(":", r("HealthTokenSecret"));
    let mut replica: Vec<Expr> = (0..7)
        .map(|i| lifeboat_cfn::select(i, parts.clone()))
        .collect();
    replica[3] = config.regions.standby.clone().into();
    s.output(
        "HealthTokenSecretReplicaArn",
        join(":", replica),
        "Health token secret replica in the standby region",
    );
}

/// The health token secret's ARN in `role`'s region, as a parameter of stack `s` (or a `Ref` in
/// `compute-primary`, which creates it).
pub fn health_token_arn(s: &mut Stack, role: Role) -> Expr {
    if s.template.resources.contains_key("HealthTokenSecret") {
        return r("HealthTokenSecret");
    }
    let compute_primary = stack_id(crate::compute::COMPONENT, Role::Primary);
    let output = match role {
        Role::Primary => "HealthTokenSecretArn",
        Role::Standby => "HealthTokenSecretReplicaArn",
    };
    s.input("HealthTokenSecretArn", &compute_primary, output)
}

/// Lets `role_id` read the health token and tells `function_id` where it is.
fn health_token_reader(s: &mut Stack, role: Role, role_id: &str, function_id: &str) {
    let arn = health_token_arn(s, role);
    s.template.add(
        &format!("{role_id}HealthTokenPolicy"),
        iam::RolePolicy {
            policy_name: "read-health-token".into(),
            policy_document: Expr::json(policy_document(vec![allow(
                &["secretsmanager:GetSecretValue"],
                vec![arn.clone()],
            )])),
            role_name: r(role_id),
        },
    );
    crate::audit::set_environment(s, function_id, health_env::TOKEN_SECRET_ARN, arn);
}

/// Compute stack: the storefront's reserved concurrency, its role ARN as an output, the health token.
pub fn compute(config: &Config, s: &mut Stack, role: Role) {
    if role == Role::Primary {
        health_token_secret(config, s);
    }
    health_token_reader(s, role, "StorefrontRole", "StorefrontFunction");
    crate::audit::set_environment(
        s,
        "StorefrontFunction",
        health_env::CACHE_SECONDS,
        config.storefront.health_cache_seconds.to_string().into(),
    );
    if let Some(reserved) = config.storefront.reserved_concurrency {
        set_properties(
            s,
            "StorefrontFunction",
            json!({ "ReservedConcurrentExecutions": reserved }),
        );
    }
    s.output(
        "StorefrontRoleArn",
        get_att("StorefrontRole", "Arn"),
        "Role of the storefront function (denied on the reports bucket)",
    );
}

/// Logical id of the DR automation stack's failed-events queue: the function's asynchronous failures and the
/// alarm rule's undeliverable events.
pub const FAILED_EVENTS_QUEUE: &str = "FailedEventsQueue";

/// Lets EventBridge put the alarm rule's undeliverable events into the failed-events queue: a queue policy for
/// that one rule (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html#eb-dlq-perms)
/// and, as the queue is encrypted with the audit key, a key-policy statement for EventBridge limited to the
/// same rule by `aws:SourceArn`, which EventBridge ("CloudWatch Events") sets for SQS encryption
/// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html).
/// The rule's ARN is spelled out rather than referenced: the key comes before the queue, the queue before
/// the rule.
fn alarm_rule_may_dead_letter(config: &Config, s: &mut Stack, queue_arn: &Expr) {
    let rule_arn = sub(format!(
        "arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{}",
        crate::dr_automation::alarm_rule_name(config)
    ));
    s.template.add(
        "FailedEventsQueuePolicy",
        sqs::QueuePolicy {
            policy_document: Expr::json(policy_document(vec![json!({
                "Sid": "AlarmRuleDeadLetters",
                "Effect": "Allow",
                "Principal": { "Service": "events.amazonaws.com" },
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": { "ArnEquals": { "aws:SourceArn": rule_arn.clone() } }
            })])),
            queues: Expr::list([r(FAILED_EVENTS_QUEUE)]),
        },
    );
    let statement = json!({
        "Sid": "AlarmRuleDeadLettersEncrypt",
        "Effect": "Allow",
        "Principal": { "Service": "events.amazonaws.com" },
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": "*",
        "Condition": { "ArnEquals": { "aws:SourceArn": rule_arn } }
    });
    let key = s
        .template
        .resources
        .get_mut(crate::audit::AUDIT_KEY)
        .and_then(|k| k.properties.as_object_mut())
        .and_then(|p| p.get_mut("KeyPolicy"))
        .and_then(|policy| policy.get_mut("Statement"))
        .and_then(|statements| statements.as_array_mut());
    if let Some(statements) = key {
        statements.push(statement);
    }
}

/// DR automation stack: reserved concurrency, the failed-events queue and its alarm, the reports bucket and
/// the backups.
pub fn dr_automation(config: &Config, s: &mut Stack, role: Role) {
    let names = config.names();
    set_properties(
        s,
        "DrAutomationFunction",
        json!({ "ReservedConcurrentExecutions": config.dr.reserved_concurrency }),
    );

    let key = crate::audit::audit_key(config, s);
    s.template.add(
        FAILED_EVENTS_QUEUE,
        sqs::Queue {
            queue_name: Some(names.dr_failed_events_queue().into()),
            kms_master_key_id: Some(key.clone()),
            kms_data_key_reuse_period_seconds: Some(300.into()),
            message_retention_period: Some(FAILED_EVENTS_RETENTION_SECONDS.into()),
        },
    );
    let queue_arn = get_att(FAILED_EVENTS_QUEUE, "Arn");
    alarm_rule_may_dead_letter(config, s, &queue_arn);
    // Lambda sends the failure record with the function's execution role; the queue's KMS key needs
    // kms:GenerateDataKey and kms:Decrypt for it:
    // https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
    s.template.add(
        "DrAutomationFailedEventsPolicy",
        iam::RolePolicy {
            policy_name: "send-failed-events".into(),
            policy_document: Expr::json(policy_document(vec![
                allow(&["sqs:SendMessage"], vec![queue_arn.clone()]),
                allow(&["kms:GenerateDataKey", "kms:Decrypt"], vec![key]),
            ])),
            role_name: r("DrAutomationRole"),
        },
    );
    s.template
        .add(
            "DrAutomationEventInvokeConfig",
            lambda::EventInvokeConfig {
                function_name: r("DrAutomationFunction"),
                qualifier: "$LATEST".into(),
                maximum_retry_attempts: Some(DR_MAXIMUM_RETRY_ATTEMPTS.into()),
                maximum_event_age_in_seconds: Some(DR_MAXIMUM_EVENT_AGE_SECONDS.into()),
                destination_config: Some(Expr::json(json!({
                    "OnFailure": { "Destination": queue_arn }
                }))),
            },
        )
        // Lambda checks the execution role may send to the destination when the configuration is set.
        .depends_on("DrAutomationFailedEventsPolicy");

    let topic = r("TopicArn");
    s.template.add(
        "FailedEventsAlarm",
        cloudwatch::Alarm {
            alarm_name: Some(names.alarm(config.region(role), "dr-failed-events").into()),
            alarm_description: Some(
                "An event failed every attempt: a probe sent to the DR automation function (the cross-region probe may be blind), or an alarm change that could not start the DR state machine (the automation did not act on it). Read the message in the failed-events queue"
                    .into(),
            ),
            namespace: Some("AWS/SQS".into()),
            metric_name: Some("ApproximateNumberOfMessagesVisible".into()),
            dimensions: Some(Expr::json(json!([
                { "Name": "QueueName", "Value": get_att("FailedEventsQueue", "QueueName") }
            ]))),
            statistic: Some("Maximum".into()),
            period: Some(60.into()),
            evaluation_periods: 1.into(),
            threshold: Some(0.into()),
            comparison_operator: "GreaterThanThreshold".into(),
            treat_missing_data: Some("notBreaching".into()),
            alarm_actions: Some(Expr::list([topic.clone()])),
            ok_actions: Some(Expr::list([topic])),
            ..Default::default()
        },
    );
    s.output(
        "FailedEventsQueueArn",
        get_att("FailedEventsQueue", "Arn"),
        "Asynchronous DR automation events that failed every attempt",
    );

    // No health token: the DR automation invokes the storefront function directly and reads the health
    // answer's status, which needs no token.
    crate::audit::reports_bucket(config, s, role);
    crate::backup::alarms(config, s, role);
}

/// User name of the storefront's own database user (created by `storefront migrate`).
pub const APP_DATABASE_USER: &str = "storefront";

/// The storefront's own database credentials: generated by Secrets Manager, encrypted with the database key,
/// replicated to the standby region. The storefront and the DR automation read this one; no role of any
/// template reads the master secret, which only the setup path uses: an operator (or the deploy pipeline)
/// running `storefront migrate` with their own IAM credentials, as admin, to apply the schema and create this
/// user with only the privileges the storefront's queries need.
fn app_secret(config: &Config, s: &mut Stack) {
    let names = config.names();
    s.template
        .add(
            "DatabaseAppSecret",
            lifeboat_cfn::resources::secretsmanager::Secret {
                name: Some(names.database_app_secret().into()),
                description: Some(
                    format!(
                        "Database credentials of the {} storefront (DML only)",
                        names.prefix()
                    )
                    .into(),
                ),
                kms_key_id: Some(r("DatabaseKey")),
                generate_secret_string: Some(Expr::json(json!({
                    "SecretStringTemplate": format!("{{\"username\":\"{APP_DATABASE_USER}\"}}"),
                    "GenerateStringKey": "password",
                    "PasswordLength": 32,
                    "ExcludeCharacters": "\"@/\\'`"
                }))),
                replica_regions: Some(Expr::json(json!([{ "Region": config.regions.standby }]))),
            },
        )
        .stateful(crate::database::keep(config));
    s.output(
        "AppSecretArn",
        r("DatabaseAppSecret"),
        "The storefront's database credentials in the primary region",
    );
    let parts = lifeboat_cfn::split(":", r("DatabaseAppSecret"));
    let mut replica: Vec<Expr> = (0..7)
        .map(|i| lifeboat_cfn::select(i, parts.clone()))
        .collect();
    replica[3] = config.regions.standby.clone().into();
    s.output(
        "AppSecretReplicaArn",
        join(":", replica),
        "The storefront's database credentials in the standby region",
    );
}

/// Name of the log group RDS exports a cluster's `kind` log to (RDS chooses it; we create it first).
pub fn database_log_group(config: &Config, region: &str, kind: &str) -> String {
    format!(
        "/aws/rds/cluster/{}/{kind}",
        config.names().cluster_id(region)
    )
}
