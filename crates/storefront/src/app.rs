//! Assembling a running service from settings: pool, control source, session store, images, write gate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::MySqlPool;

use crate::api::{AppState, SharedState};
use crate::control::{ControlSource, ControlSpec, FileControl, HttpControl, StaticControl};
use crate::db;
use crate::gate::WriteGate;
use crate::images::Images;
use crate::metrics::Metrics;
use crate::sessions::{MysqlSessions, SessionStore};

/// Where carts live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionsSpec {
    Mysql,
    /// `dynamodb:<table>` (feature `aws`).
    Dynamodb(String),
}

impl std::str::FromStr for SessionsSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "mysql" => Ok(Self::Mysql),
            Some(("dynamodb", table)) if !table.is_empty() => Ok(Self::Dynamodb(table.to_owned())),
            _ => Err(format!("{s:?}: expected mysql or dynamodb:<table>")),
        }
    }
}

/// Where product images come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImagesSpec {
    Local,
    /// `s3:<bucket>[/<prefix>]` (feature `aws`).
    S3 {
        bucket: String,
        prefix: String,
    },
}

impl std::str::FromStr for ImagesSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "local" {
            return Ok(Self::Local);
        }
        match s.strip_prefix("s3:") {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let prefix = if prefix.is_empty() || prefix.ends_with('/') {
                    prefix.to_owned()
                } else {
                    format!("{prefix}/")
                };
                Ok(Self::S3 {
                    bucket: bucket.to_owned(),
                    prefix,
                })
            }
            _ => Err(format!("{s:?}: expected local or s3:<bucket>[/<prefix>]")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub region: String,
    pub database_url: String,
    pub control: ControlSpec,
    pub sessions: SessionsSpec,
    pub images: ImagesSpec,
    pub assets_dir: Option<PathBuf>,
    pub max_connections: u32,
    pub serve_metrics: bool,
}

/// A built service: its state, and the handle of a `static:` control source (for embedding programs and tests).
pub struct Service {
    pub state: SharedState,
    pub static_control: Option<StaticControl>,
}

pub async fn build(settings: &Settings) -> anyhow::Result<Service> {
    let (source, static_control): (Arc<dyn ControlSource>, Option<StaticControl>) =
        match &settings.control {
            ControlSpec::Static {
                active_region,
                epoch,
            } => {
                let control = StaticControl::active(active_region, *epoch);
                (Arc::new(control.clone()), Some(control))
            }
            ControlSpec::File(path) => (Arc::new(FileControl::new(path.clone())), None),
            ControlSpec::Http(base) => (Arc::new(HttpControl::new(base, &settings.region)?), None),
            ControlSpec::Ssm(prefix) => (ssm_control(prefix, &settings.region).await?, None),
        };
    let state = build_with_control(settings, source).await?;
    Ok(Service {
        state,
        static_control,
    })
}

/// As [`build`], with a control source supplied by the caller.
pub async fn build_with_control(
    settings: &Settings,
    source: Arc<dyn ControlSource>,
) -> anyhow::Result<SharedState> {
    if settings.region.is_empty() {
        bail!("the region is empty; pass --region or LIFEBOAT_REGION");
    }
    let pool = db::connect_lazy(&settings.database_url, settings.max_connections).context(
        "the database URL is not valid (expected mysql://user:password@host:port/database)",
    )?;
    let sessions: Arc<dyn SessionStore> = match &settings.sessions {
        SessionsSpec::Mysql => Arc::new(MysqlSessions::new(pool.clone())),
        SessionsSpec::Dynamodb(table) => dynamo_sessions(table, &settings.region).await?,
    };
    let images = match &settings.images {
        ImagesSpec::Local => Images::Local {
            dir: settings.assets_dir.clone(),
        },
        ImagesSpec::S3 { bucket, prefix } => s3_images(bucket, prefix, &settings.region).await?,
    };
    let metrics = Arc::new(Metrics::new());
    let gate = WriteGate::new(&settings.region, source, pool.clone(), Arc::clone(&metrics));
    Ok(Arc::new(AppState {
        region: settings.region.clone(),
        pool,
        sessions,
        gate,
        images,
        metrics,
        serve_metrics: settings.serve_metrics,
    }))
}

