//! Which AWS resources make up one environment's DR setup, by name.
//!
//! Names come from the configuration ([`lifeboat_config::Names`]): the platform creates the resources
//! under exactly these names, so the orchestrator can find them without any state of its own. A few ids
//! AWS assigns (the hosted zone, the health checks, the topic ARN) are either given (the DR Lambda gets them
//! as environment variables) or looked up through the API at first use.

use std::collections::BTreeMap;
use std::time::Duration;

use lifeboat_runbook::DrSettings;

/// The resources and bounds the AWS backend works with.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// `<project>-<env>`: the alarm-name prefix, and the prefix of every resource name.
    pub prefix: String,
    pub primary_region: String,
    pub standby_region: String,
    pub global_cluster_id: String,
    /// Aurora cluster identifier per region.
    pub cluster_ids: BTreeMap<String, String>,
    /// SSM prefix of the control parameters (`/<project>/<env>/dr`).
    pub ssm_prefix: String,
    pub journal_table: String,
    pub sessions_table: String,
    /// Asset bucket per region. Bucket names carry the account id; until [`Self::in_account`] is applied
    /// they hold the `${AWS::AccountId}` placeholder the templates use.
    pub assets_buckets: BTreeMap<String, String>,
    pub topic_name: String,
    /// Topic ARN per region when known in advance; otherwise found by name.
    pub topic_arns: BTreeMap<String, String>,
    /// The storefront Lambda function (same name in both regions).
    pub storefront_function: String,
    /// The failover record's domain (hosted zone name) and full record name.
    pub domain: String,
    pub record_name: String,
    /// Given, or looked up by [`Self::domain`].
    pub hosted_zone_id: Option<String>,
    /// The Route 53 health check that guards each region's failover record; given, or read from the
    /// failover records.
    pub health_check_ids: BTreeMap<String, String>,
    /// The alarms meaning "this region is unhealthy", per region (`Names::alarms_watching`): its Route 53
    /// detection alarm (in us-east-1) and the other region's probe alarm on it. Automation acts on those of
    /// the region active now, wherever they live.
    pub watching_alarms: BTreeMap<String, Vec<String>>,
    /// Path of the storefront's deep health endpoint (database, sessions, assets).
    pub deep_health_path: String,
    /// Where run reports go: a bucket (`None`: the assets bucket of the region the run is coordinated
    /// from, which survives the loss of the other) and a key prefix.
    pub reports_bucket: Option<String>,
    pub reports_prefix: String,
    pub bounds: Bounds,
}

/// Polling and wait bounds of the AWS operations.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    /// Between two observations while waiting (writer change, drained replication, verify).
    pub poll_interval: Duration,
    /// How long a promotion may take until the target cluster is the writer.
    pub promote_timeout: Duration,
    /// Replication lag (ms) at or below which a fenced primary counts as drained.
    pub drained_lag_ms: u64,
    /// How many consecutive drained observations `wait-drained` wants.
    pub drained_observations: u32,
    /// How far back pre-scale looks for the primary's peak capacity.
    pub capacity_lookback: Duration,
    /// The minimum capacity pre-scale never goes below (ACUs).
    pub min_capacity_floor: f64,
    /// Lambda reserved concurrency set on the new primary's storefront function (`None`: leave it).
    pub storefront_reserved_concurrency: Option<i32>,
    /// How long a storefront may act on control state it read from SSM (its refresh bound): a failover
    /// waits this long after publishing the new epoch.
    pub write_lease: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            poll_interval: Duration::from_secs(5),
            promote_timeout: Duration::from_secs(900),
            drained_lag_ms: 0,
            drained_observations: 2,
            capacity_lookback: Duration::from_secs(24 * 3600),
            min_capacity_floor: 0.5,
            storefront_reserved_concurrency: None,
            write_lease: Duration::from_secs(5),
        }
    }
}

impl Topology {
    /// The topology of the resources in AWS account `account_id`: the account goes into the bucket names.
    pub fn in_account(mut self, account_id: &str) -> Self {
        for name in self.assets_buckets.values_mut() {
            *name = name.replace(lifeboat_config::names::ACCOUNT_ID, account_id);
        }
        if let Some(name) = &mut self.reports_bucket {
            *name = name.replace(lifeboat_config::names::ACCOUNT_ID, account_id);
        }
        self
    }

