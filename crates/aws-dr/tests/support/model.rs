//! A model of the AWS behaviour the local emulator (moto) does not have, for the DR tests.
//!
//! moto checks that lifeboat's calls are well-formed and land on the right resources; it has no Route 53
//! health evaluation, no Aurora global-database semantics, no Lambda that runs code, and every region is
//! always reachable. This model adds those, each rule following the AWS documentation page cited beside it:
//!
//! - **Regions that can be lost.** Every regional client of the code under test reaches moto through a
//!   [`RegionLink`], a TCP relay that can be cut: a lost region's API calls fail to connect, as they would
//!   against an unreachable endpoint, and no modelled answer is given for it either.
//! - **Route 53 health checks.** `GetHealthCheckStatus` answers with what Route 53's checkers would see of the
//!   region's storefront; [`AwsModel::dns_answer`] evaluates the failover record pair from the health-check
//!   configuration moto stores (`Inverted`, `Disabled`) the way Route 53 does. The code under test never
//!   sees that evaluation: tests assert on it.
//! - **The Aurora global database.** Members, writer, `FailoverState` while an operation runs, switchover
//!   versus failover with `AllowDataLoss`, clusters that are not available, and what Aurora does with an old
//!   primary when its region returns after a failover.
//! - **The storefront function.** `Invoke` answers as the storefront would for the load balancer's event,
//!   from the region's storefront and database state.
//!
//! The model answers through SDK interceptors (aws-smithy-mocks rules) on the clients the code under test
//! is given; everything not modelled goes on to moto.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_sdk_lambda::operation::invoke::InvokeOutput;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_global_clusters::DescribeGlobalClustersOutput;
use aws_sdk_rds::operation::failover_global_cluster::{
    FailoverGlobalClusterError, FailoverGlobalClusterOutput,
};
use aws_sdk_rds::operation::switchover_global_cluster::{
    SwitchoverGlobalClusterError, SwitchoverGlobalClusterOutput,
};
use aws_sdk_rds::types::error::{InvalidDbClusterStateFault, InvalidGlobalClusterStateFault};
use aws_sdk_rds::types::{
    DbCluster, DbClusterSnapshot, FailoverState, FailoverStatus, GlobalCluster,
    GlobalClusterMember, GlobalClusterMemberSynchronizationStatus,
};
use aws_sdk_route53::operation::get_health_check_status::GetHealthCheckStatusOutput;
use aws_sdk_route53::types::{HealthCheckObservation, ResourceRecordSetFailover, StatusReport};
use aws_smithy_mocks::{MockResponse, Rule, mock};
use aws_smithy_types::error::ErrorMetadata;
use tokio::sync::watch;

/// A TCP relay between the clients of one region and the emulator, which can be cut and restored.
pub struct RegionLink {
    pub url: String,
    cut: watch::Sender<bool>,
}

