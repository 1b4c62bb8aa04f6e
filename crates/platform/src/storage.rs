//! Storage: versioned, KMS-encrypted, private, TLS-only asset buckets in both regions with cross-region
//! replication primary → standby (Replication Time Control and metrics, a least-privilege replication
//! role), and the DynamoDB global table for storefront sessions (replica in the standby region, point-in-time
//! recovery, TTL, KMS, on-demand).
//!
//! The standby stack is deployed first: replication needs its destination bucket (and its key) to exist.

use lifeboat_cfn::resources::{dynamodb, iam, s3};
use lifeboat_cfn::{Expr, get_att, join, r};
use lifeboat_config::{Config, Role};
use serde_json::{Value, json};

use crate::database::keep;
use crate::util::{
    Stack, allow, assume_role, block_public_access, bucket_arn, deny_insecure_transport,
    inline_policy, kms_key, policy_document, stack_id, tag_list,
};

pub const COMPONENT: &str = "storage";
/// Partition key of the sessions table (string), as the storefront reads and writes it.
pub const SESSIONS_KEY: &str = "id";
/// TTL attribute of the sessions table (epoch seconds).
pub const SESSIONS_TTL_ATTRIBUTE: &str = "expires_at";
/// Id of the replication rule (a dimension of the S3 replication metrics).
pub const REPLICATION_RULE_ID: &str = "assets-to-standby";
/// Noncurrent object versions are kept this long, then expire.
pub const NONCURRENT_VERSION_DAYS: u32 = 30;

