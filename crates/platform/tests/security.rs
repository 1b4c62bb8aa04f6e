//! The security review's findings, asserted on the synthesized templates of the default config and of a
//! production-like config: encrypted log groups, access logging, Aurora diagnostics and IAM authentication,
//! a DR function that cannot be starved or lose an event, a tamper-evident reports bucket, backups out of
//! reach of replication, and no plain HTTP outside `dev`.

use lifeboat_config::{Config, ConfigErrorKind};
use lifeboat_platform::{Synthesis, synthesize};
use serde_json::{Value, json};

/// Production-like: `prod`, certificates, 3 AZs, alerts, non-default retention and concurrency.
fn production_config() -> Config {
    let text = r#"
[project]
name = "shop"
environment = "prod"
[certificates]
primary = "arn:aws:acm:us-east-1:123456789012:certificate/0f3c6b7e-1111-2222-3333-444455556666"
standby = "arn:aws:acm:us-west-2:123456789012:certificate/0f3c6b7e-1111-2222-3333-777788889999"
[alerts]
emails = ["ops@example.com"]
[network]
az_count = 3
nat_gateways = "per-az"
[dr]
reserved_concurrency = 5
[storefront]
reserved_concurrency = 200
[audit]
report_retention_days = 400
[backup]
retention_days = 90
vault_lock_min_retention_days = 30
"#;
    Config::from_toml_str(text, "production.toml").unwrap()
}

fn both() -> Vec<(Config, Synthesis)> {
    [Config::default(), production_config()]
        .into_iter()
        .map(|c| {
            let s = synthesize(&c).expect("synthesizes");
            (c, s)
        })
        .collect()
}

fn template(s: &Synthesis, stack: &str) -> Value {
    s.template(stack)
        .unwrap_or_else(|| panic!("no stack {stack}"))
        .to_json()
}

fn resources_of_type<'a>(t: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .collect()
}

/// The logical id a `{"Fn::GetAtt": [id, attr]}` or `{"Ref": id}` points at.
fn target(v: &Value) -> Option<&str> {
    v["Fn::GetAtt"][0].as_str().or_else(|| v["Ref"].as_str())
}

#[test]
fn every_log_group_is_encrypted_with_a_stack_key_that_grants_only_cloudwatch_logs_of_its_region() {
    for (_, s) in both() {
        let mut groups_seen = 0;
        for (entry, _) in &s.stacks {
            let t = template(&s, &entry.id);
            for (id, group) in resources_of_type(&t, "AWS::Logs::LogGroup") {
                groups_seen += 1;
                let key_id = target(&group["Properties"]["KmsKeyId"])
                    .unwrap_or_else(|| panic!("{}/{id} has no KmsKeyId", entry.id));
                let key = &t["Resources"][key_id];
                assert_eq!(key["Type"], "AWS::KMS::Key", "{}/{id}", entry.id);
                assert_eq!(key["Properties"]["EnableKeyRotation"], true);
                let statements = key["Properties"]["KeyPolicy"]["Statement"]
                    .as_array()
                    .unwrap();
                let logs = statements
                    .iter()
                    .find(|st| {
                        st["Principal"]["Service"]
                            == json!({ "Fn::Sub": "logs.${AWS::Region}.amazonaws.com" })
                    })
                    .unwrap_or_else(|| {
                        panic!("{}/{key_id} does not grant CloudWatch Logs", entry.id)
                    });
                let name = group["Properties"]["LogGroupName"].as_str().unwrap();
                let allowed = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
                    .as_array()
                    .expect("the grant is limited by the log group encryption context");
                assert!(
                    allowed.iter().any(|arn| arn["Fn::Sub"]
                        .as_str()
                        .is_some_and(|a| a.ends_with(&format!(":log-group:{name}"))
                            && a.contains(":logs:${AWS::Region}:"))),
                    "{}/{key_id} does not name {name}: {allowed:?}",
                    entry.id
                );
            }
        }
        // Flow logs, two functions and three exported database logs in each region.
        assert!(groups_seen >= 12, "{groups_seen} log groups");
    }
}