impl RegionLink {
    pub async fn start(target: &str) -> RegionLink {
        let target = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (cut, watcher) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut watcher = watcher.clone();
                if *watcher.borrow() {
                    // Cut: the connection closes before anything is answered.
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    // A cut also ends the connections the clients keep open for reuse.
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watcher.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        RegionLink { url, cut }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// What one region is doing, as the model sees it.
#[derive(Debug, Clone)]
pub struct RegionState {
    /// The region's AWS API endpoints answer.
    pub api_reachable: bool,
    /// The storefront function runs and answers.
    pub storefront_up: bool,
    /// The storefront's database answers it.
    pub database_up: bool,
    /// Route 53's health checkers on the internet reach the region's load balancer.
    pub reachable_from_internet: bool,
}

impl RegionState {
    fn healthy() -> Self {
        RegionState {
            api_reachable: true,
            storefront_up: true,
            database_up: true,
            reachable_from_internet: true,
        }
    }

    /// What Route 53's checkers see of the region's `/health/deep` through its load balancer.
    pub fn seen_healthy_by_checkers(&self) -> bool {
        self.reachable_from_internet && self.storefront_up && self.database_up
    }
}

/// One regional cluster of the global database.
#[derive(Debug, Clone)]
pub struct Member {
    pub region: String,
    pub cluster_id: String,
    pub arn: String,
    /// Listed in the global cluster's members.
    pub joined: bool,
    pub is_writer: bool,
    /// `DBCluster.Status`.
    pub status: String,
    /// `GlobalClusterMember.SynchronizationStatus` of a secondary.
    pub synchronization: String,
    /// Looks at the global cluster until a rejoined secondary has caught up (`pending-resync` → `connected`).
    pub catch_up_left: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Switchover,
    Failover,
}

/// An operation Aurora is carrying out: it completes after `observations_left` more looks at the global
/// cluster (the model's clock is the code's own polling).
#[derive(Debug, Clone)]
pub struct Operation {
    pub kind: OperationKind,
    pub from_arn: String,
    pub to_arn: String,
    pub observations_left: u32,
}

#[derive(Debug, Default)]
pub struct Aurora {
    pub global_id: String,
    pub members: Vec<Member>,
    pub operation: Option<Operation>,
    /// Target ARNs of every accepted SwitchoverGlobalCluster.
    pub switchovers: Vec<String>,
    /// Target ARN and AllowDataLoss of every accepted FailoverGlobalCluster.
    pub failovers: Vec<(String, Option<bool>)>,
    /// Requests Aurora refused, with the error code.
    pub refused: Vec<String>,
    /// Snapshots Aurora took: (cluster id, snapshot name).
    pub snapshots: Vec<(String, String)>,
}

impl Aurora {
    fn member_by_arn(&self, arn: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.arn == arn)
    }

    pub fn writer_region(&self) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.joined && m.is_writer)
            .map(|m| m.region.as_str())
    }
}

#[derive(Debug, Default)]
pub struct ModelState {
    pub regions: BTreeMap<String, RegionState>,
    pub aurora: Aurora,
    /// Route 53 health check id → the region whose endpoint it checks.
    pub health_checks: BTreeMap<String, String>,
    /// Every storefront invocation: (region, path).
    pub invocations: Vec<(String, String)>,
}

impl ModelState {
    fn reachable(&self, region: &str) -> bool {
        self.regions.get(region).is_some_and(|r| r.api_reachable)
    }

    /// One look at the global cluster: time passes for the operation under way and for a former primary
    /// waiting to be rejoined.
    fn advance(&mut self) {
        if let Some(op) = &mut self.aurora.operation {
            if op.observations_left > 0 {
                op.observations_left -= 1;
            } else {
                let op = op.clone();
                self.complete(&op);
                self.aurora.operation = None;
            }
        }
        self.rejoin_returned_primaries();
        for m in &mut self.aurora.members {
            // A rejoined secondary catches up in the background, then reports `connected`.
            if m.catch_up_left > 0 {
                m.catch_up_left -= 1;
                if m.catch_up_left == 0 {
                    m.synchronization = "connected".into();
                }
            }
        }
    }

    fn complete(&mut self, op: &Operation) {
        let data_loss = op.kind == OperationKind::Failover;
        for m in &mut self.aurora.members {
            if m.arn == op.to_arn {
                m.is_writer = true;
                m.joined = true;
            } else if m.arn == op.from_arn {
                m.is_writer = false;
                if data_loss {
                    // Failover: the old primary leaves the global database; Aurora adds it back as a
                    // secondary once its region is available again, after a snapshot of it
                    // (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html#aurora-global-database-failover.managed-unplanned).
                    m.joined = false;
                } else {
                    // Switchover: roles swap with both regions healthy, nothing lost, the old primary
                    // replicates from the new one at once
                    // (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html#aurora-global-database-disaster-recovery.managed-failover).
                    m.synchronization = "connected".into();
                }
            }
        }
    }

