//! [`AwsBackend`]: the runbook operations on AWS.
//!
//! | step | AWS calls |
//! |---|---|
//! | readiness | RDS DescribeGlobalClusters / DescribeDBClusters, CloudWatch `AuroraGlobalDBReplicationLag`, Lambda Invoke of each region's storefront with the load balancer's event for `GET /health/deep`, Route 53 health checks, CloudWatch alarms in ALARM, SSM control parameters, DynamoDB DescribeTable, S3 GetBucketReplication |
//! | prescale-standby | CloudWatch `ServerlessDatabaseCapacity` peak of the primary, RDS ModifyDBCluster (ServerlessV2 MinCapacity), Lambda Get/PutFunctionConcurrency |
//! | raise-fence / lower-fence | SSM PutParameter `epoch`, `fence`, `active-region` |
//! | wait-drained | RDS DescribeGlobalClusters / DescribeDBClusters until the switchover can start: target a connected secondary, both clusters available, no operation under way (the switchover itself synchronizes: RPO 0) |
//! | promote | RDS SwitchoverGlobalCluster (planned) or FailoverGlobalCluster with AllowDataLoss, then DescribeGlobalClusters (`FailoverState`, `IsWriter`) until the target is the writer and the operation is over |
//! | shift-traffic | Route 53 UpdateHealthCheck: the gaining region's check follows its endpoint, the losing region's is forced unhealthy (disabled and inverted) |
//! | verify | Lambda Invoke of the new primary's storefront for `GET /health/deep` |
//! | reprotect | RDS DescribeGlobalClusters / DescribeDBClusters / DescribeDBClusterSnapshots: the returned region's cluster is a connected secondary again; the snapshot Aurora took of it is named |
//! | notify | SNS Publish |
//! | record-active-region | SSM PutParameter `active-region` |
//!
//! Writes go to the region gaining the role first (they must succeed) and to the region losing it second
//! (best effort when that region is unreachable; the detail says so). Every operation reads before it
//! writes, so a re-run after a crash finds its effect in place and succeeds without acting again.

use aws_sdk_rds::operation::failover_global_cluster::FailoverGlobalClusterError;
use aws_sdk_rds::operation::switchover_global_cluster::SwitchoverGlobalClusterError;
use aws_sdk_ssm::types::ParameterType;
use futures::future::join_all;
use lifeboat_runbook::backend::BackendResult;
use lifeboat_runbook::readiness::{DatabaseReadiness, DatabaseRole, Health, RegionRole};
use lifeboat_runbook::{
    BackendError, BackendErrorKind, BoxFuture, DrBackend, Notification, Readiness, RegionReadiness,
    StepContext, StepOutput,
};
use tokio::sync::OnceCell;

use crate::clients::{Clients, RegionClients};
use crate::errors::sdk_error;
use crate::observe::{self, ControlParams, GlobalClusterView};
use crate::topology::Topology;
use crate::traffic::{self, Route53Ids};

/// The runbook backend on AWS. Build it with [`AwsBackend::new`] from the clients of both regions and the
/// environment's [`Topology`].
pub struct AwsBackend {
    clients: Clients,
    topology: Topology,
    route53_ids: OnceCell<Route53Ids>,
}

impl AwsBackend {
    pub fn new(clients: Clients, topology: Topology) -> Self {
        AwsBackend {
            clients,
            topology,
            route53_ids: OnceCell::new(),
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    async fn route53_ids(&self) -> BackendResult<&Route53Ids> {
        self.route53_ids
            .get_or_try_init(|| traffic::resolve(&self.clients.route53, &self.topology))
            .await
    }

    fn cluster_id(&self, region: &str) -> BackendResult<&str> {
        self.topology.cluster_id(region).ok_or_else(|| {
            BackendError::rejected(format!("no Aurora cluster is known for region {region}"))
        })
    }

    async fn params(&self, region: &RegionClients) -> BackendResult<ControlParams> {
        observe::control_params(
            region,
            &self.topology.ssm_active_region(),
            &self.topology.ssm_epoch(),
            &self.topology.ssm_fence(),
            &self.topology.ssm_endpoint(&region.region),
        )
        .await
    }

    async fn put_param(
        &self,
        region: &RegionClients,
        name: &str,
        value: &str,
    ) -> BackendResult<()> {
        region
            .ssm()
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("writing parameter {name}"), &region.region, e))?;
        Ok(())
    }

    /// Refuses to publish `epoch` where a higher one is already published: a newer run owns the roles.
    fn check_not_older(
        params: &ControlParams,
        epoch: u64,
        region: &str,
        name: &str,
    ) -> BackendResult<()> {
        match params.epoch {
            Some(current) if current > epoch => Err(BackendError::rejected(format!(
                "{name} in {region} already holds epoch {current}, newer than this run's {epoch}: a later run owns the roles"
            ))),
            _ => Ok(()),
        }
    }

