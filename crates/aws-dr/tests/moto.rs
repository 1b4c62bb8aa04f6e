//! The AWS backend against a local AWS emulator (moto) in two regions.
//!
//! Needs `LIFEBOAT_TEST_AWS_ENDPOINT` (set by `scripts/test`). Every test builds its own environment with
//! a unique project name, so tests can share one emulator with each other and with other crates' tests.
//!
//! The emulator has no Aurora SwitchoverGlobalCluster / FailoverGlobalCluster and never changes a global
//! cluster's writer. The RDS clients here carry an SDK-level mock (aws-smithy-mocks) that answers those two
//! calls and, once one of them was made, answers DescribeGlobalClusters with the writer moved, the way
//! Aurora reports a completed promotion. Every other call, RDS included, goes to the emulator.

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
use lifeboat_runbook::coordination::{EpochStore, LockOwner, RunLock};
use lifeboat_runbook::journal::{Journal, JournalError, JournalEvent, RunState};
use lifeboat_runbook::{
    BoxFuture, DrBackend, Engine, EngineOptions, RunId, RunKind, RunOutcome, RunRequest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PRIMARY: &str = "us-east-1";
const STANDBY: &str = "us-west-2";

fn endpoint() -> String {
    std::env::var("LIFEBOAT_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "LIFEBOAT_TEST_AWS_ENDPOINT is not set: these tests need a moto server (scripts/test starts one; \
             or `source scripts/lib.sh; start_moto DIR` and export the variable)"
        )
    })
}

/// A storefront stand-in: answers `GET /health/deep` with 200 and counts requests.
struct HealthServer {
    url: String,
    hits: Arc<AtomicUsize>,
}

