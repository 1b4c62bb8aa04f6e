//! Compute, per region: the storefront Lambda function in the app subnets (code location from parameters,
//! filled by the deploy engine), its least-privilege role and log group, and an internet-facing application
//! load balancer with a Lambda target group: HTTPS with the configured certificate and HTTP redirecting to
//! it, or plain HTTP when no certificate is configured. Access logs go to a bucket of their own.

use lifeboat_cfn::resources::{elbv2, iam, lambda, s3};
use lifeboat_cfn::{Expr, get_att, join, r, sub};
use lifeboat_config::{Config, Role};
use lifeboat_contract::manifest::ArtifactPart;
use serde_json::{Value, json};

use crate::util::{
    Stack, allow, arn, arn_in, assume_role, block_public_access, deny_insecure_transport,
    inline_policy, log_group, policy_document, stack_id, with_condition,
};

pub const COMPONENT: &str = "compute";
/// The artifact name of the storefront code package in the manifest.
pub const ARTIFACT: &str = "storefront";
/// TLS policy of the HTTPS listener: TLS 1.3 and 1.2 only.
pub const TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";
/// Prefix of the access log objects in the log bucket.
pub const ACCESS_LOG_PREFIX: &str = "alb";

/// Environment variables of the storefront function, in the order they are set.
pub mod env {
    pub const REGION: &str = "LIFEBOAT_REGION";
    pub const DATABASE_SECRET_ARN: &str = "DATABASE_SECRET_ARN";
    /// The region's cluster (writer) endpoint. In a secondary region it is inactive until that cluster is
    /// promoted: only the primary cluster's endpoint takes writes
    /// (<https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-connecting.html>).
    pub const DATABASE_HOST: &str = "DATABASE_HOST";
    /// The region's reader endpoint: the one that answers in a passive (secondary) region.
    pub const DATABASE_READER_HOST: &str = "DATABASE_READER_HOST";
    pub const DATABASE_NAME: &str = "DATABASE_NAME";
    pub const SESSIONS_TABLE: &str = "SESSIONS_TABLE";
    pub const ASSETS_BUCKET: &str = "ASSETS_BUCKET";
    pub const CONTROL_SSM_PREFIX: &str = "CONTROL_SSM_PREFIX";
    /// The DR journal table, whose control items decide whether this region may write.
    pub const CONTROL_TABLE: &str = "CONTROL_TABLE";
    /// The other region of the pair: its replica of the control table is read too.
    pub const PEER_REGION: &str = "LIFEBOAT_PEER_REGION";
}

/// Elastic Load Balancing's log-delivery account in regions opened before August 2022. Newer regions accept
/// the log-delivery service principal instead.
const ELB_LOG_ACCOUNTS: &[(&str, &str)] = &[
    ("af-south-1", "098369216593"),
    ("ap-east-1", "754344448648"),
    ("ap-northeast-1", "582318560864"),
    ("ap-northeast-2", "600734575887"),
    ("ap-northeast-3", "383597477331"),
    ("ap-south-1", "718504428378"),
    ("ap-southeast-1", "114774131450"),
    ("ap-southeast-2", "783225319266"),
    ("ap-southeast-3", "589379963580"),
    ("ca-central-1", "985666609251"),
    ("eu-central-1", "054676820928"),
    ("eu-north-1", "897822967062"),
    ("eu-south-1", "635631232127"),
    ("eu-west-1", "156460612806"),
    ("eu-west-2", "652711504416"),
    ("eu-west-3", "009996457667"),
    ("me-south-1", "076674570225"),
    ("sa-east-1", "507241528517"),
    ("us-east-1", "127311923021"),
    ("us-east-2", "033677994240"),
    ("us-west-1", "027434742980"),
    ("us-west-2", "797873946194"),
];

/// Name of the target group (at most 32 characters); the invoke permission names it in its source ARN.
pub fn target_group_name(config: &Config) -> String {
    let mut name = format!("{}-storefront", config.names().prefix());
    name.truncate(32);
    name.trim_end_matches('-').to_string()
}

