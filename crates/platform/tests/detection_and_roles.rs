//! Detection that survives the loss of either region, alarms that follow the roles, two-way asset
//! replication, account ids in bucket names, no DR control state owned by a stack, and a standby that can
//! carry the primary's load: asserted on the default config, on one with us-west-2 primary (us-east-1
//! standby) and on one with neither region in us-east-1.

use std::collections::{BTreeMap, BTreeSet};

use lifeboat_config::names::{PROBE_METRIC, PROBE_NAMESPACE, ROUTE53_METRICS_REGION};
use lifeboat_config::{Config, Role};
use lifeboat_platform::{Synthesis, synthesize};
use serde_json::{Value, json};

fn config(text: &str) -> Config {
    Config::from_toml_str(text, "t.toml").unwrap()
}

/// (label, config): the default, the regions swapped, and a pair without us-east-1.
fn configs() -> Vec<(&'static str, Config)> {
    vec![
        ("default", Config::default()),
        (
            "primary us-west-2",
            config("[regions]\nprimary = \"us-west-2\"\nstandby = \"us-east-1\"\n"),
        ),
        (
            "eu pair",
            config("[regions]\nprimary = \"eu-west-1\"\nstandby = \"eu-central-1\"\n"),
        ),
    ]
}

/// (stack id, stack region, logical id, resource) of every resource.
fn resources(s: &Synthesis) -> Vec<(String, String, String, Value)> {
    let mut out = Vec::new();
    for (entry, template) in &s.stacks {
        let v = template.to_json();
        for (id, r) in v["Resources"].as_object().unwrap() {
            out.push((
                entry.id.clone(),
                entry.region.clone(),
                id.clone(),
                r.clone(),
            ));
        }
    }
    out
}

fn json_of(s: &Synthesis, stack: &str) -> Value {
    s.template(stack)
        .unwrap_or_else(|| panic!("no stack {stack}"))
        .to_json()
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// A rule's event pattern matches an alarm state change of `alarm`.
fn rule_matches(rule: &Value, alarm: &str) -> bool {
    let pattern = &rule["Properties"]["EventPattern"];
    strings(&pattern["source"]).contains(&"aws.cloudwatch".to_string())
        && strings(&pattern["detail-type"]).contains(&"CloudWatch Alarm State Change".to_string())
        && strings(&pattern["detail"]["alarmName"]).contains(&alarm.to_string())
}

/// The region of an event bus ARN like `arn:${AWS::Partition}:events:us-west-2:${AWS::AccountId}:...`.
fn arn_region(arn: &Value) -> Option<String> {
    let text = arn["Fn::Sub"].as_str().or(arn.as_str())?;
    let rest = text.split(":events:").nth(1)?;
    rest.split(':').next().map(str::to_string)
}

/// The regions whose DR automation function receives the state changes of `alarm`, which lives in
/// `home`: the function of `home` if a rule there targets it, and the functions of the regions a rule in
/// `home` forwards the events to (and whose own rule then targets their function).
fn delivered_to(
    all: &[(String, String, String, Value)],
    alarm: &str,
    home: &str,
) -> BTreeSet<String> {
    let rules_in = |region: &str| -> Vec<&Value> {
        all.iter()
            .filter(|(_, r, _, v)| r == region && v["Type"] == "AWS::Events::Rule")
            .map(|(_, _, _, v)| v)
            .filter(|v| rule_matches(v, alarm))
            .collect()
    };
    // The alarm rule starts the region's DR state machine (with the role that allows it), whose tasks
    // invoke the region's function.
    let targets_function = |rule: &Value| {
        rule["Properties"]["Targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| {
                t["Arn"] == json!({"Ref": "DrStateMachine"})
                    && t["RoleArn"] == json!({"Fn::GetAtt": ["DrStateMachineStartRole", "Arn"]})
            })
    };
    let mut out = BTreeSet::new();
    for rule in rules_in(home) {
        if targets_function(rule) {
            out.insert(home.to_string());
        }
        for target in rule["Properties"]["Targets"].as_array().unwrap() {
            let arn = &target["Arn"];
            if arn["Fn::Sub"]
                .as_str()
                .is_some_and(|a| a.ends_with(":event-bus/default"))
            {
                let region = arn_region(arn).unwrap();
                assert!(
                    target["RoleArn"].is_object(),
                    "a cross-region bus target needs a role"
                );
                if rules_in(&region).into_iter().any(targets_function) {
                    out.insert(region);
                }
            }
        }
    }
    out
}

