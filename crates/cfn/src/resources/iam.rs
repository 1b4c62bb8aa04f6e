//! IAM.

use crate::Expr;

resource!(Role = "AWS::IAM::Role" {
    assume_role_policy_document: Expr,
    description: Option<Expr>,
    /// Inline policies: `[{PolicyName, PolicyDocument}]`.
    policies: Option<Expr>,
    managed_policy_arns: Option<Expr>,
});
