//! CloudWatch Logs.

use crate::Expr;

resource!(LogGroup = "AWS::Logs::LogGroup" {
    log_group_name: Option<Expr>,
    retention_in_days: Option<Expr>,
    kms_key_id: Option<Expr>,
});