    /// The alarms meaning "`region` is unhealthy" (see [`Self::watching_alarms`]).
    pub fn alarms_watching(&self, region: &str) -> &[String] {
        self.watching_alarms
            .get(region)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The region an alarm of this environment is about: alarms are named `<prefix>-<region>-<what>`
    /// and may live in another region than the one they watch (Route 53 metrics exist in us-east-1 only;
    /// a probe alarm lives in the probing region).
    pub fn alarm_subject_region(&self, alarm: &str) -> Option<&str> {
        let rest = alarm.strip_prefix(&self.prefix)?.strip_prefix('-')?;
        [self.primary_region.as_str(), self.standby_region.as_str()]
            .into_iter()
            .find(|region| {
                rest.strip_prefix(region)
                    .is_some_and(|tail| tail.starts_with('-'))
            })
    }

    /// Whether every bucket name is resolved (see [`Self::in_account`]).
    pub fn knows_account(&self) -> bool {
        !self
            .assets_buckets
            .values()
            .chain(self.reports_bucket.as_ref())
            .any(|name| name.contains(lifeboat_config::names::ACCOUNT_ID))
    }

    /// The topology of the environment `config` describes.
    pub fn from_config(config: &lifeboat_config::Config) -> Self {
        let names = config.names();
        let regions = [
            config.regions.primary.clone(),
            config.regions.standby.clone(),
        ];
        let per_region = |f: &dyn Fn(&str) -> String| -> BTreeMap<String, String> {
            regions.iter().map(|r| (r.clone(), f(r))).collect()
        };
        let bounds = Bounds {
            promote_timeout: Duration::from_secs(u64::from(config.dr.switchover_timeout_seconds)),
            ..Bounds::default()
        };
        Topology {
            prefix: names.prefix(),
            primary_region: config.regions.primary.clone(),
            standby_region: config.regions.standby.clone(),
            global_cluster_id: names.global_cluster_id(),
            cluster_ids: per_region(&|r| names.cluster_id(r)),
            ssm_prefix: names.ssm_prefix(),
            journal_table: names.journal_table(),
            sessions_table: names.sessions_table(),
            assets_buckets: per_region(&|r| names.assets_bucket_pattern(r)),
            topic_name: names.topic_name(),
            topic_arns: BTreeMap::new(),
            storefront_function: names.storefront_function(),
            domain: config.dns.domain.clone(),
            record_name: names.record_name(),
            hosted_zone_id: None,
            health_check_ids: BTreeMap::new(),
            watching_alarms: regions
                .iter()
                .map(|r| (r.clone(), names.alarms_watching(r)))
                .collect(),
            deep_health_path: "/health/deep".into(),
            reports_bucket: None,
            reports_prefix: "dr-reports/".into(),
            bounds,
        }
    }

    /// Both regions, primary first.
    pub fn regions(&self) -> [&str; 2] {
        [&self.primary_region, &self.standby_region]
    }

    pub fn ssm_active_region(&self) -> String {
        format!("{}/active-region", self.ssm_prefix)
    }

    pub fn ssm_epoch(&self) -> String {
        format!("{}/epoch", self.ssm_prefix)
    }

    pub fn ssm_fence(&self) -> String {
        format!("{}/fence", self.ssm_prefix)
    }

    pub fn ssm_endpoint(&self, region: &str) -> String {
        format!("{}/endpoints/{region}", self.ssm_prefix)
    }

    pub fn cluster_id(&self, region: &str) -> Option<&str> {
        self.cluster_ids.get(region).map(String::as_str)
    }

    /// The pair of regions.
    pub fn region_pair(&self) -> lifeboat_contract::RegionPair<'_> {
        lifeboat_contract::RegionPair::new(&self.primary_region, &self.standby_region)
    }
}

