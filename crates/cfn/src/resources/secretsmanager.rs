//! AWS Secrets Manager.

use crate::Expr;

resource!(Secret = "AWS::SecretsManager::Secret" {
    name: Option<Expr>,
    description: Option<Expr>,
    kms_key_id: Option<Expr>,
    generate_secret_string: Option<Expr>,
    replica_regions: Option<Expr>,
});
