//! AWS Systems Manager Parameter Store.

use crate::Expr;

resource!(Parameter = "AWS::SSM::Parameter" {
    name: Option<Expr>,
    #[serde(rename = "Type")]
    parameter_type: Expr,
    value: Expr,
    description: Option<Expr>,
    tier: Option<Expr>,
});