/// The DR Lambda's environment: names it cannot derive are passed in by the DR automation stack.
///
/// | variable | meaning |
/// |---|---|
/// | `LIFEBOAT_PROJECT`, `LIFEBOAT_ENVIRONMENT` | project and environment (names derive from them) |
/// | `LIFEBOAT_PRIMARY_REGION`, `LIFEBOAT_STANDBY_REGION` | the region pair |
/// | `LIFEBOAT_DOMAIN`, `LIFEBOAT_RECORD` | the failover record (`<record>.<domain>`) |
/// | `JOURNAL_TABLE`, `CONTROL_SSM_PREFIX`, `TOPIC_ARN`, `GLOBAL_CLUSTER_ID` | optional overrides of derived names |
/// | `HOSTED_ZONE_ID`, `PRIMARY_HEALTH_CHECK_ID`, `STANDBY_HEALTH_CHECK_ID` | optional; looked up when absent |
/// | `REPORTS_BUCKET` | optional; the bucket run reports go to (default: the coordinating region's assets bucket) |
/// | `LIFEBOAT_DR_*` | the `[dr]` settings: `RTO_SECONDS`, `RPO_SECONDS`, `MAX_SWITCHOVER_LAG_SECONDS`, `ALLOW_DATA_LOSS`, `ALARM_MIN_SECONDS`, `COOLDOWN_SECONDS`, `SWITCHOVER_TIMEOUT_SECONDS` |
pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<(Topology, DrSettings), String> {
    let mut config = lifeboat_config::Config::default();
    let set = |target: &mut String, key: &str| {
        if let Some(v) = env(key).filter(|v| !v.is_empty()) {
            *target = v;
        }
    };
    set(&mut config.project.name, "LIFEBOAT_PROJECT");
    set(&mut config.project.environment, "LIFEBOAT_ENVIRONMENT");
    set(&mut config.regions.primary, "LIFEBOAT_PRIMARY_REGION");
    set(&mut config.regions.standby, "LIFEBOAT_STANDBY_REGION");
    set(&mut config.dns.domain, "LIFEBOAT_DOMAIN");
    set(&mut config.dns.record, "LIFEBOAT_RECORD");
    let number = |key: &str, target: &mut u32| -> Result<(), String> {
        if let Some(v) = env(key).filter(|v| !v.is_empty()) {
            *target = v
                .parse()
                .map_err(|_| format!("environment variable {key}={v:?} is not a whole number"))?;
        }
        Ok(())
    };
    number("LIFEBOAT_DR_RTO_SECONDS", &mut config.dr.rto_seconds)?;
    number("LIFEBOAT_DR_RPO_SECONDS", &mut config.dr.rpo_seconds)?;
    number(
        "LIFEBOAT_DR_MAX_SWITCHOVER_LAG_SECONDS",
        &mut config.dr.max_switchover_lag_seconds,
    )?;
    number(
        "LIFEBOAT_DR_ALARM_MIN_SECONDS",
        &mut config.dr.alarm_min_seconds,
    )?;
    number(
        "LIFEBOAT_DR_COOLDOWN_SECONDS",
        &mut config.dr.cooldown_seconds,
    )?;
    number(
        "LIFEBOAT_DR_SWITCHOVER_TIMEOUT_SECONDS",
        &mut config.dr.switchover_timeout_seconds,
    )?;
    if let Some(v) = env("LIFEBOAT_DR_ALLOW_DATA_LOSS").filter(|v| !v.is_empty()) {
        config.dr.allow_data_loss = match v.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return Err(format!(
                    "environment variable LIFEBOAT_DR_ALLOW_DATA_LOSS={v:?} is not true or false"
                ));
            }
        };
    }
    if config.regions.primary == config.regions.standby {
        return Err(format!(
            "primary and standby region are both {}",
            config.regions.primary
        ));
    }
    let mut topology = Topology::from_config(&config);
    set(&mut topology.journal_table, "JOURNAL_TABLE");
    set(&mut topology.ssm_prefix, "CONTROL_SSM_PREFIX");
    set(&mut topology.global_cluster_id, "GLOBAL_CLUSTER_ID");
    if let Some(arn) = env("TOPIC_ARN").filter(|v| !v.is_empty()) {
        // The topic exists in both regions under one name; the ARN given is the Lambda's own region's, and
        // the other region's differs only in its region field (so the function needs no sns:ListTopics).
        let parts: Vec<&str> = arn.split(':').collect();
        if parts.len() == 6 {
            for region in [
                config.regions.primary.clone(),
                config.regions.standby.clone(),
            ] {
                let mut each = parts.clone();
                each[3] = &region;
                topology.topic_arns.insert(region.clone(), each.join(":"));
            }
        }
        // arn:<partition>:sns:<region>:<account>:<name>: the account the stacks (and bucket names) are in.
        if let Some(account) = arn.split(':').nth(4).filter(|a| !a.is_empty()) {
            topology = topology.in_account(account);
        }
    }
    topology.hosted_zone_id = env("HOSTED_ZONE_ID").filter(|v| !v.is_empty());
    // The platform's reports bucket (Object Lock) of the function's region; without it, the assets bucket.
    topology.reports_bucket = env("REPORTS_BUCKET").filter(|v| !v.is_empty());
    for (key, region) in [
        ("PRIMARY_HEALTH_CHECK_ID", config.regions.primary.clone()),
        ("STANDBY_HEALTH_CHECK_ID", config.regions.standby.clone()),
    ] {
        if let Some(id) = env(key).filter(|v| !v.is_empty()) {
            topology.health_check_ids.insert(region, id);
        }
    }
    Ok((topology, settings_from_config(&config)))
}

