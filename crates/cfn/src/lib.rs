//! A small typed CloudFormation model: templates, parameters, conditions, resources, outputs and intrinsic
//! functions, rendered deterministically.
//!
//! Resources are typed structs (one per CloudFormation type we use, in [`resources`]); nested property
//! structures are JSON values that may contain intrinsics ([`Expr`] serializes to CloudFormation JSON).
//! There are deliberately no exports: stacks pass values through lifeboat's manifest instead.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod expr;
pub mod resources;
pub mod tags;
pub mod template;

pub use expr::{
    Expr, account_id, get_att, if_, join, no_value, partition, r, region, select, split,
    stack_name, sub,
};
pub use template::{
    DeletionPolicy, Output, Parameter, ParameterType, Resource, ResourceProperties, Template,
    TemplateError,
};