#[test]
fn route53_health_alarms_live_in_us_east_1_whatever_the_primary() {
    for (label, config) in configs() {
        let s = synthesize(&config).unwrap();
        let names = config.names();
        let all = resources(&s);
        let route53_alarms: Vec<_> = all
            .iter()
            .filter(|(_, _, _, v)| {
                v["Type"] == "AWS::CloudWatch::Alarm"
                    && v["Properties"]["Namespace"] == "AWS/Route53"
            })
            .collect();
        let alarm_names: BTreeSet<String> = route53_alarms
            .iter()
            .map(|(_, _, _, v)| v["Properties"]["AlarmName"].as_str().unwrap().to_string())
            .collect();
        let expected: BTreeSet<String> = Role::BOTH
            .iter()
            .map(|r| names.health_alarm(config.region(*r)))
            .collect();
        assert_eq!(alarm_names, expected, "{label}");
        for (stack, region, id, alarm) in route53_alarms {
            assert_eq!(region, ROUTE53_METRICS_REGION, "{label}: {stack}/{id}");
            // The dimension is a health check of the same template (Ref), not an absent metric.
            let check = alarm["Properties"]["Dimensions"][0]["Value"]["Ref"]
                .as_str()
                .unwrap();
            assert_eq!(
                json_of(&s, stack)["Resources"][check]["Type"],
                "AWS::Route53::HealthCheck",
                "{label}"
            );
            assert_eq!(alarm["Properties"]["TreatMissingData"], "breaching");
        }
        let detection = s.manifest.stack("detection-route53").unwrap();
        assert_eq!(detection.region, ROUTE53_METRICS_REGION, "{label}");
        // The detection checks are not the failover records' checks (those are driven by the runbooks).
        let records: Vec<Value> = all
            .iter()
            .filter(|(_, _, _, v)| v["Type"] == "AWS::Route53::RecordSet")
            .map(|(_, _, _, v)| v["Properties"]["HealthCheckId"].clone())
            .collect();
        assert!(
            records
                .iter()
                .all(|c| c["Ref"].as_str().unwrap().ends_with("HealthCheckId"))
        );
    }
}

#[test]
fn the_loss_of_either_region_triggers_the_surviving_regions_automation() {
    for (label, config) in configs() {
        let s = synthesize(&config).unwrap();
        let names = config.names();
        let all = resources(&s);
        // Every alarm and the region it lives in.
        let alarms: BTreeMap<String, String> = all
            .iter()
            .filter(|(_, _, _, v)| v["Type"] == "AWS::CloudWatch::Alarm")
            .map(|(_, region, _, v)| {
                (
                    v["Properties"]["AlarmName"].as_str().unwrap().to_string(),
                    region.clone(),
                )
            })
            .collect();
        for lost in Role::BOTH {
            let lost_region = config.region(lost);
            let survivor = config.region(lost.other());
            // Alarms about the lost region that live outside it (so they still evaluate) and reach the
            // survivor's automation.
            let working: Vec<&String> = names
                .alarms_watching(lost_region)
                .iter()
                .filter_map(|a| alarms.get_key_value(a))
                .filter(|(_, home)| home.as_str() != lost_region)
                .filter(|(alarm, home)| delivered_to(&all, alarm, home).contains(survivor))
                .map(|(alarm, _)| alarm)
                .collect();
            assert!(
                !working.is_empty(),
                "{label}: losing {lost_region} triggers nothing in {survivor}"
            );
            // The probe alarm always works, whatever us-east-1 does.
            assert!(
                working.contains(&&names.probe_alarm(lost_region, survivor)),
                "{label}: {working:?}"
            );
            // And while us-east-1 stands, the Route 53 alarm reaches the survivor too.
            if lost_region != ROUTE53_METRICS_REGION {
                assert!(
                    working.contains(&&names.health_alarm(lost_region)),
                    "{label}: {working:?}"
                );
            }
        }
    }
}

