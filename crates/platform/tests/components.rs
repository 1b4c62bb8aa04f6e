//! Properties of the synthesized templates, asserted on the JSON CloudFormation would receive.

use std::collections::BTreeSet;

use lifeboat_cfn::tags::{TagStyle, is_known_type, tag_style};
use lifeboat_config::Config;
use lifeboat_contract::manifest::ParameterSource;
use lifeboat_platform::{IAM_WILDCARD_EXCEPTIONS, Synthesis, synthesize};
use serde_json::{Value, json};

fn default_synthesis() -> Synthesis {
    synthesize(&Config::default()).expect("the default config synthesizes")
}

/// 3 AZs, NAT per AZ, certificates, e-mails, a non-dev environment, a user tag.
fn full_config() -> Config {
    let text = r#"
[project]
environment = "prod"
[tags]
CostCenter = "1234"
[certificates]
primary = "arn:aws:acm:us-east-1:123456789012:certificate/0f3c6b7e-1111-2222-3333-444455556666"
standby = "arn:aws:acm:us-west-2:123456789012:certificate/0f3c6b7e-1111-2222-3333-777788889999"
[alerts]
emails = ["ops@example.com", "oncall@example.com"]
[network]
az_count = 3
nat_gateways = "per-az"
"#;
    Config::from_toml_str(text, "full.toml").unwrap()
}

fn json_of(synthesis: &Synthesis, stack: &str) -> Value {
    synthesis
        .template(stack)
        .unwrap_or_else(|| panic!("no stack {stack}"))
        .to_json()
}

/// (stack id, logical id, resource JSON) of every resource of every stack.
fn all_resources(synthesis: &Synthesis) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (entry, template) in &synthesis.stacks {
        let v = template.to_json();
        for (id, resource) in v["Resources"].as_object().unwrap() {
            out.push((entry.id.clone(), id.clone(), resource.clone()));
        }
    }
    out
}

fn of_type<'a>(
    resources: &'a [(String, String, Value)],
    kind: &str,
) -> Vec<&'a (String, String, Value)> {
    resources
        .iter()
        .filter(|(_, _, r)| r["Type"] == kind)
        .collect()
}

#[test]
fn twelve_stacks_in_both_regions_in_a_valid_order() {
    let s = default_synthesis();
    let ids: Vec<&str> = s.manifest.stacks.iter().map(|e| e.id.as_str()).collect();
    // Twelve regional stacks, and the detection stack in us-east-1 (see tests/detection_and_roles.rs).
    assert_eq!(ids.len(), 13);
    assert!(ids.contains(&"detection-route53"));
    for component in [
        "networking",
        "database",
        "storage",
        "compute",
        "monitoring",
        "dr-automation",
    ] {
        for role in ["primary", "standby"] {
            let id = format!("{component}-{role}");
            let entry = s
                .manifest
                .stack(&id)
                .unwrap_or_else(|| panic!("{id} missing"));
            assert_eq!(entry.name, format!("lifeboat-dev-{id}"));
            assert_eq!(
                entry.region,
                if role == "primary" {
                    "us-east-1"
                } else {
                    "us-west-2"
                }
            );
        }
    }
    for (position, entry) in s.manifest.stacks.iter().enumerate() {
        for dep in &entry.depends_on {
            let dep_position = ids.iter().position(|i| i == dep).unwrap();
            assert!(
                dep_position < position,
                "{} depends on {dep}, which comes later",
                entry.id
            );
        }
    }
    let pos = |id: &str| ids.iter().position(|i| *i == id).unwrap();
    assert!(
        pos("storage-standby") < pos("storage-primary"),
        "replication destination first"
    );
    assert!(
        pos("database-primary") < pos("database-standby"),
        "global cluster before the secondary"
    );
    assert!(
        s.manifest
            .stack("database-standby")
            .unwrap()
            .depends_on
            .contains(&"database-primary".to_string())
    );
    assert!(
        s.manifest
            .stack("storage-primary")
            .unwrap()
            .depends_on
            .contains(&"storage-standby".to_string())
    );
}

