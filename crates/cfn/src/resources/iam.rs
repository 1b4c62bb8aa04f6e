//! IAM.

use crate::Expr;

resource!(Role = "AWS::IAM::Role" {
    assume_role_policy_document: Expr,
    description: Option<Expr>,
    /// Inline policies: `[{PolicyName, PolicyDocument}]`.
    policies: Option<Expr>,
    managed_policy_arns: Option<Expr>,
});

// An inline policy of a role as a resource of its own: lets a component add to a role it does not build.
resource!(RolePolicy = "AWS::IAM::RolePolicy" {
    policy_name: Expr,
    policy_document: Expr,
    role_name: Expr,
});
