//! AWS Secrets Manager.

use crate::Expr;

resource!(Secret = "AWS::SecretsManager::Secret" {
    name: Option<Expr>,
    description: Option<Expr>,
    kms_key_id: Option<Expr>,
    generate_secret_string: Option<Expr>,
    replica_regions: Option<Expr>,
});

resource!(RotationSchedule = "AWS::SecretsManager::RotationSchedule" {
    secret_id: Expr,
    #[serde(rename = "RotationLambdaARN")]
    rotation_lambda_arn: Option<Expr>,
    hosted_rotation_lambda: Option<Expr>,
    rotation_rules: Option<Expr>,
    rotate_immediately_on_update: Option<Expr>,
});
