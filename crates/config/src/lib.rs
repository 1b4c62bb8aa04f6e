//! Configuration of a lifeboat environment: `lifeboat.toml`, its defaults and validation.
//!
//! Pure: the caller reads the file and hands the text in; nothing here touches the disk or the network.
//!
//! Every key has a working default, so an empty file (or no file) is a valid configuration. Parsing is
//! strict: an unknown key, a value of the wrong type or a value outside what AWS accepts is an error that
//! names the key, the value and what is allowed, before anything is synthesized or deployed.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod default_file;
pub mod names;
mod regions;
mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use default_file::DEFAULT_CONFIG_TOML;
pub use names::Names;
pub use regions::{AWS_REGIONS, is_aws_region};
pub use validate::reserved_domain;

/// The whole configuration of one environment (one project, one environment suffix, two regions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub project: Project,
    pub regions: Regions,
    /// User tags, merged over the default tags (see [`Config::tags`]).
    pub tags: BTreeMap<String, String>,
    pub dns: Dns,
    pub certificates: Certificates,
    pub alerts: Alerts,
    pub database: Database,
    pub network: Network,
    pub dr: Dr,
    pub health_check: HealthCheck,
    pub storefront: Storefront,
    pub audit: Audit,
    pub backup: Backup,
    pub local: Local,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Project {
    /// Lower-case name that starts every physical name (stacks, buckets, tables, parameters).
    pub name: String,
    /// Environment suffix (`dev`, `staging`, `prod`, ...), part of every physical name.
    pub environment: String,
}