async fn health_server() -> HealthServer {
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
struct AuroraState {
    /// The writer's cluster ARN after the last promotion (`None`: no promotion yet; the emulator answers).
    writer: Option<String>,
    switchovers: Vec<String>,
    failovers: Vec<(String, Option<bool>)>,
}

struct Fixture {
    topology: Topology,
    settings: lifeboat_runbook::DrSettings,
    clients: Clients,
    aurora: Arc<Mutex<AuroraState>>,
    servers: BTreeMap<String, HealthServer>,
    queue_urls: BTreeMap<String, String>,
    sqs: BTreeMap<String, aws_sdk_sqs::Client>,
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn aurora_rules(
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

async fn create_role(endpoint: &str, name: &str) -> String {
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

fn lambda_zip() -> Vec<u8> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    zip.start_file("bootstrap", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, b"#!/bin/sh\n").unwrap();
    zip.finish().unwrap();
    buffer.into_inner()
}

async fn put_metric(clients: &RegionClients, metric: &str, cluster: &str, value: f64) {
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
    async fn create() -> Fixture {
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
            topology,
            settings,
            clients,
            aurora,
            servers,
            queue_urls,
            sqs: sqs_clients,
        }
    }

    fn environment(&self) -> AwsEnvironment {
        AwsEnvironment::from_clients(self.clients.clone(), self.topology.clone(), STANDBY)
    }

    async fn param(&self, region: &str, name: &str) -> String {
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

    async fn primary_check_inverted(&self) -> bool {
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

    async fn standby_min_capacity(&self) -> Option<f64> {
        lifeboat_aws_dr::observe::cluster_info(
            &self.clients.regions[STANDBY],
            self.topology.cluster_id(STANDBY).unwrap(),
        )
        .await
        .unwrap()
        .min_capacity
    }

    async fn messages(&self, region: &str) -> Vec<String> {
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

    fn request(&self, kind: RunKind, from: &str, to: &str) -> RunRequest {
        RunRequest {
            kind,
            from: from.into(),
            to: to.into(),
            settings: self.settings.clone(),
            allow_data_loss: false,
        }
    }
}

fn step_starts(state: &RunState) -> BTreeMap<String, u32> {
    state.starts.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_then_failback_moves_everything_and_back() {
    let f = Fixture::create().await;
    let env = f.environment();

    let before = env.backend.readiness().await.unwrap();
    let verdict = lifeboat_runbook::readiness::assess(
        RunKind::Switchover,
        &before,
        PRIMARY,
        STANDBY,
        &f.settings,
    );
    assert!(
        verdict.ready,
        "fixture should be ready for a switchover: {:?}\n{}",
        verdict.reasons,
        before.render_text()
    );
    assert_eq!(
        before.region(STANDBY).unwrap().dns_target.as_deref(),
        Some(PRIMARY)
    );

    let engine = Engine::new(
        &*env.backend,
        &*env.journal,
        &*env.journal,
        &*env.journal,
        &*env.reports,
    );
    let result = engine
        .start(&f.request(RunKind::Switchover, PRIMARY, STANDBY))
        .await
        .unwrap();
    assert_eq!(
        result.outcome(),
        RunOutcome::Succeeded,
        "{}",
        result.report.render_text()
    );

    // Every effect, read back through the API.
    for region in [PRIMARY, STANDBY] {
        assert_eq!(
            f.param(region, &f.topology.ssm_active_region()).await,
            STANDBY
        );
        assert_eq!(f.param(region, &f.topology.ssm_fence()).await, "lowered");
    }
    let epoch_after_switchover: u64 = f
        .param(STANDBY, &f.topology.ssm_epoch())
        .await
        .parse()
        .unwrap();
    assert_eq!(epoch_after_switchover, 1);
    assert!(
        f.primary_check_inverted().await,
        "the primary's health check must be inverted so DNS answers the standby"
    );
    assert_eq!(
        f.standby_min_capacity().await,
        Some(4.0),
        "standby minimum capacity pre-scaled to the primary's peak"
    );
    let concurrency = f.clients.regions[STANDBY]
        .lambda
        .get_function_concurrency()
        .function_name(&f.topology.storefront_function)
        .send()
        .await
        .unwrap()
        .reserved_concurrent_executions();
    assert_eq!(
        concurrency,
        Some(50),
        "standby storefront concurrency matched to the primary's"
    );
    let arn_standby = f.clients.regions[STANDBY]
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(f.topology.cluster_id(STANDBY).unwrap())
        .send()
        .await
        .unwrap()
        .db_clusters()[0]
        .db_cluster_arn()
        .unwrap()
        .to_owned();
    assert_eq!(
        f.aurora.lock().unwrap().switchovers,
        vec![arn_standby],
        "one SwitchoverGlobalCluster to the standby"
    );
    assert!(f.aurora.lock().unwrap().failovers.is_empty());
    assert!(
        f.servers[STANDBY].hits.load(Ordering::SeqCst) > 0,
        "verify made a real request to the new primary"
    );
    let messages = f.messages(STANDBY).await;
    assert!(
        messages
            .iter()
            .any(|m| m.contains(result.report.run_id.as_str())),
        "an SNS notification with the run id reached the subscribed queue: {messages:?}"
    );
    assert!(
        result.report.rto_ms.is_some(),
        "RTO measured up to the first successful request"
    );
    assert_eq!(result.report.rpo.estimated_loss_window_ms, Some(0));

    // The report is in S3 and the journal lists the run.
    let key = env.reports.json_key(result.report.run_id.as_str());
    let bucket = &f.topology.assets_buckets[STANDBY];
    let object = f.clients.regions[STANDBY]
        .s3
        .get_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("report s3://{bucket}/{key} missing: {e:?}"));
    let stored: serde_json::Value =
        serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(stored["outcome"], "succeeded");
    assert_eq!(stored["to"], STANDBY);
    let runs = lifeboat_runbook::journal::list_runs(&*env.journal)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);

    // Failback to the primary.
    let after = env.backend.readiness().await.unwrap();
    assert_eq!(
        after.region(PRIMARY).unwrap().dns_target.as_deref(),
        Some(STANDBY)
    );
    let result = engine
        .start(&f.request(RunKind::Failback, STANDBY, PRIMARY))
        .await
        .unwrap();
    assert_eq!(
        result.outcome(),
        RunOutcome::Succeeded,
        "{}",
        result.report.render_text()
    );
    for region in [PRIMARY, STANDBY] {
        assert_eq!(
            f.param(region, &f.topology.ssm_active_region()).await,
            PRIMARY
        );
    }
    let epoch_after_failback: u64 = f
        .param(PRIMARY, &f.topology.ssm_epoch())
        .await
        .parse()
        .unwrap();
    assert!(
        epoch_after_failback > epoch_after_switchover,
        "epoch {epoch_after_failback} must exceed {epoch_after_switchover}"
    );
    assert!(
        !f.primary_check_inverted().await,
        "DNS answers the primary again"
    );
    let readiness = env.backend.readiness().await.unwrap();
    assert_eq!(
        readiness.region(PRIMARY).unwrap().dns_target.as_deref(),
        Some(PRIMARY)
    );
    assert_eq!(f.aurora.lock().unwrap().switchovers.len(), 2);
    assert!(f.servers[PRIMARY].hits.load(Ordering::SeqCst) > 0);
    let runs = lifeboat_runbook::journal::list_runs(&*env.journal)
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.outcome == RunOutcome::Succeeded));
}

/// A journal that stops the process (never returns) when asked to record the start of one step: the run
/// ends exactly at the boundary before that step, as if the process had been killed there.
struct StopBefore<'a> {
    inner: &'a dyn Journal,
    step: &'static str,
    reached: tokio::sync::Notify,
}

impl Journal for StopBefore<'_> {
    fn create<'a>(
        &'a self,
        run_id: &'a RunId,
        first: &'a JournalEvent,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        self.inner.create(run_id, first)
    }
    fn append<'a>(
        &'a self,
        run_id: &'a RunId,
        event: &'a JournalEvent,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        if matches!(event, JournalEvent::StepStarted { step, .. } if step == self.step) {
            self.reached.notify_one();
            return Box::pin(std::future::pending());
        }
        self.inner.append(run_id, event)
    }
    fn read<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Vec<JournalEvent>, JournalError>> {
        self.inner.read(run_id)
    }
    fn list<'a>(&'a self) -> BoxFuture<'a, Result<Vec<RunId>, JournalError>> {
        self.inner.list()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_switchover_is_finished_by_resume_without_repeating_a_step() {
    let f = Fixture::create().await;
    let env = f.environment();
    let options = EngineOptions {
        lock_ttl: Duration::from_secs(2),
        run_timeout: None,
    };

    let stopping = StopBefore {
        inner: &*env.journal,
        step: "promote",
        reached: tokio::sync::Notify::new(),
    };
    let engine = Engine::new(
        &*env.backend,
        &stopping,
        &*env.journal,
        &*env.journal,
        &*env.reports,
    )
    .with_options(options.clone());
    let request = f.request(RunKind::Switchover, PRIMARY, STANDBY);
    tokio::select! {
        result = engine.start(&request) => {
            panic!("the run should have stopped before promote, got {:?}", result.map(|r| r.outcome()));
        }
        () = stopping.reached.notified() => {}
    }

    let runs = env.journal.list().await.unwrap();
    assert_eq!(runs.len(), 1);
    let run_id = runs[0].clone();
    let state = RunState::from_events(&env.journal.read(&run_id).await.unwrap()).unwrap();
    assert_eq!(state.outcome(), RunOutcome::Interrupted);
    assert!(
        state.is_done("wait-drained") && !state.starts.contains_key("promote"),
        "{:?}",
        state.starts
    );
    assert_eq!(
        f.param(PRIMARY, &f.topology.ssm_fence()).await,
        "raised",
        "the fence stays up while interrupted"
    );
    assert!(f.aurora.lock().unwrap().switchovers.is_empty());

    // A new process: the dead one's lease runs out, then resume takes the lock and finishes.
    let holder = LockOwner::for_this_process(&RunId::parse("someone-else").unwrap());
    assert!(
        env.journal
            .acquire(&holder, Duration::from_secs(1))
            .await
            .is_err(),
        "the dead run's lease is still held"
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let engine = Engine::new(
        &*env.backend,
        &*env.journal,
        &*env.journal,
        &*env.journal,
        &*env.reports,
    )
    .with_options(options);
    let result = engine.resume(&run_id).await.unwrap();
    assert_eq!(
        result.outcome(),
        RunOutcome::Succeeded,
        "{}",
        result.report.render_text()
    );

    let state = RunState::from_events(&env.journal.read(&run_id).await.unwrap()).unwrap();
    let starts = step_starts(&state);
    for stage in &state.stages {
        for step in stage {
            assert_eq!(
                starts.get(step),
                Some(&1),
                "step {step} must have started exactly once: {starts:?}"
            );
        }
    }
    assert_eq!(f.aurora.lock().unwrap().switchovers.len(), 1);
    assert_eq!(
        f.param(STANDBY, &f.topology.ssm_active_region()).await,
        STANDBY
    );
    assert_eq!(
        f.param(STANDBY, &f.topology.ssm_epoch()).await,
        "1",
        "resume reused the run's epoch"
    );
    assert_eq!(env.journal.current().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_promotes_with_allow_data_loss_and_is_idempotent() {
    let f = Fixture::create().await;
    let env = f.environment();
    let ctx = lifeboat_runbook::StepContext {
        run_id: RunId::parse("manual-failover").unwrap(),
        kind: RunKind::Failover,
        mode: lifeboat_runbook::Mode::Ungraceful,
        step: "promote".into(),
        attempt: 1,
        from: PRIMARY.into(),
        to: STANDBY.into(),
        epoch: Some(7),
    };
    let out = env.backend.promote(&ctx, true).await.unwrap();
    assert!(out.detail.contains("is the writer"), "{}", out.detail);
    assert_eq!(
        out.replication_lag_ms,
        Some(0),
        "the lag seen before promotion is the data-loss estimate"
    );
    let again = env.backend.promote(&ctx, true).await.unwrap();
    assert!(
        again.detail.contains("already is the writer"),
        "{}",
        again.detail
    );
    {
        let aurora = f.aurora.lock().unwrap();
        assert_eq!(
            aurora.failovers.len(),
            1,
            "a second promote must not call FailoverGlobalCluster again"
        );
        assert_eq!(
            aurora.failovers[0].1,
            Some(true),
            "AllowDataLoss must be set"
        );
        assert!(aurora.failovers[0].0.ends_with(&format!(
            ":cluster:{}",
            f.topology.cluster_id(STANDBY).unwrap()
        )));
        assert!(aurora.switchovers.is_empty());
    }

    // Fencing refuses to go back in time.
    let raise = env.backend.raise_fence(&ctx).await.unwrap();
    assert!(raise.detail.contains("epoch 7"), "{}", raise.detail);
    let old = lifeboat_runbook::StepContext {
        epoch: Some(3),
        ..ctx.clone()
    };
    let err = env.backend.raise_fence(&old).await.unwrap_err();
    assert!(
        err.message.contains("newer than this run's 3"),
        "{}",
        err.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_table_lock_admits_one_of_two_and_epochs_grow() {
    let f = Fixture::create().await;
    let env = f.environment();
    let a = LockOwner::for_this_process(&RunId::parse("run-a").unwrap());
    let b = LockOwner::for_this_process(&RunId::parse("run-b").unwrap());
    let (ra, rb) = tokio::join!(
        env.journal.acquire(&a, Duration::from_secs(30)),
        env.journal.acquire(&b, Duration::from_secs(30))
    );
    assert!(
        ra.is_ok() != rb.is_ok(),
        "exactly one of two concurrent acquisitions succeeds: {ra:?} / {rb:?}"
    );
    let lease = ra.or(rb).unwrap();
    env.journal
        .renew(&lease, Duration::from_secs(30))
        .await
        .unwrap();
    env.journal.release(&lease).await.unwrap();

    let e1 = env
        .journal
        .allocate(&RunId::parse("run-a").unwrap())
        .await
        .unwrap();
    let e1_again = env
        .journal
        .allocate(&RunId::parse("run-a").unwrap())
        .await
        .unwrap();
    let e2 = env
        .journal
        .allocate(&RunId::parse("run-b").unwrap())
        .await
        .unwrap();
    assert_eq!(e1, e1_again, "the same run gets its epoch back");
    assert!(e2 > e1);

    // The published epoch is a floor: a control store already at 41 makes the next allocation 42.
    f.clients.regions[PRIMARY]
        .ssm
        .put_parameter()
        .name(f.topology.ssm_epoch())
        .value("41")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        env.journal
            .allocate(&RunId::parse("run-c").unwrap())
            .await
            .unwrap(),
        42
    );
}

fn alarm_event(alarm: &str, state: &str, entered: time::OffsetDateTime) -> serde_json::Value {
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
        "region": PRIMARY,
        "resources": [format!("arn:aws:cloudwatch:{PRIMARY}:123456789012:alarm:{alarm}")],
        "detail": {
            "alarmName": alarm,
            "state": { "value": state, "reason": "Threshold Crossed", "timestamp": at },
            "previousState": { "value": "OK", "reason": "Threshold Crossed", "timestamp": "2026-11-25T08:00:00.000+0000" },
            "configuration": { "metrics": [] }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_handler_ignores_recovery_and_switches_over_on_a_standing_alarm() {
    let f = Fixture::create().await;
    let env = f.environment();
    let alarm = format!("{}-primary-health", f.topology.prefix);
    let ten_minutes_ago = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);

    let ok = lifeboat_aws_dr::lambda::handle(
        &env,
        &f.settings,
        &alarm_event(&alarm, "OK", ten_minutes_ago),
    )
    .await;
    assert_eq!(ok["decision"], "ignore", "{ok}");
    assert_eq!(
        f.param(PRIMARY, &f.topology.ssm_active_region()).await,
        PRIMARY
    );

    // The primary's health alarm really is firing, and has been for ten minutes.
    f.clients.regions[PRIMARY]
        .cloudwatch
        .set_alarm_state()
        .alarm_name(&alarm)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("health check failing")
        .send()
        .await
        .unwrap();
    let answer = lifeboat_aws_dr::lambda::handle(
        &env,
        &f.settings,
        &alarm_event(&alarm, "ALARM", ten_minutes_ago),
    )
    .await;
    assert_eq!(answer["decision"], "act", "{answer}");
    assert_eq!(answer["run"]["outcome"], "succeeded", "{answer}");
    assert!(
        answer.get("escalated").is_none(),
        "no failover without dr.allow_data_loss: {answer}"
    );
    assert_eq!(
        f.param(PRIMARY, &f.topology.ssm_active_region()).await,
        STANDBY
    );
    assert!(f.primary_check_inverted().await);

    // The same alarm again: it now belongs to the passive region (traffic left it on purpose), so
    // automation leaves it alone.
    let again = lifeboat_aws_dr::lambda::handle(
        &env,
        &f.settings,
        &alarm_event(&alarm, "ALARM", ten_minutes_ago),
    )
    .await;
    assert_eq!(again["decision"], "ignore", "{again}");
}
