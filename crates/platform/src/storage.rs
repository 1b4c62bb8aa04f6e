//! Storage: versioned, KMS-encrypted, private, TLS-only asset buckets in both regions with two-way
//! cross-region replication (Replication Time Control, metrics, replica modification sync, a least-privilege
//! replication role per direction), and the DynamoDB global table for storefront sessions (replica in the
//! standby region, point-in-time recovery, TTL, KMS, on-demand).
//!
//! Two-way replication follows
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-for-metadata-changes.html>: a rule from
//! each bucket to the other, both with replica modification sync. Objects written in the standby while it is
//! active reach the primary's bucket, so they are there after a failback.
//!
//! S3 refuses a replication rule whose destination bucket does not exist yet, so the two rules cannot both be
//! created in one pass: the standby stack is deployed first (it is the primary rule's destination) with its
//! rule back to the primary switched off by the [`REPLICATE_TO_PRIMARY_PARAMETER`] parameter (default
//! `false`); once the primary's bucket exists, the same `lifeboat deploy` applies the standby stack again
//! with `true` (the parameter is fed as "is storage-primary deployed", see docs/synth.md).
//!
//! Bucket names carry the account id (bucket names are global across all AWS accounts).

use lifeboat_cfn::resources::{dynamodb, iam, s3};
use lifeboat_cfn::{Expr, get_att, if_, join, no_value, r, sub};
use lifeboat_config::{Config, Role};
use serde_json::{Value, json};

use crate::database::keep;
use crate::util::{
    Stack, allow, arn_in, assume_role, block_public_access, bucket_arn, deny_insecure_transport,
    inline_policy, kms_key, policy_document, stack_id, tag_list, with_condition,
};

pub const COMPONENT: &str = "storage";
/// Partition key of the sessions table (string), as the storefront reads and writes it.
pub const SESSIONS_KEY: &str = "id";
/// TTL attribute of the sessions table (epoch seconds).
pub const SESSIONS_TTL_ATTRIBUTE: &str = "expires_at";
/// Noncurrent object versions are kept this long, then expire.
pub const NONCURRENT_VERSION_DAYS: u32 = 30;
/// Template parameter of the standby storage stack that switches its replication rule back to the primary's
/// bucket on (`true`) or off (`false`, the default, for the first deployment, when that bucket does not exist
/// yet). Fed as "is `storage-primary` deployed": `lifeboat deploy` applies the standby stack again once the
/// primary's is created.
pub const REPLICATE_TO_PRIMARY_PARAMETER: &str = "ReplicateToPrimary";
/// The condition the parameter drives.
const REPLICATES_TO_PRIMARY: &str = "ReplicatesToPrimary";

/// Id of the replication rule from a bucket to the one in `destination_region` (a dimension of the S3
/// replication metrics).
pub fn replication_rule_id(destination_region: &str) -> String {
    format!("assets-to-{destination_region}")
}