impl Default for Project {
    fn default() -> Self {
        Self {
            name: "lifeboat".into(),
            environment: "dev".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Regions {
    /// The region that serves traffic and accepts writes in normal operation.
    pub primary: String,
    /// The warm standby region that takes over on a switchover or failover.
    pub standby: String,
}

impl Default for Regions {
    fn default() -> Self {
        Self {
            primary: "us-east-1".into(),
            standby: "us-west-2".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dns {
    /// The public hosted zone lifeboat creates.
    pub domain: String,
    /// The record (label inside `domain`) that fails over between the regions.
    pub record: String,
    /// TTL of the failover records; short, so clients follow a failover quickly.
    pub ttl_seconds: u32,
}

impl Default for Dns {
    fn default() -> Self {
        Self {
            domain: "shop.example.com".into(),
            record: "www".into(),
            ttl_seconds: 60,
        }
    }
}

/// ACM certificate ARNs for the load balancers' HTTPS listeners. Without one, a region serves plain HTTP,
/// which validation accepts only in the `dev` environment or with `allow_insecure_http = true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Certificates {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standby: Option<String>,
    /// Accept a non-`dev` environment without certificates (plain HTTP). An explicit, visible opt-out.
    pub allow_insecure_http: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Alerts {
    /// Addresses subscribed to the alert topic in both regions (each must confirm by e-mail).
    pub emails: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    /// Aurora MySQL 3 engine version, e.g. `8.0.mysql_aurora.3.10.3`.
    pub engine_version: String,
    /// Name of the database created in the cluster.
    pub name: String,
    pub backup_retention_days: u32,
    pub capacity: DatabaseCapacity,
    pub instances: DatabaseInstances,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            // The newest patch of the 3.10 long-term support line in the release notes (2026-01-02,
            // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraMySQLReleaseNotes/AuroraMySQL.Updates.3103.html).
            // Global databases take Aurora MySQL 3.01.0 and higher in both default regions
            // (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Concepts.Aurora_Fea_Regions_DB-eng.Feature.GlobalDatabase.html).
            // The former default, 3.10.6, does not appear in those release notes; a version RDS does not offer
            // fails the global cluster at deploy time.
            engine_version: "8.0.mysql_aurora.3.10.3".into(),
            name: "shop".into(),
            backup_retention_days: 7,
            capacity: DatabaseCapacity::default(),
            instances: DatabaseInstances::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseCapacity {
    pub primary: CapacityRange,
    /// The standby's range. Absent (the default): the primary's, so the region that takes over after a
    /// failover can carry the primary's peak load. Set it lower only to save cost, accepting that a failover
    /// then runs on less capacity until someone raises it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standby: Option<CapacityRange>,
}

impl Default for DatabaseCapacity {
    fn default() -> Self {
        Self {
            primary: CapacityRange {
                min: 0.5,
                max: 16.0,
            },
            standby: None,
        }
    }
}

/// Number of `db.serverless` instances per cluster (the first is the writer, the others readers in other
/// AZs). Aurora allows a writer and up to 15 readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseInstances {
    pub primary: u8,
    /// Absent (the default): as many as the primary, so losing an AZ after a failover is survived the same
    /// way. Lower it only to save cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standby: Option<u8>,
}

impl Default for DatabaseInstances {
    fn default() -> Self {
        Self {
            primary: 2,
            standby: None,
        }
    }
}

/// Aurora Serverless v2 capacity in ACUs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityRange {
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Availability zones per region: 2 or 3.
    pub az_count: u8,
    pub nat_gateways: NatGateways,
    pub primary_cidr: String,
    pub standby_cidr: String,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            az_count: 2,
            nat_gateways: NatGateways::Single,
            primary_cidr: "10.10.0.0/16".into(),
            standby_cidr: "10.20.0.0/16".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatGateways {
    /// One NAT gateway per region (cheaper; an AZ outage cuts outbound traffic of the other AZs).
    Single,
    /// One NAT gateway per availability zone.
    PerAz,
}

impl NatGateways {
    pub fn as_str(self) -> &'static str {
        match self {
            NatGateways::Single => "single",
            NatGateways::PerAz => "per-az",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dr {
    /// Recovery time objective: how long a failover may take, end to end.
    pub rto_seconds: u32,
    /// Recovery point objective: how much acknowledged data a failover may lose, in seconds of writes.
    pub rpo_seconds: u32,
    /// A switchover (planned, no data loss) waits until replication lag is below this before fencing.
    pub max_switchover_lag_seconds: u32,
    /// Whether the automation may fail over on its own when that can lose data. Off: a human decides.
    pub allow_data_loss: bool,
    /// The primary must be unhealthy this long before the automation acts (anti-flapping).
    pub alarm_min_seconds: u32,
    /// Minimum time between two automated runs.
    pub cooldown_seconds: u32,
    /// A switchover that has not finished after this long is abandoned (and may be escalated by a human).
    pub switchover_timeout_seconds: u32,
    /// Reserved concurrency of the DR automation function, so a burst elsewhere cannot starve it.
    pub reserved_concurrency: u32,
}

impl Default for Dr {
    fn default() -> Self {
        Self {
            rto_seconds: 300,
            rpo_seconds: 5,
            max_switchover_lag_seconds: 5,
            allow_data_loss: false,
            alarm_min_seconds: 180,
            cooldown_seconds: 1800,
            switchover_timeout_seconds: 900,
            reserved_concurrency: 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheck {
    /// Route 53 health check request interval: 10 (fast) or 30 seconds.
    pub interval_seconds: u32,
    /// Consecutive failures before Route 53 considers a region unhealthy (1 to 10).
    pub failure_threshold: u32,
    /// Path the health checks request on each region's load balancer.
    pub path: String,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            interval_seconds: 10,
            failure_threshold: 3,
            path: "/health".into(),
        }
    }
}

/// The storefront function's settings on AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storefront {
    /// Reserved concurrency of the storefront function; unset: it shares the account's unreserved pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<u32>,
    /// An unauthenticated `/health/deep` answers from a result at most this old (seconds), so requests from
    /// the internet cannot make the storefront open a database connection each.
    pub health_cache_seconds: u32,
}

impl Default for Storefront {
    fn default() -> Self {
        Self {
            reserved_concurrency: None,
            health_cache_seconds: 5,
        }
    }
}

/// The audit trail: run reports in a bucket with S3 Object Lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// Object Lock (governance mode) retention of every report object, in days.
    pub report_retention_days: u32,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            report_retention_days: 365,
        }
    }
}

/// AWS Backup of the Aurora cluster and the DynamoDB tables, copied to the standby region's vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Backup {
    /// How long a recovery point (and its copy in the other region) is kept, in days.
    pub retention_days: u32,
    /// Vault lock: no recovery point can be deleted before this many days, by anyone.
    pub vault_lock_min_retention_days: u32,
}

impl Default for Backup {
    fn default() -> Self {
        Self {
            retention_days: 35,
            vault_lock_min_retention_days: 7,
        }
    }
}

/// The local two-region runtime (MariaDB replication behind HAProxy) used by `lifeboat local` and drills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Local {
    /// Directory (relative to the working directory) for data, logs and process ids.
    pub state_dir: String,
    /// First of the consecutive loopback ports the runtime uses.
    pub base_port: u16,
    pub replication: Replication,
    /// How long the primary waits for a standby acknowledgement before falling back to async.
    pub semi_sync_timeout_ms: u32,
    pub probe_interval_ms: u32,
    /// Failed probes in a row before a region counts as down.
    pub failure_threshold: u32,
    /// How long a storefront may act on the control state without renewing it.
    pub lease_ms: u32,
}

impl Default for Local {
    fn default() -> Self {
        Self {
            state_dir: ".lifeboat".into(),
            base_port: 17000,
            replication: Replication::SemiSync,
            semi_sync_timeout_ms: 2000,
            probe_interval_ms: 1000,
            failure_threshold: 3,
            lease_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Replication {
    /// A commit is acknowledged once the standby has received it (or the timeout passed).
    SemiSync,
    /// A commit is acknowledged at once; the standby may lag.
    Async,
}

impl Replication {
    pub fn as_str(self) -> &'static str {
        match self {
            Replication::SemiSync => "semi-sync",
            Replication::Async => "async",
        }
    }
}

/// Which of the two regions a resource or stack belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Primary,
    Standby,
}

impl Role {
    pub const BOTH: [Role; 2] = [Role::Primary, Role::Standby];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
        }
    }

    pub fn other(self) -> Role {
        match self {
            Role::Primary => Role::Standby,
            Role::Standby => Role::Primary,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configuration that could not be accepted. `origin` says where it came from (a path, or "defaults").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {kind}")]
pub struct ConfigError {
    pub origin: String,
    pub kind: ConfigErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigErrorKind {
    /// Not valid TOML, or a value of the wrong type (the message carries line and column).
    #[error("{0}")]
    Syntax(String),
    #[error("unknown key `{key}`; allowed here: {allowed}")]
    UnknownKey { key: String, allowed: String },
    #[error("`{key}` = {value} is not allowed: {allowed}")]
    InvalidValue {
        key: String,
        value: String,
        allowed: String,
    },
}

impl ConfigErrorKind {
    /// The dotted key the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigErrorKind::Syntax(_) => None,
            ConfigErrorKind::UnknownKey { key, .. } | ConfigErrorKind::InvalidValue { key, .. } => {
                Some(key)
            }
        }
    }
}

impl Config {
    /// Parses and validates `text`; `origin` (usually the file path) prefixes every error message.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let wrap = |kind| ConfigError {
            origin: origin.to_string(),
            kind,
        };
        let table: toml::Table =
            toml::from_str(text).map_err(|e| wrap(ConfigErrorKind::Syntax(e.to_string())))?;
        // Our own pass first: serde's unknown-field message lacks the full key path.
        validate::reject_unknown_keys(&table).map_err(wrap)?;
        let config: Config = toml::from_str(text).map_err(|e| {
            wrap(ConfigErrorKind::Syntax(
                e.to_string().trim_end().to_string(),
            ))
        })?;
        config.validate().map_err(wrap)?;
        Ok(config)
    }

    /// Checks every value against what AWS (and lifeboat) accepts.
    pub fn validate(&self) -> Result<(), ConfigErrorKind> {
        validate::validate(self)
    }

    /// The checks a deploy to AWS needs beyond [`Config::validate`]: `dns.domain` must be a domain that can
    /// be delegated, not a reserved name such as the default `shop.example.com` (see [`reserved_domain`]).
    /// `synth` and the local runtime work without it.
    pub fn validate_for_deploy(&self) -> Result<(), ConfigErrorKind> {
        validate::validate_for_deploy(self)
    }

    /// Physical names of everything lifeboat creates, derived from this config.
    pub fn names(&self) -> Names<'_> {
        Names::new(self)
    }

    pub fn region(&self, role: Role) -> &str {
        match role {
            Role::Primary => &self.regions.primary,
            Role::Standby => &self.regions.standby,
        }
    }

    pub fn certificate(&self, role: Role) -> Option<&str> {
        match role {
            Role::Primary => self.certificates.primary.as_deref(),
            Role::Standby => self.certificates.standby.as_deref(),
        }
    }

    /// Serverless v2 capacity of a role's cluster; the standby's defaults to the primary's.
    pub fn capacity(&self, role: Role) -> CapacityRange {
        match role {
            Role::Primary => self.database.capacity.primary,
            Role::Standby => self
                .database
                .capacity
                .standby
                .unwrap_or(self.database.capacity.primary),
        }
    }

    /// Number of instances of a role's cluster; the standby's defaults to the primary's.
    pub fn instances(&self, role: Role) -> u8 {
        match role {
            Role::Primary => self.database.instances.primary,
            Role::Standby => self
                .database
                .instances
                .standby
                .unwrap_or(self.database.instances.primary),
        }
    }

    pub fn cidr(&self, role: Role) -> &str {
        match role {
            Role::Primary => &self.network.primary_cidr,
            Role::Standby => &self.network.standby_cidr,
        }
    }

    /// The tags every resource carries: the defaults, with the user's `[tags]` merged over them.
    pub fn tags(&self) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::from([
            ("Project".to_string(), "ECommerceDR".to_string()),
            ("Environment".to_string(), self.project.environment.clone()),
            ("ManagedBy".to_string(), "lifeboat".to_string()),
        ]);
        tags.extend(self.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        tags
    }

    /// Whether data-holding resources get deletion protection (everywhere except `dev`).
    pub fn deletion_protection(&self) -> bool {
        self.project.environment != "dev"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, "lifeboat.toml")
    }

