//! Amazon S3.

use crate::Expr;

resource!(Bucket = "AWS::S3::Bucket" {
    bucket_name: Option<Expr>,
    versioning_configuration: Option<Expr>,
    bucket_encryption: Option<Expr>,
    public_access_block_configuration: Option<Expr>,
    ownership_controls: Option<Expr>,
    lifecycle_configuration: Option<Expr>,
    replication_configuration: Option<Expr>,
});

resource!(BucketPolicy = "AWS::S3::BucketPolicy" {
    bucket: Expr,
    policy_document: Expr,
});
