//! Route 53.

use crate::Expr;

resource!(HostedZone = "AWS::Route53::HostedZone" {
    name: Expr,
    hosted_zone_config: Option<Expr>,
});

resource!(HealthCheck = "AWS::Route53::HealthCheck" {
    health_check_config: Expr,
});

resource!(RecordSet = "AWS::Route53::RecordSet" {
    hosted_zone_id: Expr,
    name: Expr,
    #[serde(rename = "Type")]
    record_type: Expr,
    set_identifier: Option<Expr>,
    failover: Option<Expr>,
    health_check_id: Option<Expr>,
    alias_target: Option<Expr>,
    #[serde(rename = "TTL")]
    ttl: Option<Expr>,
    resource_records: Option<Expr>,
});
