//! AWS Step Functions.

use crate::Expr;

resource!(StateMachine = "AWS::StepFunctions::StateMachine" {
    state_machine_name: Option<Expr>,
    state_machine_type: Option<Expr>,
    definition: Option<Expr>,
    definition_substitutions: Option<Expr>,
    role_arn: Expr,
    encryption_configuration: Option<Expr>,
});
