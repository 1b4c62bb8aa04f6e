//! Every physical name lifeboat gives a resource, derived from the config alone.
//!
//! The deploy engine, the DR orchestrator and the storefront find resources by these names, so they live in
//! one place. All start with `<project>-<environment>` (or `/<project>/<environment>` for SSM paths).

use crate::{Config, Role};

/// The `Fn::Sub` placeholder CloudFormation replaces with the account id.
pub const ACCOUNT_ID: &str = "${AWS::AccountId}";

/// Region where Route 53 publishes health-check metrics (and so where alarms on them must live):
/// <https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/monitoring-health-checks.html>.
pub const ROUTE53_METRICS_REGION: &str = "us-east-1";

/// CloudWatch namespace of the cross-region probe's metric.
pub const PROBE_NAMESPACE: &str = "Lifeboat/DR";
/// The probe's metric: 1 when the watched region answered healthy, 0 when it did not. Dimensions
/// [`PROBE_DIMENSION_ENVIRONMENT`] (`<project>-<env>`) and [`PROBE_DIMENSION_REGION`] (the watched region).
pub const PROBE_METRIC: &str = "RegionHealthy";
pub const PROBE_DIMENSION_ENVIRONMENT: &str = "Environment";
pub const PROBE_DIMENSION_REGION: &str = "Region";
/// Key of the event the probe schedule sends the DR automation function:
/// `{"lifeboat-probe": {"region": "<the region to probe>"}}`. The function probes that region and publishes
/// [`PROBE_METRIC`] (1 healthy, 0 not) in its own region.
pub const PROBE_EVENT_KEY: &str = "lifeboat-probe";

fn with_account(pattern: &str, account_id: &str) -> String {
    pattern.replace(ACCOUNT_ID, account_id)
}

/// Name derivation for one config; see [`Config::names`].
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    config: &'a Config,
}

impl<'a> Names<'a> {
    pub fn new(config: &'a Config) -> Self {
        Self { config }
    }

    /// `<project>-<environment>`, the start of every name.
    pub fn prefix(&self) -> String {
        format!(
            "{}-{}",
            self.config.project.name, self.config.project.environment
        )
    }

    /// Manifest id of a component's stack: `<component>-<primary|standby>`.
    pub fn stack_id(component: &str, role: Role) -> String {
        format!("{component}-{role}")
    }

    /// CloudFormation stack name: `<project>-<env>-<component>-<primary|standby>`.
    pub fn stack_name(&self, component: &str, role: Role) -> String {
        format!("{}-{component}-{role}", self.prefix())
    }

    /// SSM prefix of the DR control parameters: `/<project>/<env>/dr`.
    pub fn ssm_prefix(&self) -> String {
        format!(
            "/{}/{}/dr",
            self.config.project.name, self.config.project.environment
        )
    }

    /// The region that may accept writes.
    pub fn ssm_active_region(&self) -> String {
        format!("{}/active-region", self.ssm_prefix())
    }

    /// The fencing epoch, raised at every role change.
    pub fn ssm_epoch(&self) -> String {
        format!("{}/epoch", self.ssm_prefix())
    }

    /// The write fence, `raised` or `lowered`.
    pub fn ssm_fence(&self) -> String {
        format!("{}/fence", self.ssm_prefix())
    }

    /// The public endpoint (load balancer DNS name) of a region.
    pub fn ssm_endpoint(&self, region: &str) -> String {
        format!("{}/endpoints/{region}", self.ssm_prefix())
    }

    /// DynamoDB table (global, both regions) holding the DR run journal and the run lock.
    pub fn journal_table(&self) -> String {
        format!("{}-dr-journal", self.prefix())
    }

    /// DynamoDB global table for storefront sessions.
    pub fn sessions_table(&self) -> String {
        format!("{}-sessions", self.prefix())
    }

    pub fn global_cluster_id(&self) -> String {
        format!("{}-global", self.prefix())
    }

