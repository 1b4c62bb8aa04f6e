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

/// The variables the platform's compute stack sets on the storefront function (the names of
/// `lifeboat_platform::compute::env`). They fill in whatever the storefront's own flags and variables leave
/// unset, so the function needs no settings of its own.
pub mod platform_env {
    pub const DATABASE_SECRET_ARN: &str = "DATABASE_SECRET_ARN";
    pub const DATABASE_HOST: &str = "DATABASE_HOST";
    pub const DATABASE_NAME: &str = "DATABASE_NAME";
    pub const SESSIONS_TABLE: &str = "SESSIONS_TABLE";
    pub const ASSETS_BUCKET: &str = "ASSETS_BUCKET";
    pub const CONTROL_SSM_PREFIX: &str = "CONTROL_SSM_PREFIX";
    /// The DR journal table holding the control items; preferred over [`CONTROL_SSM_PREFIX`].
    pub const CONTROL_TABLE: &str = "CONTROL_TABLE";
    /// The other region of the pair, whose replica of the control table is read too.
    pub const PEER_REGION: &str = "LIFEBOAT_PEER_REGION";
    /// Where product images live in the assets bucket: `images/<sku>.svg`.
    pub const IMAGES_PREFIX: &str = "images/";
}

/// The database as the platform describes it: a host (`host` or `host:port`), a database name and the ARN of
/// the Secrets Manager secret holding `{"username": ..., "password": ...}` (optionally `port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSecret {
    pub secret_arn: String,
    pub host: String,
    pub name: String,
}

/// Settings derived from the platform's variables; `None` where a variable is unset or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformDefaults {
    pub control: Option<ControlSpec>,
    pub sessions: Option<SessionsSpec>,
    pub images: Option<ImagesSpec>,
    pub database: Option<DatabaseSecret>,
}

impl PlatformDefaults {
    /// Reads the variables through `lookup` (the process environment in the binary). Errors name the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        use platform_env as env;
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let control = match get(env::CONTROL_TABLE) {
            Some(table) => Some(
                match get(env::PEER_REGION) {
                    Some(peer) => format!("dynamodb:{table}:{peer}"),
                    None => format!("dynamodb:{table}"),
                }
                .parse::<ControlSpec>()
                .map_err(|e| format!("{}/{}: {e}", env::CONTROL_TABLE, env::PEER_REGION))?,
            ),
            None => get(env::CONTROL_SSM_PREFIX)
                .map(|prefix| {
                    format!("ssm:{prefix}")
                        .parse::<ControlSpec>()
                        .map_err(|e| format!("{}: {e}", env::CONTROL_SSM_PREFIX))
                })
                .transpose()?,
        };
        let sessions = get(env::SESSIONS_TABLE).map(SessionsSpec::Dynamodb);
        let images = get(env::ASSETS_BUCKET).map(|bucket| ImagesSpec::S3 {
            bucket,
            prefix: env::IMAGES_PREFIX.to_owned(),
        });
        let parts = [
            env::DATABASE_SECRET_ARN,
            env::DATABASE_HOST,
            env::DATABASE_NAME,
        ]
        .map(|name| (name, get(name)));
        let database = match parts {
            [(_, Some(secret_arn)), (_, Some(host)), (_, Some(name))] => Some(DatabaseSecret {
                secret_arn,
                host,
                name,
            }),
            [(_, None), (_, None), (_, None)] => None,
            partial => {
                let missing: Vec<&str> = partial
                    .iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(n, _)| *n)
                    .collect();
                return Err(format!(
                    "the database is described only in part: {} not set",
                    missing.join(", ")
                ));
            }
        };
        Ok(Self {
            control,
            sessions,
            images,
            database,
        })
    }
}

/// The database URL for a secret's JSON: user and password percent-encoded (generated passwords hold `:`, `#`,
/// `%` and the like). Errors never quote the secret.
pub fn database_url_from_secret_json(
    secret: &str,
    host: &str,
    database: &str,
) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Credentials {
        username: String,
        password: String,
        #[serde(default)]
        port: Option<serde_json::Value>,
    }
    let credentials: Credentials = serde_json::from_str(secret).map_err(|_| {
        "the secret is not a JSON object with the strings username and password".to_owned()
    })?;
    let port = match &credentials.port {
        None => None,
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        Some(_) => None,
    }
    .and_then(|p| u16::try_from(p).ok());
    let address = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:{}", port.unwrap_or(3306))
    };
    Ok(format!(
        "mysql://{}:{}@{address}/{}",
        percent_encode(&credentials.username),
        percent_encode(&credentials.password),
        percent_encode(database)
    ))
}