#[test]
fn aurora_exports_its_logs_into_encrypted_groups_created_before_the_cluster() {
    for (c, s) in both() {
        for role in ["primary", "standby"] {
            let t = template(&s, &format!("database-{role}"));
            let region = if role == "primary" {
                &c.regions.primary
            } else {
                &c.regions.standby
            };
            let cluster = &t["Resources"]["Cluster"];
            for kind in ["audit", "error", "slowquery"] {
                let name = format!("/aws/rds/cluster/{}/{kind}", c.names().cluster_id(region));
                let (id, _) = resources_of_type(&t, "AWS::Logs::LogGroup")
                    .into_iter()
                    .find(|(_, g)| g["Properties"]["LogGroupName"] == name.as_str())
                    .unwrap_or_else(|| panic!("no log group {name}"));
                assert!(
                    cluster["DependsOn"]
                        .as_array()
                        .unwrap()
                        .contains(&json!(id)),
                    "the cluster does not wait for {id}"
                );
            }
        }
    }
}

#[test]
fn asset_buckets_write_access_logs_into_the_regions_logs_bucket() {
    for (c, s) in both() {
        for role in ["primary", "standby"] {
            let t = template(&s, &format!("storage-{role}"));
            let region = if role == "primary" {
                &c.regions.primary
            } else {
                &c.regions.standby
            };
            let logging = &t["Resources"]["AssetsBucket"]["Properties"]["LoggingConfiguration"];
            assert_eq!(
                logging["DestinationBucketName"],
                json!({"Ref": "S3AccessLogsBucket"})
            );
            assert_eq!(logging["LogFilePrefix"], "assets/");
            let logs = &t["Resources"]["S3AccessLogsBucket"]["Properties"];
            assert_eq!(
                logs["BucketName"],
                json!({ "Fn::Sub": c.names().s3_access_logs_bucket_pattern(region) })
            );
            // Log delivery cannot write to an SSE-KMS bucket.
            assert_eq!(
                logs["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
                    ["SSEAlgorithm"],
                "AES256"
            );
            let policy =
                &t["Resources"]["S3AccessLogsBucketPolicy"]["Properties"]["PolicyDocument"];
            let delivery = policy["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .find(|st| st["Principal"]["Service"] == "logging.s3.amazonaws.com")
                .expect("log delivery is granted");
            let sources = delivery["Condition"]["ArnLike"]["aws:SourceArn"].to_string();
            assert!(
                sources.contains(&c.names().assets_bucket_pattern(region)),
                "{sources}"
            );
            assert_eq!(
                delivery["Condition"]["StringEquals"]["aws:SourceAccount"],
                json!({"Ref": "AWS::AccountId"})
            );
        }
    }
}

#[test]
fn aurora_has_iam_authentication_enhanced_monitoring_and_kms_encrypted_performance_insights() {
    for (_, s) in both() {
        for role in ["primary", "standby"] {
            let t = template(&s, &format!("database-{role}"));
            assert_eq!(
                t["Resources"]["Cluster"]["Properties"]["EnableIAMDatabaseAuthentication"],
                true
            );
            let monitoring = &t["Resources"]["MonitoringRole"]["Properties"];
            assert_eq!(
                monitoring["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
                "monitoring.rds.amazonaws.com"
            );
            assert!(
                monitoring["ManagedPolicyArns"][0]["Fn::Sub"]
                    .as_str()
                    .unwrap()
                    .ends_with("service-role/AmazonRDSEnhancedMonitoringRole")
            );
            let instances = resources_of_type(&t, "AWS::RDS::DBInstance");
            assert!(!instances.is_empty());
            for (id, instance) in instances {
                let p = &instance["Properties"];
                assert!(p["MonitoringInterval"].as_u64().unwrap() > 0, "{role}/{id}");
                assert_eq!(target(&p["MonitoringRoleArn"]), Some("MonitoringRole"));
                assert_eq!(p["EnablePerformanceInsights"], true, "{role}/{id}");
                assert_eq!(
                    target(&p["PerformanceInsightsKMSKeyId"]),
                    Some("DatabaseKey"),
                    "{role}/{id}"
                );
            }
        }
    }
}

#[test]
fn the_dr_function_has_reserved_concurrency_and_an_encrypted_on_failure_queue_with_an_alarm() {
    for (c, s) in both() {
        for role in ["primary", "standby"] {
            let t = template(&s, &format!("dr-automation-{role}"));
            let r = &t["Resources"];
            assert_eq!(
                r["DrAutomationFunction"]["Properties"]["ReservedConcurrentExecutions"],
                c.dr.reserved_concurrency
            );
            let invoke = resources_of_type(&t, "AWS::Lambda::EventInvokeConfig");
            assert_eq!(invoke.len(), 1);
            let (_, invoke) = invoke[0];
            assert_eq!(
                invoke["Properties"]["FunctionName"],
                json!({"Ref": "DrAutomationFunction"})
            );
            let destination =
                &invoke["Properties"]["DestinationConfig"]["OnFailure"]["Destination"];
            let queue_id = target(destination).unwrap();
            let queue = &r[queue_id];
            assert_eq!(queue["Type"], "AWS::SQS::Queue");
            let key = target(&queue["Properties"]["KmsMasterKeyId"]).expect("queue encrypted");
            assert_eq!(r[key]["Type"], "AWS::KMS::Key", "a customer-managed key");
            // The execution role may send to the queue, and the configuration waits for that grant.
            let grant = resources_of_type(&t, "AWS::IAM::RolePolicy")
                .into_iter()
                .find(|(_, p)| {
                    p["Properties"]["PolicyDocument"]["Statement"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|st| st["Action"] == json!(["sqs:SendMessage"]))
                })
                .expect("the DR role may send to the queue");
            assert_eq!(
                grant.1["Properties"]["RoleName"],
                json!({"Ref": "DrAutomationRole"})
            );
            assert!(
                invoke["DependsOn"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(grant.0))
            );
            let alarm = resources_of_type(&t, "AWS::CloudWatch::Alarm")
                .into_iter()
                .find(|(_, a)| a["Properties"]["Namespace"] == "AWS/SQS")
                .expect("an alarm on the queue");
            let p = &alarm.1["Properties"];
            assert_eq!(p["MetricName"], "ApproximateNumberOfMessagesVisible");
            assert_eq!(p["Dimensions"][0]["Value"]["Fn::GetAtt"][0], queue_id);
            assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold");
            assert_eq!(p["Threshold"], 0);
            assert_eq!(p["AlarmActions"], json!([{"Ref": "TopicArn"}]));
        }
    }
}

#[test]
fn the_storefront_reserved_concurrency_follows_the_config() {
    let default = synthesize(&Config::default()).unwrap();
    let production = synthesize(&production_config()).unwrap();
    for role in ["primary", "standby"] {
        let stack = format!("compute-{role}");
        assert!(
            template(&default, &stack)["Resources"]["StorefrontFunction"]["Properties"]
                .get("ReservedConcurrentExecutions")
                .is_none(),
            "unset by default: the account's unreserved pool"
        );
        assert_eq!(
            template(&production, &stack)["Resources"]["StorefrontFunction"]["Properties"]["ReservedConcurrentExecutions"],
            200
        );
    }
}

#[test]
fn the_reports_bucket_is_locked_in_governance_mode_writable_only_by_the_dr_role_and_denied_to_the_storefront()
 {
    for (c, s) in both() {
        for role in ["primary", "standby"] {
            let region = if role == "primary" {
                &c.regions.primary
            } else {
                &c.regions.standby
            };
            let t = template(&s, &format!("dr-automation-{role}"));
            let r = &t["Resources"];
            let bucket = &r["ReportsBucket"];
            let p = &bucket["Properties"];
            assert_eq!(
                p["BucketName"],
                json!({ "Fn::Sub": c.names().reports_bucket_pattern(region) })
            );
            assert_eq!(bucket["DeletionPolicy"], "RetainExceptOnCreate");
            assert_eq!(p["VersioningConfiguration"]["Status"], "Enabled");
            assert_eq!(p["ObjectLockEnabled"], true);
            let retention = &p["ObjectLockConfiguration"]["Rule"]["DefaultRetention"];
            assert_eq!(retention["Mode"], "GOVERNANCE");
            assert_eq!(retention["Days"], c.audit.report_retention_days);
            let sse = &p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"];
            assert_eq!(sse["SSEAlgorithm"], "aws:kms");
            assert_eq!(
                r[target(&sse["KMSMasterKeyID"]).unwrap()]["Type"],
                "AWS::KMS::Key"
            );
            assert_eq!(
                p["LoggingConfiguration"]["DestinationBucketName"],
                json!({"Ref": "S3AccessLogsBucketName"})
            );

            let statements = r["ReportsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap();
            let storefront_denied = statements.iter().any(|st| {
                st["Effect"] == "Deny"
                    && st["Action"] == "s3:*"
                    && st["Condition"]["ArnEquals"]["aws:PrincipalArn"]
                        == json!({"Ref": "StorefrontRoleArn"})
            });
            assert!(
                storefront_denied,
                "{role}: the storefront role is not denied"
            );
            let only_dr_writes = statements.iter().any(|st| {
                st["Effect"] == "Deny"
                    && st["Action"].to_string().contains("s3:PutObject")
                    && st["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
                        == json!({"Fn::GetAtt": ["DrAutomationRole", "Arn"]})
            });
            assert!(only_dr_writes, "{role}: others may write reports");
            let nobody_deletes = statements.iter().any(|st| {
                st["Effect"] == "Deny"
                    && st.get("Condition").is_none()
                    && st["Action"]
                        .to_string()
                        .contains("s3:BypassGovernanceRetention")
            });
            assert!(
                nobody_deletes,
                "{role}: the governance lock can be bypassed"
            );

            // The storefront role parameter is fed by the compute stack of the same region.
            let entry = s.manifest.stack(&format!("dr-automation-{role}")).unwrap();
            assert!(entry.parameters.iter().any(|p| p.name == "StorefrontRoleArn"
                && matches!(&p.source, lifeboat_contract::manifest::ParameterSource::StackOutput { stack, output }
                    if stack == &format!("compute-{role}") && output == "StorefrontRoleArn")));

            // The DR function writes there, and knows where.
            let writes = resources_of_type(&t, "AWS::IAM::RolePolicy")
                .into_iter()
                .any(|(_, p)| {
                    p["Properties"]["PolicyDocument"]["Statement"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|st| {
                            st["Action"] == json!(["s3:PutObject"])
                                && st["Resource"][0]["Fn::Join"][1][0]
                                    == json!({"Fn::GetAtt": ["ReportsBucket", "Arn"]})
                        })
                });
            assert!(writes, "{role}: the DR role cannot write reports");
            assert_eq!(
                r["DrAutomationFunction"]["Properties"]["Environment"]["Variables"]["REPORTS_BUCKET"],
                json!({"Ref": "ReportsBucket"})
            );

            // Nothing in the storefront's own policy names the reports bucket.
            let compute = template(&s, &format!("compute-{role}"));
            let storefront_policy =
                compute["Resources"]["StorefrontRole"]["Properties"].to_string();
            assert!(!storefront_policy.contains("dr-reports"));
            assert!(!storefront_policy.contains("ReportsBucket"));
        }
    }
}

#[test]
fn a_daily_backup_plan_copies_aurora_and_the_tables_to_the_standby_vault_under_a_vault_lock() {
    for (c, s) in both() {
        let vault_name = c.names().backup_vault();
        for role in ["primary", "standby"] {
            let t = template(&s, &format!("database-{role}"));
            let vault = &t["Resources"]["BackupVault"];
            assert_eq!(vault["Properties"]["BackupVaultName"], vault_name.as_str());
            assert_eq!(
                vault["Properties"]["LockConfiguration"]["MinRetentionDays"],
                c.backup.vault_lock_min_retention_days
            );
            assert!(
                vault["Properties"]["LockConfiguration"]
                    .get("ChangeableForDays")
                    .is_none(),
                "governance mode: no compliance-mode grace time"
            );
            let key = target(&vault["Properties"]["EncryptionKeyArn"]).unwrap();
            assert_eq!(t["Resources"][key]["Type"], "AWS::KMS::Key");
            assert_eq!(
                vault["Properties"]["AccessPolicy"]["Statement"][0]["Effect"],
                "Deny"
            );
        }
        let t = template(&s, "database-primary");
        let plan = &t["Resources"]["BackupPlan"]["Properties"]["BackupPlan"];
        let rule = &plan["BackupPlanRule"][0];
        assert_eq!(rule["TargetBackupVault"], json!({"Ref": "BackupVault"}));
        assert_eq!(
            rule["Lifecycle"]["DeleteAfterDays"],
            c.backup.retention_days
        );
        let copy = &rule["CopyActions"][0];
        let destination = copy["DestinationBackupVaultArn"]["Fn::Sub"]
            .as_str()
            .unwrap();
        assert!(
            destination.contains(&format!(":backup:{}:", c.regions.standby))
                && destination.ends_with(&format!("backup-vault:{vault_name}")),
            "{destination}"
        );
        assert_eq!(
            copy["Lifecycle"]["DeleteAfterDays"],
            c.backup.retention_days
        );
        let selected =
            t["Resources"]["BackupSelection"]["Properties"]["BackupSelection"]["Resources"]
                .to_string();
        for name in [
            c.names().cluster_id(&c.regions.primary),
            c.names().sessions_table(),
            c.names().journal_table(),
        ] {
            assert!(selected.contains(&name), "{name} not backed up: {selected}");
        }
        let t = template(&s, "dr-automation-primary");
        for metric in ["NumberOfBackupJobsFailed", "NumberOfCopyJobsFailed"] {
            let (_, alarm) = resources_of_type(&t, "AWS::CloudWatch::Alarm")
                .into_iter()
                .find(|(_, a)| a["Properties"]["MetricName"] == metric)
                .unwrap_or_else(|| panic!("no alarm on {metric}"));
            let p = &alarm["Properties"];
            assert_eq!(p["Namespace"], "AWS/Backup");
            assert_eq!(
                p["Dimensions"],
                json!([{ "Name": "BackupVaultName", "Value": vault_name }])
            );
            assert_eq!(p["AlarmActions"], json!([{"Ref": "TopicArn"}]));
        }
        // The standby region only keeps copies: no plan of its own.
        assert!(
            template(&s, "database-standby")["Resources"]
                .get("BackupPlan")
                .is_none()
        );
    }
}

#[test]
fn no_plain_http_outside_dev_unless_explicitly_allowed() {
    let cert = |region: &str| format!("arn:aws:acm:{region}:123456789012:certificate/abc");
    let mut prod = Config::default();
    prod.project.environment = "prod".into();
    let err = prod.validate().unwrap_err();
    assert_eq!(err.key(), Some("certificates"), "{err}");
    assert!(err.to_string().contains("allow_insecure_http"), "{err}");
    let err = synthesize(&prod).unwrap_err();
    assert!(err.to_string().contains("certificates"), "{err}");

    prod.certificates.primary = Some(cert("us-east-1"));
    match prod.validate().unwrap_err() {
        ConfigErrorKind::InvalidValue { key, .. } => assert_eq!(key, "certificates.standby"),
        other => panic!("{other:?}"),
    }
    prod.certificates.standby = Some(cert("us-west-2"));
    prod.validate().unwrap();

    let mut insecure = Config::default();
    insecure.project.environment = "staging".into();
    insecure.certificates.allow_insecure_http = true;
    insecure.validate().unwrap();
    synthesize(&insecure).unwrap();
    Config::default().validate().unwrap();
}

#[test]
fn a_generated_health_token_is_given_to_the_storefront_in_both_regions_and_not_to_the_dr_automation()
 {
    for (c, s) in both() {
        let primary = template(&s, "compute-primary");
        let secret = &primary["Resources"]["HealthTokenSecret"]["Properties"];
        assert!(
            secret.get("SecretString").is_none(),
            "never in the template"
        );
        assert_eq!(secret["GenerateSecretString"]["ExcludePunctuation"], true);
        assert_eq!(
            secret["ReplicaRegions"][0]["Region"],
            c.regions.standby.as_str()
        );
        for role in ["primary", "standby"] {
            let expected = if role == "primary" {
                json!({"Ref": "HealthTokenSecret"})
            } else {
                json!({"Ref": "HealthTokenSecretArn"})
            };
            // The DR automation invokes the storefront function itself and needs only the answer's status:
            // it gets neither the token's ARN nor a way to read it.
            let dr = template(&s, &format!("dr-automation-{role}"));
            assert!(
                dr["Resources"]["DrAutomationFunction"]["Properties"]["Environment"]["Variables"]
                    .get("HEALTH_TOKEN_SECRET_ARN")
                    .is_none()
            );
            assert!(
                !role_statements(&dr)
                    .iter()
                    .any(|st| st.to_string().contains("secretsmanager:")),
                "dr-automation-{role}: a secret is readable"
            );
            {
                let (stack, role_id, function) = (
                    format!("compute-{role}"),
                    "StorefrontRole",
                    "StorefrontFunction",
                );
                let t = template(&s, &stack);
                let variables = &t["Resources"][function]["Properties"]["Environment"]["Variables"];
                let arn = if stack == "compute-primary" {
                    expected.clone()
                } else {
                    json!({"Ref": "HealthTokenSecretArn"})
                };
                assert_eq!(variables["HEALTH_TOKEN_SECRET_ARN"], arn, "{stack}");
                let reads = resources_of_type(&t, "AWS::IAM::RolePolicy")
                    .into_iter()
                    .any(|(_, p)| {
                        p["Properties"]["RoleName"] == json!({"Ref": role_id})
                            && p["Properties"]["PolicyDocument"]["Statement"][0]
                                == json!({
                                    "Effect": "Allow",
                                    "Action": ["secretsmanager:GetSecretValue"],
                                    "Resource": [arn]
                                })
                    });
                assert!(reads, "{stack}: {role_id} cannot read the health token");
                if stack.starts_with("compute") {
                    assert_eq!(
                        variables["HEALTH_CACHE_SECONDS"],
                        c.storefront.health_cache_seconds.to_string().as_str()
                    );
                }
            }
            if role == "standby" {
                {
                    let entry = s.manifest.stack("compute-standby").unwrap();
                    assert!(entry.parameters.iter().any(|p| p.name == "HealthTokenSecretArn"
                        && matches!(&p.source, lifeboat_contract::manifest::ParameterSource::StackOutput { stack, output }
                            if stack == "compute-primary" && output == "HealthTokenSecretReplicaArn")));
                }
            }
        }
    }
}

/// Every statement of every IAM role and role policy in a template (not key or bucket policies).
fn role_statements(t: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for (_, resource) in t["Resources"].as_object().unwrap() {
        let p = &resource["Properties"];
        match resource["Type"].as_str() {
            Some("AWS::IAM::Role") => {
                for policy in p["Policies"].as_array().into_iter().flatten() {
                    out.extend(
                        policy["PolicyDocument"]["Statement"]
                            .as_array()
                            .unwrap()
                            .clone(),
                    );
                }
            }
            Some("AWS::IAM::RolePolicy") => {
                out.extend(p["PolicyDocument"]["Statement"].as_array().unwrap().clone());
            }
            _ => {}
        }
    }
    out
}

#[test]
fn no_role_reads_the_master_secret_and_the_storefront_gets_its_own() {
    for (c, s) in both() {
        let database = template(&s, "database-primary");
        let app = &database["Resources"]["DatabaseAppSecret"]["Properties"];
        assert_eq!(
            app["GenerateSecretString"]["SecretStringTemplate"],
            "{\"username\":\"storefront\"}"
        );
        assert!(app.get("SecretString").is_none());
        assert_eq!(app["KmsKeyId"], json!({"Ref": "DatabaseKey"}));
        assert_eq!(
            app["ReplicaRegions"][0]["Region"],
            c.regions.standby.as_str()
        );
        assert_eq!(app["Name"], c.names().database_app_secret().as_str());

        for (entry, _) in &s.stacks {
            // The parameters of this stack that carry the master secret's ARN.
            let master_params: Vec<&str> = entry
                .parameters
                .iter()
                .filter(|p| matches!(&p.source,
                    lifeboat_contract::manifest::ParameterSource::StackOutput { stack, output }
                        if stack == "database-primary" && (output == "SecretArn" || output == "SecretReplicaArn")))
                .map(|p| p.name.as_str())
                .collect();
            let t = template(&s, &entry.id);
            for st in role_statements(&t) {
                let resources = st["Resource"].to_string();
                assert!(
                    !resources.contains("\"DatabaseSecret\""),
                    "{}: a role reads the master secret: {st}",
                    entry.id
                );
                for param in &master_params {
                    assert!(
                        !resources.contains(&format!("{{\"Ref\":\"{param}\"}}")),
                        "{}: a role reads the master secret through {param}: {st}",
                        entry.id
                    );
                }
            }
        }

        // The storefront reads its own secret, and the function is told that one.
        for role in ["primary", "standby"] {
            let entry = s.manifest.stack(&format!("compute-{role}")).unwrap();
            let expected = if role == "primary" {
                "AppSecretArn"
            } else {
                "AppSecretReplicaArn"
            };
            assert!(entry.parameters.iter().any(|p| p.name == "DatabaseSecretArn"
                && matches!(&p.source, lifeboat_contract::manifest::ParameterSource::StackOutput { stack, output }
                    if stack == "database-primary" && output == expected)));
            let t = template(&s, &format!("compute-{role}"));
            assert_eq!(
                t["Resources"]["StorefrontFunction"]["Properties"]["Environment"]["Variables"]["DATABASE_SECRET_ARN"],
                json!({"Ref": "DatabaseSecretArn"})
            );
        }
    }
}