pub fn build(config: &Config, role: Role) -> Stack {
    let names = config.names();
    let region = config.region(role).to_string();
    let mut s = Stack::new(
        config,
        COMPONENT,
        role,
        "storefront Lambda function behind an application load balancer",
    );

    let networking = stack_id(crate::networking::COMPONENT, role);
    let public_subnets = s.input_list("PublicSubnetIds", &networking, "PublicSubnetIds");
    let app_subnets = s.input_list("AppSubnetIds", &networking, "AppSubnetIds");
    let alb_group = s.input("AlbSecurityGroupId", &networking, "AlbSecurityGroupId");
    let app_group = s.input("AppSecurityGroupId", &networking, "AppSecurityGroupId");
    let database = stack_id(crate::database::COMPONENT, role);
    let database_host = s.input("DatabaseHost", &database, "ClusterEndpoint");
    let database_reader_host = s.input("DatabaseReaderHost", &database, "ReaderEndpoint");
    // The storefront's own credentials (not the master's) live in the primary region, replicated to the standby.
    let database_primary = stack_id(crate::database::COMPONENT, Role::Primary);
    let secret_arn = match role {
        Role::Primary => s.input("DatabaseSecretArn", &database_primary, "AppSecretArn"),
        Role::Standby => s.input(
            "DatabaseSecretArn",
            &database_primary,
            "AppSecretReplicaArn",
        ),
    };
    let storage = stack_id(crate::storage::COMPONENT, role);
    let assets_bucket = s.input("AssetsBucketName", &storage, "AssetsBucketName");
    let assets_arn = s.input("AssetsBucketArn", &storage, "AssetsBucketArn");
    let storage_key = s.input("StorageKeyArn", &storage, "StorageKeyArn");
    // The sessions table (both replicas) is created by the primary storage stack.
    s.needs(&stack_id(crate::storage::COMPONENT, Role::Primary));
    let code_bucket = s.artifact("StorefrontCodeBucket", ARTIFACT, ArtifactPart::Bucket);
    let code_key = s.artifact("StorefrontCodeKey", ARTIFACT, ArtifactPart::Key);

    let function_name = names.storefront_function();
    let log_group_name = lifeboat_config::Names::lambda_log_group(&function_name);
    let log_group_arn = log_group(&mut s, "StorefrontLogGroup", &log_group_name);
    let sessions_arn = arn("dynamodb", &format!("table/{}", names.sessions_table()));

    let mut statements = vec![
        allow(
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            vec![join("", vec![log_group_arn, ":*".into()])],
        ),
        vpc_access_statement(),
        allow(
            &[
                "ssm:GetParameter",
                "ssm:GetParameters",
                "ssm:GetParametersByPath",
            ],
            vec![
                arn("ssm", &format!("parameter{}", names.ssm_prefix())),
                arn("ssm", &format!("parameter{}/*", names.ssm_prefix())),
            ],
        ),
        // The control items only (partition `control` of the journal table), in both regions' replicas.
        with_condition(
            allow(
                &["dynamodb:Query"],
                Role::BOTH
                    .iter()
                    .map(|r| {
                        arn_in(
                            "dynamodb",
                            config.region(*r),
                            &format!("table/{}", names.journal_table()),
                        )
                    })
                    .collect(),
            ),
            json!({
                "ForAllValues:StringEquals": {
                    "dynamodb:LeadingKeys": [lifeboat_contract::control::item::PARTITION]
                }
            }),
        ),
        allow(
            &[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
                "dynamodb:ConditionCheckItem",
            ],
            vec![sessions_arn],
        ),
        allow(&["s3:ListBucket"], vec![assets_arn.clone()]),
        allow(
            &["s3:GetObject", "s3:PutObject"],
            vec![join("", vec![assets_arn, "/*".into()])],
        ),
        allow(&["kms:Decrypt", "kms:GenerateDataKey"], vec![storage_key]),
        allow(&["secretsmanager:GetSecretValue"], vec![secret_arn.clone()]),
    ];
    if role == Role::Primary {
        // The primary secret is encrypted with the database key; the standby replica with the AWS-managed key.
        let database_key = s.input("DatabaseKeyArn", &database_primary, "DatabaseKeyArn");
        statements.push(allow(&["kms:Decrypt"], vec![database_key]));
    }
    s.template.add(
        "StorefrontRole",
        iam::Role {
            assume_role_policy_document: assume_role("lambda.amazonaws.com"),
            description: Some("Storefront function: its log group, VPC access, DR control parameters, sessions, assets, database secret".into()),
            policies: Some(Expr::json(json!([inline_policy("storefront", statements)]))),
            managed_policy_arns: None,
        },
    );

    let environment = json!({
        "Variables": {
            env::REGION: region,
            env::DATABASE_SECRET_ARN: secret_arn,
            env::DATABASE_HOST: database_host,
            env::DATABASE_READER_HOST: database_reader_host,
            env::DATABASE_NAME: config.database.name,
            env::SESSIONS_TABLE: names.sessions_table(),
            env::ASSETS_BUCKET: assets_bucket,
            env::CONTROL_SSM_PREFIX: names.ssm_prefix(),
            env::CONTROL_TABLE: names.journal_table(),
            env::PEER_REGION: config.region(role.other()),
        }
    });
    s.template.add(
        "StorefrontFunction",
        lambda::Function {
            function_name: Some(function_name.clone().into()),
            description: Some("The storefront: catalog, carts, checkout, orders".into()),
            runtime: Some("provided.al2023".into()),
            handler: Some("bootstrap".into()),
            role: get_att("StorefrontRole", "Arn"),
            code: Expr::json(json!({ "S3Bucket": code_bucket, "S3Key": code_key })),
            architectures: Some(Expr::list(["x86_64"])),
            memory_size: Some(512.into()),
            timeout: Some(30.into()),
            environment: Some(Expr::json(environment)),
            vpc_config: Some(Expr::json(
                json!({ "SubnetIds": app_subnets, "SecurityGroupIds": [app_group] }),
            )),
            logging_config: Some(Expr::json(
                json!({ "LogGroup": r("StorefrontLogGroup"), "LogFormat": "JSON" }),
            )),
            reserved_concurrent_executions: None,
        },
    );

    load_balancer(config, &mut s, role, public_subnets, alb_group);

    s.output(
        "FunctionName",
        r("StorefrontFunction"),
        "Storefront function name",
    );
    s.output(
        "FunctionArn",
        get_att("StorefrontFunction", "Arn"),
        "Storefront function ARN",
    );
    s.output(
        "AlbDnsName",
        get_att("LoadBalancer", "DNSName"),
        "Load balancer DNS name",
    );
    s.output(
        "AlbCanonicalHostedZoneId",
        get_att("LoadBalancer", "CanonicalHostedZoneID"),
        "Hosted zone of the load balancer's DNS name (for alias records)",
    );
    s.output(
        "AlbFullName",
        get_att("LoadBalancer", "LoadBalancerFullName"),
        "Load balancer name as CloudWatch metrics use it",
    );
    s.output(
        "TargetGroupFullName",
        get_att("TargetGroup", "TargetGroupFullName"),
        "Target group name as CloudWatch metrics use it",
    );
    s.output(
        "AccessLogsBucketName",
        r("AccessLogsBucket"),
        "Bucket of the load balancer access logs",
    );
    s.output(
        "HealthCheckProtocol",
        protocol(config, role).into(),
        "Protocol Route 53 health checks use on this load balancer",
    );
    crate::hardening::compute(config, &mut s, role);
    s
}

