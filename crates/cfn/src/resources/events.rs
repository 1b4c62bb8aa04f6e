//! Amazon EventBridge.

use crate::Expr;

resource!(Rule = "AWS::Events::Rule" {
    name: Option<Expr>,
    description: Option<Expr>,
    event_pattern: Option<Expr>,
    state: Option<Expr>,
    targets: Option<Expr>,
});