/// The runbook settings of `config`.
pub fn settings_from_config(config: &lifeboat_config::Config) -> DrSettings {
    DrSettings {
        primary_region: config.regions.primary.clone(),
        standby_region: config.regions.standby.clone(),
        rto_seconds: u64::from(config.dr.rto_seconds),
        rpo_seconds: u64::from(config.dr.rpo_seconds),
        max_switchover_lag_seconds: u64::from(config.dr.max_switchover_lag_seconds),
        allow_data_loss: config.dr.allow_data_loss,
        switchover_timeout_seconds: u64::from(config.dr.switchover_timeout_seconds),
        cooldown_seconds: u64::from(config.dr.cooldown_seconds),
        alarm_min_seconds: u64::from(config.dr.alarm_min_seconds),
        // The storefront refreshes its control state from SSM at most this long apart (its cache bound).
        write_lease_ms: 5_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_config() {
        let t = Topology::from_config(&lifeboat_config::Config::default());
        assert_eq!(t.ssm_active_region(), "/lifeboat/dev/dr/active-region");
        assert_eq!(
            t.ssm_endpoint("us-west-2"),
            "/lifeboat/dev/dr/endpoints/us-west-2"
        );
        assert_eq!(
            t.cluster_id("us-east-1"),
            Some("lifeboat-dev-aurora-us-east-1")
        );
        assert_eq!(t.region_pair().other_region("us-west-2"), Some("us-east-1"));
        assert_eq!(t.region_pair().other_region("eu-west-1"), None);
    }

    #[test]
    fn lambda_environment_overrides_and_validates() {
        let vars: BTreeMap<&str, &str> = [
            ("LIFEBOAT_PROJECT", "shop"),
            ("LIFEBOAT_ENVIRONMENT", "prod"),
            ("JOURNAL_TABLE", "custom-journal"),
            (
                "TOPIC_ARN",
                "arn:aws:sns:us-west-2:123456789012:shop-prod-dr-alerts",
            ),
            ("PRIMARY_HEALTH_CHECK_ID", "hc-1"),
            ("LIFEBOAT_DR_ALLOW_DATA_LOSS", "true"),
            ("LIFEBOAT_DR_COOLDOWN_SECONDS", "60"),
        ]
        .into_iter()
        .collect();
        let (t, s) = from_env(&|k| vars.get(k).map(|v| (*v).to_owned())).unwrap();
        assert_eq!(t.journal_table, "custom-journal");
        assert_eq!(t.global_cluster_id, "shop-prod-global");
        assert_eq!(
            t.topic_arns.get("us-west-2").map(String::as_str),
            Some("arn:aws:sns:us-west-2:123456789012:shop-prod-dr-alerts")
        );
        assert_eq!(
            t.topic_arns.get("us-east-1").map(String::as_str),
            Some("arn:aws:sns:us-east-1:123456789012:shop-prod-dr-alerts"),
            "the other region's topic, without listing topics"
        );
        assert_eq!(
            t.health_check_ids.get("us-east-1").map(String::as_str),
            Some("hc-1")
        );
        assert!(s.allow_data_loss);
        assert_eq!(s.cooldown_seconds, 60);

        let bad: BTreeMap<&str, &str> = [("LIFEBOAT_DR_COOLDOWN_SECONDS", "soon")]
            .into_iter()
            .collect();
        let err = from_env(&|k| bad.get(k).map(|v| (*v).to_owned())).unwrap_err();
        assert!(err.contains("LIFEBOAT_DR_COOLDOWN_SECONDS"), "{err}");
    }
}