    /// Aurora cluster identifier in a region (the same in both roles: a failover does not rename clusters).
    pub fn cluster_id(&self, region: &str) -> String {
        format!("{}-aurora-{region}", self.prefix())
    }

    /// Aurora instance identifiers of a region's cluster: index 0 is created as the writer.
    pub fn instance_id(&self, region: &str, index: usize) -> String {
        format!("{}-aurora-{region}-{}", self.prefix(), index + 1)
    }

    /// Secrets Manager secret with the database master credentials (replicated to the standby region).
    pub fn database_secret(&self) -> String {
        format!("{}/database/master", self.prefix())
    }

    /// SNS topic for alerts (one per region, same name).
    pub fn topic_name(&self) -> String {
        format!("{}-dr-alerts", self.prefix())
    }

    /// CloudWatch alarm name: `<project>-<env>-<region>-<what>`, e.g. `lifeboat-dev-us-east-1-health`.
    ///
    /// Alarms are named by the region they are about, never by role: roles swap at every switchover, and an
    /// alarm named `primary` would be about the standby from then on. Where the alarm lives is a separate
    /// matter (Route 53 metrics exist only in us-east-1; a probe alarm lives in the region that probes).
    pub fn alarm(&self, region: &str, what: &str) -> String {
        format!("{}-{region}-{what}", self.prefix())
    }

    /// The alarm on a region's Route 53 detection health check (it lives in [`ROUTE53_METRICS_REGION`]).
    pub fn health_alarm(&self, region: &str) -> String {
        self.alarm(region, "health")
    }

    /// The alarm on the cross-region probe: `from` probes `watched` and alarms when it stays unhealthy.
    /// It lives in `from`, so it still works when `watched` (with its CloudWatch and EventBridge) is gone.
    pub fn probe_alarm(&self, watched: &str, from: &str) -> String {
        self.alarm(watched, &format!("probe-from-{from}"))
    }

    /// The alarms that mean "`region` is unhealthy": its Route 53 health alarm and the other region's probe
    /// alarm. The DR automation acts on these when `region` is the active region; empty for a region that
    /// is not one of the pair.
    pub fn alarms_watching(&self, region: &str) -> Vec<String> {
        let regions = &self.config.regions;
        let other = if region == regions.primary {
            &regions.standby
        } else if region == regions.standby {
            &regions.primary
        } else {
            return Vec::new();
        };
        vec![self.health_alarm(region), self.probe_alarm(region, other)]
    }

    /// Every alarm whose state changes are delivered to the DR automation (both regions' watching alarms):
    /// which of them matters depends on which region is active at the time, so the EventBridge rules match
    /// all of them and the policy decides.
    pub fn automation_alarms(&self) -> Vec<String> {
        let regions = &self.config.regions;
        let mut alarms = self.alarms_watching(&regions.primary);
        alarms.extend(self.alarms_watching(&regions.standby));
        alarms
    }

