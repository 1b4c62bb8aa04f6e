//! The audit trail, per region, in the DR automation stack: a dedicated reports bucket for the DR run
//! reports (versioned, encrypted with a customer-managed key, S3 Object Lock in governance mode with the
//! configured retention, server access logs into the region's S3 logs bucket). Only the DR automation role
//! may write to it; the storefront role is denied everything on it; operators read it with their own IAM
//! permissions (the bucket and key policies delegate to the account).
//!
//! Why governance and not compliance mode: a compliance-mode lock cannot be shortened by anyone, not even the
//! account root, for the whole retention; a mistaken retention would then cost a year of storage with no way
//! out. Governance mode stops every principal without `s3:BypassGovernanceRetention`, and the bucket policy
//! denies that permission (and object deletion) to every principal, so removing a report first needs a
//! bucket policy change, which CloudTrail records.

use lifeboat_cfn::resources::{iam, s3};
use lifeboat_cfn::{Expr, get_att, join, r, sub};
use lifeboat_config::{Config, Role};
use serde_json::json;

use crate::util::{
    Stack, allow, block_public_access, deny_insecure_transport, kms_key, policy_document,
    set_properties, stack_id,
};

/// Logical id of the reports bucket in the DR automation stacks.
pub const REPORTS_BUCKET: &str = "ReportsBucket";
/// Logical id of the key encrypting the reports bucket and the DR automation's failed-events queue.
pub const AUDIT_KEY: &str = "AuditKey";
/// Prefix of the reports bucket's server access logs in the S3 logs bucket.
pub const REPORTS_ACCESS_LOG_PREFIX: &str = "dr-reports/";

/// Environment variable naming the reports bucket of the DR automation function's region.
pub const REPORTS_BUCKET_ENV: &str = "REPORTS_BUCKET";

/// The audit key of the stack (created once): the reports bucket and the failed-events queue use it.
pub fn audit_key(config: &Config, s: &mut Stack) -> Expr {
    if s.template.resources.contains_key(AUDIT_KEY) {
        return get_att(AUDIT_KEY, "Arn");
    }
    // Retained (kms_key's default) even when the environment is deleted: the reports are the record of what
    // was done.
    kms_key(
        s,
        AUDIT_KEY,
        &format!("alias/{}-audit", config.names().prefix()),
        "Encrypts the DR run reports and the DR automation's failed events",
        &[],
    )
}

/// Adds the reports bucket to a DR automation stack, grants the DR role write access and points the DR
/// function at it. Needs `DrAutomationRole` and `DrAutomationFunction` in the stack.
pub fn reports_bucket(config: &Config, s: &mut Stack, role: Role) {
    let names = config.names();
    let region = config.region(role).to_string();
    let key = audit_key(config, s);
    let logs_bucket = s.input(
        "S3AccessLogsBucketName",
        &stack_id(crate::storage::COMPONENT, role),
        "S3AccessLogsBucketName",
    );
    let storefront_role = s.input(
        "StorefrontRoleArn",
        &stack_id(crate::compute::COMPONENT, role),
        "StorefrontRoleArn",
    );
    let bucket_name = names.reports_bucket_pattern(&region);
    let retention = config.audit.report_retention_days;
    s.template
        .add(
            REPORTS_BUCKET,
            s3::Bucket {
                // The account id in the name: bucket names are global across accounts.
                bucket_name: Some(sub(bucket_name.clone())),
                versioning_configuration: Some(Expr::json(json!({ "Status": "Enabled" }))),
                bucket_encryption: Some(Expr::json(json!({
                    "ServerSideEncryptionConfiguration": [{
                        "ServerSideEncryptionByDefault": { "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key },
                        "BucketKeyEnabled": true
                    }]
                }))),
                public_access_block_configuration: Some(block_public_access()),
                ownership_controls: Some(Expr::json(
                    json!({ "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }] }),
                )),
                // A report overwritten under the same key keeps its earlier version for the retention period
                // (the lock holds it that long anyway); current versions are kept.
                lifecycle_configuration: Some(Expr::json(json!({
                    "Rules": [{
                        "Id": "expire-old-report-versions",
                        "Status": "Enabled",
                        "NoncurrentVersionExpiration": { "NoncurrentDays": retention },
                        "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 7 }
                    }]
                }))),
                replication_configuration: None,
            },
        )
        .stateful(lifeboat_cfn::DeletionPolicy::RetainExceptOnCreate);
    set_properties(
        s,
        REPORTS_BUCKET,
        json!({
            "ObjectLockEnabled": true,
            "ObjectLockConfiguration": {
                "ObjectLockEnabled": "Enabled",
                "Rule": { "DefaultRetention": { "Mode": "GOVERNANCE", "Days": retention } }
            },
            "LoggingConfiguration": {
                "DestinationBucketName": logs_bucket,
                "LogFilePrefix": REPORTS_ACCESS_LOG_PREFIX
            }
        }),
    );

    let arn = get_att(REPORTS_BUCKET, "Arn");
    let objects = join("", vec![arn.clone(), "/*".into()]);
    let dr_role = get_att("DrAutomationRole", "Arn");
    s.template.add(
        "ReportsBucketPolicy",
        s3::BucketPolicy {
            bucket: r(REPORTS_BUCKET),
            policy_document: Expr::json(policy_document(vec![
                deny_insecure_transport(&arn),
                json!({
                    "Sid": "StorefrontNeverTouchesReports",
                    "Effect": "Deny",
                    "Principal": { "AWS": "*" },
                    "Action": "s3:*",
                    "Resource": [arn.clone(), objects.clone()],
                    "Condition": { "ArnEquals": { "aws:PrincipalArn": storefront_role } }
                }),
                json!({
                    "Sid": "OnlyDrAutomationWritesReports",
                    "Effect": "Deny",
                    "Principal": { "AWS": "*" },
                    "Action": ["s3:PutObject", "s3:PutObjectRetention", "s3:PutObjectLegalHold"],
                    "Resource": objects.clone(),
                    "Condition": { "ArnNotEquals": { "aws:PrincipalArn": dr_role } }
                }),
                json!({
                    "Sid": "NobodyDeletesReports",
                    "Effect": "Deny",
                    "Principal": { "AWS": "*" },
                    "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"],
                    "Resource": objects.clone()
                }),
            ])),
        },
    );

    // The DR role's grant, as a policy of its own so the role's main policy stays as the component built it.
    s.template.add(
        "DrAutomationReportsPolicy",
        iam::RolePolicy {
            policy_name: "write-run-reports".into(),
            policy_document: Expr::json(policy_document(vec![
                allow(&["s3:PutObject"], vec![objects]),
                allow(&["kms:GenerateDataKey", "kms:Decrypt"], vec![key]),
            ])),
            role_name: r("DrAutomationRole"),
        },
    );
    set_environment(
        s,
        "DrAutomationFunction",
        REPORTS_BUCKET_ENV,
        r(REPORTS_BUCKET),
    );
    s.output(
        "ReportsBucketName",
        r(REPORTS_BUCKET),
        "DR run reports (Object Lock, governance mode) in this region",
    );
}

/// Adds one variable to a function's environment.
pub fn set_environment(s: &mut Stack, function: &str, name: &str, value: Expr) {
    let variables = s
        .template
        .resources
        .get_mut(function)
        .and_then(|f| f.properties.pointer_mut("/Environment/Variables"))
        .and_then(serde_json::Value::as_object_mut);
    if let Some(variables) = variables {
        variables.insert(name.to_string(), json!(value));
    }
}