    /// Writes the control state in one region: the fence first when raising, last when lowering, so no
    /// reader ever sees a new active region with the fence still down from before.
    ///
    /// The region's control item in the journal table (what storefronts read) is written first, through
    /// every replica that answers: a region the orchestrator cannot reach (a gray failure, or its APIs
    /// down) still learns its new state, through the other region's replica, which its storefronts read
    /// too, and through replication. Its SSM parameters (what operators and readiness read) follow and
    /// fail as that region's API does.
    async fn publish_control(
        &self,
        region: &RegionClients,
        epoch: u64,
        active_region: Option<&str>,
        fence_raised: bool,
    ) -> BackendResult<bool> {
        self.publish_control_item(&region.region, epoch, active_region, fence_raised)
            .await?;
        let current = self.params(region).await?;
        Self::check_not_older(&current, epoch, &region.region, &self.topology.ssm_epoch())?;
        let in_place = current.epoch == Some(epoch)
            && current.fence_raised == Some(fence_raised)
            && active_region.is_none_or(|a| current.active_region.as_deref() == Some(a));
        if in_place {
            return Ok(false);
        }
        let fence = lifeboat_contract::control::fence::word(fence_raised);
        if fence_raised {
            self.put_param(region, &self.topology.ssm_fence(), fence)
                .await?;
        }
        self.put_param(region, &self.topology.ssm_epoch(), &epoch.to_string())
            .await?;
        if let Some(active) = active_region {
            self.put_param(region, &self.topology.ssm_active_region(), active)
                .await?;
        }
        if !fence_raised {
            self.put_param(region, &self.topology.ssm_fence(), fence)
                .await?;
        }
        Ok(true)
    }

    /// Writes `for_region`'s control item through each region's replica of the journal table; at least one
    /// must take it. An item already at a newer epoch is left alone and refuses the run, like the parameters.
    async fn publish_control_item(
        &self,
        for_region: &str,
        epoch: u64,
        active_region: Option<&str>,
        fence_raised: bool,
    ) -> BackendResult<()> {
        use aws_sdk_dynamodb::types::AttributeValue;
        use lifeboat_contract::control::item;
        let mut failures = Vec::new();
        let mut written = 0;
        for region in self.topology.regions() {
            let c = self.clients.region(region)?;
            let mut update = c
                .dynamodb()
                .update_item()
                .table_name(&self.topology.journal_table)
                .key(
                    item::PARTITION_KEY,
                    AttributeValue::S(item::PARTITION.into()),
                )
                .key(item::SORT_KEY, AttributeValue::S(for_region.into()))
                .condition_expression("attribute_not_exists(#epoch) OR #epoch <= :epoch")
                .expression_attribute_names("#epoch", item::EPOCH)
                .expression_attribute_names("#fence", item::FENCE)
                .expression_attribute_names("#active", item::ACTIVE_REGION)
                .expression_attribute_names("#at", item::UPDATED_AT)
                .expression_attribute_values(":epoch", AttributeValue::N(epoch.to_string()))
                .expression_attribute_values(
                    ":fence",
                    AttributeValue::S(lifeboat_contract::control::fence::word(fence_raised).into()),
                )
                .expression_attribute_values(
                    ":at",
                    AttributeValue::S(
                        time::OffsetDateTime::now_utc()
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                    ),
                );
            // Raising the fence keeps the active region the item holds (the primary when it has none yet).
            update = match active_region {
                Some(active) => update
                    .update_expression("SET #epoch = :epoch, #fence = :fence, #active = :active, #at = :at")
                    .expression_attribute_values(":active", AttributeValue::S(active.into())),
                None => update
                    .update_expression(
                        "SET #epoch = :epoch, #fence = :fence, #active = if_not_exists(#active, :active), #at = :at",
                    )
                    .expression_attribute_values(
                        ":active",
                        AttributeValue::S(self.topology.primary_region.clone()),
                    ),
            };
            match update.send().await {
                Ok(_) => written += 1,
                Err(e)
                    if crate::errors::error_code(&e) == Some("ConditionalCheckFailedException") =>
                {
                    return Err(BackendError::rejected(format!(
                        "the control item of {for_region} in {region}'s replica of {} already holds an epoch newer than this run's {epoch}: a later run owns the roles",
                        self.topology.journal_table
                    )));
                }
                Err(e) => failures.push(
                    sdk_error(
                        &format!("writing the control item of {for_region}"),
                        region,
                        e,
                    )
                    .message,
                ),
            }
        }
        if written == 0 {
            return Err(BackendError::unavailable(format!(
                "the control item of {for_region} could not be written in any replica: {}",
                failures.join("; ")
            )));
        }
        Ok(())
    }

    /// The global cluster as `region`'s RDS API reports it; an error when it does not exist.
    async fn global_view(&self, region: &RegionClients) -> BackendResult<GlobalClusterView> {
        observe::global_cluster(region, &self.topology.global_cluster_id)
            .await?
            .ok_or_else(|| {
                BackendError::rejected(format!(
                    "Aurora global cluster {} does not exist (seen from {})",
                    self.topology.global_cluster_id, region.region
                ))
            })
    }

    /// The writer of the global cluster as `region` sees it: `Ok(Some(true))` when `cluster_id` is the
    /// writer, `Some(false)` when it is a member and not the writer, `None` when it is not a member.
    async fn writer_state(
        &self,
        region: &RegionClients,
        cluster_id: &str,
    ) -> BackendResult<Option<bool>> {
        Ok(self.global_view(region).await?.writer_state(cluster_id))
    }

