//! A two-region AWS environment in the local AWS emulator (moto), for the DR tests: the one the runbook
//! engine is tested against (`crates/aws-dr/tests/moto.rs`) and the one the `lifeboat` command line is
//! tested against (`crates/cli/tests/moto_dr.rs`). Both include this file as a module.
//!
//! Needs `LIFEBOAT_TEST_AWS_ENDPOINT` (set by `scripts/test`). Every fixture has a unique project name, so
//! tests can share one emulator with each other and with other crates' tests.
//!
//! The emulator has no Aurora SwitchoverGlobalCluster / FailoverGlobalCluster and never changes a global
//! cluster's writer. The RDS clients here carry an SDK-level mock (aws-smithy-mocks) that answers those two
//! calls and, once one of them was made, answers DescribeGlobalClusters with the writer moved, the way
//! Aurora reports a completed promotion. Every other call, RDS included, goes to the emulator.

// Each test crate that includes this file uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_rds::operation::describe_global_clusters::DescribeGlobalClustersOutput;
use aws_sdk_rds::operation::failover_global_cluster::FailoverGlobalClusterOutput;
use aws_sdk_rds::operation::switchover_global_cluster::SwitchoverGlobalClusterOutput;
use aws_sdk_rds::types::{GlobalCluster, GlobalClusterMember};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, mock};
use lifeboat_aws_dr::{AwsEnvironment, Clients, Connection, RegionClients, Topology};
use lifeboat_runbook::{RunKind, RunRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// A storefront stand-in: answers `GET /health/deep` with 200 and counts requests.
pub struct HealthServer {
    pub url: String,
    pub hits: Arc<AtomicUsize>,
}

pub async fn health_server() -> HealthServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut read = 0;
                while read < buf.len() {
                    match socket.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                    if buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let request = String::from_utf8_lossy(&buf[..read]);
                let ok = request.starts_with("GET /health/deep ");
                if ok {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                let response: &[u8] = if ok {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\nconnection: close\r\n\r\n{\"status\":\"ok\"}"
                } else {
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                };
                let _ = socket.write_all(response).await;
            });
        }
    });
    HealthServer { url, hits }
}

/// What the Aurora mock records and reports.
#[derive(Default)]
pub struct AuroraState {
    /// The writer's cluster ARN after the last promotion (`None`: no promotion yet; the emulator answers).
    pub writer: Option<String>,
    pub switchovers: Vec<String>,
    pub failovers: Vec<(String, Option<bool>)>,
}