#[test]
fn both_regions_automation_hears_the_alarms_of_both_regions_so_it_follows_a_switchover() {
    for (label, config) in configs() {
        let s = synthesize(&config).unwrap();
        let names = config.names();
        let expected: BTreeSet<String> = names.automation_alarms().into_iter().collect();
        assert_eq!(expected.len(), 4);
        for role in Role::BOTH {
            let v = json_of(&s, &format!("dr-automation-{role}"));
            let rule = &v["Resources"]["AlarmRule"];
            let matched: BTreeSet<String> =
                strings(&rule["Properties"]["EventPattern"]["detail"]["alarmName"])
                    .into_iter()
                    .collect();
            assert_eq!(matched, expected, "{label} {role}");
            let substitutions =
                &v["Resources"]["DrStateMachine"]["Properties"]["DefinitionSubstitutions"];
            assert_eq!(
                substitutions["DrAutomationFunctionArn"],
                json!({"Fn::GetAtt": ["DrAutomationFunction", "Arn"]}),
                "{label} {role}: the state machine's tasks invoke this region's function"
            );
            // The probe: a schedule invoking the function with the other region, an alarm on its metric.
            let other = config.region(role.other());
            let schedule = &v["Resources"]["ProbeSchedule"]["Properties"];
            assert_eq!(schedule["ScheduleExpression"], "rate(1 minute)");
            let input: Value =
                serde_json::from_str(schedule["Targets"][0]["Input"].as_str().unwrap()).unwrap();
            assert_eq!(input, json!({ "lifeboat-probe": { "region": other } }));
            let alarm = &v["Resources"]["ProbeAlarm"]["Properties"];
            assert_eq!(
                alarm["AlarmName"].as_str().unwrap(),
                names.probe_alarm(other, config.region(role))
            );
            assert_eq!(alarm["Namespace"], PROBE_NAMESPACE);
            assert_eq!(alarm["MetricName"], PROBE_METRIC);
            assert_eq!(alarm["Dimensions"][1]["Value"], other);
            assert_eq!(
                alarm["TreatMissingData"], "missing",
                "a probe that did not run says nothing about the other region"
            );
        }
    }
}

#[test]
fn alarms_are_named_by_region_and_replication_alarms_exist_in_both_regions() {
    for (label, config) in configs() {
        let s = synthesize(&config).unwrap();
        let names = config.names();
        for role in Role::BOTH {
            let region = config.region(role);
            let v = json_of(&s, &format!("monitoring-{role}"));
            let alarms: Vec<&Value> = v["Resources"]
                .as_object()
                .unwrap()
                .values()
                .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
                .collect();
            for alarm in &alarms {
                let name = alarm["Properties"]["AlarmName"].as_str().unwrap();
                assert_eq!(
                    names.alarm_subject_region(name),
                    Some(region),
                    "{label}: {name}"
                );
                assert!(
                    !name.contains("-primary-") && !name.contains("-standby-"),
                    "{name}"
                );
            }
            let by_metric = |metric: &str| {
                alarms
                    .iter()
                    .find(|a| a["Properties"]["MetricName"] == metric)
                    .unwrap_or_else(|| panic!("{label} {role}: no alarm on {metric}"))
            };
            assert_eq!(
                by_metric("AuroraGlobalDBReplicationLag")["Properties"]["TreatMissingData"],
                "missing"
            );
            let other = config.region(role.other());
            let failed = &by_metric("OperationsFailedReplication")["Properties"]["Dimensions"];
            assert_eq!(
                failed[0]["Value"],
                json!({"Fn::Sub": names.assets_bucket_pattern(region)})
            );
            assert_eq!(
                failed[1]["Value"],
                json!({"Fn::Sub": names.assets_bucket_pattern(other)})
            );
            assert_eq!(failed[2]["Value"], format!("assets-to-{other}"));
        }
    }
}