    fn rejoin_returned_primaries(&mut self) {
        let regions = self.regions.clone();
        let mut taken = Vec::new();
        for m in &mut self.aurora.members {
            if !m.joined && regions.get(&m.region).is_some_and(|r| r.api_reachable) {
                let name = format!(
                    "rds:unplanned-global-failover-{}-{}",
                    m.cluster_id,
                    time::OffsetDateTime::now_utc().unix_timestamp()
                );
                taken.push((m.cluster_id.clone(), name));
                m.joined = true;
                m.is_writer = false;
                m.synchronization = "pending-resync".into();
                m.catch_up_left = 2;
            }
        }
        self.aurora.snapshots.extend(taken);
    }

    fn global_cluster(&self) -> GlobalCluster {
        let members = self
            .aurora
            .members
            .iter()
            .filter(|m| m.joined)
            .map(|m| {
                let mut b = GlobalClusterMember::builder()
                    .db_cluster_arn(&m.arn)
                    .is_writer(m.is_writer);
                if !m.is_writer {
                    b = b.synchronization_status(GlobalClusterMemberSynchronizationStatus::from(
                        m.synchronization.as_str(),
                    ));
                }
                b.build()
            })
            .collect();
        let mut g = GlobalCluster::builder()
            .global_cluster_identifier(&self.aurora.global_id)
            .status("available")
            .set_global_cluster_members(Some(members));
        if let Some(op) = &self.aurora.operation {
            // FailoverState while an operation runs
            // (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html).
            g = g.failover_state(
                FailoverState::builder()
                    .status(FailoverStatus::from(if op.observations_left > 1 {
                        "pending"
                    } else {
                        "failing-over"
                    }))
                    .from_db_cluster_arn(&op.from_arn)
                    .to_db_cluster_arn(&op.to_arn)
                    .is_data_loss_allowed(op.kind == OperationKind::Failover)
                    .build(),
            );
        }
        g.build()
    }

    /// Why Aurora refuses to start `kind` to `target` now, as (error code, message).
    fn refusal(&self, kind: OperationKind, target: &str) -> Option<(&'static str, String)> {
        // One operation at a time
        // (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_SwitchoverGlobalCluster.html, Errors).
        if self.aurora.operation.is_some() {
            return Some((
                "InvalidGlobalClusterStateFault",
                format!(
                    "global cluster {} has an operation in progress",
                    self.aurora.global_id
                ),
            ));
        }
        let Some(member) = self.aurora.member_by_arn(target).filter(|m| m.joined) else {
            return Some((
                "InvalidGlobalClusterStateFault",
                format!("{target} is not a member of {}", self.aurora.global_id),
            ));
        };
        if member.is_writer {
            return Some((
                "InvalidGlobalClusterStateFault",
                format!("{target} already is the primary cluster"),
            ));
        }
        if member.status != "available" {
            return Some((
                "InvalidDBClusterStateFault",
                format!("DB cluster {} is {}", member.cluster_id, member.status),
            ));
        }
        if kind == OperationKind::Switchover {
            // A switchover needs every cluster of the global database healthy and reachable; in an outage
            // the documented path is a failover
            // (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html#aurora-global-database-disaster-recovery.managed-failover).
            for m in self.aurora.members.iter().filter(|m| m.joined) {
                if !self.reachable(&m.region) || m.status != "available" {
                    return Some((
                        "InvalidGlobalClusterStateFault",
                        format!(
                            "cluster {} in {} is not available for a switchover",
                            m.cluster_id, m.region
                        ),
                    ));
                }
                if !m.is_writer && m.synchronization != "connected" {
                    return Some((
                        "InvalidGlobalClusterStateFault",
                        format!("secondary {} is {}", m.cluster_id, m.synchronization),
                    ));
                }
            }
        }
        None
    }

    fn start(&mut self, kind: OperationKind, target: &str) {
        let from = self
            .aurora
            .members
            .iter()
            .find(|m| m.joined && m.is_writer)
            .map(|m| m.arn.clone())
            .unwrap_or_default();
        self.aurora.operation = Some(Operation {
            kind,
            from_arn: from,
            to_arn: target.to_owned(),
            observations_left: 2,
        });
    }
}

