//! Read-only observations of the AWS resources: the building blocks of readiness and of the waits.

use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, StateValue, Statistic};
use lifeboat_runbook::BackendError;
use lifeboat_runbook::readiness::Health;

use crate::clients::RegionClients;
use crate::errors::sdk_error;

/// The control parameters as one region's SSM holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlParams {
    pub active_region: Option<String>,
    pub epoch: Option<u64>,
    /// `Some(true)` for `raised`, `Some(false)` for `lowered`.
    pub fence_raised: Option<bool>,
    /// This region's public endpoint.
    pub endpoint: Option<String>,
    /// Values that could not be understood, with the parameter name.
    pub problems: Vec<String>,
}

pub async fn control_params(
    clients: &RegionClients,
    active_region: &str,
    epoch: &str,
    fence: &str,
    endpoint: &str,
) -> Result<ControlParams, BackendError> {
    let out = clients
        .ssm()
        .get_parameters()
        .names(active_region)
        .names(epoch)
        .names(fence)
        .names(endpoint)
        .send()
        .await
        .map_err(|e| sdk_error("reading the DR control parameters", &clients.region, e))?;
    let mut params = ControlParams::default();
    for p in out.parameters() {
        let (Some(name), Some(value)) = (p.name(), p.value()) else {
            continue;
        };
        if name == active_region {
            params.active_region = Some(value.to_owned());
        } else if name == epoch {
            match value.trim().parse::<u64>() {
                Ok(v) => params.epoch = Some(v),
                Err(_) => params
                    .problems
                    .push(format!("{name} holds {value:?}, not a whole number")),
            }
        } else if name == fence {
            match lifeboat_contract::control::fence::parse(value) {
                Some(raised) => params.fence_raised = Some(raised),
                None => params
                    .problems
                    .push(format!("{name} holds {value:?}, not raised or lowered")),
            }
        } else if name == endpoint {
            params.endpoint = Some(value.to_owned());
        }
    }
    Ok(params)
}

/// One member of the Aurora global cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalMember {
    pub cluster_arn: String,
    pub is_writer: bool,
    /// A secondary's `SynchronizationStatus`: `connected` while it replicates, `pending-resync` while it
    /// catches up after being (re)joined; `None` where the API does not report it.
    pub synchronization: Option<String>,
}

/// A switchover or failover Aurora is carrying out on the global cluster (`GlobalCluster.FailoverState`:
/// https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalOperation {
    /// `pending`, `failing-over` or `cancelling`; switchovers report `switching-over` too.
    pub status: String,
    pub from_cluster_arn: Option<String>,
    pub to_cluster_arn: Option<String>,
    /// `true` for a failover that may lose data, `false` for a switchover.
    pub data_loss_allowed: bool,
}

/// The global cluster as one region's RDS API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalClusterView {
    pub status: Option<String>,
    pub members: Vec<GlobalMember>,
    /// The operation under way, if any. Aurora takes one at a time.
    pub operation: Option<GlobalOperation>,
}

impl GlobalClusterView {
    /// `Some(true)` when `cluster_id` is the writer, `Some(false)` when it is a secondary member, `None`
    /// when it is not a member.
    pub fn writer_state(&self, cluster_id: &str) -> Option<bool> {
        self.members
            .iter()
            .find(|m| arn_names_cluster(&m.cluster_arn, cluster_id))
            .map(|m| m.is_writer)
    }
}

/// The global cluster `global_id` as seen from one region, or `None` when it does not exist.
/// The identifier filter is applied here: not every endpoint honours the API's own filter.
pub async fn global_cluster(
    clients: &RegionClients,
    global_id: &str,
) -> Result<Option<GlobalClusterView>, BackendError> {
    let out = clients
        .rds()
        .describe_global_clusters()
        .global_cluster_identifier(global_id)
        .send()
        .await
        .map_err(|e| {
            sdk_error(
                &format!("describing global cluster {global_id}"),
                &clients.region,
                e,
            )
        })?;
    let Some(cluster) = out
        .global_clusters()
        .iter()
        .find(|g| g.global_cluster_identifier() == Some(global_id))
    else {
        return Ok(None);
    };
    let members = cluster
        .global_cluster_members()
        .iter()
        .filter_map(|m| {
            Some(GlobalMember {
                cluster_arn: m.db_cluster_arn()?.to_owned(),
                is_writer: m.is_writer().unwrap_or(false),
                synchronization: m.synchronization_status().map(|s| s.as_str().to_owned()),
            })
        })
        .collect();
    let operation = cluster.failover_state().and_then(|f| {
        Some(GlobalOperation {
            status: f.status()?.as_str().to_owned(),
            from_cluster_arn: f.from_db_cluster_arn().map(str::to_owned),
            to_cluster_arn: f.to_db_cluster_arn().map(str::to_owned),
            data_loss_allowed: f.is_data_loss_allowed().unwrap_or(false),
        })
    });
    Ok(Some(GlobalClusterView {
        status: cluster.status().map(str::to_owned),
        members,
        operation,
    }))
}