pub struct Fixture {
    /// The configuration every name below derives from (a `lifeboat.toml` for this environment).
    pub config: lifeboat_config::Config,
    pub topology: Topology,
    pub settings: lifeboat_runbook::DrSettings,
    pub clients: Clients,
    pub aurora: Arc<Mutex<AuroraState>>,
    pub servers: BTreeMap<String, HealthServer>,
    pub queue_urls: BTreeMap<String, String>,
    pub sqs: BTreeMap<String, aws_sdk_sqs::Client>,
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

pub fn aurora_rules(
    state: &Arc<Mutex<AuroraState>>,
    arns: &BTreeMap<String, String>,
    global_id: &str,
) -> Vec<Rule> {
    let s = state.clone();
    let switchover =
        mock!(aws_sdk_rds::Client::switchover_global_cluster).then_compute_output(move |req| {
            let target = req
                .target_db_cluster_identifier()
                .unwrap_or_default()
                .to_owned();
            let mut st = s.lock().unwrap();
            st.switchovers.push(target.clone());
            st.writer = Some(target);
            SwitchoverGlobalClusterOutput::builder().build()
        });
    let s = state.clone();
    let failover =
        mock!(aws_sdk_rds::Client::failover_global_cluster).then_compute_output(move |req| {
            let target = req
                .target_db_cluster_identifier()
                .unwrap_or_default()
                .to_owned();
            let mut st = s.lock().unwrap();
            st.failovers.push((target.clone(), req.allow_data_loss()));
            st.writer = Some(target);
            FailoverGlobalClusterOutput::builder().build()
        });
    let s = state.clone();
    let s2 = state.clone();
    let arns = arns.clone();
    let global = global_id.to_owned();
    let describe = mock!(aws_sdk_rds::Client::describe_global_clusters)
        .match_requests(move |_| s.lock().unwrap().writer.is_some())
        .then_compute_output(move |_| {
            let writer = s2.lock().unwrap().writer.clone().unwrap_or_default();
            let members = arns
                .values()
                .map(|arn| {
                    GlobalClusterMember::builder()
                        .db_cluster_arn(arn)
                        .is_writer(*arn == writer)
                        .build()
                })
                .collect();
            DescribeGlobalClustersOutput::builder()
                .global_clusters(
                    GlobalCluster::builder()
                        .global_cluster_identifier(&global)
                        .set_global_cluster_members(Some(members))
                        .status("available")
                        .build(),
                )
                .build()
        });
    vec![switchover, failover, describe]
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
        .cloudwatch
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

impl Fixture {
    pub async fn create() -> Fixture {
        let endpoint = endpoint();
        let connection = Connection::emulator(&endpoint);
        let mut config = lifeboat_config::Config::default();
        config.project.name = unique("t");
        config.project.environment = "it".into();
        config.dns.domain = format!("{}.example.com", config.project.name);
        let mut topology = Topology::from_config(&config);
        topology.bounds.poll_interval = Duration::from_millis(50);
        topology.bounds.promote_timeout = Duration::from_secs(10);
        topology.bounds.write_lease = Duration::from_millis(200);
        let settings = lifeboat_aws_dr::topology::settings_from_config(&config);

        let mut plain = BTreeMap::new();
        let mut sdk = BTreeMap::new();
        for region in [PRIMARY, STANDBY] {
            let conf = connection.sdk_config(region).await;
            plain.insert(region.to_owned(), RegionClients::new(region, &conf));
            sdk.insert(region.to_owned(), conf);
        }

        // Aurora: global cluster, writer in the primary, secondary in the standby.
        let global = topology.global_cluster_id.clone();
        plain[PRIMARY]
            .rds
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
                .rds
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

        let aurora = Arc::new(Mutex::new(AuroraState::default()));
        let rules = aurora_rules(&aurora, &arns, &global);
        let mut regions = BTreeMap::new();
        for region in [PRIMARY, STANDBY] {
            let mut interceptor = MockResponseInterceptor::new()
                .rule_mode(RuleMode::MatchAny)
                .allow_passthrough();
            for rule in &rules {
                interceptor = interceptor.with_rule(rule);
            }
            let mut clients = plain[region].clone();
            clients.rds = aws_sdk_rds::Client::from_conf(
                aws_sdk_rds::config::Builder::from(&sdk[region])
                    .interceptor(interceptor)
                    // The mocked calls still reach the emulator, which answers them with an error before
                    // the mock's answer replaces it; a retry would ask the mock for a second answer.
                    .retry_config(aws_sdk_rds::config::retry::RetryConfig::disabled())
                    .build(),
            );
            regions.insert(region.to_owned(), clients);
        }
        let route53 = aws_sdk_route53::Client::new(&connection.sdk_config(PRIMARY).await);
        let clients = Clients {
            regions,
            route53: route53.clone(),
        };

        // Storefront stand-ins and the control parameters.
        let mut servers = BTreeMap::new();
        for region in [PRIMARY, STANDBY] {
            let server = health_server().await;
            let ssm = &plain[region].ssm;
            for (name, value) in [
                (topology.ssm_active_region(), PRIMARY.to_owned()),
                (topology.ssm_epoch(), "0".to_owned()),
                (topology.ssm_fence(), "lowered".to_owned()),
                (topology.ssm_endpoint(region), server.url.clone()),
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
            servers.insert(region.to_owned(), server);
        }

        // Route 53: the zone, a health check per region, the failover record pair.
        let zone = route53
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
            let hc = route53
                .create_health_check()
                .caller_reference(unique("hc"))
                .health_check_config(
                    aws_sdk_route53::types::HealthCheckConfig::builder()
                        .r#type(aws_sdk_route53::types::HealthCheckType::Https)
                        .fully_qualified_domain_name(format!("{region}.{}", topology.domain))
                        .resource_path("/health")
                        .port(443)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
            let hc_id = hc.health_check().unwrap().id().to_owned();
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
        route53
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
            c.cloudwatch
                .put_metric_alarm()
                .alarm_name(format!(
                    "{}-{}-health",
                    topology.prefix,
                    if region == PRIMARY {
                        "primary"
                    } else {
                        "standby"
                    }
                ))
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
            c.cloudwatch
                .set_alarm_state()
                .alarm_name(format!(
                    "{}-{}-health",
                    topology.prefix,
                    if region == PRIMARY {
                        "primary"
                    } else {
                        "standby"
                    }
                ))
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
                    .dynamodb
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
            let mut create_bucket = c.s3.create_bucket().bucket(bucket);
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
            c.s3.put_bucket_versioning()
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
                .sns
                .create_topic()
                .name(&topology.topic_name)
                .send()
                .await
                .unwrap();
            let sqs = aws_sdk_sqs::Client::new(&sdk[region]);
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
            c.sns
                .subscribe()
                .topic_arn(topic.topic_arn().unwrap())
                .protocol("sqs")
                .endpoint(queue_arn)
                .send()
                .await
                .unwrap();
            queue_urls.insert(region.to_owned(), queue_url);
            sqs_clients.insert(region.to_owned(), sqs);
            c.lambda
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
            .lambda
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
                .s3
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
            aurora,
            servers,
            queue_urls,
            sqs: sqs_clients,
        }
    }

    pub fn environment(&self) -> AwsEnvironment {
        AwsEnvironment::from_clients(self.clients.clone(), self.topology.clone(), STANDBY)
    }

    pub async fn param(&self, region: &str, name: &str) -> String {
        self.clients.regions[region]
            .ssm
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

    pub async fn primary_check_inverted(&self) -> bool {
        let ids = lifeboat_aws_dr::traffic::resolve(&self.clients.route53, &self.topology)
            .await
            .unwrap();
        lifeboat_aws_dr::traffic::health_check_state(
            &self.clients.route53,
            &ids.primary_health_check,
        )
        .await
        .unwrap()
        .inverted
    }

    pub async fn standby_min_capacity(&self) -> Option<f64> {
        lifeboat_aws_dr::observe::cluster_info(
            &self.clients.regions[STANDBY],
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
