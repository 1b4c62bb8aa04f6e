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
        .ssm
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
            match value {
                "raised" => params.fence_raised = Some(true),
                "lowered" => params.fence_raised = Some(false),
                _ => params
                    .problems
                    .push(format!("{name} holds {value:?}, not raised or lowered")),
            }
        } else if name == endpoint {
            params.endpoint = Some(value.to_owned());
        }
    }
    Ok(params)
}

/// The URL of `path` on an endpoint parameter's value: a bare host name (a load balancer's DNS name) is
/// reached over HTTPS; a value with a scheme is used as it is.
pub fn endpoint_url(endpoint: &str, path: &str) -> String {
    let base = endpoint.trim().trim_end_matches('/');
    if base.starts_with("http://") || base.starts_with("https://") {
        format!("{base}{path}")
    } else {
        format!("https://{base}{path}")
    }
}

/// A real request to `url`: healthy on any 2xx answer.
pub async fn http_health(http: &reqwest::Client, url: &str, timeout: Duration) -> Health {
    match http.get(url).timeout(timeout).send().await {
        Ok(resp) if resp.status().is_success() => Health::Healthy,
        Ok(resp) => Health::Unhealthy(format!("GET {url} answered {}", resp.status())),
        Err(e) => Health::Unhealthy(format!("GET {url} failed: {}", without_url(&e))),
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" ({url})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// One member of the Aurora global cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalMember {
    pub cluster_arn: String,
    pub is_writer: bool,
}

/// The members of global cluster `global_id` as seen from one region, or `None` when it does not exist.
/// The identifier filter is applied here: not every endpoint honours the API's own filter.
pub async fn global_cluster_members(
    clients: &RegionClients,
    global_id: &str,
) -> Result<Option<Vec<GlobalMember>>, BackendError> {
    let out = clients
        .rds
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
    Ok(Some(
        cluster
            .global_cluster_members()
            .iter()
            .filter_map(|m| {
                Some(GlobalMember {
                    cluster_arn: m.db_cluster_arn()?.to_owned(),
                    is_writer: m.is_writer().unwrap_or(false),
                })
            })
            .collect(),
    ))
}

/// Whether an ARN names the cluster `cluster_id` (ARN: `arn:aws:rds:<region>:<account>:cluster:<id>`).
pub fn arn_names_cluster(arn: &str, cluster_id: &str) -> bool {
    arn.rsplit_once(":cluster:")
        .is_some_and(|(_, id)| id.eq_ignore_ascii_case(cluster_id))
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
        .rds
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
        .cloudwatch
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
            .cloudwatch
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
        .dynamodb
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
        .s3
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
    fn endpoint_values_become_urls() {
        assert_eq!(
            endpoint_url("abc.elb.amazonaws.com", "/health/deep"),
            "https://abc.elb.amazonaws.com/health/deep"
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:9/", "/health/deep"),
            "http://127.0.0.1:9/health/deep"
        );
    }

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