/// The members of global cluster `global_id` as seen from one region, or `None` when it does not exist.
pub async fn global_cluster_members(
    clients: &RegionClients,
    global_id: &str,
) -> Result<Option<Vec<GlobalMember>>, BackendError> {
    Ok(global_cluster(clients, global_id).await?.map(|g| g.members))
}

/// The event an Application Load Balancer hands a Lambda target for `GET path`
/// (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/lambda-functions.html): the storefront
/// function is asked exactly as the load balancer asks it, without the load balancer, its certificate or
/// the public DNS name in the way.
pub fn alb_get_event(region: &str, path: &str, headers: &[(&str, &str)]) -> serde_json::Value {
    let mut header_map = serde_json::Map::new();
    header_map.insert("user-agent".into(), USER_AGENT.into());
    for (name, value) in headers {
        header_map.insert(name.to_ascii_lowercase(), (*value).into());
    }
    serde_json::json!({
        "requestContext": {
            "elb": {
                "targetGroupArn": format!(
                    "arn:aws:elasticloadbalancing:{region}:000000000000:targetgroup/lifeboat-probe/0000000000000000"
                )
            }
        },
        "httpMethod": "GET",
        "path": path,
        "queryStringParameters": {},
        "headers": header_map,
        "body": "",
        "isBase64Encoded": false
    })
}

const USER_AGENT: &str = concat!("lifeboat-dr/", env!("CARGO_PKG_VERSION"));

/// Health of the storefront function in one region, by invoking it with the load balancer's event for
/// `path`: healthy on a 2xx answer. A function error (crash, timeout) or a non-2xx answer is unhealthy; an
/// API that cannot be reached is unknown (the region may be gone, which readiness reports on its own).
pub async fn invoke_health(
    clients: &RegionClients,
    function: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Health {
    let event = alb_get_event(&clients.region, path, headers);
    let out = match clients
        .lambda()
        .invoke()
        .function_name(function)
        .payload(aws_smithy_types::Blob::new(event.to_string().into_bytes()))
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let err = sdk_error(
                &format!("invoking {function} for {path}"),
                &clients.region,
                e,
            );
            return match err.kind {
                lifeboat_runbook::BackendErrorKind::Unavailable => Health::Unknown(err.message),
                _ => Health::Unhealthy(err.message),
            };
        }
    };
    if let Some(kind) = out.function_error() {
        return Health::Unhealthy(format!(
            "{function} in {} failed ({kind}) answering {path}",
            clients.region
        ));
    }
    let payload = out.payload().map(|b| b.as_ref()).unwrap_or_default();
    let answer: serde_json::Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(_) => {
            return Health::Unhealthy(format!(
                "{function} in {} answered {path} with something that is not a load balancer response",
                clients.region
            ));
        }
    };
    match answer.get("statusCode").and_then(serde_json::Value::as_u64) {
        Some(code) if (200..300).contains(&code) => Health::Healthy,
        Some(code) => Health::Unhealthy(format!(
            "{function} in {} answered {path} with {code}{}",
            clients.region,
            answer_reason(&answer)
        )),
        None => Health::Unhealthy(format!(
            "{function} in {} answered {path} without a status code",
            clients.region
        )),
    }
}

/// `: <status>` from a JSON body's `status` (or `error`) field, when there is one.
fn answer_reason(answer: &serde_json::Value) -> String {
    let body = answer
        .get("body")
        .and_then(serde_json::Value::as_str)
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok());
    body.as_ref()
        .and_then(|b| b.get("error").or_else(|| b.get("status")))
        .map(|v| match v {
            serde_json::Value::String(s) => format!(": {s}"),
            other => format!(": {other}"),
        })
        .unwrap_or_default()
}

/// Whether an ARN names the cluster `cluster_id` (ARN: `arn:aws:rds:<region>:<account>:cluster:<id>`).
pub fn arn_names_cluster(arn: &str, cluster_id: &str) -> bool {
    arn.rsplit_once(":cluster:")
        .is_some_and(|(_, id)| id.eq_ignore_ascii_case(cluster_id))
}

