//! The seven components of the two-region DR platform, synthesized into CloudFormation stacks and a manifest.
//!
//! Pure: [`synthesize`] turns a [`lifeboat_config::Config`] into templates and a
//! [`lifeboat_contract::Manifest`] in memory; writing them is the caller's business.
//!
//! | original design (Pulumi)   | here                  | stacks                                        |
//! |----------------------------|-----------------------|-----------------------------------------------|
//! | `networking_stack.py`      | [`networking`]        | `networking-primary`, `networking-standby`    |
//! | `database_stack.py`        | [`database`]          | `database-primary`, `database-standby`        |
//! | `storage_stack.py`         | [`storage`]           | `storage-standby`, `storage-primary`          |
//! | `compute_stack.py`         | [`compute`]           | `compute-primary`, `compute-standby`          |
//! | `monitoring_stack.py`      | [`monitoring`]        | `monitoring-primary`, `monitoring-standby`    |
//! | `dr_automation_stack.py`   | [`dr_automation`]     | `dr-automation-primary`, `dr-automation-standby` |
//! | (new: detection)           | [`detection`]         | `detection-route53` (always in us-east-1)      |
//! | `tap_stack.py`             | [`platform`]          | wires them; writes the manifest               |
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod audit;
pub mod backup;
pub mod compute;
pub mod database;
pub mod detection;
pub mod dr_automation;
pub mod dr_state_machine;
pub mod hardening;
pub mod monitoring;
pub mod networking;
pub mod platform;
pub mod storage;
mod util;

pub use platform::{MANIFEST_FILE, PlatformError, Synthesis, synthesize};

/// IAM statements may allow a write action on `Resource: "*"` only for these actions, because AWS offers no
/// narrower resource for them. A test walks every statement of every template against this list.
pub const IAM_WILDCARD_EXCEPTIONS: &[(&str, &str)] = &[
    (
        "ec2:CreateNetworkInterface",
        "Lambda in a VPC: ENI creation has no resource-level scoping for the function's role",
    ),
    (
        "ec2:DeleteNetworkInterface",
        "Lambda in a VPC: ENIs are created by the service with ids unknown in advance",
    ),
    (
        "ec2:AssignPrivateIpAddresses",
        "Lambda in a VPC: acts on service-created ENIs",
    ),
    (
        "ec2:UnassignPrivateIpAddresses",
        "Lambda in a VPC: acts on service-created ENIs",
    ),
    (
        "cloudwatch:PutMetricData",
        "CloudWatch metrics have no resource-level permissions; the statement is narrowed to the probe's namespace",
    ),
    (
        "kms:*",
        "KMS key policies: Resource \"*\" in a key policy means the key itself",
    ),
    (
        "kms:Decrypt",
        "KMS key policies: Resource \"*\" in a key policy means the key itself",
    ),
    (
        "kms:GenerateDataKey*",
        "KMS key policies: Resource \"*\" in a key policy means the key itself",
    ),
    (
        "kms:GenerateDataKey",
        "KMS key policies: Resource \"*\" in a key policy means the key itself",
    ),
    (
        "kms:Encrypt",
        "KMS key policies: Resource \"*\" in a key policy means the key itself",
    ),
    (
        "kms:ReEncrypt*",
        "KMS key policies: Resource \"*\" in a key policy means the key itself",
    ),
];