/// The alias of the storage key (the same in both regions).
fn storage_key_alias(config: &Config) -> String {
    format!("alias/{}-storage", config.names().prefix())
}

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
        &storage_key_alias(config),
        "Encrypts the asset bucket and the sessions table",
        &[],
    );
    if let Some(key) = s.template.resources.get_mut("StorageKey") {
        key.stateful(keep(config));
    }

    let bucket_name = names.assets_bucket_pattern(&region);
    // The primary takes the standby bucket and key as replication destination and sessions replica key.
    let standby_key = (role == Role::Primary).then(|| {
        s.input(
            "StandbyStorageKeyArn",
            &stack_id(COMPONENT, Role::Standby),
            "StorageKeyArn",
        )
    });
    let replication = match &standby_key {
        Some(key) => replication_to_standby(config, &mut s, &bucket_name, key.clone()),
        None => replication_to_primary(config, &mut s, &bucket_name),
    };
    s.template
        .add(
            "AssetsBucket",
            s3::Bucket {
                bucket_name: Some(sub(bucket_name.clone())),
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
                replication_configuration: Some(replication),
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

/// The primary bucket's rule to the standby's bucket (an input from the standby stack, deployed first).
fn replication_to_standby(
    config: &Config,
    s: &mut Stack,
    source_bucket: &str,
    destination_key: Expr,
) -> Expr {
    let standby = stack_id(COMPONENT, Role::Standby);
    let destination_arn = s.input("StandbyAssetsBucketArn", &standby, "AssetsBucketArn");
    let encrypt = with_condition(
        allow(&["kms:Encrypt"], vec![destination_key.clone()]),
        json!({ "StringLike": { "kms:ViaService": format!("s3.{}.amazonaws.com", config.regions.standby) } }),
    );
    replication(
        config,
        s,
        Role::Primary,
        source_bucket,
        destination_arn,
        destination_key,
        encrypt,
    )
}

/// The standby bucket's rule back to the primary's bucket, switched by [`REPLICATE_TO_PRIMARY_PARAMETER`].
/// The primary's bucket and key come after this stack, so they are named rather than taken as inputs: the
/// bucket by its derived name, the key by its alias (S3 accepts an alias ARN as the replica key,
/// <https://docs.aws.amazon.com/AmazonS3/latest/API/API_EncryptionConfiguration.html>), and the role's
/// permission to encrypt by the `kms:ResourceAliases` condition, since IAM authorizes against the key ARN
/// (<https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-resource-aliases>).
fn replication_to_primary(config: &Config, s: &mut Stack, source_bucket: &str) -> Expr {
    let names = config.names();
    let primary = &config.regions.primary;
    s.stack_deployed(
        REPLICATE_TO_PRIMARY_PARAMETER,
        &stack_id(COMPONENT, Role::Primary),
        "Replicate the asset bucket back to the primary's (true once the primary's bucket exists; set by lifeboat deploy)",
    );
    s.template.condition(
        REPLICATES_TO_PRIMARY,
        Expr::Equals(
            Box::new(r(REPLICATE_TO_PRIMARY_PARAMETER)),
            Box::new("true".into()),
        ),
    );
    let destination_arn = bucket_arn(&names.assets_bucket_pattern(primary));
    let destination_key = arn_in("kms", primary, &storage_key_alias(config));
    let encrypt = with_condition(
        allow(&["kms:Encrypt"], vec![arn_in("kms", primary, "key/*")]),
        json!({
            "StringLike": { "kms:ViaService": format!("s3.{primary}.amazonaws.com") },
            "ForAnyValue:StringEquals": { "kms:ResourceAliases": storage_key_alias(config) }
        }),
    );
    let rules = replication(
        config,
        s,
        Role::Standby,
        source_bucket,
        destination_arn,
        destination_key,
        encrypt,
    );
    if let Some(role) = s.template.resources.get_mut("ReplicationRole") {
        role.condition(REPLICATES_TO_PRIMARY);
    }
    if_(REPLICATES_TO_PRIMARY, rules, no_value())
}

/// The replication rule from this stack's bucket to the other region's, and the role S3 assumes for it.
fn replication(
    config: &Config,
    s: &mut Stack,
    source_role: Role,
    source_bucket: &str,
    destination_arn: Expr,
    destination_key: Expr,
    encrypt_statement: Value,
) -> Expr {
    let source_region = config.region(source_role);
    let destination_region = config.region(source_role.other());
    let source_arn = bucket_arn(source_bucket);
    let source_objects = join("", vec![source_arn.clone(), "/*".into()]);
    let destination_objects = join("", vec![destination_arn.clone(), "/*".into()]);
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
            json!({ "StringLike": { "kms:ViaService": format!("s3.{source_region}.amazonaws.com") } }),
        ),
        encrypt_statement,
    ];
    s.template.add(
        "ReplicationRole",
        iam::Role {
            assume_role_policy_document: assume_role("s3.amazonaws.com"),
            description: Some(
                format!("S3 replication of the asset bucket to {destination_region}").into(),
            ),
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
            "Id": replication_rule_id(destination_region),
            "Status": "Enabled",
            "Priority": 1,
            "Filter": { "Prefix": "" },
            "DeleteMarkerReplication": { "Status": "Enabled" },
            "SourceSelectionCriteria": {
                "SseKmsEncryptedObjects": { "Status": "Enabled" },
                // Metadata changes made to replicas (tags, ACLs) flow back: the two-way setup of the S3 guide.
                "ReplicaModifications": { "Status": "Enabled" }
            },
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