/// Everything but the unreserved characters of RFC 3986 as `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads the database secret and builds the database URL from it (feature `aws`). `region` is used when the
/// environment names no AWS region.
#[cfg(feature = "aws")]
pub async fn database_url_from_secret(
    database: &DatabaseSecret,
    region: Option<&str>,
) -> anyhow::Result<String> {
    let client = aws_sdk_secretsmanager::Client::new(&aws_config(region).await);
    let output = client
        .get_secret_value()
        .secret_id(&database.secret_arn)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read the database secret {}: {}",
                database.secret_arn,
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        })?;
    let secret = output.secret_string().ok_or_else(|| {
        anyhow::anyhow!(
            "the database secret {} holds no string",
            database.secret_arn
        )
    })?;
    database_url_from_secret_json(secret, &database.host, &database.name)
        .map_err(|e| anyhow::anyhow!("database secret {}: {e}", database.secret_arn))
}

/// The string of a Secrets Manager secret (feature `aws`); errors name the secret, never its value.
#[cfg(feature = "aws")]
pub async fn secret_string(arn: &str, region: Option<&str>) -> anyhow::Result<String> {
    let client = aws_sdk_secretsmanager::Client::new(&aws_config(region).await);
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read the secret {arn}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        })?;
    output
        .secret_string()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the secret {arn} holds no string"))
}

#[cfg(not(feature = "aws"))]
pub async fn secret_string(arn: &str, _region: Option<&str>) -> anyhow::Result<String> {
    bail!("reading the secret {arn} needs a storefront built with the `aws` feature")
}

#[cfg(not(feature = "aws"))]
pub async fn database_url_from_secret(
    database: &DatabaseSecret,
    _region: Option<&str>,
) -> anyhow::Result<String> {
    bail!(
        "the database credentials are in the secret {}; reading it needs a storefront built with the `aws` feature",
        database.secret_arn
    )
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
    /// Who gets the full `/health/deep` report; the default (no token) gives it to everyone.
    pub health: HealthSettings,
    /// Where to re-read the database credentials when the server refuses them (a rotation).
    pub credentials: crate::credentials::CredentialSource,
}

/// The health checkers' token and how long the minimal answer for everyone else is cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSettings {
    pub token: Option<String>,
    pub cache_for: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            token: None,
            cache_for: Duration::from_secs(5),
        }
    }
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
            ControlSpec::Dynamodb { table, peer_region } => (
                dynamo_control(table, &settings.region, peer_region.as_deref()).await?,
                None,
            ),
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
        write_admission: Arc::new(tokio::sync::Semaphore::new(
            (settings.max_connections as usize).max(1) * crate::api::WRITES_PER_CONNECTION,
        )),
        health: crate::api::health::HealthAccess::new(
            settings.health.token.clone(),
            settings.health.cache_for,
        ),
        credentials: crate::credentials::Credentials::new(settings.credentials.clone()),
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
async fn aws_config(region: Option<&str>) -> aws_config::SdkConfig {
    let mut chain = aws_config::meta::region::RegionProviderChain::default_provider();
    if let Some(region) = region {
        chain = chain.or_else(aws_config::Region::new(region.to_owned()));
    }
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(chain)
        .load()
        .await
}

#[cfg(feature = "aws")]
async fn ssm_control(prefix: &str, region: &str) -> anyhow::Result<Arc<dyn ControlSource>> {
    let client = aws_sdk_ssm::Client::new(&aws_config(Some(region)).await);
    Ok(Arc::new(crate::control::SsmControl::new(client, prefix)))
}