    async fn observe_region(&self, region: &str, dns_target: Option<&str>) -> RegionReadiness {
        let Ok(clients) = self.clients.region(region) else {
            return RegionReadiness::unreachable(region, "no clients for this region");
        };
        let params = match self.params(clients).await {
            Ok(p) => p,
            Err(e) if e.kind == BackendErrorKind::Unavailable => {
                return RegionReadiness::unreachable(region, &e.message);
            }
            Err(e) => {
                let mut r = RegionReadiness::unreachable(region, &e.message);
                r.reachable = true;
                r.notes = vec![e.message];
                return r;
            }
        };
        let mut notes = params.problems.clone();

        // The storefront function itself, asked as its load balancer asks it: no certificate, DNS name or
        // listener stands between the probe and the answer, with or without HTTPS configured.
        let storefront = observe::invoke_health(
            clients,
            &self.topology.storefront_function,
            &self.topology.deep_health_path,
            &[],
        );
        let database = self.observe_database(clients, region);
        let sessions = observe::session_replica(clients, &self.topology.sessions_table);
        let assets = self.observe_assets(region);
        let alarms = observe::alarms_firing(clients, &self.topology.prefix);
        let (
            storefront,
            (database, db_notes),
            (session_replica, session_note),
            asset_replication,
            alarms,
        ) = tokio::join!(storefront, database, sessions, assets, alarms);
        notes.extend(db_notes);
        notes.extend(session_note);
        let alarms_firing = alarms.unwrap_or_else(|e| {
            notes.push(e.message);
            Vec::new()
        });
        let role = match params.active_region.as_deref() {
            Some(a) if a == region => RegionRole::Active,
            Some(a) if self.topology.region_pair().other_region(region) == Some(a) => {
                RegionRole::Passive
            }
            Some(a) => {
                notes.push(format!(
                    "active-region parameter names {a}, not a region of this environment"
                ));
                RegionRole::Unknown
            }
            None => {
                notes.push(format!(
                    "parameter {} is not set in {region}",
                    self.topology.ssm_active_region()
                ));
                RegionRole::Unknown
            }
        };
        RegionReadiness {
            region: region.to_owned(),
            reachable: true,
            role,
            storefront,
            database,
            session_replica,
            asset_replication,
            alarms_firing,
            active_region_parameter: params.active_region,
            epoch: params.epoch,
            fence_raised: params.fence_raised,
            dns_target: dns_target.map(str::to_owned),
            notes,
            // Nothing in another AWS region is lifeboat's to restart.
            restartable: false,
        }
    }

    async fn observe_database(
        &self,
        clients: &RegionClients,
        region: &str,
    ) -> (DatabaseReadiness, Vec<String>) {
        let mut notes = Vec::new();
        let unknown = DatabaseReadiness {
            role: DatabaseRole::Unknown,
            replication_lag_ms: None,
            replicating: None,
        };
        let Ok(cluster_id) = self.cluster_id(region) else {
            notes.push(format!("no Aurora cluster is known for {region}"));
            return (unknown, notes);
        };
        let writer = match self.writer_state(clients, cluster_id).await {
            Ok(w) => w,
            Err(e) => {
                notes.push(e.message);
                return (unknown, notes);
            }
        };
        let status = match observe::cluster_info(clients, cluster_id).await {
            Ok(info) => Some(info.status),
            Err(e) => {
                notes.push(e.message);
                None
            }
        };
        let available = status.as_deref() == Some("available");
        if let Some(s) = status.as_deref().filter(|s| *s != "available") {
            notes.push(format!("Aurora cluster {cluster_id} is {s}"));
        }
        match writer {
            Some(true) => (
                DatabaseReadiness {
                    role: DatabaseRole::Writer,
                    replication_lag_ms: None,
                    replicating: None,
                },
                notes,
            ),
            Some(false) => {
                let lag = match observe::replication_lag_ms(clients, cluster_id).await {
                    Ok(Some(lag)) => Some(lag),
                    Ok(None) => {
                        notes.push(format!(
                            "no AuroraGlobalDBReplicationLag datapoints for {cluster_id} in the last 5 minutes: lag unknown"
                        ));
                        None
                    }
                    Err(e) => {
                        notes.push(e.message);
                        None
                    }
                };
                (
                    DatabaseReadiness {
                        role: DatabaseRole::Replica,
                        replication_lag_ms: lag,
                        replicating: Some(available),
                    },
                    notes,
                )
            }
            None => {
                notes.push(format!(
                    "Aurora cluster {cluster_id} is not a member of global cluster {}",
                    self.topology.global_cluster_id
                ));
                (
                    DatabaseReadiness {
                        role: DatabaseRole::Detached,
                        replication_lag_ms: None,
                        replicating: Some(false),
                    },
                    notes,
                )
            }
        }
    }