pub fn build(config: &Config, role: Role) -> Stack {
    let names = config.names();
    let mut s = Stack::new(
        config,
        COMPONENT,
        role,
        "asset buckets with cross-region replication, sessions global table",
    );
    let region = config.region(role).to_string();
    let key_arn = kms_key(
        &mut s,
        "StorageKey",
        &format!("alias/{}-storage", names.prefix()),
        "Encrypts the asset bucket and the sessions table",
        &[],
    );
    if let Some(key) = s.template.resources.get_mut("StorageKey") {
        key.stateful(keep(config));
    }

    let bucket_name = names.assets_bucket(&region);
    // The primary takes the standby bucket and key as replication destination and sessions replica key.
    let standby_key = (role == Role::Primary).then(|| {
        s.input(
            "StandbyStorageKeyArn",
            &stack_id(COMPONENT, Role::Standby),
            "StorageKeyArn",
        )
    });
    let replication = standby_key
        .clone()
        .map(|key| replication(config, &mut s, &bucket_name, key));
    s.template
        .add(
            "AssetsBucket",
            s3::Bucket {
                bucket_name: Some(bucket_name.clone().into()),
                versioning_configuration: Some(Expr::json(json!({ "Status": "Enabled" }))),
                bucket_encryption: Some(Expr::json(json!({
                    "ServerSideEncryptionConfiguration": [{
                        "ServerSideEncryptionByDefault": { "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn },
                        "BucketKeyEnabled": true
                    }]
                }))),
                public_access_block_configuration: Some(block_public_access()),
                ownership_controls: Some(Expr::json(json!({ "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }] }))),
                lifecycle_configuration: Some(Expr::json(json!({
                    "Rules": [{
                        "Id": "expire-old-versions",
                        "Status": "Enabled",
                        "NoncurrentVersionExpiration": { "NoncurrentDays": NONCURRENT_VERSION_DAYS },
                        "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 7 }
                    }]
                }))),
                replication_configuration: replication,
            },
        )
        .stateful(keep(config));
    let arn = get_att("AssetsBucket", "Arn");
    s.template.add(
        "AssetsBucketPolicy",
        s3::BucketPolicy {
            bucket: r("AssetsBucket"),
            policy_document: Expr::json(policy_document(vec![deny_insecure_transport(&arn)])),
        },
    );

    if let Some(standby_key) = standby_key {
        sessions_table(config, &mut s, key_arn.clone(), standby_key);
    }

    s.output(
        "AssetsBucketName",
        r("AssetsBucket"),
        "Asset bucket in this region",
    );
    s.output("AssetsBucketArn", arn, "Asset bucket ARN in this region");
    s.output(
        "StorageKeyArn",
        key_arn,
        "KMS key of the asset bucket and sessions table replica in this region",
    );
    crate::hardening::storage(config, &mut s, role);
    s
}

/// The replication rule of the primary bucket, and the role S3 assumes to replicate.
fn replication(config: &Config, s: &mut Stack, source_bucket: &str, destination_key: Expr) -> Expr {
    let standby = stack_id(COMPONENT, Role::Standby);
    let destination_arn = s.input("StandbyAssetsBucketArn", &standby, "AssetsBucketArn");
    let source_arn = bucket_arn(source_bucket);
    let source_objects = join("", vec![source_arn.clone(), "/*".into()]);
    let destination_objects = join("", vec![destination_arn.clone(), "/*".into()]);
    let primary_region = &config.regions.primary;
    let standby_region = &config.regions.standby;
    let statements = vec![
        allow(
            &["s3:GetReplicationConfiguration", "s3:ListBucket"],
            vec![source_arn],
        ),
        allow(
            &[
                "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl",
                "s3:GetObjectVersionTagging",
            ],
            vec![source_objects],
        ),
        allow(
            &[
                "s3:ReplicateObject",
                "s3:ReplicateDelete",
                "s3:ReplicateTags",
            ],
            vec![destination_objects],
        ),
        with_condition(
            allow(&["kms:Decrypt"], vec![get_att("StorageKey", "Arn")]),
            json!({ "StringLike": { "kms:ViaService": format!("s3.{primary_region}.amazonaws.com") } }),
        ),
        with_condition(
            allow(&["kms:Encrypt"], vec![destination_key.clone()]),
            json!({ "StringLike": { "kms:ViaService": format!("s3.{standby_region}.amazonaws.com") } }),
        ),
    ];
    s.template.add(
        "ReplicationRole",
        iam::Role {
            assume_role_policy_document: assume_role("s3.amazonaws.com"),
            description: Some("S3 replication of the asset bucket to the standby region".into()),
            policies: Some(Expr::json(json!([inline_policy(
                "replicate-assets",
                statements
            )]))),
            managed_policy_arns: None,
        },
    );
    Expr::json(json!({
        "Role": get_att("ReplicationRole", "Arn"),
        "Rules": [{
            "Id": REPLICATION_RULE_ID,
            "Status": "Enabled",
            "Priority": 1,
            "Filter": { "Prefix": "" },
            "DeleteMarkerReplication": { "Status": "Enabled" },
            "SourceSelectionCriteria": { "SseKmsEncryptedObjects": { "Status": "Enabled" } },
            "Destination": {
                "Bucket": destination_arn,
                "EncryptionConfiguration": { "ReplicaKmsKeyID": destination_key },
                // Replication Time Control: 99.99 % of objects within 15 minutes, with metrics to alarm on.
                "ReplicationTime": { "Status": "Enabled", "Time": { "Minutes": 15 } },
                "Metrics": { "Status": "Enabled", "EventThreshold": { "Minutes": 15 } }
            }
        }]
    }))
}

fn with_condition(mut statement: Value, condition: Value) -> Value {
    if let Some(map) = statement.as_object_mut() {
        map.insert("Condition".into(), condition);
    }
    statement
}

/// The sessions global table; the primary stack owns both replicas (a global table is one resource).
fn sessions_table(config: &Config, s: &mut Stack, primary_key: Expr, standby_key: Expr) {
    let replica = |region: &str, key: Expr| {
        json!({
            "Region": region,
            "PointInTimeRecoverySpecification": { "PointInTimeRecoveryEnabled": true },
            "SSESpecification": { "KMSMasterKeyId": key },
            "DeletionProtectionEnabled": config.deletion_protection(),
            "Tags": tag_list(config)
        })
    };
    s.template
        .add(
            "SessionsTable",
            dynamodb::GlobalTable {
                table_name: Some(config.names().sessions_table().into()),
                billing_mode: Some("PAY_PER_REQUEST".into()),
                attribute_definitions: Expr::json(
                    json!([{ "AttributeName": SESSIONS_KEY, "AttributeType": "S" }]),
                ),
                key_schema: Expr::json(
                    json!([{ "AttributeName": SESSIONS_KEY, "KeyType": "HASH" }]),
                ),
                replicas: Expr::json(json!([
                    replica(&config.regions.primary, primary_key),
                    replica(&config.regions.standby, standby_key)
                ])),
                sse_specification: Some(Expr::json(
                    json!({ "SSEEnabled": true, "SSEType": "KMS" }),
                )),
                stream_specification: Some(Expr::json(
                    json!({ "StreamViewType": "NEW_AND_OLD_IMAGES" }),
                )),
                time_to_live_specification: Some(Expr::json(json!({
                    "AttributeName": SESSIONS_TTL_ATTRIBUTE,
                    "Enabled": true
                }))),
            },
        )
        .stateful(keep(config));
    s.output(
        "SessionsTableName",
        r("SessionsTable"),
        "Sessions global table (same name in both regions)",
    );
    s.output(
        "SessionsTableArn",
        get_att("SessionsTable", "Arn"),
        "Sessions table ARN in the primary region",
    );
}