#[cfg(feature = "aws")]
async fn dynamo_control(
    table: &str,
    region: &str,
    peer_region: Option<&str>,
) -> anyhow::Result<Arc<dyn ControlSource>> {
    let own = aws_sdk_dynamodb::Client::new(&aws_config(Some(region)).await);
    let peer = match peer_region {
        Some(peer) => Some((
            peer.to_owned(),
            aws_sdk_dynamodb::Client::new(&aws_config(Some(peer)).await),
        )),
        None => None,
    };
    Ok(Arc::new(crate::control::DynamoControl::new(
        table,
        (region.to_owned(), own),
        peer,
    )))
}

#[cfg(not(feature = "aws"))]
async fn dynamo_control(
    table: &str,
    _region: &str,
    _peer_region: Option<&str>,
) -> anyhow::Result<Arc<dyn ControlSource>> {
    bail!("--control dynamodb:{table} needs a storefront built with the `aws` feature")
}

#[cfg(not(feature = "aws"))]
async fn ssm_control(prefix: &str, _region: &str) -> anyhow::Result<Arc<dyn ControlSource>> {
    bail!("--control ssm:{prefix} needs a storefront built with the `aws` feature")
}

#[cfg(feature = "aws")]
async fn dynamo_sessions(table: &str, region: &str) -> anyhow::Result<Arc<dyn SessionStore>> {
    let client = aws_sdk_dynamodb::Client::new(&aws_config(Some(region)).await);
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
    let config = aws_config(Some(region)).await;
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

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_platform_environment_fills_in_the_aws_settings() {
        use platform_env as env;
        assert_eq!(
            PlatformDefaults::from_lookup(lookup(&[])).unwrap(),
            PlatformDefaults::default()
        );
        let defaults = PlatformDefaults::from_lookup(lookup(&[
            (env::CONTROL_SSM_PREFIX, "/shop/prod/dr"),
            (env::SESSIONS_TABLE, "shop-prod-sessions"),
            (env::ASSETS_BUCKET, "shop-prod-assets-us-east-1"),
            (
                env::DATABASE_SECRET_ARN,
                "arn:aws:secretsmanager:us-east-1:1:secret:db",
            ),
            (env::DATABASE_HOST, "db.example"),
            (env::DATABASE_NAME, "shop"),
        ]))
        .unwrap();
        assert_eq!(
            defaults.control,
            Some(ControlSpec::Ssm("/shop/prod/dr".into()))
        );
        assert_eq!(
            defaults.sessions,
            Some(SessionsSpec::Dynamodb("shop-prod-sessions".into()))
        );
        assert_eq!(
            defaults.images,
            Some(ImagesSpec::S3 {
                bucket: "shop-prod-assets-us-east-1".into(),
                prefix: "images/".into()
            })
        );
        assert_eq!(defaults.database.unwrap().host, "db.example");

        let err = PlatformDefaults::from_lookup(lookup(&[(env::DATABASE_HOST, "db.example")]))
            .unwrap_err();
        assert!(
            err.contains(env::DATABASE_SECRET_ARN) && err.contains(env::DATABASE_NAME),
            "{err}"
        );
        let err = PlatformDefaults::from_lookup(lookup(&[(env::CONTROL_SSM_PREFIX, "shop/dr")]))
            .unwrap_err();
        assert!(err.contains(env::CONTROL_SSM_PREFIX), "{err}");
    }

    #[test]
    fn secrets_become_urls_with_encoded_credentials() {
        let url = database_url_from_secret_json(
            r#"{"username":"lifeboat_admin","password":"p:w#d%x?y z","engine":"mysql"}"#,
            "db.example",
            "shop",
        )
        .unwrap();
        assert_eq!(
            url,
            "mysql://lifeboat_admin:p%3Aw%23d%25x%3Fy%20z@db.example:3306/shop"
        );
        let url = database_url_from_secret_json(
            r#"{"username":"u","password":"p","port":3307}"#,
            "db.example",
            "shop",
        )
        .unwrap();
        assert_eq!(url, "mysql://u:p@db.example:3307/shop");
        let url = database_url_from_secret_json(
            r#"{"username":"u","password":"p"}"#,
            "127.0.0.1:4000",
            "shop",
        )
        .unwrap();
        assert_eq!(url, "mysql://u:p@127.0.0.1:4000/shop");
        let err = database_url_from_secret_json(r#"{"username":"u","password":123456}"#, "h", "d")
            .unwrap_err();
        assert!(
            !err.contains("123456"),
            "the error quotes the secret: {err}"
        );
    }
}
