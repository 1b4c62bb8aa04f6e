//! Where each resource type takes its tags. Types that cannot be tagged are listed explicitly, so a new
//! type we start using is not silently left untagged: a test checks every synthesized resource type is here.

/// How a resource type takes tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagStyle {
    /// A list of `{Key, Value}` under this property.
    List(&'static str),
    /// A `{key: value}` object under this property.
    Map(&'static str),
    /// The type has no tags in CloudFormation.
    NotTaggable,
}

/// Tag styles of the types lifeboat uses (from the CloudFormation resource schemas).
pub const TAG_STYLES: &[(&str, TagStyle)] = &[
    ("AWS::Backup::BackupPlan", TagStyle::Map("BackupPlanTags")),
    ("AWS::Backup::BackupSelection", TagStyle::NotTaggable),
    ("AWS::Backup::BackupVault", TagStyle::Map("BackupVaultTags")),
    ("AWS::CloudWatch::Alarm", TagStyle::List("Tags")),
    ("AWS::CloudWatch::Dashboard", TagStyle::List("Tags")),
    ("AWS::DynamoDB::GlobalTable", TagStyle::NotTaggable), // tagged per replica, see platform::storage
    ("AWS::DynamoDB::Table", TagStyle::List("Tags")),
    ("AWS::EC2::EIP", TagStyle::List("Tags")),
    ("AWS::EC2::FlowLog", TagStyle::List("Tags")),
    ("AWS::EC2::InternetGateway", TagStyle::List("Tags")),
    ("AWS::EC2::NatGateway", TagStyle::List("Tags")),
    ("AWS::EC2::Route", TagStyle::NotTaggable),
    ("AWS::EC2::RouteTable", TagStyle::List("Tags")),
    ("AWS::EC2::SecurityGroup", TagStyle::List("Tags")),
    ("AWS::EC2::SecurityGroupEgress", TagStyle::NotTaggable),
    ("AWS::EC2::SecurityGroupIngress", TagStyle::NotTaggable),
    ("AWS::EC2::Subnet", TagStyle::List("Tags")),
    (
        "AWS::EC2::SubnetRouteTableAssociation",
        TagStyle::NotTaggable,
    ),
    ("AWS::EC2::VPC", TagStyle::List("Tags")),
    ("AWS::EC2::VPCEndpoint", TagStyle::List("Tags")),
    ("AWS::EC2::VPCGatewayAttachment", TagStyle::NotTaggable),
    (
        "AWS::ElasticLoadBalancingV2::Listener",
        TagStyle::List("Tags"),
    ),
    (
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        TagStyle::List("Tags"),
    ),
    (
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        TagStyle::List("Tags"),
    ),
    ("AWS::Events::Rule", TagStyle::List("Tags")),
    ("AWS::IAM::Role", TagStyle::List("Tags")),
    ("AWS::IAM::RolePolicy", TagStyle::NotTaggable),
    ("AWS::KMS::Alias", TagStyle::NotTaggable),
    ("AWS::KMS::Key", TagStyle::List("Tags")),
    ("AWS::Lambda::EventInvokeConfig", TagStyle::NotTaggable),
    ("AWS::Lambda::Function", TagStyle::List("Tags")),
    ("AWS::Lambda::Permission", TagStyle::NotTaggable),
    ("AWS::Logs::LogGroup", TagStyle::List("Tags")),
    ("AWS::RDS::DBCluster", TagStyle::List("Tags")),
    ("AWS::RDS::DBInstance", TagStyle::List("Tags")),
    ("AWS::RDS::DBSubnetGroup", TagStyle::List("Tags")),
    ("AWS::RDS::GlobalCluster", TagStyle::List("Tags")),
    (
        "AWS::Route53::HealthCheck",
        TagStyle::List("HealthCheckTags"),
    ),
    ("AWS::Route53::HostedZone", TagStyle::List("HostedZoneTags")),
    ("AWS::Route53::RecordSet", TagStyle::NotTaggable),
    ("AWS::S3::Bucket", TagStyle::List("Tags")),
    ("AWS::S3::BucketPolicy", TagStyle::NotTaggable),
    (
        "AWS::SecretsManager::RotationSchedule",
        TagStyle::NotTaggable,
    ),
    ("AWS::SecretsManager::Secret", TagStyle::List("Tags")),
    ("AWS::SNS::Subscription", TagStyle::NotTaggable),
    ("AWS::SNS::Topic", TagStyle::List("Tags")),
    ("AWS::SNS::TopicPolicy", TagStyle::NotTaggable),
    ("AWS::SQS::Queue", TagStyle::List("Tags")),
    ("AWS::SQS::QueuePolicy", TagStyle::NotTaggable),
    ("AWS::SSM::Parameter", TagStyle::Map("Tags")),
    ("AWS::StepFunctions::StateMachine", TagStyle::List("Tags")),
];

/// The tag style of `kind`; unknown types are treated as not taggable (and flagged by a platform test).
pub fn tag_style(kind: &str) -> TagStyle {
    TAG_STYLES
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(TagStyle::NotTaggable, |(_, s)| *s)
}

/// Whether `kind` is listed in [`TAG_STYLES`].
pub fn is_known_type(kind: &str) -> bool {
    TAG_STYLES.iter().any(|(k, _)| *k == kind)
}
