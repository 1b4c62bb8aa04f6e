//! Amazon SQS.

use crate::Expr;

resource!(Queue = "AWS::SQS::Queue" {
    queue_name: Option<Expr>,
    kms_master_key_id: Option<Expr>,
    kms_data_key_reuse_period_seconds: Option<Expr>,
    message_retention_period: Option<Expr>,
});

resource!(QueuePolicy = "AWS::SQS::QueuePolicy" {
    policy_document: Expr,
    queues: Expr,
});