/// The model, shared by the interceptors and the test.
#[derive(Clone)]
pub struct AwsModel {
    state: Arc<Mutex<ModelState>>,
    links: Arc<BTreeMap<String, RegionLink>>,
    /// The emulator's Route 53, for the configuration moto stores.
    route53: aws_sdk_route53::Client,
    record_name: String,
    zone_id: Arc<Mutex<Option<String>>>,
}

impl AwsModel {
    pub fn new(
        links: BTreeMap<String, RegionLink>,
        route53: aws_sdk_route53::Client,
        record_name: &str,
        global_id: &str,
    ) -> AwsModel {
        let regions = links
            .keys()
            .map(|r| (r.clone(), RegionState::healthy()))
            .collect();
        AwsModel {
            state: Arc::new(Mutex::new(ModelState {
                regions,
                aurora: Aurora {
                    global_id: global_id.to_owned(),
                    ..Aurora::default()
                },
                ..ModelState::default()
            })),
            links: Arc::new(links),
            route53,
            record_name: format!("{}.", record_name.trim_end_matches('.')),
            zone_id: Arc::new(Mutex::new(None)),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, ModelState> {
        self.state.lock().unwrap()
    }

    pub fn zone_id(&self) -> Option<String> {
        self.zone_id.lock().unwrap().clone()
    }

    pub fn set_zone(&self, zone_id: &str) {
        *self.zone_id.lock().unwrap() = Some(zone_id.to_owned());
    }

    pub fn link_url(&self, region: &str) -> String {
        self.links[region].url.clone()
    }

    /// The whole region is lost: APIs, storefront, database, internet.
    pub fn lose_region(&self, region: &str) {
        self.update(region, |r| {
            *r = RegionState {
                api_reachable: false,
                storefront_up: false,
                database_up: false,
                reachable_from_internet: false,
            }
        });
    }

    /// The region is back, everything in it running.
    pub fn restore_region(&self, region: &str) {
        self.update(region, |r| *r = RegionState::healthy());
    }

    /// Changes what one region does; the region's link follows `api_reachable`.
    pub fn update(&self, region: &str, f: impl FnOnce(&mut RegionState)) {
        let reachable = {
            let mut state = self.state();
            let r = state
                .regions
                .get_mut(region)
                .unwrap_or_else(|| panic!("no region {region} in the model"));
            f(r);
            r.api_reachable
        };
        self.links[region].set_cut(!reachable);
    }

    pub fn add_member(&self, region: &str, cluster_id: &str, arn: &str, writer: bool) {
        self.state().aurora.members.push(Member {
            region: region.to_owned(),
            cluster_id: cluster_id.to_owned(),
            arn: arn.to_owned(),
            joined: true,
            is_writer: writer,
            status: "available".into(),
            synchronization: "connected".into(),
            catch_up_left: 0,
        });
    }

    pub fn set_cluster_status(&self, cluster_id: &str, status: &str) {
        let mut state = self.state();
        let m = state
            .aurora
            .members
            .iter_mut()
            .find(|m| m.cluster_id == cluster_id)
            .unwrap_or_else(|| panic!("no cluster {cluster_id} in the model"));
        m.status = status.to_owned();
    }

    pub fn watch_health_check(&self, id: &str, region: &str) {
        self.state()
            .health_checks
            .insert(id.to_owned(), region.to_owned());
    }

    pub fn invocations(&self, region: &str) -> usize {
        self.state()
            .invocations
            .iter()
            .filter(|(r, _)| r == region)
            .count()
    }

    /// The region Route 53 would answer the failover record with now, evaluated from the record pair and
    /// the health-check configuration stored in the emulator and from what the checkers see:
    ///
    /// - a health check's status is what its checkers observe; a *disabled* check is healthy whatever they
    ///   observe (https://docs.aws.amazon.com/Route53/latest/APIReference/API_UpdateHealthCheck.html,
    ///   `Disabled`); an *inverted* check reports the opposite status
    ///   (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-invert.html); both
    ///   together keep traffic off a resource whatever its state;
    /// - a record without a health check is healthy;
    /// - the PRIMARY record answers while healthy, else the SECONDARY while healthy
    ///   (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-types.html); when no
    ///   record of the group is healthy, Route 53 treats them all as healthy and answers the PRIMARY
    ///   (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-complex-configs.html).
    pub async fn dns_answer(&self) -> String {
        let zone = self
            .zone_id
            .lock()
            .unwrap()
            .clone()
            .expect("the fixture sets the hosted zone");
        let records = self
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(&zone)
            .start_record_name(&self.record_name)
            .send()
            .await
            .unwrap();
        let mut primary = None;
        let mut secondary = None;
        for set in records
            .resource_record_sets()
            .iter()
            .filter(|s| s.name() == self.record_name)
        {
            let region = set.set_identifier().unwrap_or_default().to_owned();
            let healthy = match set.health_check_id() {
                None => true,
                Some(id) => self.check_healthy(id).await,
            };
            match set.failover() {
                Some(ResourceRecordSetFailover::Primary) => primary = Some((region, healthy)),
                Some(ResourceRecordSetFailover::Secondary) => secondary = Some((region, healthy)),
                _ => {}
            }
        }
        let (primary, primary_healthy) = primary.expect("a PRIMARY failover record");
        let (secondary, secondary_healthy) = secondary.expect("a SECONDARY failover record");
        if primary_healthy || !secondary_healthy {
            primary
        } else {
            secondary
        }
    }

    async fn check_healthy(&self, id: &str) -> bool {
        let out = self
            .route53
            .get_health_check()
            .health_check_id(id)
            .send()
            .await
            .unwrap();
        let config = out
            .health_check()
            .and_then(|h| h.health_check_config())
            .expect("a health check configuration");
        let disabled = config.disabled().unwrap_or(false);
        let inverted = config.inverted().unwrap_or(false);
        let observed = {
            let state = self.state();
            let region = state.health_checks.get(id).cloned();
            region
                .and_then(|r| state.regions.get(&r).cloned())
                .is_some_and(|r| r.seen_healthy_by_checkers())
        };
        let status = disabled || observed;
        status != inverted
    }

    /// The interceptor rules for the RDS client of `region`.
    pub fn rds_rules(&self, region: &str) -> Vec<Rule> {
        let mut rules = Vec::new();
        let (m, r) = (self.clone(), region.to_owned());
        rules.push(
            mock!(aws_sdk_rds::Client::describe_global_clusters)
                .match_requests(move |_| m.state().reachable(&r))
                .then_compute_output({
                    let m = self.clone();
                    move |_| {
                        let mut state = m.state();
                        state.advance();
                        DescribeGlobalClustersOutput::builder()
                            .global_clusters(state.global_cluster())
                            .build()
                    }
                }),
        );
        let (m, r) = (self.clone(), region.to_owned());
        rules.push(
            mock!(aws_sdk_rds::Client::switchover_global_cluster)
                .match_requests(move |_| m.state().reachable(&r))
                .then_compute_response({
                    let m = self.clone();
                    move |req| {
                        let target = req.target_db_cluster_identifier().unwrap_or_default();
                        let mut state = m.state();
                        match state.refusal(OperationKind::Switchover, target) {
                            Some((code, message)) => {
                                state.aurora.refused.push(code.to_owned());
                                MockResponse::Error(switchover_error(code, &message))
                            }
                            None => {
                                state.aurora.switchovers.push(target.to_owned());
                                state.start(OperationKind::Switchover, target);
                                MockResponse::Output(
                                    SwitchoverGlobalClusterOutput::builder().build(),
                                )
                            }
                        }
                    }
                }),
        );
        let (m, r) = (self.clone(), region.to_owned());
        rules.push(
            mock!(aws_sdk_rds::Client::failover_global_cluster)
                .match_requests(move |_| m.state().reachable(&r))
                .then_compute_response({
                    let m = self.clone();
                    move |req| {
                        let target = req.target_db_cluster_identifier().unwrap_or_default();
                        let mut state = m.state();
                        // Without AllowDataLoss the call is a switchover
                        // (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverGlobalCluster.html).
                        let kind = if req.allow_data_loss() == Some(true) {
                            OperationKind::Failover
                        } else {
                            OperationKind::Switchover
                        };
                        match state.refusal(kind, target) {
                            Some((code, message)) => {
                                state.aurora.refused.push(code.to_owned());
                                MockResponse::Error(failover_error(code, &message))
                            }
                            None => {
                                state
                                    .aurora
                                    .failovers
                                    .push((target.to_owned(), req.allow_data_loss()));
                                state.start(kind, target);
                                MockResponse::Output(FailoverGlobalClusterOutput::builder().build())
                            }
                        }
                    }
                }),
        );
        // DescribeDBClusters answers from moto (capacity settings included) unless the model says the
        // cluster is not available.
        let (m, r) = (self.clone(), region.to_owned());
        rules.push(
            mock!(aws_sdk_rds::Client::describe_db_clusters)
                .match_requests(move |req| {
                    let state = m.state();
                    state.reachable(&r)
                        && state.aurora.members.iter().any(|member| {
                            Some(member.cluster_id.as_str()) == req.db_cluster_identifier()
                                && member.status != "available"
                        })
                })
                .then_compute_output({
                    let m = self.clone();
                    move |req| {
                        let state = m.state();
                        let member = state
                            .aurora
                            .members
                            .iter()
                            .find(|member| {
                                Some(member.cluster_id.as_str()) == req.db_cluster_identifier()
                            })
                            .cloned()
                            .unwrap();
                        DescribeDbClustersOutput::builder()
                            .db_clusters(
                                DbCluster::builder()
                                    .db_cluster_identifier(&member.cluster_id)
                                    .db_cluster_arn(&member.arn)
                                    .status(&member.status)
                                    .build(),
                            )
                            .build()
                    }
                }),
        );
        let (m, r) = (self.clone(), region.to_owned());
        rules.push(
            mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots)
                .match_requests(move |_| m.state().reachable(&r))
                .then_compute_output({
                    let m = self.clone();
                    move |req| {
                        let state = m.state();
                        let snapshots = state
                            .aurora
                            .snapshots
                            .iter()
                            .filter(|(cluster, _)| {
                                req.db_cluster_identifier().is_none_or(|id| id == cluster)
                            })
                            .map(|(cluster, name)| {
                                DbClusterSnapshot::builder()
                                    .db_cluster_identifier(cluster)
                                    .db_cluster_snapshot_identifier(name)
                                    .snapshot_type("automated")
                                    .snapshot_create_time(aws_smithy_types::DateTime::from_secs(
                                        time::OffsetDateTime::now_utc().unix_timestamp(),
                                    ))
                                    .build()
                            })
                            .collect();
                        DescribeDbClusterSnapshotsOutput::builder()
                            .set_db_cluster_snapshots(Some(snapshots))
                            .build()
                    }
                }),
        );
        rules
    }

    /// The rule for the Lambda client of `region`: the storefront function answers the load balancer's
    /// event as the storefront would (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/lambda-functions.html).
    /// A storefront that is not running fails the invocation (`FunctionError: Unhandled`), as a crashed
    /// or timed-out function does (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html).
    pub fn lambda_rules(&self, region: &str) -> Vec<Rule> {
        let (m, r) = (self.clone(), region.to_owned());
        let region = region.to_owned();
        vec![
            mock!(aws_sdk_lambda::Client::invoke)
                .match_requests(move |_| m.state().reachable(&r))
                .then_compute_output({
                    let m = self.clone();
                    move |req| {
                        let event: serde_json::Value = req
                            .payload()
                            .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
                            .unwrap_or_default();
                        let path = event["path"].as_str().unwrap_or_default().to_owned();
                        let mut state = m.state();
                        state.invocations.push((region.clone(), path.clone()));
                        let r = state.regions[&region].clone();
                        if !r.storefront_up {
                            return InvokeOutput::builder()
                                .status_code(200)
                                .function_error("Unhandled")
                                .payload(aws_smithy_types::Blob::new(
                                    br#"{"errorType":"Runtime.ExitError","errorMessage":"storefront exited"}"#
                                        .to_vec(),
                                ))
                                .build();
                        }
                        let is_alb_event = event["requestContext"]["elb"]["targetGroupArn"].is_string()
                            && event["httpMethod"] == "GET";
                        let (code, body) = if !is_alb_event {
                            (400, r#"{"error":"not a load balancer event"}"#)
                        } else if path != "/health/deep" && path != "/health" {
                            (404, r#"{"error":"not_found"}"#)
                        } else if r.database_up || path == "/health" {
                            (200, r#"{"status":"ok"}"#)
                        } else {
                            (503, r#"{"status":"unavailable"}"#)
                        };
                        let response = serde_json::json!({
                            "statusCode": code,
                            "headers": {"content-type": "application/json"},
                            "body": body,
                            "isBase64Encoded": false
                        });
                        InvokeOutput::builder()
                            .status_code(200)
                            .payload(aws_smithy_types::Blob::new(response.to_string().into_bytes()))
                            .build()
                    }
                }),
        ]
    }

    /// The rule for the Route 53 client: what the checkers see of each region's endpoint.
    pub fn route53_rules(&self) -> Vec<Rule> {
        let m = self.clone();
        vec![
            mock!(aws_sdk_route53::Client::get_health_check_status).then_compute_output(
                move |req| {
                    let state = m.state();
                    let healthy = req
                        .health_check_id()
                        .and_then(|id| state.health_checks.get(id))
                        .and_then(|r| state.regions.get(r))
                        .is_some_and(RegionState::seen_healthy_by_checkers);
                    let status = if healthy {
                        "Success: HTTP Status Code 200, OK"
                    } else {
                        "Failure: Connection timed out. The endpoint or the internet connection is down."
                    };
                    let checked = aws_smithy_types::DateTime::from_secs(
                        time::OffsetDateTime::now_utc().unix_timestamp(),
                    );
                    let observations = (0..8)
                        .map(|i| {
                            HealthCheckObservation::builder()
                                .ip_address(format!("198.51.100.{i}"))
                                .status_report(
                                    StatusReport::builder()
                                        .status(status)
                                        .checked_time(checked)
                                        .build(),
                                )
                                .build()
                        })
                        .collect();
                    GetHealthCheckStatusOutput::builder()
                        .set_health_check_observations(Some(observations))
                        .build()
                        .unwrap()
                },
            ),
        ]
    }
}

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn switchover_error(code: &str, message: &str) -> SwitchoverGlobalClusterError {
    if code == "InvalidDBClusterStateFault" {
        SwitchoverGlobalClusterError::InvalidDbClusterStateFault(
            InvalidDbClusterStateFault::builder()
                .message(message)
                .meta(meta(code, message))
                .build(),
        )
    } else {
        SwitchoverGlobalClusterError::InvalidGlobalClusterStateFault(
            InvalidGlobalClusterStateFault::builder()
                .message(message)
                .meta(meta(code, message))
                .build(),
        )
    }
}

fn failover_error(code: &str, message: &str) -> FailoverGlobalClusterError {
    if code == "InvalidDBClusterStateFault" {
        FailoverGlobalClusterError::InvalidDbClusterStateFault(
            InvalidDbClusterStateFault::builder()
                .message(message)
                .meta(meta(code, message))
                .build(),
        )
    } else {
        FailoverGlobalClusterError::InvalidGlobalClusterStateFault(
            InvalidGlobalClusterStateFault::builder()
                .message(message)
                .meta(meta(code, message))
                .build(),
        )
    }
}