    /// The region an alarm of this environment is about (the region in its name), if it is one of the pair.
    pub fn alarm_subject_region(&self, alarm: &str) -> Option<&'a str> {
        let rest = alarm.strip_prefix(&format!("{}-", self.prefix()))?;
        let regions = &self.config.regions;
        [regions.primary.as_str(), regions.standby.as_str()]
            .into_iter()
            .find(|region| {
                rest.strip_prefix(region)
                    .is_some_and(|tail| tail.starts_with('-'))
            })
    }

    /// S3 bucket for the shop's assets in a region, in the given account. Bucket names are global across
    /// all AWS accounts; the account id makes a name taken by someone else impossible.
    pub fn assets_bucket_in(&self, region: &str, account_id: &str) -> String {
        with_account(&self.assets_bucket_pattern(region), account_id)
    }

    /// [`Self::assets_bucket_in`] with `${AWS::AccountId}` for the account, for `Fn::Sub` in templates.
    pub fn assets_bucket_pattern(&self, region: &str) -> String {
        format!("{}-assets-{region}-{ACCOUNT_ID}", self.prefix())
    }

    /// The asset bucket's name before bucket names carried the account id.
    #[deprecated(
        note = "bucket names carry the account id: use assets_bucket_in(region, account_id), or take the \
                name from the stack output / the ASSETS_BUCKET variable"
    )]
    pub fn assets_bucket(&self, region: &str) -> String {
        format!("{}-assets-{region}", self.prefix())
    }

    /// S3 bucket for the load balancer's access logs in a region, in the given account.
    pub fn alb_logs_bucket_in(&self, region: &str, account_id: &str) -> String {
        with_account(&self.alb_logs_bucket_pattern(region), account_id)
    }

    /// [`Self::alb_logs_bucket_in`] with `${AWS::AccountId}` for the account, for `Fn::Sub` in templates.
    pub fn alb_logs_bucket_pattern(&self, region: &str) -> String {
        format!("{}-alb-logs-{region}-{ACCOUNT_ID}", self.prefix())
    }

    /// S3 bucket receiving the server access logs of the other buckets in a region (SSE-S3: S3 log
    /// delivery cannot write with a KMS key), in the given account.
    pub fn s3_access_logs_bucket_in(&self, region: &str, account_id: &str) -> String {
        with_account(&self.s3_access_logs_bucket_pattern(region), account_id)
    }

    /// [`Self::s3_access_logs_bucket_in`] with `${AWS::AccountId}` for the account, for `Fn::Sub`.
    pub fn s3_access_logs_bucket_pattern(&self, region: &str) -> String {
        format!("{}-s3-logs-{region}-{ACCOUNT_ID}", self.prefix())
    }

    /// S3 bucket (Object Lock, governance mode) for DR run reports in a region, in the given account.
    pub fn reports_bucket_in(&self, region: &str, account_id: &str) -> String {
        with_account(&self.reports_bucket_pattern(region), account_id)
    }

    /// [`Self::reports_bucket_in`] with `${AWS::AccountId}` for the account, for `Fn::Sub`.
    pub fn reports_bucket_pattern(&self, region: &str) -> String {
        format!("{}-reports-{region}-{ACCOUNT_ID}", self.prefix())
    }

    /// SQS queue receiving the DR automation's asynchronous invocations that failed every attempt.
    pub fn dr_failed_events_queue(&self) -> String {
        format!("{}-dr-failed-events", self.prefix())
    }

    /// AWS Backup vault (one per region, same name).
    pub fn backup_vault(&self) -> String {
        format!("{}-backup", self.prefix())
    }

    /// AWS Backup plan of the primary region.
    pub fn backup_plan(&self) -> String {
        format!("{}-daily", self.prefix())
    }

    /// Secrets Manager secret with the storefront's own database credentials (replicated to the standby).
    pub fn database_app_secret(&self) -> String {
        format!("{}/database/storefront", self.prefix())
    }

    /// Secrets Manager secret with the token that unlocks the full `/health/deep` answer.
    pub fn health_token_secret(&self) -> String {
        format!("{}/storefront/health-token", self.prefix())
    }

    pub fn storefront_function(&self) -> String {
        format!("{}-storefront", self.prefix())
    }

    pub fn dr_function(&self) -> String {
        format!("{}-dr-automation", self.prefix())
    }

    /// The DR state machine of each region (the same name in both; its ARN names the region).
    pub fn dr_state_machine(&self) -> String {
        format!("{}-dr-automation", self.prefix())
    }

    /// Name of a load balancer (at most 32 characters, as AWS requires).
    pub fn load_balancer(&self) -> String {
        let mut name = format!("{}-alb", self.prefix());
        name.truncate(32);
        name.trim_end_matches('-').to_string()
    }

    pub fn dashboard(&self, region: &str) -> String {
        format!("{}-{region}", self.prefix())
    }

    /// The failover record's full name, e.g. `www.shop.example.com`.
    pub fn record_name(&self) -> String {
        format!("{}.{}", self.config.dns.record, self.config.dns.domain)
    }

    /// Log group of a Lambda function (the name Lambda writes to).
    pub fn lambda_log_group(function: &str) -> String {
        format!("/aws/lambda/{function}")
    }

    pub fn flow_log_group(&self) -> String {
        format!(
            "/{}/{}/vpc-flow-logs",
            self.config.project.name, self.config.project.environment
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names() {
        let c = Config::default();
        let n = c.names();
        assert_eq!(
            n.stack_name("networking", Role::Standby),
            "lifeboat-dev-networking-standby"
        );
        assert_eq!(
            Names::stack_id("database", Role::Primary),
            "database-primary"
        );
        assert_eq!(n.ssm_active_region(), "/lifeboat/dev/dr/active-region");
        assert_eq!(n.ssm_epoch(), "/lifeboat/dev/dr/epoch");
        assert_eq!(n.ssm_fence(), "/lifeboat/dev/dr/fence");
        assert_eq!(
            n.ssm_endpoint("us-west-2"),
            "/lifeboat/dev/dr/endpoints/us-west-2"
        );
        assert_eq!(n.journal_table(), "lifeboat-dev-dr-journal");
        assert_eq!(n.global_cluster_id(), "lifeboat-dev-global");
        assert_eq!(n.cluster_id("us-east-1"), "lifeboat-dev-aurora-us-east-1");
        assert_eq!(n.record_name(), "www.shop.example.com");
        assert_eq!(n.health_alarm("us-east-1"), "lifeboat-dev-us-east-1-health");
        assert_eq!(
            n.assets_bucket_in("us-west-2", "123456789012"),
            "lifeboat-dev-assets-us-west-2-123456789012"
        );
        assert_eq!(
            n.assets_bucket_pattern("us-west-2"),
            "lifeboat-dev-assets-us-west-2-${AWS::AccountId}"
        );
    }

    #[test]
    fn longest_names_fit_aws_limits() {
        let mut c = Config::default();
        // The longest prefix validation accepts for any region (see `validate`).
        c.project.name = "abcdefghijklmnop".into();
        c.project.environment = "abcdefghi".into();
        let n = c.names();
        for region in crate::AWS_REGIONS {
            assert!(n.assets_bucket_in(region, "123456789012").len() <= 63);
            assert!(n.alb_logs_bucket_in(region, "123456789012").len() <= 63);
            assert!(n.s3_access_logs_bucket_in(region, "123456789012").len() <= 63);
            assert!(n.reports_bucket_in(region, "123456789012").len() <= 63);
            assert!(n.instance_id(region, 15).len() <= 63);
        }
        assert!(n.load_balancer().len() <= 32);
        assert!(n.dr_function().len() <= 64);
    }

    #[test]
    fn alarms_are_named_by_the_region_they_watch_whatever_its_role() {
        let c = Config::default();
        let n = c.names();
        assert_eq!(
            n.alarms_watching("us-west-2"),
            vec![
                "lifeboat-dev-us-west-2-health".to_string(),
                "lifeboat-dev-us-west-2-probe-from-us-east-1".to_string()
            ]
        );
        assert!(n.alarms_watching("eu-west-1").is_empty());
        assert_eq!(n.automation_alarms().len(), 4);
        for alarm in n.alarms_watching("us-east-1") {
            assert_eq!(n.alarm_subject_region(&alarm), Some("us-east-1"));
        }
        assert_eq!(
            n.alarm_subject_region("lifeboat-dev-us-west-2-aurora-replication-lag"),
            Some("us-west-2")
        );
        assert_eq!(n.alarm_subject_region("other-dev-us-west-2-health"), None);
        assert_eq!(n.alarm_subject_region("lifeboat-dev-us-west-22-x"), None);
    }
}
