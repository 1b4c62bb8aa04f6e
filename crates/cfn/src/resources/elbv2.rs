//! Elastic Load Balancing (application load balancers).

use crate::Expr;

resource!(LoadBalancer = "AWS::ElasticLoadBalancingV2::LoadBalancer" {
    name: Option<Expr>,
    scheme: Option<Expr>,
    #[serde(rename = "Type")]
    load_balancer_type: Option<Expr>,
    ip_address_type: Option<Expr>,
    subnets: Option<Expr>,
    security_groups: Option<Expr>,
    load_balancer_attributes: Option<Expr>,
});

resource!(TargetGroup = "AWS::ElasticLoadBalancingV2::TargetGroup" {
    name: Option<Expr>,
    target_type: Option<Expr>,
    targets: Option<Expr>,
    health_check_enabled: Option<Expr>,
    health_check_path: Option<Expr>,
    health_check_interval_seconds: Option<Expr>,
    health_check_timeout_seconds: Option<Expr>,
    healthy_threshold_count: Option<Expr>,
    unhealthy_threshold_count: Option<Expr>,
    matcher: Option<Expr>,
    target_group_attributes: Option<Expr>,
});

resource!(Listener = "AWS::ElasticLoadBalancingV2::Listener" {
    load_balancer_arn: Expr,
    port: Option<Expr>,
    protocol: Option<Expr>,
    certificates: Option<Expr>,
    ssl_policy: Option<Expr>,
    default_actions: Expr,
});