    async fn observe_assets(&self, region: &str) -> Health {
        let Some(other) = self.topology.region_pair().other_region(region) else {
            return Health::Unknown(format!("{region} is not a region of this environment"));
        };
        let (Some(source_bucket), Some(destination_bucket)) = (
            self.topology.assets_buckets.get(other),
            self.topology.assets_buckets.get(region),
        ) else {
            return Health::Unknown("asset buckets are not known".into());
        };
        match self.clients.region(other) {
            Ok(source) => {
                observe::asset_replication(source, source_bucket, destination_bucket).await
            }
            Err(e) => Health::Unknown(e.message),
        }
    }

    /// The ARN of the alert topic in `region`: given, or found by name.
    async fn topic_arn(&self, region: &RegionClients) -> BackendResult<String> {
        if let Some(arn) = self.topology.topic_arns.get(&region.region) {
            return Ok(arn.clone());
        }
        let suffix = format!(":{}", self.topology.topic_name);
        let mut token = None;
        loop {
            let out = region
                .sns()
                .list_topics()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error("listing SNS topics", &region.region, e))?;
            if let Some(arn) = out
                .topics()
                .iter()
                .filter_map(|t| t.topic_arn())
                .find(|arn| arn.ends_with(&suffix))
            {
                return Ok(arn.to_owned());
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Err(BackendError::rejected(format!(
                    "no SNS topic named {} in {}",
                    self.topology.topic_name, region.region
                )));
            }
        }
    }

    /// Publishes `notification` to the alert topic in `region`; returns the topic ARN and message id.
    pub async fn notify_operators(
        &self,
        region: &str,
        notification: &Notification,
    ) -> BackendResult<String> {
        let clients = self.clients.region(region)?;
        let arn = self.topic_arn(clients).await?;
        // SNS subjects are at most 100 characters.
        let subject: String = notification.subject.chars().take(100).collect();
        let out = clients
            .sns()
            .publish()
            .topic_arn(&arn)
            .subject(subject)
            .message(&notification.message)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("publishing to {arn}"), region, e))?;
        Ok(format!(
            "published to {arn} (message {})",
            out.message_id().unwrap_or("?")
        ))
    }

    async fn prescale_database(&self, ctx: &StepContext) -> BackendResult<String> {
        let to = self.clients.region(&ctx.to)?;
        let target_id = self.cluster_id(&ctx.to)?;
        let source_id = self.cluster_id(&ctx.from)?;
        let info = observe::cluster_info(to, target_id).await?;
        // The primary's recent peak; when the primary cannot be read (it may be the region that is gone),
        // the target's own maximum is the safe choice.
        let peak = match self.clients.region(&ctx.from) {
            Ok(from) => {
                observe::peak_capacity(from, source_id, self.topology.bounds.capacity_lookback)
                    .await
                    .ok()
                    .flatten()
            }
            Err(_) => None,
        };
        let max = info
            .max_capacity
            .unwrap_or(peak.unwrap_or(self.topology.bounds.min_capacity_floor));
        let wanted = peak
            .unwrap_or(max)
            .max(self.topology.bounds.min_capacity_floor)
            .min(max);
        let basis = match peak {
            Some(p) => format!(
                "peak {p} ACU of {source_id} in the last {} h",
                self.topology.bounds.capacity_lookback.as_secs() / 3600
            ),
            None => format!("no capacity data for {source_id}: the target's maximum"),
        };
        if info.min_capacity.is_some_and(|m| m >= wanted) {
            return Ok(format!(
                "{target_id} minimum capacity already {} ACU (wanted {wanted}, {basis})",
                info.min_capacity.unwrap_or_default()
            ));
        }
        to.rds()
            .modify_db_cluster()
            .db_cluster_identifier(target_id)
            .serverless_v2_scaling_configuration(
                aws_sdk_rds::types::ServerlessV2ScalingConfiguration::builder()
                    .min_capacity(wanted)
                    .max_capacity(max)
                    .build(),
            )
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| {
                sdk_error(
                    &format!("raising the minimum capacity of {target_id}"),
                    &ctx.to,
                    e,
                )
            })?;
        Ok(format!(
            "{target_id} minimum capacity set to {wanted} ACU ({basis})"
        ))
    }

    async fn prescale_lambda(&self, ctx: &StepContext) -> BackendResult<String> {
        let function = &self.topology.storefront_function;
        let to = self.clients.region(&ctx.to)?;
        let wanted = match self.topology.bounds.storefront_reserved_concurrency {
            Some(n) => Some(n),
            None => match self.clients.region(&ctx.from) {
                Ok(from) => match from
                    .lambda()
                    .get_function_concurrency()
                    .function_name(function)
                    .send()
                    .await
                {
                    Ok(out) => out.reserved_concurrent_executions(),
                    Err(_) => None,
                },
                Err(_) => None,
            },
        };
        let Some(wanted) = wanted else {
            return Ok(format!(
                "{function}: no reserved concurrency in {} to match; left as is",
                ctx.from
            ));
        };
        let current = to
            .lambda()
            .get_function_concurrency()
            .function_name(function)
            .send()
            .await
            .map_err(|e| {
                sdk_error(
                    &format!("reading the concurrency of {function}"),
                    &ctx.to,
                    e,
                )
            })?
            .reserved_concurrent_executions();
        if current.is_some_and(|c| c >= wanted) {
            return Ok(format!(
                "{function} in {} already reserves {} (wanted {wanted})",
                ctx.to,
                current.unwrap_or_default()
            ));
        }
        to.lambda()
            .put_function_concurrency()
            .function_name(function)
            .reserved_concurrent_executions(wanted)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("reserving concurrency for {function}"), &ctx.to, e))?;
        Ok(format!(
            "{function} in {} reserves {wanted} concurrent executions",
            ctx.to
        ))
    }

    /// Publishes the active region's control state (active region, epoch, fence) to `ctx.to` where that
    /// region holds an older one; returns what it did, for the step's detail.
    async fn tell_returned_region(&self, ctx: &StepContext) -> BackendResult<String> {
        let active = self.clients.region(&ctx.from)?;
        let returned = self.clients.region(&ctx.to)?;
        let truth = self.params(active).await?;
        let held = self.params(returned).await?;
        let (Some(epoch), Some(active_region)) = (truth.epoch, truth.active_region.as_deref())
        else {
            return Ok(String::new());
        };
        if held.epoch.is_some_and(|e| e >= epoch) {
            return Ok(String::new());
        }
        let fence = truth.fence_raised.unwrap_or(false);
        self.publish_control(returned, epoch, Some(active_region), fence)
            .await?;
        Ok(format!(
            "{} held epoch {} and was told epoch {epoch} ({active_region} active); ",
            ctx.to,
            held.epoch.map_or("none".to_owned(), |e| e.to_string())
        ))
    }

    /// Whether a switchover to `ctx.to` can start now: `Ok(detail)` when it can, `Err(reason)` when not yet.
    async fn switchover_ready(&self, ctx: &StepContext) -> BackendResult<Result<String, String>> {
        let to = self.clients.region(&ctx.to)?;
        let target_id = self.cluster_id(&ctx.to)?;
        let source_id = self.cluster_id(&ctx.from)?;
        let view = self.global_view(to).await?;
        if let Some(op) = &view.operation {
            return Ok(Err(format!(
                "{} is busy: {} from {} to {}",
                self.topology.global_cluster_id,
                op.status,
                op.from_cluster_arn.as_deref().unwrap_or("?"),
                op.to_cluster_arn.as_deref().unwrap_or("?")
            )));
        }
        let Some(member) = view
            .members
            .iter()
            .find(|m| observe::arn_names_cluster(&m.cluster_arn, target_id))
        else {
            return Err(BackendError::rejected(format!(
                "{target_id} is not a member of global cluster {}: re-protect it first",
                self.topology.global_cluster_id
            )));
        };
        if member.is_writer {
            return Ok(Ok(format!("{target_id} already is the writer")));
        }
        if let Some(sync) = member
            .synchronization
            .as_deref()
            .filter(|s| *s != "connected")
        {
            return Ok(Err(format!(
                "{target_id} is a secondary whose synchronization is {sync}, not connected"
            )));
        }
        for (region, id) in [(&ctx.to, target_id), (&ctx.from, source_id)] {
            let info = observe::cluster_info(self.clients.region(region)?, id).await?;
            if info.status != "available" {
                return Ok(Err(format!(
                    "{id} in {region} is {}, not available",
                    info.status
                )));
            }
        }
        Ok(Ok(format!(
            "{target_id} is a connected secondary, {source_id} and {target_id} are available, no operation under way"
        )))
    }

    /// One promotion request; `Ok(false)` when Aurora refused it for the global or regional cluster's state
    /// (the next observation says why), other errors as they are.
    async fn request_promotion(
        &self,
        ctx: &StepContext,
        target_arn: &str,
        allow_data_loss: bool,
    ) -> BackendResult<Result<(), String>> {
        let to = self.clients.region(&ctx.to)?;
        let global = &self.topology.global_cluster_id;
        // A state fault means "not now": another operation is under way, or a cluster is not available.
        // The caller looks at the global cluster again to learn which.
        if allow_data_loss {
            match to
                .rds()
                .failover_global_cluster()
                .global_cluster_identifier(global)
                .target_db_cluster_identifier(target_arn)
                .allow_data_loss(true)
                .send()
                .await
            {
                Ok(_) => Ok(Ok(())),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s: &FailoverGlobalClusterError| {
                            s.is_invalid_global_cluster_state_fault()
                                || s.is_invalid_db_cluster_state_fault()
                        }) =>
                {
                    Ok(Err(sdk_error("FailoverGlobalCluster", &ctx.to, e).message))
                }
                Err(e) => Err(sdk_error("FailoverGlobalCluster", &ctx.to, e)),
            }
        } else {
            match to
                .rds()
                .switchover_global_cluster()
                .global_cluster_identifier(global)
                .target_db_cluster_identifier(target_arn)
                .send()
                .await
            {
                Ok(_) => Ok(Ok(())),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s: &SwitchoverGlobalClusterError| {
                            s.is_invalid_global_cluster_state_fault()
                                || s.is_invalid_db_cluster_state_fault()
                        }) =>
                {
                    Ok(Err(sdk_error("SwitchoverGlobalCluster", &ctx.to, e).message))
                }
                Err(e) => Err(sdk_error("SwitchoverGlobalCluster", &ctx.to, e)),
            }
        }
    }
}

