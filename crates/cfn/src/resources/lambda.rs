//! AWS Lambda.

use crate::Expr;

resource!(Function = "AWS::Lambda::Function" {
    function_name: Option<Expr>,
    description: Option<Expr>,
    runtime: Option<Expr>,
    handler: Option<Expr>,
    role: Expr,
    code: Expr,
    architectures: Option<Expr>,
    memory_size: Option<Expr>,
    timeout: Option<Expr>,
    environment: Option<Expr>,
    vpc_config: Option<Expr>,
    logging_config: Option<Expr>,
    reserved_concurrent_executions: Option<Expr>,
});

resource!(Permission = "AWS::Lambda::Permission" {
    action: Expr,
    function_name: Expr,
    principal: Expr,
    source_arn: Option<Expr>,
    source_account: Option<Expr>,
});

resource!(EventInvokeConfig = "AWS::Lambda::EventInvokeConfig" {
    function_name: Expr,
    qualifier: Expr,
    maximum_retry_attempts: Option<Expr>,
    maximum_event_age_in_seconds: Option<Expr>,
    destination_config: Option<Expr>,
});