/// The newest snapshot Aurora took of `cluster_id` before rejoining it as a secondary after a global database
/// failover (`rds:unplanned-global-failover-<cluster>-<time>`), if any.
pub async fn failover_snapshot(
    clients: &RegionClients,
    cluster_id: &str,
) -> Result<Option<String>, BackendError> {
    let out = clients
        .rds()
        .describe_db_cluster_snapshots()
        .db_cluster_identifier(cluster_id)
        .send()
        .await
        .map_err(|e| {
            sdk_error(
                &format!("listing the snapshots of {cluster_id}"),
                &clients.region,
                e,
            )
        })?;
    let prefix = format!("rds:unplanned-global-failover-{cluster_id}");
    let mut names: Vec<(i64, String)> = out
        .db_cluster_snapshots()
        .iter()
        .filter_map(|s| {
            let name = s.db_cluster_snapshot_identifier()?;
            name.starts_with(&prefix).then(|| {
                (
                    s.snapshot_create_time().map_or(0, |t| t.secs()),
                    name.to_owned(),
                )
            })
        })
        .collect();
    names.sort();
    Ok(names.pop().map(|(_, name)| name))
}

/// A regional Aurora cluster's state.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterInfo {
    pub arn: String,
    pub status: String,
    pub min_capacity: Option<f64>,
    pub max_capacity: Option<f64>,
}

pub async fn cluster_info(
    clients: &RegionClients,
    cluster_id: &str,
) -> Result<ClusterInfo, BackendError> {
    let out = clients
        .rds()
        .describe_db_clusters()
        .db_cluster_identifier(cluster_id)
        .send()
        .await
        .map_err(|e| {
            sdk_error(
                &format!("describing Aurora cluster {cluster_id}"),
                &clients.region,
                e,
            )
        })?;
    let cluster = out.db_clusters().first().ok_or_else(|| {
        BackendError::rejected(format!(
            "Aurora cluster {cluster_id} does not exist in {}",
            clients.region
        ))
    })?;
    let scaling = cluster.serverless_v2_scaling_configuration();
    Ok(ClusterInfo {
        arn: cluster.db_cluster_arn().unwrap_or_default().to_owned(),
        status: cluster.status().unwrap_or("unknown").to_owned(),
        min_capacity: scaling.and_then(|s| s.min_capacity()),
        max_capacity: scaling.and_then(|s| s.max_capacity()),
    })
}

/// The latest value of an `AWS/RDS` metric of one cluster within `lookback`, with the given statistic.
async fn rds_metric(
    clients: &RegionClients,
    metric: &str,
    cluster_id: &str,
    lookback: Duration,
    period_seconds: i32,
    statistic: Statistic,
) -> Result<Vec<(i64, f64)>, BackendError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let start = now - i64::try_from(lookback.as_secs()).unwrap_or(i64::MAX / 2);
    let out = clients
        .cloudwatch()
        .get_metric_statistics()
        .namespace("AWS/RDS")
        .metric_name(metric)
        .dimensions(
            Dimension::builder()
                .name("DBClusterIdentifier")
                .value(cluster_id)
                .build(),
        )
        .start_time(aws_smithy_types::DateTime::from_secs(start))
        .end_time(aws_smithy_types::DateTime::from_secs(now + 60))
        .period(period_seconds)
        .statistics(statistic.clone())
        .send()
        .await
        .map_err(|e| {
            sdk_error(
                &format!("reading {metric} of {cluster_id}"),
                &clients.region,
                e,
            )
        })?;
    let mut points: Vec<(i64, f64)> = out
        .datapoints()
        .iter()
        .filter_map(|d| {
            let value = match statistic {
                Statistic::Maximum => d.maximum(),
                Statistic::Average => d.average(),
                _ => d.maximum(),
            }?;
            Some((d.timestamp()?.secs(), value))
        })
        .collect();
    points.sort_by_key(|(t, _)| *t);
    Ok(points)
}

/// The replication lag (ms) of the secondary cluster `cluster_id` (metric `AuroraGlobalDBReplicationLag`,
/// published in the secondary's region), newest datapoint of the last five minutes; `None` without data.
pub async fn replication_lag_ms(
    clients: &RegionClients,
    cluster_id: &str,
) -> Result<Option<u64>, BackendError> {
    let points = rds_metric(
        clients,
        "AuroraGlobalDBReplicationLag",
        cluster_id,
        Duration::from_secs(300),
        60,
        Statistic::Maximum,
    )
    .await?;
    Ok(points.last().map(|(_, v)| v.max(0.0).round() as u64))
}

/// The primary's peak Serverless v2 capacity (ACUs) within `lookback`; `None` without data.
pub async fn peak_capacity(
    clients: &RegionClients,
    cluster_id: &str,
    lookback: Duration,
) -> Result<Option<f64>, BackendError> {
    let points = rds_metric(
        clients,
        "ServerlessDatabaseCapacity",
        cluster_id,
        lookback,
        3600,
        Statistic::Maximum,
    )
    .await?;
    Ok(points
        .iter()
        .map(|(_, v)| *v)
        .fold(None, |acc: Option<f64>, v| {
            Some(acc.map_or(v, |a| a.max(v)))
        }))
}