#[test]
fn assets_replicate_both_ways_with_replica_modification_sync() {
    for (label, config) in configs() {
        let s = synthesize(&config).unwrap();
        let names = config.names();
        let primary = json_of(&s, "storage-primary");
        let standby = json_of(&s, "storage-standby");
        let forward =
            &primary["Resources"]["AssetsBucket"]["Properties"]["ReplicationConfiguration"];
        let back_if = &standby["Resources"]["AssetsBucket"]["Properties"]["ReplicationConfiguration"]
            ["Fn::If"];
        assert_eq!(back_if[0], "ReplicatesToPrimary", "{label}");
        assert_eq!(back_if[2], json!({"Ref": "AWS::NoValue"}));
        let back = &back_if[1];
        for (config_json, to) in [(forward, Role::Standby), (back, Role::Primary)] {
            let rule = &config_json["Rules"][0];
            assert_eq!(rule["Status"], "Enabled");
            assert_eq!(
                rule["SourceSelectionCriteria"]["ReplicaModifications"]["Status"], "Enabled",
                "{label}: replica modification sync on the rule to {to}"
            );
            assert_eq!(rule["DeleteMarkerReplication"]["Status"], "Enabled");
            assert_eq!(rule["Id"], format!("assets-to-{}", config.region(to)));
            assert_eq!(
                config_json["Role"],
                json!({"Fn::GetAtt": ["ReplicationRole", "Arn"]})
            );
        }
        // The rule back names the primary's bucket (with the account id) and key alias.
        assert_eq!(
            back["Rules"][0]["Destination"]["Bucket"],
            json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:s3:::{}", names.assets_bucket_pattern(&config.regions.primary))})
        );
        let key = back["Rules"][0]["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"]["Fn::Sub"]
            .as_str()
            .unwrap();
        assert!(
            key.contains(&format!(":kms:{}:", config.regions.primary)),
            "{key}"
        );
        assert!(
            key.ends_with(&format!("alias/{}-storage", names.prefix())),
            "{key}"
        );
        // The standby's replication role exists only with the rule, and may encrypt only with that key.
        let role = &standby["Resources"]["ReplicationRole"];
        assert_eq!(role["Condition"], "ReplicatesToPrimary");
        let statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap();
        let encrypt = statements
            .iter()
            .find(|st| strings(&st["Action"]) == ["kms:Encrypt"])
            .unwrap();
        assert_eq!(
            encrypt["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"],
            format!("alias/{}-storage", names.prefix())
        );
        // Off for the first deployment (the primary's bucket does not exist yet), switched by the deploy.
        let parameter = &standby["Parameters"]["ReplicateToPrimary"];
        assert_eq!(parameter["Default"], "false");
        assert_eq!(
            standby["Conditions"]["ReplicatesToPrimary"],
            json!({"Fn::Equals": [{"Ref": "ReplicateToPrimary"}, "true"]})
        );
        // Fed as "is storage-primary deployed", which is not a dependency (the primary's stack comes later):
        // the deploy applies the standby stack again once the primary's exists.
        let fed = s
            .manifest
            .stack("storage-standby")
            .unwrap()
            .parameters
            .iter()
            .find(|p| p.name == "ReplicateToPrimary")
            .expect("the manifest feeds ReplicateToPrimary");
        assert_eq!(
            fed.source,
            lifeboat_contract::manifest::ParameterSource::StackDeployed {
                stack: "storage-primary".into()
            }
        );
        assert!(
            !s.manifest
                .stack("storage-standby")
                .unwrap()
                .depends_on
                .contains(&"storage-primary".to_owned())
        );
    }
}

