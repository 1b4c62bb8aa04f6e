//! Amazon SNS.

use crate::Expr;

resource!(Topic = "AWS::SNS::Topic" {
    topic_name: Option<Expr>,
    display_name: Option<Expr>,
    kms_master_key_id: Option<Expr>,
});

resource!(Subscription = "AWS::SNS::Subscription" {
    topic_arn: Expr,
    protocol: Expr,
    endpoint: Option<Expr>,
});

resource!(TopicPolicy = "AWS::SNS::TopicPolicy" {
    topics: Expr,
    policy_document: Expr,
});
