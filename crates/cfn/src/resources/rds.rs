//! Amazon Aurora (RDS).

use crate::Expr;

resource!(GlobalCluster = "AWS::RDS::GlobalCluster" {
    global_cluster_identifier: Option<Expr>,
    engine: Option<Expr>,
    engine_version: Option<Expr>,
    storage_encrypted: Option<Expr>,
    deletion_protection: Option<Expr>,
    #[serde(rename = "SourceDBClusterIdentifier")]
    source_db_cluster_identifier: Option<Expr>,
});

resource!(DbSubnetGroup = "AWS::RDS::DBSubnetGroup" {
    #[serde(rename = "DBSubnetGroupDescription")]
    db_subnet_group_description: Expr,
    subnet_ids: Expr,
    #[serde(rename = "DBSubnetGroupName")]
    db_subnet_group_name: Option<Expr>,
});

resource!(DbCluster = "AWS::RDS::DBCluster" {
    #[serde(rename = "DBClusterIdentifier")]
    db_cluster_identifier: Option<Expr>,
    engine: Option<Expr>,
    engine_version: Option<Expr>,
    global_cluster_identifier: Option<Expr>,
    database_name: Option<Expr>,
    master_username: Option<Expr>,
    master_user_password: Option<Expr>,
    #[serde(rename = "DBSubnetGroupName")]
    db_subnet_group_name: Option<Expr>,
    vpc_security_group_ids: Option<Expr>,
    storage_encrypted: Option<Expr>,
    kms_key_id: Option<Expr>,
    backup_retention_period: Option<Expr>,
    preferred_backup_window: Option<Expr>,
    deletion_protection: Option<Expr>,
    enable_cloudwatch_logs_exports: Option<Expr>,
    #[serde(rename = "EnableIAMDatabaseAuthentication")]
    enable_iam_database_authentication: Option<Expr>,
    serverless_v2_scaling_configuration: Option<Expr>,
    copy_tags_to_snapshot: Option<Expr>,
    port: Option<Expr>,
});

resource!(DbInstance = "AWS::RDS::DBInstance" {
    #[serde(rename = "DBInstanceClass")]
    db_instance_class: Expr,
    engine: Option<Expr>,
    #[serde(rename = "DBClusterIdentifier")]
    db_cluster_identifier: Option<Expr>,
    #[serde(rename = "DBInstanceIdentifier")]
    db_instance_identifier: Option<Expr>,
    availability_zone: Option<Expr>,
    publicly_accessible: Option<Expr>,
    promotion_tier: Option<Expr>,
    auto_minor_version_upgrade: Option<Expr>,
});