/// Prepare the database (migrations and demo catalog on a writable one), retrying every 2 s until it answers,
/// so that the service can start before its database.
pub fn spawn_database_preparation(pool: MySqlPool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reported = false;
        loop {
            match db::prepare(&pool).await {
                Ok(db::Preparation::Prepared { seeded }) => {
                    tracing::info!(seeded_products = seeded, "database migrated");
                    return;
                }
                Ok(db::Preparation::SkippedReadOnly) => {
                    tracing::info!(
                        "database is read-only (a replica): schema and catalog arrive by replication; no migrations"
                    );
                    return;
                }
                Err(e) => {
                    if !reported {
                        tracing::warn!(error = %format!("{e:#}"), "cannot prepare the database yet; retrying every 2 s");
                        reported = true;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    })
}

/// The SDK configuration from the environment (credentials, `AWS_ENDPOINT_URL`, ...). Without a configured
/// AWS region the instance's own region is used: each region's storefront reads that region's control
/// parameters, table replica and bucket (in Lambda `AWS_REGION` is set and names the same region).
#[cfg(feature = "aws")]
async fn aws_config(region: &str) -> aws_config::SdkConfig {
    let region = aws_config::meta::region::RegionProviderChain::default_provider()
        .or_else(aws_config::Region::new(region.to_owned()));
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(region)
        .load()
        .await
}

#[cfg(feature = "aws")]
async fn ssm_control(prefix: &str, region: &str) -> anyhow::Result<Arc<dyn ControlSource>> {
    let client = aws_sdk_ssm::Client::new(&aws_config(region).await);
    Ok(Arc::new(crate::control::SsmControl::new(client, prefix)))
}

#[cfg(not(feature = "aws"))]
async fn ssm_control(prefix: &str, _region: &str) -> anyhow::Result<Arc<dyn ControlSource>> {
    bail!("--control ssm:{prefix} needs a storefront built with the `aws` feature")
}

#[cfg(feature = "aws")]
async fn dynamo_sessions(table: &str, region: &str) -> anyhow::Result<Arc<dyn SessionStore>> {
    let client = aws_sdk_dynamodb::Client::new(&aws_config(region).await);
    Ok(Arc::new(crate::sessions::DynamoSessions::new(
        client, table,
    )))
}

#[cfg(not(feature = "aws"))]
async fn dynamo_sessions(table: &str, _region: &str) -> anyhow::Result<Arc<dyn SessionStore>> {
    bail!("--sessions dynamodb:{table} needs a storefront built with the `aws` feature")
}

#[cfg(feature = "aws")]
async fn s3_images(bucket: &str, prefix: &str, region: &str) -> anyhow::Result<Images> {
    let config = aws_config(region).await;
    // Path-style addressing works against S3 and against local emulators alike.
    let s3_config = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(true)
        .build();
    Ok(Images::S3 {
        client: aws_sdk_s3::Client::from_conf(s3_config),
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        expires: Duration::from_secs(900),
    })
}

#[cfg(not(feature = "aws"))]
async fn s3_images(bucket: &str, _prefix: &str, _region: &str) -> anyhow::Result<Images> {
    bail!("--images s3:{bucket} needs a storefront built with the `aws` feature")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_specs_parse() {
        assert_eq!(
            "mysql".parse::<SessionsSpec>().unwrap(),
            SessionsSpec::Mysql
        );
        assert_eq!(
            "dynamodb:carts".parse::<SessionsSpec>().unwrap(),
            SessionsSpec::Dynamodb("carts".into())
        );
        assert!("dynamodb:".parse::<SessionsSpec>().is_err());
        assert!("redis".parse::<SessionsSpec>().is_err());
        assert_eq!("local".parse::<ImagesSpec>().unwrap(), ImagesSpec::Local);
        assert_eq!(
            "s3:shop-assets/products".parse::<ImagesSpec>().unwrap(),
            ImagesSpec::S3 {
                bucket: "shop-assets".into(),
                prefix: "products/".into()
            }
        );
        assert_eq!(
            "s3:b".parse::<ImagesSpec>().unwrap(),
            ImagesSpec::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert!("s3:".parse::<ImagesSpec>().is_err());
    }
}