/// `HTTPS` when the region has a certificate, else `HTTP`.
pub fn protocol(config: &Config, role: Role) -> &'static str {
    if config.certificate(role).is_some() {
        "HTTPS"
    } else {
        "HTTP"
    }
}

/// Network interface management for a function in a VPC. These EC2 actions support no resource-level
/// restriction, hence `*` (listed in `crate::IAM_WILDCARD_EXCEPTIONS`).
pub fn vpc_access_statement() -> Value {
    allow(
        &[
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        ],
        vec!["*".into()],
    )
}

fn load_balancer(config: &Config, s: &mut Stack, role: Role, subnets: Expr, security_group: Expr) {
    let names = config.names();
    let region = config.region(role).to_string();

    // Access logs: ALB log delivery supports only S3-managed encryption (SSE-S3), not KMS.
    s.template
        .add(
            "AccessLogsBucket",
            s3::Bucket {
                // The account id in the name: bucket names are global across accounts.
                bucket_name: Some(sub(names.alb_logs_bucket_pattern(&region))),
                versioning_configuration: Some(Expr::json(json!({ "Status": "Enabled" }))),
                bucket_encryption: Some(Expr::json(json!({
                    "ServerSideEncryptionConfiguration": [{ "ServerSideEncryptionByDefault": { "SSEAlgorithm": "AES256" } }]
                }))),
                public_access_block_configuration: Some(block_public_access()),
                ownership_controls: Some(Expr::json(json!({ "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }] }))),
                lifecycle_configuration: Some(Expr::json(json!({
                    "Rules": [{
                        "Id": "expire-access-logs",
                        "Status": "Enabled",
                        "ExpirationInDays": 90,
                        "NoncurrentVersionExpiration": { "NoncurrentDays": 7 },
                        "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 7 }
                    }]
                }))),
                replication_configuration: None,
            },
        )
        .stateful(crate::database::keep(config));
    let logs_arn = get_att("AccessLogsBucket", "Arn");
    let delivery_principal = match ELB_LOG_ACCOUNTS.iter().find(|(r, _)| *r == region) {
        Some((_, account)) => {
            json!({ "AWS": sub(format!("arn:${{AWS::Partition}}:iam::{account}:root")) })
        }
        None => json!({ "Service": "logdelivery.elasticloadbalancing.amazonaws.com" }),
    };
    s.template.add(
        "AccessLogsBucketPolicy",
        s3::BucketPolicy {
            bucket: r("AccessLogsBucket"),
            policy_document: Expr::json(policy_document(vec![
                deny_insecure_transport(&logs_arn),
                json!({
                    "Sid": "LoadBalancerLogDelivery",
                    "Effect": "Allow",
                    "Principal": delivery_principal,
                    "Action": "s3:PutObject",
                    "Resource": join("", vec![logs_arn.clone(), sub(format!("/{ACCESS_LOG_PREFIX}/AWSLogs/${{AWS::AccountId}}/*"))])
                }),
            ])),
        },
    );

    let attribute = |key: &str, value: Expr| json!({ "Key": key, "Value": value });
    s.template
        .add(
            "LoadBalancer",
            elbv2::LoadBalancer {
                name: Some(names.load_balancer().into()),
                scheme: Some("internet-facing".into()),
                load_balancer_type: Some("application".into()),
                ip_address_type: Some("ipv4".into()),
                subnets: Some(subnets),
                security_groups: Some(Expr::list([security_group])),
                load_balancer_attributes: Some(Expr::json(json!([
                    attribute("access_logs.s3.enabled", "true".into()),
                    attribute("access_logs.s3.bucket", r("AccessLogsBucket")),
                    attribute("access_logs.s3.prefix", ACCESS_LOG_PREFIX.into()),
                    attribute(
                        "routing.http.drop_invalid_header_fields.enabled",
                        "true".into()
                    ),
                    attribute(
                        "deletion_protection.enabled",
                        config.deletion_protection().to_string().into()
                    ),
                ]))),
            },
        )
        // The load balancer checks it may write its logs when it is created.
        .depends_on("AccessLogsBucketPolicy");

    let target_group = target_group_name(config);
    s.template.add(
        "StorefrontInvokePermission",
        lambda::Permission {
            action: "lambda:InvokeFunction".into(),
            function_name: get_att("StorefrontFunction", "Arn"),
            principal: "elasticloadbalancing.amazonaws.com".into(),
            // By name, not by reference: the target group can only be created once this permission exists.
            source_arn: Some(arn(
                "elasticloadbalancing",
                &format!("targetgroup/{target_group}/*"),
            )),
            source_account: None,
        },
    );
    s.template
        .add(
            "TargetGroup",
            elbv2::TargetGroup {
                name: Some(target_group.into()),
                target_type: Some("lambda".into()),
                targets: Some(Expr::json(
                    json!([{ "Id": get_att("StorefrontFunction", "Arn") }]),
                )),
                health_check_enabled: Some(true.into()),
                health_check_path: Some(config.health_check.path.clone().into()),
                health_check_interval_seconds: Some(35.into()),
                health_check_timeout_seconds: Some(30.into()),
                healthy_threshold_count: Some(2.into()),
                unhealthy_threshold_count: Some(2.into()),
                matcher: Some(Expr::json(json!({ "HttpCode": "200" }))),
                target_group_attributes: Some(Expr::json(json!([attribute(
                    "lambda.multi_value_headers.enabled",
                    "false".into()
                )]))),
            },
        )
        .depends_on("StorefrontInvokePermission");

    let forward = json!([{ "Type": "forward", "TargetGroupArn": r("TargetGroup") }]);
    match config.certificate(role) {
        Some(certificate) => {
            s.template.add(
                "HttpsListener",
                elbv2::Listener {
                    load_balancer_arn: r("LoadBalancer"),
                    port: Some(443.into()),
                    protocol: Some("HTTPS".into()),
                    certificates: Some(Expr::json(json!([{ "CertificateArn": certificate }]))),
                    ssl_policy: Some(TLS_POLICY.into()),
                    default_actions: Expr::json(forward),
                },
            );
            s.template.add(
                "HttpListener",
                elbv2::Listener {
                    load_balancer_arn: r("LoadBalancer"),
                    port: Some(80.into()),
                    protocol: Some("HTTP".into()),
                    certificates: None,
                    ssl_policy: None,
                    default_actions: Expr::json(json!([{
                        "Type": "redirect",
                        "RedirectConfig": { "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301" }
                    }])),
                },
            );
        }
        None => {
            s.template.add(
                "HttpListener",
                elbv2::Listener {
                    load_balancer_arn: r("LoadBalancer"),
                    port: Some(80.into()),
                    protocol: Some("HTTP".into()),
                    certificates: None,
                    ssl_policy: None,
                    default_actions: Expr::json(forward),
                },
            );
        }
    }
}
