//! Typed properties of the CloudFormation resource types lifeboat uses, one module per service.
//!
//! Field names follow CloudFormation's (snake_case here, PascalCase in the JSON; irregular spellings such as
//! `DBClusterIdentifier` are renamed explicitly). Required properties are plain [`Expr`]s; optional ones are
//! `Option<Expr>` and left out of the JSON when unset. Tags are not fields: [`crate::Template::apply_tags`]
//! adds them to every taggable resource.

use crate::Expr;

/// Whether a property value is left out of the rendered JSON.
pub trait Omit {
    fn omit(&self) -> bool;
}

impl Omit for Expr {
    fn omit(&self) -> bool {
        false
    }
}

impl<T> Omit for Option<T> {
    fn omit(&self) -> bool {
        self.is_none()
    }
}

pub(crate) fn omit<T: Omit>(value: &T) -> bool {
    value.omit()
}

/// Declares a resource properties struct and ties it to its CloudFormation type name.
macro_rules! resource {
    ($(#[$meta:meta])* $name:ident = $kind:literal { $($(#[$field_meta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        pub struct $name {
            $(
                $(#[$field_meta])*
                #[serde(skip_serializing_if = "crate::resources::omit")]
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: <$ty as crate::resources::DefaultValue>::default_value()),* }
            }
        }

        impl crate::template::ResourceProperties for $name {
            const TYPE: &'static str = $kind;
        }
    };
}

/// Defaults for the builder-style `..Default::default()`: required fields start as an empty string
/// (a template validation or cfn-lint error if left so), optional ones as unset.
pub(crate) trait DefaultValue {
    fn default_value() -> Self;
}

impl DefaultValue for Expr {
    fn default_value() -> Self {
        Expr::Str(String::new())
    }
}

impl<T> DefaultValue for Option<T> {
    fn default_value() -> Self {
        None
    }
}

pub mod backup;
pub mod cloudwatch;
pub mod dynamodb;
pub mod ec2;
pub mod elbv2;
pub mod events;
pub mod iam;
pub mod kms;
pub mod lambda;
pub mod logs;
pub mod rds;
pub mod route53;
pub mod s3;
pub mod secretsmanager;
pub mod sns;
pub mod sqs;
pub mod ssm;
pub mod stepfunctions;
