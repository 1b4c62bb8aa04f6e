//! Every physical name lifeboat gives a resource, derived from the config alone.
//!
//! The deploy engine, the DR orchestrator and the storefront find resources by these names, so they live in
//! one place. All start with `<project>-<environment>` (or `/<project>/<environment>` for SSM paths).

use crate::{Config, Role};

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

    /// CloudWatch alarm name: `<project>-<env>-<role>-<what>`, e.g. `lifeboat-dev-primary-health`.
    pub fn alarm(&self, role: Role, what: &str) -> String {
        format!("{}-{role}-{what}", self.prefix())
    }

    /// The alarm on the primary region's Route 53 health check, the trigger of automated failover.
    pub fn primary_health_alarm(&self) -> String {
        self.alarm(Role::Primary, "health")
    }

    /// The alarms whose state changes trigger the DR automation (today: the primary health check alarm).
    pub fn primary_health_alarms(&self) -> Vec<String> {
        vec![self.primary_health_alarm()]
    }

    /// S3 bucket for the shop's assets in a region.
    pub fn assets_bucket(&self, region: &str) -> String {
        format!("{}-assets-{region}", self.prefix())
    }

    /// S3 bucket for the load balancer's access logs in a region.
    pub fn alb_logs_bucket(&self, region: &str) -> String {
        format!("{}-alb-logs-{region}", self.prefix())
    }

    /// S3 bucket receiving the server access logs of the other buckets in a region (SSE-S3: S3 log
    /// delivery cannot write with a KMS key).
    pub fn s3_access_logs_bucket(&self, region: &str) -> String {
        format!("{}-s3-logs-{region}", self.prefix())
    }

    /// S3 bucket (Object Lock, governance mode) for DR run reports in a region.
    pub fn reports_bucket(&self, region: &str) -> String {
        format!("{}-dr-reports-{region}", self.prefix())
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
        assert_eq!(n.primary_health_alarm(), "lifeboat-dev-primary-health");
        assert_eq!(
            n.assets_bucket("us-west-2"),
            "lifeboat-dev-assets-us-west-2"
        );
    }

    #[test]
    fn longest_names_fit_aws_limits() {
        let mut c = Config::default();
        c.project.name = "abcdefghijklmnopqrst".into();
        c.project.environment = "abcdefghij".into();
        let n = c.names();
        for region in crate::AWS_REGIONS {
            assert!(n.assets_bucket(region).len() <= 63);
            assert!(n.alb_logs_bucket(region).len() <= 63);
            assert!(n.s3_access_logs_bucket(region).len() <= 63);
            assert!(n.reports_bucket(region).len() <= 63);
            assert!(n.instance_id(region, 2).len() <= 63);
        }
        assert!(n.load_balancer().len() <= 32);
        assert!(n.dr_function().len() <= 64);
    }
}
