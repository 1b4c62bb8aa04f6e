//! Amazon DynamoDB.

use crate::Expr;

resource!(GlobalTable = "AWS::DynamoDB::GlobalTable" {
    table_name: Option<Expr>,
    billing_mode: Option<Expr>,
    attribute_definitions: Expr,
    key_schema: Expr,
    /// One entry per region; tags and per-region settings live here.
    replicas: Expr,
    #[serde(rename = "SSESpecification")]
    sse_specification: Option<Expr>,
    stream_specification: Option<Expr>,
    time_to_live_specification: Option<Expr>,
});