    #[test]
    fn the_commented_default_file_parses_to_the_defaults() {
        assert_eq!(parse(DEFAULT_CONFIG_TOML).unwrap(), Config::default());
    }

    #[test]
    fn an_empty_file_is_the_default_config() {
        assert_eq!(parse("").unwrap(), Config::default());
        Config::default().validate().unwrap();
    }

    #[test]
    fn values_are_read_into_typed_fields() {
        let c = parse(
            "[network]\naz_count = 3\nnat_gateways = \"per-az\"\n[local]\nreplication = \"async\"\n\
             [dr]\nallow_data_loss = true\n[database.capacity.primary]\nmin = 1\nmax = 32\n",
        )
        .unwrap();
        assert_eq!(c.network.az_count, 3);
        assert_eq!(c.network.nat_gateways, NatGateways::PerAz);
        assert_eq!(c.local.replication, Replication::Async);
        assert!(c.dr.allow_data_loss);
        assert_eq!(
            c.database.capacity.primary,
            CapacityRange {
                min: 1.0,
                max: 32.0
            }
        );
        assert_eq!(c.database.capacity.standby, None);
        assert_eq!(
            c.capacity(Role::Standby),
            CapacityRange {
                min: 1.0,
                max: 32.0
            },
            "the standby follows the primary unless set"
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_its_path_and_the_allowed_keys() {
        let err = parse("[network]\naz_cuont = 3\n").unwrap_err();
        match &err.kind {
            ConfigErrorKind::UnknownKey { key, allowed } => {
                assert_eq!(key, "network.az_cuont");
                assert!(allowed.contains("az_count"), "{allowed}");
            }
            other => panic!("expected an unknown key error, got {other:?}"),
        }
        assert!(
            err.to_string()
                .starts_with("lifeboat.toml: unknown key `network.az_cuont`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_sections_and_nested_keys_are_rejected() {
        assert_eq!(parse("[nope]\n").unwrap_err().kind.key(), Some("nope"));
        assert_eq!(
            parse("[database.capacity.primary]\nmid = 1\n")
                .unwrap_err()
                .kind
                .key(),
            Some("database.capacity.primary.mid")
        );
        assert_eq!(
            parse("[certificates]\ntertiary = \"x\"\n")
                .unwrap_err()
                .kind
                .key(),
            Some("certificates.tertiary")
        );
    }

    #[test]
    fn an_invalid_value_names_key_value_and_what_is_allowed() {
        let err = parse("[network]\naz_count = 4\n").unwrap_err();
        assert_eq!(
            err.kind,
            ConfigErrorKind::InvalidValue {
                key: "network.az_count".into(),
                value: "4".into(),
                allowed: "2 or 3".into()
            }
        );
    }

    #[test]
    fn a_wrong_type_or_enum_value_is_a_syntax_error_with_position() {
        let err = parse("[network]\nnat_gateways = \"many\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains("per-az"), "{text}");
    }

    #[test]
    fn regions_must_be_real_and_distinct() {
        assert_eq!(
            parse("[regions]\nprimary = \"us-east-9\"\n")
                .unwrap_err()
                .kind
                .key(),
            Some("regions.primary")
        );
        assert_eq!(
            parse("[regions]\nstandby = \"us-east-1\"\n")
                .unwrap_err()
                .kind
                .key(),
            Some("regions.standby")
        );
        parse("[regions]\nprimary = \"eu-west-1\"\nstandby = \"eu-central-1\"\n").unwrap();
    }

    #[test]
    fn certificates_must_be_acm_arns_in_their_region() {
        let ok =
            "arn:aws:acm:us-east-1:123456789012:certificate/0f3c6b7e-1111-2222-3333-444455556666";
        parse(&format!("[certificates]\nprimary = \"{ok}\"\n")).unwrap();
        let err = parse(&format!("[certificates]\nstandby = \"{ok}\"\n")).unwrap_err();
        assert_eq!(err.kind.key(), Some("certificates.standby"));
        assert!(err.to_string().contains("us-west-2"), "{err}");
        assert_eq!(
            parse("[certificates]\nprimary = \"not-an-arn\"\n")
                .unwrap_err()
                .kind
                .key(),
            Some("certificates.primary")
        );
    }

    #[test]
    fn bounded_values_are_checked() {
        for (text, key) in [
            (
                "[health_check]\ninterval_seconds = 20\n",
                "health_check.interval_seconds",
            ),
            (
                "[health_check]\nfailure_threshold = 11\n",
                "health_check.failure_threshold",
            ),
            ("[health_check]\npath = \"health\"\n", "health_check.path"),
            (
                "[database.capacity.standby]\nmin = 9\nmax = 8\n",
                "database.capacity.standby.min",
            ),
            (
                "[database.capacity.primary]\nmin = 0.5\nmax = 300\n",
                "database.capacity.primary.max",
            ),
            (
                "[database.capacity.primary]\nmin = 0.7\nmax = 3\n",
                "database.capacity.primary.min",
            ),
            (
                "[database]\nengine_version = \"5.7.mysql_aurora.2.11.2\"\n",
                "database.engine_version",
            ),
            (
                "[database]\nbackup_retention_days = 0\n",
                "database.backup_retention_days",
            ),
            ("[project]\nname = \"My Shop\"\n", "project.name"),
            ("[project]\nenvironment = \"\"\n", "project.environment"),
            (
                "[network]\nprimary_cidr = \"10.10.0.0/8\"\n",
                "network.primary_cidr",
            ),
            (
                "[network]\nstandby_cidr = \"10.10.128.0/17\"\n",
                "network.standby_cidr",
            ),
            (
                "[network]\nprimary_cidr = \"10.300.0.0/16\"\n",
                "network.primary_cidr",
            ),
            (
                "[alerts]\nemails = [\"ops.example.com\"]\n",
                "alerts.emails",
            ),
            ("[dns]\ndomain = \"not a domain\"\n", "dns.domain"),
            ("[dns]\nttl_seconds = 3600\n", "dns.ttl_seconds"),
            ("[tags]\n\"aws:owner\" = \"x\"\n", "tags.aws:owner"),
            ("[dr]\nrpo_seconds = 0\n", "dr.rpo_seconds"),
            ("[local]\nbase_port = 80\n", "local.base_port"),
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!(err.kind.key(), Some(key), "{text}: {err}");
        }
    }

    #[test]
    fn reserved_domains_are_refused_for_deploy_but_not_for_synth() {
        let default = Config::default();
        default.validate().unwrap();
        let err = default.validate_for_deploy().unwrap_err();
        assert_eq!(err.key(), Some("dns.domain"));
        let text = err.to_string();
        assert!(
            text.contains("shop.example.com") && text.contains("RFC 2606"),
            "{text}"
        );
        assert!(text.contains("[dns]"), "says how to set it: {text}");
        for reserved in [
            "example.com",
            "shop.example.com",
            "a.b.example.net",
            "EXAMPLE.ORG",
            "shop.example.org.",
            "shop.test",
            "my.example",
            "shop.invalid",
            "app.localhost",
        ] {
            assert!(reserved_domain(reserved).is_some(), "{reserved}");
            let c = parse(&format!(
                "[dns]\ndomain = \"{}\"\n",
                reserved.trim_end_matches('.')
            ))
            .expect("valid for synth");
            assert_eq!(
                c.validate_for_deploy().unwrap_err().key(),
                Some("dns.domain"),
                "{reserved}"
            );
        }
        for real in [
            "shop.acme.com",
            "example.co.uk",
            "myexample.com",
            "example.com.au",
            "testing.io",
            "shop.contest",
        ] {
            assert_eq!(reserved_domain(real), None, "{real}");
            parse(&format!("[dns]\ndomain = \"{real}\"\n"))
                .unwrap()
                .validate_for_deploy()
                .unwrap();
        }
    }

    #[test]
    fn the_standby_has_the_primarys_capacity_and_instances_unless_lowered() {
        let c = Config::default();
        assert_eq!(c.capacity(Role::Standby), c.capacity(Role::Primary));
        assert_eq!(c.instances(Role::Standby), c.instances(Role::Primary));
        assert_eq!(c.instances(Role::Primary), 2);
        let lowered = parse(
            "[database.capacity.standby]\nmin = 0.5\nmax = 4\n[database.instances]\nstandby = 1\n",
        )
        .unwrap();
        assert_eq!(lowered.capacity(Role::Standby).max, 4.0);
        assert_eq!(lowered.instances(Role::Standby), 1);
        assert_eq!(lowered.instances(Role::Primary), 2);
        for (text, key) in [
            (
                "[database.instances]\nprimary = 0\n",
                "database.instances.primary",
            ),
            (
                "[database.instances]\nstandby = 17\n",
                "database.instances.standby",
            ),
            (
                "[database.instances]\nreaders = 1\n",
                "database.instances.readers",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().kind.key(), Some(key), "{text}");
        }
    }

    #[test]
    fn names_too_long_for_a_bucket_with_region_and_account_are_rejected() {
        let err = parse(
            "[project]\nname = \"abcdefghijklmnopqrst\"\nenvironment = \"abcdefghij\"\n\
             [certificates]\nallow_insecure_http = true\n\
             [regions]\nprimary = \"ap-southeast-1\"\nstandby = \"ap-southeast-2\"\n",
        )
        .unwrap_err();
        assert_eq!(err.kind.key(), Some("project.name"));
        assert!(err.to_string().contains("63"), "{err}");
    }

    #[test]
    fn user_tags_are_merged_over_the_defaults() {
        let c = parse(
            "[project]\nenvironment = \"prod\"\n[certificates]\nallow_insecure_http = true\n[tags]\nCostCenter = \"42\"\nProject = \"Shop\"\n",
        )
        .unwrap();
        let tags = c.tags();
        assert_eq!(tags["Environment"], "prod");
        assert_eq!(tags["ManagedBy"], "lifeboat");
        assert_eq!(tags["CostCenter"], "42");
        assert_eq!(tags["Project"], "Shop");
        assert!(c.deletion_protection());
        assert!(!Config::default().deletion_protection());
    }
}