/// Names of the alarms of this environment (name prefix) that are in ALARM in one region.
pub async fn alarms_firing(
    clients: &RegionClients,
    prefix: &str,
) -> Result<Vec<String>, BackendError> {
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let out = clients
            .cloudwatch()
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .state_value(StateValue::Alarm)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| sdk_error("listing alarms in ALARM", &clients.region, e))?;
        names.extend(
            out.metric_alarms()
                .iter()
                // Checked here too: not every endpoint combines the state filter with the name prefix.
                .filter(|a| a.state_value() == Some(&StateValue::Alarm))
                .filter_map(|a| a.alarm_name().map(str::to_owned)),
        );
        names.extend(
            out.composite_alarms()
                .iter()
                // Checked here too: not every endpoint combines the state filter with the name prefix.
                .filter(|a| a.state_value() == Some(&StateValue::Alarm))
                .filter_map(|a| a.alarm_name().map(str::to_owned)),
        );
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    names.sort();
    Ok(names)
}

/// The session table's replica in one region: the table must be ACTIVE there, and where it lists its
/// global-table replicas, this region's replica must be ACTIVE. Returns a note when no replica list is
/// reported (a table that is not global, or an endpoint that does not model replicas).
pub async fn session_replica(clients: &RegionClients, table: &str) -> (Health, Option<String>) {
    let out = match clients
        .dynamodb()
        .describe_table()
        .table_name(table)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            return (
                Health::Unhealthy(
                    sdk_error(&format!("describing table {table}"), &clients.region, e).message,
                ),
                None,
            );
        }
    };
    let Some(desc) = out.table() else {
        return (
            Health::Unknown(format!(
                "table {table} in {} has no description",
                clients.region
            )),
            None,
        );
    };
    let status = desc
        .table_status()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|| "unknown".into());
    if status != "ACTIVE" {
        return (
            Health::Unhealthy(format!("table {table} in {} is {status}", clients.region)),
            None,
        );
    }
    let replicas = desc.replicas();
    if replicas.is_empty() {
        return (
            Health::Healthy,
            Some(format!(
                "table {table} in {} lists no global-table replicas; only its own state was checked",
                clients.region
            )),
        );
    }
    match replicas
        .iter()
        .find(|r| r.region_name() == Some(clients.region.as_str()))
    {
        Some(r) => match r.replica_status().map(|s| s.as_str()) {
            Some("ACTIVE") | None => (Health::Healthy, None),
            Some(other) => (
                Health::Unhealthy(format!(
                    "replica of {table} in {} is {other}",
                    clients.region
                )),
                None,
            ),
        },
        None => (Health::Healthy, None),
    }
}

/// Whether `source_bucket` (in `source`'s region) replicates into `destination_bucket` with an enabled rule.
pub async fn asset_replication(
    source: &RegionClients,
    source_bucket: &str,
    destination_bucket: &str,
) -> Health {
    let out = match source
        .s3()
        .get_bucket_replication()
        .bucket(source_bucket)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let err = sdk_error(
                &format!("reading the replication of bucket {source_bucket}"),
                &source.region,
                e,
            );
            return if err
                .message
                .contains("ReplicationConfigurationNotFoundError")
            {
                Health::Unhealthy(format!(
                    "bucket {source_bucket} has no replication configuration"
                ))
            } else {
                Health::Unknown(err.message)
            };
        }
    };
    let destination_arn = format!("arn:aws:s3:::{destination_bucket}");
    let enabled = out.replication_configuration().is_some_and(|c| {
        c.rules().iter().any(|r| {
            r.status().as_str() == "Enabled"
                && r.destination()
                    .is_some_and(|d| d.bucket() == destination_arn)
        })
    });
    if enabled {
        Health::Healthy
    } else {
        Health::Unhealthy(format!(
            "bucket {source_bucket} has no enabled replication rule into {destination_bucket}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_arns_match_by_identifier() {
        assert!(arn_names_cluster(
            "arn:aws:rds:us-west-2:123456789012:cluster:shop-aurora-us-west-2",
            "shop-aurora-us-west-2"
        ));
        assert!(!arn_names_cluster(
            "arn:aws:rds:us-west-2:123456789012:cluster:shop-aurora-us-west-2x",
            "shop-aurora-us-west-2"
        ));
        assert!(!arn_names_cluster("not-an-arn", "x"));
    }
}
