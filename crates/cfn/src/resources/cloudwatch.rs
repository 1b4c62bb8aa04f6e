//! Amazon CloudWatch alarms and dashboards.

use crate::Expr;

resource!(Alarm = "AWS::CloudWatch::Alarm" {
    alarm_name: Option<Expr>,
    alarm_description: Option<Expr>,
    namespace: Option<Expr>,
    metric_name: Option<Expr>,
    dimensions: Option<Expr>,
    statistic: Option<Expr>,
    extended_statistic: Option<Expr>,
    /// Metric math: used instead of namespace, metric name and statistic.
    metrics: Option<Expr>,
    period: Option<Expr>,
    evaluation_periods: Expr,
    datapoints_to_alarm: Option<Expr>,
    threshold: Option<Expr>,
    comparison_operator: Expr,
    treat_missing_data: Option<Expr>,
    alarm_actions: Option<Expr>,
    #[serde(rename = "OKActions")]
    ok_actions: Option<Expr>,
});

resource!(Dashboard = "AWS::CloudWatch::Dashboard" {
    dashboard_name: Option<Expr>,
    dashboard_body: Expr,
});
