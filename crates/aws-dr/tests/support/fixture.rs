//! A two-region AWS environment in the local AWS emulator (moto), for the DR tests: the one the runbook
//! engine is tested against (`crates/aws-dr/tests/moto.rs`) and the one the `lifeboat` command line is
//! tested against (`crates/cli/tests/moto_dr.rs`). Both include this file as a module.
//!
//! Needs `LIFEBOAT_TEST_AWS_ENDPOINT` (set by `scripts/test`). Every fixture has a unique project name, so
//! tests can share one emulator with each other and with other crates' tests.
//!
//! The emulator has no Route 53 health evaluation, no Aurora global-database semantics, no Lambda that runs
//! code and no way to lose a region: the fixture puts the model of that behaviour (`model.rs`, each rule with
//! the AWS documentation it follows) in front of it. The clients the code under test gets reach the emulator
//! through one cuttable link per region and carry the model's SDK-level rules; the fixture's own `direct`
//! clients go straight to the emulator, for setting up and for asserting.

// Each test crate that includes this file uses a different part of it.
#![allow(
    dead_code,
    reason = "shared by several test binaries, each of which uses part of it"
)]

#[path = "iam.rs"]
pub mod iam;
#[path = "model.rs"]
pub mod model;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode};
use lifeboat_aws_dr::{AwsEnvironment, Clients, Connection, RegionClients, Topology};
use lifeboat_runbook::{RunKind, RunRequest};
pub use model::{AwsModel, RegionLink};

pub const PRIMARY: &str = "us-east-1";
pub const STANDBY: &str = "us-west-2";

pub fn endpoint() -> String {
    std::env::var("LIFEBOAT_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "LIFEBOAT_TEST_AWS_ENDPOINT is not set: these tests need a moto server (scripts/test starts one; \
             or `source scripts/lib.sh; start_moto DIR` and export the variable)"
        )
    })
}

pub struct Fixture {
    /// The configuration every name below derives from (a `lifeboat.toml` for this environment).
    pub config: lifeboat_config::Config,
    pub topology: Topology,
    pub settings: lifeboat_runbook::DrSettings,
    /// The clients the code under test gets: through the region links, with the model's rules.
    pub clients: Clients,
    /// Clients straight to the emulator, never cut and never modelled: for setting up and asserting.
    pub direct: BTreeMap<String, RegionClients>,
    pub model: AwsModel,
    pub queue_urls: BTreeMap<String, String>,
    pub sqs: BTreeMap<String, aws_sdk_sqs::Client>,
    /// Every request the code under test sent through `clients`.
    pub calls: iam::CallLog,
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

pub async fn create_role(endpoint: &str, name: &str) -> String {
    // No IAM client in this crate: one form-encoded Query API call is all the emulator needs.
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={}",
        policy
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            })
            .collect::<String>()
    );
    let resp = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "CreateRole answered {}",
        resp.status()
    );
    format!("arn:aws:iam::123456789012:role/{name}")
}

pub fn lambda_zip() -> Vec<u8> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    zip.start_file("bootstrap", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, b"#!/bin/sh\n").unwrap();
    zip.finish().unwrap();
    buffer.into_inner()
}