#[test]
fn every_bucket_name_carries_the_account_id_wherever_it_is_written() {
    for (label, config) in configs() {
        let s = synthesize(&config).unwrap();
        let names = config.names();
        let all = resources(&s);
        let buckets: Vec<_> = all
            .iter()
            .filter(|(_, _, _, v)| v["Type"] == "AWS::S3::Bucket")
            .collect();
        // Per region: assets, load balancer logs, S3 access logs, DR reports.
        assert_eq!(buckets.len(), 8, "{label}");
        for (stack, _, id, bucket) in buckets {
            let name = bucket["Properties"]["BucketName"]["Fn::Sub"]
                .as_str()
                .unwrap_or_else(|| panic!("{label}: {stack}/{id} has a plain name"));
            assert!(name.ends_with("-${AWS::AccountId}"), "{label}: {name}");
        }
        // No template mentions a bucket name without the account id (alarms, dashboards, IAM, env).
        for (entry, template) in &s.stacks {
            let text = template.render().unwrap();
            for role in Role::BOTH {
                let region = config.region(role);
                for bare in [
                    format!("{}-assets-{region}", names.prefix()),
                    format!("{}-alb-logs-{region}", names.prefix()),
                ] {
                    for (at, _) in text.match_indices(&bare) {
                        let rest = &text[at + bare.len()..];
                        assert!(
                            rest.starts_with("-${AWS::AccountId}"),
                            "{label}: {} names {bare} without the account id",
                            entry.id
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn no_stack_owns_the_dr_control_state() {
    for (label, config) in configs() {
        let s = synthesize(&config).unwrap();
        let names = config.names();
        let control = [
            names.ssm_active_region(),
            names.ssm_epoch(),
            names.ssm_fence(),
        ];
        let parameters: BTreeSet<String> = resources(&s)
            .iter()
            .filter(|(_, _, _, v)| v["Type"] == "AWS::SSM::Parameter")
            .map(|(_, _, _, v)| v["Properties"]["Name"].as_str().unwrap().to_string())
            .collect();
        for name in &control {
            assert!(!parameters.contains(name), "{label}: a stack owns {name}");
        }
        // The endpoint parameters (configuration, rewritten by every deploy) stay.
        let endpoints: BTreeSet<String> = Role::BOTH
            .iter()
            .map(|r| names.ssm_endpoint(config.region(*r)))
            .collect();
        assert!(endpoints.is_subset(&parameters), "{label}: {parameters:?}");
        // Both regions' DR roles may still read and write the control parameters (created by deploy).
        for role in Role::BOTH {
            let v = json_of(&s, &format!("dr-automation-{role}"));
            let statements = v["Resources"]["DrAutomationRole"]["Properties"]["Policies"][0]
                ["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap()
                .clone();
            let ssm = statements
                .iter()
                .find(|st| strings(&st["Action"]).contains(&"ssm:PutParameter".to_string()))
                .unwrap();
            let resources: Vec<String> = ssm["Resource"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["Fn::Sub"].as_str().unwrap().to_string())
                .collect();
            for region in Role::BOTH.map(|r| config.region(r)) {
                let wildcard = format!(
                    "arn:${{AWS::Partition}}:ssm:{region}:${{AWS::AccountId}}:parameter{}/*",
                    names.ssm_prefix()
                );
                assert!(resources.contains(&wildcard), "{label}: {resources:?}");
                for name in &control {
                    assert!(name.starts_with(&format!("{}/", names.ssm_prefix())));
                }
            }
        }
    }
}

#[test]
fn the_standby_database_can_carry_the_primarys_load_unless_lowered() {
    let instances = |s: &Synthesis, stack: &str| -> usize {
        json_of(s, stack)["Resources"]
            .as_object()
            .unwrap()
            .values()
            .filter(|r| r["Type"] == "AWS::RDS::DBInstance")
            .count()
    };
    let scaling = |s: &Synthesis, stack: &str| {
        json_of(s, stack)["Resources"]["Cluster"]["Properties"]["ServerlessV2ScalingConfiguration"]
            .clone()
    };
    for (label, config) in configs() {
        let s = synthesize(&config).unwrap();
        assert_eq!(
            scaling(&s, "database-standby"),
            scaling(&s, "database-primary"),
            "{label}"
        );
        assert_eq!(instances(&s, "database-standby"), 2, "{label}");
        assert_eq!(instances(&s, "database-primary"), 2, "{label}");
    }
    // A bigger primary: the standby follows.
    let big = config(
        "[database.capacity.primary]\nmin = 2\nmax = 64\n[database.instances]\nprimary = 3\n",
    );
    let s = synthesize(&big).unwrap();
    assert_eq!(
        scaling(&s, "database-standby"),
        json!({"MinCapacity": 2.0, "MaxCapacity": 64.0})
    );
    assert_eq!(instances(&s, "database-standby"), 3);
    // Lowered on purpose, for cost.
    let cheap = config(
        "[database.capacity.standby]\nmin = 0.5\nmax = 4\n[database.instances]\nstandby = 1\n",
    );
    let s = synthesize(&cheap).unwrap();
    assert_eq!(
        scaling(&s, "database-standby"),
        json!({"MinCapacity": 0.5, "MaxCapacity": 4.0})
    );
    assert_eq!(instances(&s, "database-standby"), 1);
    assert_eq!(instances(&s, "database-primary"), 2);
}

#[test]
fn the_storefront_knows_its_regions_writer_and_reader_endpoints() {
    for (label, config) in configs() {
        let s = synthesize(&config).unwrap();
        for role in Role::BOTH {
            let stack = format!("compute-{role}");
            let v = json_of(&s, &stack);
            let vars =
                &v["Resources"]["StorefrontFunction"]["Properties"]["Environment"]["Variables"];
            assert_eq!(
                vars["DATABASE_HOST"],
                json!({"Ref": "DatabaseHost"}),
                "{label}"
            );
            assert_eq!(
                vars["DATABASE_READER_HOST"],
                json!({"Ref": "DatabaseReaderHost"})
            );
            let entry = s.manifest.stack(&stack).unwrap();
            let source = |name: &str| {
                entry
                    .parameters
                    .iter()
                    .find(|p| p.name == name)
                    .unwrap()
                    .source
                    .clone()
            };
            let from_database =
                |output: &str| lifeboat_contract::manifest::ParameterSource::StackOutput {
                    stack: format!("database-{role}"),
                    output: output.into(),
                };
            assert_eq!(source("DatabaseHost"), from_database("ClusterEndpoint"));
            assert_eq!(
                source("DatabaseReaderHost"),
                from_database("ReaderEndpoint")
            );
        }
    }
}

#[test]
fn the_dr_function_keeps_its_environment_journal_and_records() {
    let s = synthesize(&Config::default()).unwrap();
    for role in Role::BOTH {
        let v = json_of(&s, &format!("dr-automation-{role}"));
        let vars = v["Resources"]["DrAutomationFunction"]["Properties"]["Environment"]["Variables"]
            .as_object()
            .unwrap();
        for key in [
            "JOURNAL_TABLE",
            "CONTROL_SSM_PREFIX",
            "TOPIC_ARN",
            "GLOBAL_CLUSTER_ID",
            "HOSTED_ZONE_ID",
            "PRIMARY_HEALTH_CHECK_ID",
            "STANDBY_HEALTH_CHECK_ID",
            "LIFEBOAT_PRIMARY_REGION",
            "LIFEBOAT_STANDBY_REGION",
        ] {
            assert!(vars.contains_key(key), "{role}: DR env lacks {key}");
        }
        // The probe may invoke the storefront of either region and publish only its own namespace.
        let statements = v["Resources"]["DrAutomationRole"]["Properties"]["Policies"][0]
            ["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
            .clone();
        let put = statements
            .iter()
            .find(|st| strings(&st["Action"]) == ["cloudwatch:PutMetricData"])
            .unwrap();
        assert_eq!(
            put["Condition"]["StringEquals"]["cloudwatch:namespace"],
            PROBE_NAMESPACE
        );
        let invoke = statements
            .iter()
            .find(|st| strings(&st["Action"]) == ["lambda:InvokeFunction"])
            .unwrap();
        assert_eq!(invoke["Resource"].as_array().unwrap().len(), 2);
    }
    let primary = json_of(&s, "dr-automation-primary");
    let journal = &primary["Resources"]["JournalTable"]["Properties"];
    assert_eq!(journal["TableName"], "lifeboat-dev-dr-journal");
    assert_eq!(journal["Replicas"].as_array().unwrap().len(), 2);
}

/// An alarm change that EventBridge cannot turn into a state machine execution is kept, not dropped: the
/// rule's target retries for a bounded time, then dead-letters into the failed-events queue (whose alarm
/// tells the operators), and exactly that rule may write to the queue and use its key.
#[test]
fn alarm_events_that_cannot_start_the_automation_are_dead_lettered_not_dropped() {
    for (label, config) in configs() {
        let s = synthesize(&config).unwrap();
        for role in [Role::Primary, Role::Standby] {
            let stack = format!("dr-automation-{}", role.as_str());
            let t = json_of(&s, &stack);
            let resources = &t["Resources"];
            let rule_name = lifeboat_platform::dr_automation::alarm_rule_name(&config);
            let rule = &resources["AlarmRule"]["Properties"];
            assert_eq!(rule["Name"], rule_name.as_str(), "{label} {stack}");
            let target = &rule["Targets"][0];
            assert_eq!(
                target["DeadLetterConfig"]["Arn"],
                json!({"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}),
                "{label} {stack}: the target dead-letters into the failed-events queue"
            );
            assert_eq!(
                target["RetryPolicy"]["MaximumEventAgeInSeconds"],
                lifeboat_platform::dr_automation::ALARM_EVENT_MAX_AGE_SECONDS
            );
            assert!(target["RetryPolicy"]["MaximumRetryAttempts"].as_u64() > Some(0));

            let rule_arn = json!({"Fn::Sub": format!(
                "arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{rule_name}"
            )});
            let queue_policy = &resources["FailedEventsQueuePolicy"]["Properties"];
            assert_eq!(
                queue_policy["Queues"],
                json!([{"Ref": "FailedEventsQueue"}])
            );
            let statements = queue_policy["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap();
            assert_eq!(statements.len(), 1, "{label} {stack}: {statements:?}");
            assert_eq!(
                statements[0]["Principal"],
                json!({"Service": "events.amazonaws.com"})
            );
            assert_eq!(statements[0]["Action"], "sqs:SendMessage");
            assert_eq!(
                statements[0]["Condition"]["ArnEquals"]["aws:SourceArn"], rule_arn,
                "{label} {stack}: only the alarm rule may write"
            );

            // The queue is encrypted with the audit key: EventBridge may use it for that rule only.
            assert_eq!(
                resources["FailedEventsQueue"]["Properties"]["KmsMasterKeyId"],
                json!({"Fn::GetAtt": ["AuditKey", "Arn"]})
            );
            let key_statements = resources["AuditKey"]["Properties"]["KeyPolicy"]["Statement"]
                .as_array()
                .unwrap();
            let for_events: Vec<&Value> = key_statements
                .iter()
                .filter(|st| {
                    strings(&st["Principal"]["Service"])
                        .contains(&"events.amazonaws.com".to_owned())
                })
                .collect();
            assert_eq!(for_events.len(), 1, "{label} {stack}: {key_statements:?}");
            assert_eq!(
                for_events[0]["Action"],
                json!(["kms:GenerateDataKey", "kms:Decrypt"])
            );
            assert_eq!(
                for_events[0]["Condition"]["ArnEquals"]["aws:SourceArn"],
                rule_arn
            );
        }
    }
}