#[test]
fn every_parameter_is_fed_by_the_manifest_and_no_exports_exist() {
    let s = default_synthesis();
    for (entry, template) in &s.stacks {
        let v = template.to_json();
        let declared: BTreeSet<String> = v["Parameters"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let fed: BTreeSet<String> = entry.parameters.iter().map(|p| p.name.clone()).collect();
        assert_eq!(
            declared, fed,
            "{}: template parameters and manifest parameters differ",
            entry.id
        );
        for p in &entry.parameters {
            if let ParameterSource::StackOutput { stack, output } = &p.source {
                assert!(
                    entry.depends_on.contains(stack),
                    "{}: {} comes from {stack}, not a dependency",
                    entry.id,
                    p.name
                );
                assert!(
                    s.manifest.stack(stack).unwrap().outputs.contains(output),
                    "{stack} lacks output {output}"
                );
            }
        }
        let text = template.render().unwrap();
        for (name, output) in v["Outputs"].as_object().unwrap() {
            assert!(
                output.get("Export").is_none(),
                "{}: output {name} is exported",
                entry.id
            );
        }
        assert!(
            !text.contains("Fn::ImportValue"),
            "{} imports a value",
            entry.id
        );
        assert_eq!(
            entry.resource_count,
            v["Resources"].as_object().unwrap().len()
        );
        let outputs: Vec<String> = v["Outputs"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(entry.outputs, outputs);
    }
    let artifacts: BTreeSet<String> = s
        .manifest
        .stacks
        .iter()
        .flat_map(|e| e.parameters.iter())
        .filter_map(|p| match &p.source {
            ParameterSource::Artifact { artifact, .. } => Some(artifact.clone()),
            ParameterSource::StackOutput { .. } | ParameterSource::StackDeployed { .. } => None,
        })
        .collect();
    assert_eq!(
        artifacts,
        BTreeSet::from(["dr-automation".to_string(), "storefront".to_string()])
    );
}

#[test]
fn synthesis_is_deterministic() {
    for config in [Config::default(), full_config()] {
        let a = synthesize(&config).unwrap().render().unwrap();
        let b = synthesize(&config).unwrap().render().unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn networking_spans_the_configured_azs_with_three_tiers() {
    for (config, azs, nats) in [(Config::default(), 2, 1), (full_config(), 3, 3)] {
        let s = synthesize(&config).unwrap();
        for stack in ["networking-primary", "networking-standby"] {
            let v = json_of(&s, stack);
            let resources = v["Resources"].as_object().unwrap();
            let count = |kind: &str| resources.values().filter(|r| r["Type"] == kind).count();
            assert_eq!(count("AWS::EC2::Subnet"), 3 * azs, "{stack}");
            assert_eq!(count("AWS::EC2::NatGateway"), nats, "{stack}");
            assert_eq!(count("AWS::EC2::FlowLog"), 1);
            // Public subnets route to the internet gateway; database subnets have no default route.
            assert_eq!(
                resources["PublicDefaultRoute"]["Properties"]["GatewayId"],
                json!({"Ref": "InternetGateway"})
            );
            let data_routes = resources
                .values()
                .filter(|r| {
                    r["Type"] == "AWS::EC2::Route"
                        && r["Properties"]["RouteTableId"] == json!({"Ref": "DataRouteTable"})
                })
                .count();
            assert_eq!(data_routes, 0);
            let endpoints: BTreeSet<String> = resources
                .values()
                .filter(|r| r["Type"] == "AWS::EC2::VPCEndpoint")
                .map(|r| {
                    r["Properties"]["ServiceName"]["Fn::Sub"]
                        .as_str()
                        .unwrap()
                        .rsplit('.')
                        .next()
                        .unwrap()
                        .to_string()
                })
                .collect();
            assert_eq!(
                endpoints,
                BTreeSet::from(["dynamodb", "s3", "secretsmanager", "ssm"].map(String::from))
            );
        }
        let primary = json_of(&s, "networking-primary");
        assert_eq!(
            primary["Resources"]["HostedZone"]["Properties"]["Name"],
            config.dns.domain
        );
        assert!(
            json_of(&s, "networking-standby")["Resources"]
                .get("HostedZone")
                .is_none()
        );
    }
}

#[test]
fn security_groups_admit_only_what_they_should() {
    let s = default_synthesis();
    let v = json_of(&s, "networking-primary");
    let ingress: Vec<&Value> = v["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::EC2::SecurityGroupIngress")
        .collect();
    let rules_of = |group: &str| -> Vec<&Value> {
        ingress
            .iter()
            .filter(|r| r["Properties"]["GroupId"] == json!({"Ref": group}))
            .map(|r| &r["Properties"])
            .collect()
    };
    let db = rules_of("DatabaseSecurityGroup");
    // Only the storefront: the DR automation acts through the RDS API and never connects to MySQL.
    assert_eq!(db.len(), 1);
    let sources: BTreeSet<String> = db
        .iter()
        .map(|p| {
            assert_eq!(p["FromPort"], 3306);
            assert_eq!(p["ToPort"], 3306);
            assert!(p.get("CidrIp").is_none(), "database open to a CIDR");
            p["SourceSecurityGroupId"]["Ref"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(sources, BTreeSet::from(["AppSecurityGroup".to_string()]));

    let alb_ports: BTreeSet<i64> = rules_of("AlbSecurityGroup")
        .iter()
        .map(|p| p["FromPort"].as_i64().unwrap())
        .collect();
    assert_eq!(alb_ports, BTreeSet::from([80, 443]));
    let app = rules_of("AppSecurityGroup");
    assert_eq!(app.len(), 1);
    assert_eq!(
        app[0]["SourceSecurityGroupId"],
        json!({"Ref": "AlbSecurityGroup"})
    );
    assert!(rules_of("DrAutomationSecurityGroup").is_empty());
}

#[test]
fn aurora_is_a_serverless_v2_global_database_with_managed_credentials() {
    let s = default_synthesis();
    let primary = json_of(&s, "database-primary");
    let standby = json_of(&s, "database-standby");
    let global = &primary["Resources"]["GlobalCluster"]["Properties"];
    assert_eq!(global["Engine"], "aurora-mysql");
    assert_eq!(global["GlobalClusterIdentifier"], "lifeboat-dev-global");

    let p = &primary["Resources"]["Cluster"]["Properties"];
    assert_eq!(
        p["GlobalClusterIdentifier"],
        json!({"Ref": "GlobalCluster"})
    );
    assert_eq!(
        p["ServerlessV2ScalingConfiguration"],
        json!({"MinCapacity": 0.5, "MaxCapacity": 16.0})
    );
    assert_eq!(p["StorageEncrypted"], true);
    assert_eq!(
        p["DeletionProtection"], false,
        "dev has no deletion protection"
    );
    assert_eq!(
        p["EnableCloudwatchLogsExports"],
        json!(["audit", "error", "slowquery"])
    );
    assert_eq!(p["BackupRetentionPeriod"], 7);
    let password = p["MasterUserPassword"]["Fn::Sub"].as_str().unwrap();
    assert!(
        password.starts_with("{{resolve:secretsmanager:"),
        "password must be a dynamic reference: {password}"
    );

    // The secondary joins the global cluster and takes no credentials of its own.
    let sp = &standby["Resources"]["Cluster"]["Properties"];
    assert_eq!(
        sp["GlobalClusterIdentifier"],
        json!({"Ref": "GlobalClusterId"})
    );
    assert!(sp.get("MasterUsername").is_none() && sp.get("MasterUserPassword").is_none());
    assert_eq!(
        sp["ServerlessV2ScalingConfiguration"],
        json!({"MinCapacity": 0.5, "MaxCapacity": 16.0}),
        "the standby can carry the primary's load after a failover"
    );
    assert!(
        sp["KmsKeyId"].is_object(),
        "the secondary is encrypted with its own region's key"
    );
    let fed = s
        .manifest
        .stack("database-standby")
        .unwrap()
        .parameters
        .iter()
        .find(|p| p.name == "GlobalClusterId")
        .unwrap();
    assert_eq!(
        fed.source,
        ParameterSource::StackOutput {
            stack: "database-primary".into(),
            output: "GlobalClusterId".into()
        }
    );

    // Writer and reader in different AZs, all of class db.serverless.
    let instances: Vec<&Value> = primary["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::RDS::DBInstance")
        .collect();
    assert_eq!(instances.len(), 2);
    let azs: BTreeSet<String> = instances
        .iter()
        .map(|i| i["Properties"]["AvailabilityZone"].to_string())
        .collect();
    assert_eq!(azs.len(), 2);
    for i in instances {
        assert_eq!(i["Properties"]["DBInstanceClass"], "db.serverless");
        assert_eq!(i["Properties"]["PubliclyAccessible"], false);
    }
    let secret = &primary["Resources"]["DatabaseSecret"]["Properties"];
    assert_eq!(secret["ReplicaRegions"][0]["Region"], "us-west-2");
    assert!(
        secret.get("SecretString").is_none(),
        "the password is generated, never given"
    );

    let prod = synthesize(&full_config()).unwrap();
    assert_eq!(
        json_of(&prod, "database-primary")["Resources"]["Cluster"]["Properties"]["DeletionProtection"],
        true
    );
}

#[test]
fn buckets_are_encrypted_versioned_private_and_tls_only() {
    for config in [Config::default(), full_config()] {
        let s = synthesize(&config).unwrap();
        let resources = all_resources(&s);
        let buckets = of_type(&resources, "AWS::S3::Bucket");
        assert_eq!(
            buckets.len(),
            8,
            "assets, load balancer logs, S3 access logs and reports in both regions"
        );
        for (stack, id, bucket) in buckets {
            let p = &bucket["Properties"];
            assert_eq!(
                p["VersioningConfiguration"]["Status"], "Enabled",
                "{stack}/{id}"
            );
            let sse = &p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
                ["SSEAlgorithm"];
            assert!(sse == "aws:kms" || sse == "AES256", "{stack}/{id}: {sse}");
            for flag in [
                "BlockPublicAcls",
                "BlockPublicPolicy",
                "IgnorePublicAcls",
                "RestrictPublicBuckets",
            ] {
                assert_eq!(
                    p["PublicAccessBlockConfiguration"][flag], true,
                    "{stack}/{id} {flag}"
                );
            }
            assert!(
                p["LifecycleConfiguration"]["Rules"][0]["NoncurrentVersionExpiration"].is_object()
            );
            let policy = resources
                .iter()
                .find(|(st, _, r)| {
                    st == stack
                        && r["Type"] == "AWS::S3::BucketPolicy"
                        && r["Properties"]["Bucket"] == json!({"Ref": id})
                })
                .unwrap_or_else(|| panic!("{stack}/{id} has no bucket policy"));
            let denies_plain_http = policy.2["Properties"]["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .any(|st| {
                    st["Effect"] == "Deny"
                        && st["Condition"]["Bool"]["aws:SecureTransport"] == "false"
                });
            assert!(denies_plain_http, "{stack}/{id} allows plain HTTP");
        }
    }
}

#[test]
fn assets_replicate_to_the_standby_with_replication_time_control() {
    let s = default_synthesis();
    let v = json_of(&s, "storage-primary");
    let rule =
        &v["Resources"]["AssetsBucket"]["Properties"]["ReplicationConfiguration"]["Rules"][0];
    assert_eq!(
        rule["Destination"]["Bucket"],
        json!({"Ref": "StandbyAssetsBucketArn"})
    );
    assert_eq!(rule["Destination"]["ReplicationTime"]["Status"], "Enabled");
    assert_eq!(rule["Destination"]["Metrics"]["Status"], "Enabled");
    assert_eq!(
        rule["SourceSelectionCriteria"]["SseKmsEncryptedObjects"]["Status"],
        "Enabled"
    );
    // The standby's rule back is switched by a parameter (see tests/detection_and_roles.rs).
    assert_eq!(
        json_of(&s, "storage-standby")["Resources"]["AssetsBucket"]["Properties"]["ReplicationConfiguration"]
            ["Fn::If"][0],
        "ReplicatesToPrimary"
    );

    // The replication role writes only into the destination bucket's objects.
    let statements = v["Resources"]["ReplicationRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].as_array().unwrap();
    let replicate = statements
        .iter()
        .find(|st| {
            st["Action"]
                .as_array()
                .unwrap()
                .contains(&json!("s3:ReplicateObject"))
        })
        .unwrap();
    assert_eq!(
        replicate["Resource"],
        json!([{"Fn::Join": ["", [{"Ref": "StandbyAssetsBucketArn"}, "/*"]]}])
    );
}

#[test]
fn sessions_are_a_global_table_with_pitr_ttl_and_kms() {
    let s = default_synthesis();
    let v = json_of(&s, "storage-primary");
    let t = &v["Resources"]["SessionsTable"]["Properties"];
    assert_eq!(t["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(t["SSESpecification"]["SSEType"], "KMS");
    assert_eq!(t["TimeToLiveSpecification"]["Enabled"], true);
    let regions: Vec<&str> = t["Replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Region"].as_str().unwrap())
        .collect();
    assert_eq!(regions, ["us-east-1", "us-west-2"]);
    for replica in t["Replicas"].as_array().unwrap() {
        assert_eq!(
            replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
            true
        );
        assert!(replica["SSESpecification"]["KMSMasterKeyId"].is_object());
        assert!(
            replica["Tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["Key"] == "ManagedBy")
        );
    }
}

#[test]
fn compute_listens_https_with_a_certificate_and_http_only_without() {
    let plain = default_synthesis();
    let v = json_of(&plain, "compute-primary");
    assert!(v["Resources"].get("HttpsListener").is_none());
    assert_eq!(
        v["Resources"]["HttpListener"]["Properties"]["DefaultActions"][0]["Type"],
        "forward"
    );

    let tls = synthesize(&full_config()).unwrap();
    for stack in ["compute-primary", "compute-standby"] {
        let v = json_of(&tls, stack);
        let https = &v["Resources"]["HttpsListener"]["Properties"];
        assert_eq!(https["Port"], 443);
        assert!(
            https["Certificates"][0]["CertificateArn"]
                .as_str()
                .unwrap()
                .starts_with("arn:aws:acm:")
        );
        let http = &v["Resources"]["HttpListener"]["Properties"]["DefaultActions"][0];
        assert_eq!(http["Type"], "redirect");
        assert_eq!(http["RedirectConfig"]["Protocol"], "HTTPS");
    }
    let f = &v["Resources"]["StorefrontFunction"]["Properties"];
    let vars = f["Environment"]["Variables"].as_object().unwrap();
    for key in [
        "LIFEBOAT_REGION",
        "DATABASE_SECRET_ARN",
        "DATABASE_HOST",
        "SESSIONS_TABLE",
        "ASSETS_BUCKET",
        "CONTROL_SSM_PREFIX",
    ] {
        assert!(vars.contains_key(key), "storefront env lacks {key}");
    }
    assert_eq!(vars["CONTROL_SSM_PREFIX"], "/lifeboat/dev/dr");
    assert_eq!(
        f["Code"],
        json!({"S3Bucket": {"Ref": "StorefrontCodeBucket"}, "S3Key": {"Ref": "StorefrontCodeKey"}})
    );
    assert_eq!(f["VpcConfig"]["SubnetIds"], json!({"Ref": "AppSubnetIds"}));
    let lb = &v["Resources"]["LoadBalancer"]["Properties"];
    assert_eq!(lb["Scheme"], "internet-facing");
    let attrs = lb["LoadBalancerAttributes"].as_array().unwrap();
    assert!(attrs.contains(&json!({"Key": "access_logs.s3.enabled", "Value": "true"})));
    assert_eq!(
        v["Resources"]["TargetGroup"]["Properties"]["TargetType"],
        "lambda"
    );
}

#[test]
fn every_log_group_has_a_retention() {
    let s = synthesize(&full_config()).unwrap();
    let resources = all_resources(&s);
    let groups = of_type(&resources, "AWS::Logs::LogGroup");
    assert!(
        groups.len() >= 6,
        "flow logs, storefront and DR automation in both regions"
    );
    for (stack, id, g) in groups {
        assert!(
            g["Properties"]["RetentionInDays"]
                .as_u64()
                .is_some_and(|d| d > 0),
            "{stack}/{id} keeps logs forever"
        );
    }
    // Lambda functions write to the group we created (not an unmanaged one without retention).
    for (stack, id, f) in of_type(&resources, "AWS::Lambda::Function") {
        assert!(
            f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"].is_string(),
            "{stack}/{id}"
        );
    }
}

#[test]
fn monitoring_has_health_checks_alarms_topic_and_dashboards() {
    let s = synthesize(&full_config()).unwrap();
    let v = json_of(&s, "monitoring-primary");
    let r = v["Resources"].as_object().unwrap();
    for check in ["PrimaryHealthCheck", "StandbyHealthCheck"] {
        let c = &r[check]["Properties"]["HealthCheckConfig"];
        assert_eq!(c["ResourcePath"], "/health");
        assert_eq!(c["Type"], "HTTPS");
        assert_eq!(c["RequestInterval"], 10);
        assert_eq!(c["FailureThreshold"], 3);
    }
    assert!(
        r["AlertTopic"]["Properties"]["KmsMasterKeyId"].is_object(),
        "topic is KMS-encrypted"
    );
    let subscriptions: Vec<&Value> = r
        .values()
        .filter(|x| x["Type"] == "AWS::SNS::Subscription")
        .collect();
    assert_eq!(subscriptions.len(), 2);
    // The alarms on the Route 53 health checks live in us-east-1: tests/detection_and_roles.rs.

    let metrics = |stack: &str| -> BTreeSet<String> {
        let v = json_of(&s, stack);
        let mut names = BTreeSet::new();
        for res in v["Resources"]
            .as_object()
            .unwrap()
            .values()
            .filter(|x| x["Type"] == "AWS::CloudWatch::Alarm")
        {
            let p = &res["Properties"];
            if let Some(m) = p["MetricName"].as_str() {
                names.insert(m.to_string());
            }
            for m in p["Metrics"].as_array().into_iter().flatten() {
                if let Some(n) = m["MetricStat"]["Metric"]["MetricName"].as_str() {
                    names.insert(n.to_string());
                }
            }
            assert!(
                !p["AlarmActions"].as_array().unwrap().is_empty(),
                "{stack}: alarm without action"
            );
        }
        names
    };
    let primary = metrics("monitoring-primary");
    for m in [
        "HTTPCode_Target_5XX_Count",
        "UnHealthyHostCount",
        "TargetResponseTime",
        "Errors",
        "Throttles",
        "CPUUtilization",
        "ServerlessDatabaseCapacity",
        "ReplicationLatency",
        "OperationsFailedReplication",
    ] {
        assert!(
            primary.contains(m),
            "primary monitoring lacks an alarm on {m}"
        );
    }
    for stack in ["monitoring-primary", "monitoring-standby"] {
        assert!(
            metrics(stack).contains("AuroraGlobalDBReplicationLag"),
            "{stack}"
        );
    }
    for stack in ["monitoring-primary", "monitoring-standby"] {
        assert!(json_of(&s, stack)["Resources"]["Dashboard"].is_object());
    }
}

#[test]
fn the_failover_record_pair_points_at_both_load_balancers() {
    let s = default_synthesis();
    let v = json_of(&s, "dr-automation-primary");
    let primary = &v["Resources"]["PrimaryRecord"]["Properties"];
    let standby = &v["Resources"]["StandbyRecord"]["Properties"];
    assert_eq!(primary["Failover"], "PRIMARY");
    assert_eq!(standby["Failover"], "SECONDARY");
    assert_eq!(primary["Name"], "www.shop.example.com");
    assert_eq!(
        primary["HealthCheckId"],
        json!({"Ref": "PrimaryHealthCheckId"})
    );
    assert_eq!(
        primary["ResourceRecords"],
        json!([{"Ref": "PrimaryAlbDnsName"}])
    );
    assert_eq!(
        standby["ResourceRecords"],
        json!([{"Ref": "StandbyAlbDnsName"}])
    );
    assert_eq!(primary["TTL"], "60");
    let entry = s.manifest.stack("dr-automation-primary").unwrap();
    let source = |name: &str| {
        entry
            .parameters
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .source
            .clone()
    };
    assert_eq!(
        source("PrimaryAlbDnsName"),
        ParameterSource::StackOutput {
            stack: "compute-primary".into(),
            output: "AlbDnsName".into()
        }
    );
    assert_eq!(
        source("StandbyAlbDnsName"),
        ParameterSource::StackOutput {
            stack: "compute-standby".into(),
            output: "AlbDnsName".into()
        }
    );
    assert!(
        json_of(&s, "dr-automation-standby")["Resources"]
            .get("PrimaryRecord")
            .is_none()
    );
}

fn is_read_only(action: &str) -> bool {
    let verb = action.split(':').nth(1).unwrap_or(action);
    ["Describe", "Get", "List"]
        .iter()
        .any(|p| verb.starts_with(p))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// Every policy statement in a template, wherever it is (roles, bucket, topic and key policies).
fn statements(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(list)) = map.get("Statement") {
                out.extend(list.iter().cloned());
            }
            for child in map.values() {
                statements(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| statements(i, out)),
        _ => {}
    }
}

#[test]
fn no_statement_allows_a_write_action_on_everything_except_the_listed_exceptions() {
    for config in [Config::default(), full_config()] {
        let s = synthesize(&config).unwrap();
        let mut checked = 0;
        for (entry, template) in &s.stacks {
            let mut found = Vec::new();
            statements(&template.to_json(), &mut found);
            for st in found {
                checked += 1;
                if st["Effect"] != "Allow" || !strings(&st["Resource"]).iter().any(|r| r == "*") {
                    continue;
                }
                for action in strings(&st["Action"]) {
                    assert!(
                        is_read_only(&action)
                            || IAM_WILDCARD_EXCEPTIONS.iter().any(|(a, _)| *a == action),
                        "{}: {action} is allowed on \"*\"; scope it or list it with its reason",
                        entry.id
                    );
                }
            }
        }
        assert!(checked > 30, "only {checked} statements found");
    }
    assert!(
        IAM_WILDCARD_EXCEPTIONS
            .iter()
            .all(|(_, reason)| !reason.is_empty())
    );
}

#[test]
fn every_resource_is_tagged_where_its_type_allows() {
    let s = synthesize(&full_config()).unwrap();
    for (stack, id, resource) in all_resources(&s) {
        let kind = resource["Type"].as_str().unwrap();
        assert!(
            is_known_type(kind),
            "{stack}/{id}: type {kind} has no tag style listed"
        );
        let keys: BTreeSet<String> = match tag_style(kind) {
            TagStyle::List(key) => resource["Properties"][key]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["Key"].as_str().unwrap().to_string())
                .collect(),
            TagStyle::Map(key) => resource["Properties"][key]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect(),
            TagStyle::NotTaggable => continue,
        };
        for tag in ["Project", "Environment", "ManagedBy", "CostCenter"] {
            assert!(keys.contains(tag), "{stack}/{id} lacks tag {tag}");
        }
    }
}

#[test]
fn stateful_resources_are_marked_and_protected() {
    let s = default_synthesis();
    let stateful = |id: &str| s.manifest.stack(id).unwrap().stateful_resources.clone();
    assert!(stateful("database-primary").contains(&"Cluster".to_string()));
    assert!(stateful("database-primary").contains(&"GlobalCluster".to_string()));
    assert!(stateful("database-standby").contains(&"Cluster".to_string()));
    assert!(stateful("storage-primary").contains(&"SessionsTable".to_string()));
    assert!(stateful("storage-standby").contains(&"AssetsBucket".to_string()));
    assert!(stateful("dr-automation-primary").contains(&"JournalTable".to_string()));
    for (entry, template) in &s.stacks {
        let v = template.to_json();
        for id in &entry.stateful_resources {
            assert!(
                v["Resources"][id]["DeletionPolicy"].is_string(),
                "{}/{id} has no deletion policy",
                entry.id
            );
        }
    }
    let cluster = &json_of(&s, "database-primary")["Resources"]["Cluster"];
    assert_eq!(cluster["DeletionPolicy"], "Snapshot");
}

#[test]
fn the_default_config_covers_every_service_of_the_original_design() {
    let s = default_synthesis();
    let kinds: BTreeSet<String> = all_resources(&s)
        .into_iter()
        .map(|(_, _, r)| r["Type"].as_str().unwrap().to_string())
        .collect();
    for prefix in [
        "AWS::EC2::VPC",
        "AWS::RDS::GlobalCluster",
        "AWS::RDS::DBCluster",
        "AWS::S3::Bucket",
        "AWS::Lambda::Function",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "AWS::Route53::HostedZone",
        "AWS::Route53::HealthCheck",
        "AWS::Route53::RecordSet",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::Dashboard",
        "AWS::Logs::LogGroup",
        "AWS::SNS::Topic",
        "AWS::DynamoDB::GlobalTable",
        "AWS::IAM::Role",
        "AWS::SSM::Parameter",
        "AWS::Events::Rule",
        "AWS::KMS::Key",
        "AWS::SecretsManager::Secret",
    ] {
        assert!(kinds.contains(prefix), "no {prefix}");
    }
    assert!(
        s.total_resources() > 76,
        "{} resources",
        s.total_resources()
    );
}

#[test]
fn other_regions_and_names_flow_through() {
    let text = "[project]\nname = \"shop\"\nenvironment = \"staging\"\n[regions]\nprimary = \"eu-west-1\"\nstandby = \"eu-central-1\"\n[certificates]\nallow_insecure_http = true\n";
    let config = Config::from_toml_str(text, "t.toml").unwrap();
    let s = synthesize(&config).unwrap();
    assert_eq!(
        s.manifest.stack("compute-standby").unwrap().name,
        "shop-staging-compute-standby"
    );
    assert_eq!(
        s.manifest.stack("compute-standby").unwrap().region,
        "eu-central-1"
    );
    let v = json_of(&s, "storage-primary");
    assert_eq!(
        v["Resources"]["AssetsBucket"]["Properties"]["BucketName"],
        json!({"Fn::Sub": "shop-staging-assets-eu-west-1-${AWS::AccountId}"})
    );
    assert_eq!(
        v["Resources"]["SessionsTable"]["Properties"]["Replicas"][1]["Region"],
        "eu-central-1"
    );
}

#[test]
fn an_invalid_config_is_rejected_before_synthesis() {
    let mut config = Config::default();
    config.network.az_count = 4;
    let err = synthesize(&config).unwrap_err();
    assert!(err.to_string().contains("network.az_count"), "{err}");
}

#[test]
fn templates_fit_in_a_direct_cloudformation_request() {
    // CloudFormation accepts template bodies up to 51,200 bytes inline; larger ones need an S3 upload.
    // The deploy engine sends a template without the files' indentation.
    for config in [Config::default(), full_config()] {
        for (name, body) in synthesize(&config).unwrap().render().unwrap() {
            let compact =
                serde_json::to_string(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
            assert!(
                compact.len() < 51_200,
                "{name} is {} bytes sent",
                compact.len()
            );
        }
    }
}