pub async fn put_metric(clients: &RegionClients, metric: &str, cluster: &str, value: f64) {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    clients
        .cloudwatch()
        .put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(
            MetricDatum::builder()
                .metric_name(metric)
                .dimensions(
                    Dimension::builder()
                        .name("DBClusterIdentifier")
                        .value(cluster)
                        .build(),
                )
                .value(value)
                .timestamp(aws_smithy_types::DateTime::from_secs(
                    time::OffsetDateTime::now_utc().unix_timestamp(),
                ))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// An interceptor answering with `rules` where they match and letting everything else through.
fn interceptor(rules: &[Rule]) -> MockResponseInterceptor {
    let mut interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .allow_passthrough();
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    interceptor
}

impl Fixture {
    pub async fn create() -> Fixture {
        let endpoint = endpoint();
        let connection = Connection::emulator(&endpoint);
        let mut config = lifeboat_config::Config::default();
        config.project.name = unique("t");
        config.project.environment = "it".into();
        // No certificates in the emulator; outside `dev` plain HTTP must be allowed explicitly.
        config.certificates.allow_insecure_http = true;
        config.dns.domain = format!("{}.example.com", config.project.name);
        // moto's account.
        let mut topology = Topology::from_config(&config).in_account("123456789012");
        topology.bounds.poll_interval = Duration::from_millis(50);
        topology.bounds.promote_timeout = Duration::from_secs(10);
        topology.bounds.write_lease = Duration::from_millis(200);
        let settings = lifeboat_aws_dr::topology::settings_from_config(&config);

        let mut plain = BTreeMap::new();
        let mut sdk = BTreeMap::new();
        let mut links = BTreeMap::new();
        for region in [PRIMARY, STANDBY] {
            let conf = connection.sdk_config(region).await;
            plain.insert(region.to_owned(), RegionClients::new(region, &conf));
            let link = RegionLink::start(&endpoint).await;
            sdk.insert(
                region.to_owned(),
                Connection::emulator(&link.url).sdk_config(region).await,
            );
            links.insert(region.to_owned(), link);
        }
        let direct_route53 = aws_sdk_route53::Client::new(&connection.sdk_config(PRIMARY).await);
        let model = AwsModel::new(
            links,
            direct_route53.clone(),
            &topology.record_name,
            &topology.global_cluster_id,
        );

        // Aurora: global cluster, writer in the primary, secondary in the standby.
        let global = topology.global_cluster_id.clone();
        plain[PRIMARY]
            .rds()
            .create_global_cluster()
            .global_cluster_identifier(&global)
            .engine("aurora-mysql")
            .send()
            .await
            .unwrap();
        let mut arns = BTreeMap::new();
        for (region, max) in [(PRIMARY, 16.0), (STANDBY, 8.0)] {
            let id = topology.cluster_id(region).unwrap();
            let mut create = plain[region]
                .rds()
                .create_db_cluster()
                .db_cluster_identifier(id)
                .engine("aurora-mysql")
                .global_cluster_identifier(&global)
                .serverless_v2_scaling_configuration(
                    aws_sdk_rds::types::ServerlessV2ScalingConfiguration::builder()
                        .min_capacity(0.5)
                        .max_capacity(max)
                        .build(),
                );
            if region == PRIMARY {
                create = create
                    .master_username("admin")
                    .master_user_password("not-a-secret-1");
            }
            let out = create.send().await.unwrap();
            arns.insert(
                region.to_owned(),
                out.db_cluster()
                    .unwrap()
                    .db_cluster_arn()
                    .unwrap()
                    .to_owned(),
            );
            // Lag of each cluster while it is a secondary, and the primary's recent capacity peak.
            put_metric(&plain[region], "AuroraGlobalDBReplicationLag", id, 0.0).await;
        }
        put_metric(
            &plain[PRIMARY],
            "ServerlessDatabaseCapacity",
            topology.cluster_id(PRIMARY).unwrap(),
            4.0,
        )
        .await;

        for region in [PRIMARY, STANDBY] {
            model.add_member(
                region,
                topology.cluster_id(region).unwrap(),
                &arns[region],
                region == PRIMARY,
            );
        }
        let calls = iam::CallLog::default();
        let mut regions = BTreeMap::new();
        for region in [PRIMARY, STANDBY] {
            let mut clients = RegionClients::new(region, &sdk[region]);
            // The modelled calls still reach the emulator, whose answer the model's then replaces; a retry
            // would ask the model a second time, so these clients do not retry.
            // Every request is recorded for the permission checks (support/iam.rs).
            let recorder = iam::Recorder {
                log: calls.clone(),
                region: region.to_owned(),
            };
            clients.set_rds(aws_sdk_rds::Client::from_conf(
                aws_sdk_rds::config::Builder::from(&sdk[region])
                    .interceptor(interceptor(&model.rds_rules(region)))
                    .interceptor(recorder.clone())
                    .retry_config(aws_sdk_rds::config::retry::RetryConfig::disabled())
                    .build(),
            ));
            clients.set_lambda(aws_sdk_lambda::Client::from_conf(
                aws_sdk_lambda::config::Builder::from(&sdk[region])
                    .interceptor(interceptor(&model.lambda_rules(region)))
                    .interceptor(recorder.clone())
                    .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
                    .build(),
            ));
            clients.set_ssm(aws_sdk_ssm::Client::from_conf(
                aws_sdk_ssm::config::Builder::from(&sdk[region])
                    .interceptor(recorder.clone())
                    .build(),
            ));
            clients.set_sns(aws_sdk_sns::Client::from_conf(
                aws_sdk_sns::config::Builder::from(&sdk[region])
                    .interceptor(recorder.clone())
                    .build(),
            ));
            clients.set_cloudwatch(aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(&sdk[region])
                    .interceptor(recorder.clone())
                    .build(),
            ));
            clients.set_dynamodb(aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk[region])
                    .interceptor(recorder.clone())
                    .build(),
            ));
            clients.set_s3(aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&sdk[region])
                    .force_path_style(true)
                    .interceptor(recorder.clone())
                    .build(),
            ));
            regions.insert(region.to_owned(), clients);
        }
        // Route 53 is a global service: its client is not behind a region's link.
        let global_sdk = connection.sdk_config(PRIMARY).await;
        let route53 = aws_sdk_route53::Client::from_conf(
            aws_sdk_route53::config::Builder::from(&global_sdk)
                .interceptor(interceptor(&model.route53_rules()))
                .interceptor(iam::Recorder {
                    log: calls.clone(),
                    region: "us-east-1".into(),
                })
                .retry_config(aws_sdk_route53::config::retry::RetryConfig::disabled())
                .build(),
        );
        let clients = Clients {
            regions,
            route53: route53.clone(),
        };

        // The control parameters, and each region's endpoint as the platform publishes it.
        for region in [PRIMARY, STANDBY] {
            let ssm = &plain[region].ssm();
            for (name, value) in [
                (topology.ssm_active_region(), PRIMARY.to_owned()),
                (topology.ssm_epoch(), "0".to_owned()),
                (topology.ssm_fence(), "lowered".to_owned()),
                (
                    topology.ssm_endpoint(region),
                    format!("{}-alb.{region}.elb.amazonaws.com", topology.prefix),
                ),
            ] {
                ssm.put_parameter()
                    .name(name)
                    .value(value)
                    .r#type(aws_sdk_ssm::types::ParameterType::String)
                    .overwrite(true)
                    .send()
                    .await
                    .unwrap();
            }
        }

        // Route 53: the zone, a health check per region, the failover record pair.
        let zone = direct_route53
            .create_hosted_zone()
            .name(&topology.domain)
            .caller_reference(unique("zone"))
            .send()
            .await
            .unwrap();
        let zone_id = zone
            .hosted_zone()
            .unwrap()
            .id()
            .trim_start_matches("/hostedzone/")
            .to_owned();
        model.set_zone(&zone_id);
        let mut changes = Vec::new();
        for (region, failover, ip) in [
            (
                PRIMARY,
                aws_sdk_route53::types::ResourceRecordSetFailover::Primary,
                "192.0.2.10",
            ),
            (
                STANDBY,
                aws_sdk_route53::types::ResourceRecordSetFailover::Secondary,
                "192.0.2.20",
            ),
        ] {
            let hc = direct_route53
                .create_health_check()
                .caller_reference(unique("hc"))
                .health_check_config(
                    aws_sdk_route53::types::HealthCheckConfig::builder()
                        .r#type(aws_sdk_route53::types::HealthCheckType::Https)
                        .fully_qualified_domain_name(format!("{region}.{}", topology.domain))
                        .resource_path("/health/deep")
                        .port(443)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
            let hc_id = hc.health_check().unwrap().id().to_owned();
            model.watch_health_check(&hc_id, region);
            changes.push(
                aws_sdk_route53::types::Change::builder()
                    .action(aws_sdk_route53::types::ChangeAction::Create)
                    .resource_record_set(
                        aws_sdk_route53::types::ResourceRecordSet::builder()
                            .name(&topology.record_name)
                            .r#type(aws_sdk_route53::types::RrType::A)
                            .set_identifier(region)
                            .failover(failover)
                            .ttl(60)
                            .health_check_id(hc_id)
                            .resource_records(
                                aws_sdk_route53::types::ResourceRecord::builder()
                                    .value(ip)
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            );
        }
        direct_route53
            .change_resource_record_sets()
            .hosted_zone_id(&zone_id)
            .change_batch(
                aws_sdk_route53::types::ChangeBatch::builder()
                    .set_changes(Some(changes))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();

        // Alarms (OK), tables, buckets with replication both ways, topics with a queue each, functions.
        let role = create_role(&endpoint, &unique("lambda-")).await;
        let mut queue_urls = BTreeMap::new();
        let mut sqs_clients = BTreeMap::new();
        for region in [PRIMARY, STANDBY] {
            let c = &plain[region];
            // Route 53 publishes health-check metrics in us-east-1 only, so both regions' health alarms
            // live there (as the platform's detection stack places them).
            let detection = &plain[lifeboat_config::names::ROUTE53_METRICS_REGION];
            detection
                .cloudwatch()
                .put_metric_alarm()
                .alarm_name(config.names().health_alarm(region))
                .namespace("AWS/Route53")
                .metric_name("HealthCheckStatus")
                .statistic(aws_sdk_cloudwatch::types::Statistic::Minimum)
                .period(60)
                .evaluation_periods(1)
                .threshold(1.0)
                .comparison_operator(
                    aws_sdk_cloudwatch::types::ComparisonOperator::LessThanThreshold,
                )
                .send()
                .await
                .unwrap();
            // The emulator judges a new alarm without data as firing; the fixture starts healthy.
            detection
                .cloudwatch()
                .set_alarm_state()
                .alarm_name(config.names().health_alarm(region))
                .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
                .state_reason("fixture starts healthy")
                .send()
                .await
                .unwrap();
            for (table, pk, sk) in [
                (&topology.sessions_table, "id", None),
                (&topology.journal_table, "pk", Some("sk")),
            ] {
                use aws_sdk_dynamodb::types::{
                    AttributeDefinition, KeySchemaElement, KeyType, ScalarAttributeType,
                };
                let mut create = c
                    .dynamodb()
                    .create_table()
                    .table_name(table)
                    .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name(pk)
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .unwrap(),
                    )
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name(pk)
                            .key_type(KeyType::Hash)
                            .build()
                            .unwrap(),
                    );
                if let Some(sk) = sk {
                    create = create
                        .attribute_definitions(
                            AttributeDefinition::builder()
                                .attribute_name(sk)
                                .attribute_type(ScalarAttributeType::S)
                                .build()
                                .unwrap(),
                        )
                        .key_schema(
                            KeySchemaElement::builder()
                                .attribute_name(sk)
                                .key_type(KeyType::Range)
                                .build()
                                .unwrap(),
                        );
                }
                create.send().await.unwrap();
            }
            let bucket = &topology.assets_buckets[region];
            let mut create_bucket = c.s3().create_bucket().bucket(bucket);
            if region != "us-east-1" {
                create_bucket = create_bucket.create_bucket_configuration(
                    aws_sdk_s3::types::CreateBucketConfiguration::builder()
                        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                            region,
                        ))
                        .build(),
                );
            }
            create_bucket.send().await.unwrap();
            c.s3()
                .put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            let topic = c
                .sns()
                .create_topic()
                .name(&topology.topic_name)
                .send()
                .await
                .unwrap();
            let sqs = aws_sdk_sqs::Client::new(&connection.sdk_config(region).await);
            let queue = sqs
                .create_queue()
                .queue_name(unique("alerts-"))
                .send()
                .await
                .unwrap();
            let queue_url = queue.queue_url().unwrap().to_owned();
            let queue_arn = sqs
                .get_queue_attributes()
                .queue_url(&queue_url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
                .await
                .unwrap()
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                        .cloned()
                })
                .unwrap();
            c.sns()
                .subscribe()
                .topic_arn(topic.topic_arn().unwrap())
                .protocol("sqs")
                .endpoint(queue_arn)
                .send()
                .await
                .unwrap();
            queue_urls.insert(region.to_owned(), queue_url);
            sqs_clients.insert(region.to_owned(), sqs);
            c.lambda()
                .create_function()
                .function_name(&topology.storefront_function)
                .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
                .role(&role)
                .handler("bootstrap")
                .code(
                    aws_sdk_lambda::types::FunctionCode::builder()
                        .zip_file(lambda_zip().into())
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
        plain[PRIMARY]
            .lambda()
            .put_function_concurrency()
            .function_name(&topology.storefront_function)
            .reserved_concurrent_executions(50)
            .send()
            .await
            .unwrap();
        for (from, to) in [(PRIMARY, STANDBY), (STANDBY, PRIMARY)] {
            use aws_sdk_s3::types::{
                Destination, ReplicationConfiguration, ReplicationRule, ReplicationRuleStatus,
            };
            plain[from]
                .s3()
                .put_bucket_replication()
                .bucket(&topology.assets_buckets[from])
                .replication_configuration(
                    ReplicationConfiguration::builder()
                        .role("arn:aws:iam::123456789012:role/replication")
                        .rules(
                            ReplicationRule::builder()
                                .id("assets")
                                .status(ReplicationRuleStatus::Enabled)
                                .priority(1)
                                .filter(aws_sdk_s3::types::ReplicationRuleFilter::builder().prefix("").build())
                                .delete_marker_replication(
                                    aws_sdk_s3::types::DeleteMarkerReplication::builder()
                                        .status(aws_sdk_s3::types::DeleteMarkerReplicationStatus::Enabled)
                                        .build(),
                                )
                                .destination(
                                    Destination::builder().bucket(format!("arn:aws:s3:::{}", topology.assets_buckets[to])).build().unwrap(),
                                )
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
        }

        Fixture {
            config,
            topology,
            settings,
            clients,
            direct: plain,
            model,
            queue_urls,
            sqs: sqs_clients,
            calls,
        }
    }

    pub fn environment(&self) -> AwsEnvironment {
        AwsEnvironment::from_clients(self.clients.clone(), self.topology.clone(), STANDBY)
    }

    pub async fn param(&self, region: &str, name: &str) -> String {
        self.direct[region]
            .ssm()
            .get_parameter()
            .name(name)
            .send()
            .await
            .unwrap()
            .parameter()
            .and_then(|p| p.value())
            .unwrap_or_default()
            .to_owned()
    }

    /// The region Route 53 answers the failover record with now (the model's evaluation).
    pub async fn dns_answer(&self) -> String {
        self.model.dns_answer().await
    }

    pub async fn standby_min_capacity(&self) -> Option<f64> {
        lifeboat_aws_dr::observe::cluster_info(
            &self.direct[STANDBY],
            self.topology.cluster_id(STANDBY).unwrap(),
        )
        .await
        .unwrap()
        .min_capacity
    }

    pub async fn messages(&self, region: &str) -> Vec<String> {
        let mut bodies = Vec::new();
        for _ in 0..3 {
            let out = self.sqs[region]
                .receive_message()
                .queue_url(&self.queue_urls[region])
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            bodies.extend(
                out.messages()
                    .iter()
                    .filter_map(|m| m.body().map(str::to_owned)),
            );
            if !bodies.is_empty() {
                break;
            }
        }
        bodies
    }

    /// Creates the standby's probe alarm on the primary and puts it into ALARM (the alarm the standby's
    /// automation acts on when the primary stops answering); returns its name.
    pub async fn fire_probe_alarm(&self) -> String {
        let alarm = self.config.names().probe_alarm(PRIMARY, STANDBY);
        let cloudwatch = &self.direct[STANDBY].cloudwatch();
        cloudwatch
            .put_metric_alarm()
            .alarm_name(&alarm)
            .namespace("Lifeboat/DR")
            .metric_name("RegionHealthy")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Maximum)
            .period(60)
            .evaluation_periods(3)
            .threshold(1.0)
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::LessThanThreshold)
            .send()
            .await
            .unwrap();
        cloudwatch
            .set_alarm_state()
            .alarm_name(&alarm)
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .state_reason("the primary answered no probe")
            .send()
            .await
            .unwrap();
        alarm
    }

    pub fn request(&self, kind: RunKind, from: &str, to: &str) -> RunRequest {
        RunRequest {
            kind,
            from: from.into(),
            to: to.into(),
            settings: self.settings.clone(),
            allow_data_loss: false,
        }
    }
}

/// A "CloudWatch Alarm State Change" event as EventBridge delivers it, for `alarm` (living in `region`)
/// entering `state` at `entered`.
pub fn alarm_event(
    alarm: &str,
    state: &str,
    region: &str,
    entered: time::OffsetDateTime,
) -> serde_json::Value {
    let at = entered
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
        ))
        .unwrap();
    serde_json::json!({
        "version": "0",
        "id": "2b1d3e5c-3f4a-4b7e-9a51-000000000001",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": at,
        "region": region,
        "resources": [format!("arn:aws:cloudwatch:{region}:123456789012:alarm:{alarm}")],
        "detail": {
            "alarmName": alarm,
            "state": { "value": state, "reason": "Threshold Crossed", "timestamp": at },
            "previousState": { "value": "OK", "reason": "Threshold Crossed", "timestamp": "2026-11-25T08:00:00.000+0000" },
            "configuration": { "metrics": [] }
        }
    })
}