impl DrBackend for AwsBackend {
    fn name(&self) -> &str {
        "aws"
    }

    fn readiness(&self) -> BoxFuture<'_, BackendResult<Readiness>> {
        Box::pin(async move {
            let observed_at = time::OffsetDateTime::now_utc();
            let mut route_notes = Vec::new();
            let dns_target = match self.route53_ids().await {
                Ok(ids) => {
                    match traffic::dns_target(&self.clients.route53, ids, &self.topology).await {
                        Ok(t) => Some(t),
                        Err(e) => {
                            route_notes.push(e.message);
                            None
                        }
                    }
                }
                Err(e) => {
                    route_notes.push(e.message);
                    None
                }
            };
            let regions = self.topology.regions();
            let mut observed = join_all(
                regions
                    .iter()
                    .map(|r| self.observe_region(r, dns_target.as_deref())),
            )
            .await;
            for r in &mut observed {
                r.notes.extend(route_notes.iter().cloned());
            }
            attribute_alarms_to_their_subject(&self.topology, &mut observed);
            if observed.iter().all(|r| !r.reachable) {
                return Err(BackendError::unavailable(format!(
                    "neither region could be observed: {}",
                    observed
                        .iter()
                        .flat_map(|r| r.notes.iter().cloned())
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            }
            Ok(Readiness {
                observed_at,
                regions: observed,
            })
        })
    }

    fn prescale<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(async move {
            let database = self.prescale_database(ctx).await?;
            let lambda = self.prescale_lambda(ctx).await?;
            Ok(StepOutput::detail(format!("{database}; {lambda}")))
        })
    }

    fn raise_fence<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(async move {
            let epoch = ctx.require_epoch()?;
            // The losing region first: its storefronts are the ones that must stop writing.
            let from = self.clients.region(&ctx.from)?;
            let changed = self.publish_control(from, epoch, None, true).await?;
            let to = self.clients.region(&ctx.to)?;
            let other = self.publish_control(to, epoch, None, true).await?;
            Ok(StepOutput::detail(format!(
                "fence raised at epoch {epoch} in {} and {}{}",
                ctx.from,
                ctx.to,
                if changed || other {
                    ""
                } else {
                    " (already in place)"
                }
            )))
        })
    }

    fn wait_drained<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(async move {
            // SwitchoverGlobalCluster synchronizes the secondary with the primary before it changes any role,
            // so its RPO is 0 by design
            // (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html#aurora-global-database-disaster-recovery.managed-failover).
            // Draining is Aurora's job; polling a one-minute CloudWatch metric for a zero lag would read the same
            // datapoint twice or none at all. What must hold before the request is what the switchover
            // needs: a connected secondary, both clusters available, no other operation under way.
            let deadline = tokio::time::Instant::now()
                + self.topology.bounds.poll_interval
                    * (self.topology.bounds.drained_observations + 10);
            loop {
                match self.switchover_ready(ctx).await? {
                    Ok(detail) => {
                        let to = self.clients.region(&ctx.to)?;
                        let lag = observe::replication_lag_ms(to, self.cluster_id(&ctx.to)?)
                            .await
                            .ok()
                            .flatten();
                        let out = StepOutput::detail(format!(
                            "{detail}; the switchover synchronizes before it changes roles (RPO 0){}",
                            lag.map(|l| format!(", replication lag last reported {l} ms"))
                                .unwrap_or_default()
                        ));
                        return Ok(match lag {
                            Some(l) => out.with_lag_ms(l),
                            None => out,
                        });
                    }
                    Err(why) if tokio::time::Instant::now() >= deadline => {
                        return Err(BackendError::not_yet(format!(
                            "a switchover to {} cannot start: {why}",
                            ctx.to
                        )));
                    }
                    Err(_) => tokio::time::sleep(self.topology.bounds.poll_interval).await,
                }
            }
        })
    }

    fn wait_write_lease_expired<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(async move {
            let epoch = ctx.require_epoch()?;
            // Storefronts renew their view of the control state (the control items of both regions' replicas)
            // at most one lease apart; once a lease has passed since the new epoch was published (or the
            // region was cut off), none of them
            // still acts on the old one.
            let lease = self.topology.bounds.write_lease;
            tokio::time::sleep(lease).await;
            Ok(StepOutput::detail(format!(
                "waited {} ms for write leases older than epoch {epoch} to run out",
                lease.as_millis()
            )))
        })
    }

    fn promote<'a>(
        &'a self,
        ctx: &'a StepContext,
        allow_data_loss: bool,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(async move {
            let to = self.clients.region(&ctx.to)?;
            let target_id = self.cluster_id(&ctx.to)?;
            let global = &self.topology.global_cluster_id;
            let action = if allow_data_loss {
                "failover (allow data loss)"
            } else {
                "switchover"
            };
            let lag_before = observe::replication_lag_ms(to, target_id)
                .await
                .ok()
                .flatten();
            let with_lag = |out: StepOutput| match lag_before {
                Some(l) => out.with_lag_ms(l),
                None => out,
            };
            let target_arn = observe::cluster_info(to, target_id).await?.arn;
            let deadline = tokio::time::Instant::now() + self.topology.bounds.promote_timeout;
            // What the global cluster says decides every turn: `FailoverState` while Aurora carries out an
            // operation, the members' `IsWriter` once it is over
            // (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_GlobalCluster.html).
            let mut requested = false;
            let mut idle_after_request = 0u32;
            let mut waiting_for = String::new();
            loop {
                let view = self.global_view(to).await?;
                let writer = view.writer_state(target_id);
                match (&view.operation, writer) {
                    (_, None) => {
                        return Err(BackendError::rejected(format!(
                            "{target_id} is not a member of global cluster {global}: re-protect it first"
                        )));
                    }
                    (None, Some(true)) => {
                        let detail = if requested {
                            format!(
                                "{action} of {global}: {target_id} in {} is the writer",
                                ctx.to
                            )
                        } else {
                            format!("{target_id} already is the writer of {global}")
                        };
                        return Ok(with_lag(StepOutput::detail(detail)));
                    }
                    (Some(op), _) => {
                        let to_target = op
                            .to_cluster_arn
                            .as_deref()
                            .is_some_and(|arn| observe::arn_names_cluster(arn, target_id));
                        if !to_target {
                            return Err(BackendError::rejected(format!(
                                "{global} is carrying out another operation ({} from {} to {}): wait for it to end, \
                                 then run again",
                                op.status,
                                op.from_cluster_arn.as_deref().unwrap_or("?"),
                                op.to_cluster_arn.as_deref().unwrap_or("?")
                            )));
                        }
                        // Ours (this run's request, or one a crashed attempt made): Aurora is at it.
                        waiting_for = format!("{} to {target_id} is {}", action, op.status);
                        idle_after_request = 0;
                    }
                    (None, Some(false)) => {
                        if requested {
                            // Accepted, but no operation shows and the roles did not change: the answer may
                            // lag the request for a moment; for longer, the operation ended without us.
                            idle_after_request += 1;
                            if idle_after_request > 3 {
                                return Err(BackendError::not_yet(format!(
                                    "the {action} of {global} ended without making {target_id} the writer"
                                )));
                            }
                        } else {
                            let info = observe::cluster_info(to, target_id).await?;
                            if info.status != "available" {
                                // Aurora promotes only an available cluster (e.g. one still `modifying`
                                // after the pre-scale): wait for it, bounded like the promotion.
                                waiting_for =
                                    format!("{target_id} to be available (it is {})", info.status);
                            } else {
                                match self
                                    .request_promotion(ctx, &target_arn, allow_data_loss)
                                    .await?
                                {
                                    Ok(()) => {
                                        requested = true;
                                        tracing::info!(step = %ctx.step, "{action} of {global} requested");
                                        waiting_for = format!("the {action} to start");
                                    }
                                    Err(why) => {
                                        waiting_for = format!("a state Aurora accepts ({why})")
                                    }
                                }
                            }
                        }
                    }
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(BackendError::not_yet(format!(
                        "{action} of {global}: after {} s still waiting for {waiting_for}",
                        self.topology.bounds.promote_timeout.as_secs()
                    )));
                }
                tokio::time::sleep(self.topology.bounds.poll_interval).await;
            }
        })
    }

    fn shift_traffic<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(async move {
            let ids = self.route53_ids().await?;
            let detail =
                traffic::shift_to(&self.clients.route53, ids, &self.topology, &ctx.to).await?;
            Ok(StepOutput::detail(detail))
        })
    }

    fn lower_fence<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(async move {
            let epoch = ctx.require_epoch()?;
            let to = self.clients.region(&ctx.to)?;
            self.publish_control(to, epoch, Some(&ctx.to), false)
                .await?;
            // The losing region learns the new owner too, so its storefronts keep refusing writes once the
            // fence is down; when it is gone, it reads the truth when it comes back.
            let from_note = match self.clients.region(&ctx.from) {
                Ok(from) => match self
                    .publish_control(from, epoch, Some(&ctx.to), false)
                    .await
                {
                    Ok(_) => format!("; {} told too", ctx.from),
                    Err(e) => format!("; {} not updated: {}", ctx.from, e.message),
                },
                Err(e) => format!("; {}", e.message),
            };
            Ok(StepOutput::detail(format!(
                "{} active at epoch {epoch}, fence lowered{from_note}",
                ctx.to
            )))
        })
    }

    fn verify<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(async move {
            let to = self.clients.region(&ctx.to)?;
            let function = &self.topology.storefront_function;
            let path = &self.topology.deep_health_path;
            let mut last = String::new();
            for _ in 0..20 {
                match observe::invoke_health(to, function, path, &[]).await {
                    Health::Healthy => {
                        let at = time::OffsetDateTime::now_utc();
                        return Ok(StepOutput::detail(format!(
                            "{function} in {} answered GET {path} with success",
                            ctx.to
                        ))
                        .with_first_success_at(at));
                    }
                    Health::Unhealthy(why) | Health::Unknown(why) => last = why,
                }
                tokio::time::sleep(self.topology.bounds.poll_interval).await;
            }
            Err(BackendError::not_yet(format!(
                "the new primary {} does not answer yet: {last}",
                ctx.to
            )))
        })
    }

    fn notify<'a>(
        &'a self,
        ctx: &'a StepContext,
        notification: &'a Notification,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(async move {
            // The surviving region's topic; the losing one may be gone. The run id lets readers
            // de-duplicate a message sent again by a re-run.
            let message = Notification {
                subject: notification.subject.clone(),
                message: format!("{}\n\nrun: {}", notification.message, ctx.run_id),
            };
            let detail = self.notify_operators(&ctx.to, &message).await?;
            Ok(StepOutput::detail(detail))
        })
    }

    fn record_active_region<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(async move {
            let name = self.topology.ssm_active_region();
            let to = self.clients.region(&ctx.to)?;
            let current = self.params(to).await?;
            if current.active_region.as_deref() != Some(ctx.to.as_str()) {
                self.put_param(to, &name, &ctx.to).await?;
            }
            let from_note = match self.clients.region(&ctx.from) {
                Ok(from) => match self.put_param(from, &name, &ctx.to).await {
                    Ok(()) => format!(" in {} and {}", ctx.to, ctx.from),
                    Err(e) => format!(" in {} ({} not updated: {})", ctx.to, ctx.from, e.message),
                },
                Err(e) => format!(" in {} ({})", ctx.to, e.message),
            };
            Ok(StepOutput::detail(format!(
                "{name} = {}{from_note}",
                ctx.to
            )))
        })
    }

    fn reprotect<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(async move {
            // After a global database failover, Aurora adds the old primary back as a secondary by itself
            // once its region is available again, and first takes a snapshot of it
            // (`rds:unplanned-global-failover-<cluster>-<time>`) that keeps the writes the new primary never
            // received recoverable
            // (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html#aurora-global-database-failover.managed-unplanned).
            // What is left is to wait until it is a connected secondary and to name that snapshot.
            let to = self.clients.region(&ctx.to)?;
            let cluster = self.cluster_id(&ctx.to)?;
            let global = &self.topology.global_cluster_id;
            // A region back from an outage still holds the control state of before it was cut off (itself
            // active, an old epoch): its storefronts must learn the truth before anything else.
            let told = self.tell_returned_region(ctx).await?;
            let view = self.global_view(to).await?;
            let Some(member) = view
                .members
                .iter()
                .find(|m| observe::arn_names_cluster(&m.cluster_arn, cluster))
            else {
                return Err(BackendError::not_yet(format!(
                    "{cluster} in {} is not a member of global cluster {global} yet: Aurora rejoins a former \
                     primary as a secondary once its region is available again",
                    ctx.to
                )));
            };
            if member.is_writer {
                return Err(BackendError::rejected(format!(
                    "{cluster} in {} is still the writer of {global}: there is nothing to re-protect, and a \
                     failback would move nothing",
                    ctx.to
                )));
            }
            if let Some(sync) = member
                .synchronization
                .as_deref()
                .filter(|s| *s != "connected")
            {
                return Err(BackendError::not_yet(format!(
                    "{cluster} rejoined {global} and is catching up (synchronization {sync})"
                )));
            }
            let info = observe::cluster_info(to, cluster).await?;
            if info.status != "available" {
                return Err(BackendError::not_yet(format!(
                    "{cluster} is a member of {global} but {}",
                    info.status
                )));
            }
            let snapshot = observe::failover_snapshot(to, cluster).await;
            Ok(StepOutput::detail(format!(
                "{told}{cluster} is a connected secondary of {global} and available{}",
                match snapshot {
                    Ok(Some(name)) => format!(
                        "; the writes it held that the global database lost are kept in snapshot {name}"
                    ),
                    Ok(None) => String::new(),
                    Err(e) => format!("; snapshots not listed: {}", e.message),
                }
            )))
        })
    }
}

/// Moves each firing alarm to the region it is about. Alarms live where their metric is: the Route 53
/// detection alarms of both regions in us-east-1 (the only region with health-check metrics,
/// https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/monitoring-health-checks.html), a probe alarm
/// in the probing region. Read per region as listed, a probe alarm on a dead primary would count against
/// the standby and refuse the very failover it calls for.
fn attribute_alarms_to_their_subject(topology: &Topology, observed: &mut [RegionReadiness]) {
    let mut moved: Vec<(String, String)> = Vec::new();
    for r in observed.iter_mut() {
        r.alarms_firing
            .retain(|alarm| match topology.alarm_subject_region(alarm) {
                Some(subject) if subject != r.region => {
                    moved.push((subject.to_owned(), alarm.clone()));
                    false
                }
                _ => true,
            });
    }
    for (subject, alarm) in moved {
        if let Some(r) = observed.iter_mut().find(|r| r.region == subject)
            && !r.alarms_firing.contains(&alarm)
        {
            r.alarms_firing.push(alarm);
        }
    }
}
