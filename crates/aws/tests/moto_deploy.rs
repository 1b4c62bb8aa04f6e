//! The deploy engine against a moto server (`LIFEBOAT_TEST_AWS_ENDPOINT`, started by `scripts/test`), in
//! us-east-1 and us-west-2, with our real networking stacks plus a stack in the standby region whose
//! parameters come from the primary region's outputs.
//!
//! Each test uses its own environment suffix, so tests of other crates can share the server. After every
//! deploy the stacks' resources are compared with their templates: moto skips resource types it does not
//! support without a word, and such a skip must fail the test.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_cloudformation::config::Credentials;
use lifeboat_aws::api::RegionApi;
use lifeboat_aws::changes::{Action, StatefulRisk};
use lifeboat_aws::engine::{
    ArtifactLocations, DiffResult, Engine, EngineOptions, RunReport, missing_resources,
};
use lifeboat_aws::progress::{Observer, Outcome, Progress};
use lifeboat_aws::sdk::SdkRegion;
use lifeboat_aws::synth_output::SynthOutput;
use lifeboat_contract::exit;
use lifeboat_contract::manifest::{Manifest, ParameterSource, StackEntry, StackParameter};

const PRIMARY: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
#[path = "support/ec2.rs"]
mod ec2_api;
use ec2_api::{remove_what_moto_cannot_delete, vpc_exists};

const MOTO_UNRESOLVABLE_OUTPUT: &str = "HostedZoneNameServers";

fn endpoint() -> String {
    std::env::var("LIFEBOAT_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "LIFEBOAT_TEST_AWS_ENDPOINT is not set: these tests need a moto server. Run them through scripts/test, \
             or start one (source scripts/lib.sh; start_moto DIR) and export the variable"
        )
    })
}

fn credentials() -> Credentials {
    // moto accepts any static credentials.
    Credentials::new("testing", "testing", None, None, "lifeboat-tests")
}

fn region_api(endpoint: &str, region: &str) -> SdkRegion {
    let cfn = aws_sdk_cloudformation::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials())
        .build();
    let s3 = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials())
        .force_path_style(true)
        .build();
    SdkRegion::from_clients(
        region,
        Some(endpoint.to_string()),
        aws_sdk_cloudformation::Client::from_conf(cfn),
        aws_sdk_s3::Client::from_conf(s3),
    )
}

fn ssm(endpoint: &str, region: &str) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(endpoint)
            .credentials_provider(credentials())
            .build(),
    )
}

/// The real networking stacks of a fresh environment, plus `peer-standby`: an SSM parameter and a security
/// group in the standby VPC, fed by the primary region's VPC id.
fn synth_with_peer(environment: &str, peer_value_suffix: &str) -> (SynthOutput, tempfile::TempDir) {
    let mut config = lifeboat_config::Config::default();
    config.project.environment = environment.to_string();
    // Moto has no ACM certificates; outside `dev` plain HTTP must be allowed explicitly.
    config.certificates.allow_insecure_http = true;
    let synthesis = lifeboat_platform::synthesize(&config).expect("default config synthesizes");
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in synthesis.render().unwrap() {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let full = SynthOutput::load(dir.path()).expect("synth output loads");
    let mut stacks: Vec<StackEntry> = full
        .manifest
        .stacks
        .iter()
        .filter(|s| s.id.starts_with("networking-"))
        .cloned()
        .collect();
    assert_eq!(stacks.len(), 2, "a networking stack per region");
    let mut templates: BTreeMap<String, String> = stacks
        .iter()
        .map(|s| (s.id.clone(), full.template(&s.id).to_string()))
        .collect();
    // moto cannot resolve `Fn::GetAtt HostedZone.NameServers` and then reports no outputs at all for the
    // stack; that one output is dropped here (AWS resolves it). Everything else is the synthesized template.
    for s in &mut stacks {
        let mut doc: serde_json::Value = serde_json::from_str(&templates[&s.id]).unwrap();
        if let Some(outputs) = doc
            .get_mut("Outputs")
            .and_then(serde_json::Value::as_object_mut)
        {
            outputs.shift_remove(MOTO_UNRESOLVABLE_OUTPUT);
        }
        s.outputs.retain(|o| o != MOTO_UNRESOLVABLE_OUTPUT);
        templates.insert(s.id.clone(), serde_json::to_string_pretty(&doc).unwrap());
    }

    let peer_name = format!("lifeboat-{environment}-peer-standby");
    let parameter_name = format!("/lifeboat/{environment}/peer/primary-vpc");
    let template = serde_json::json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {
            "PrimaryVpcId": { "Type": "String" },
            "StandbyVpcId": { "Type": "String" }
        },
        "Resources": {
            "PrimaryVpcParameter": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Name": parameter_name,
                    "Type": "String",
                    "Value": { "Fn::Sub": format!("${{PrimaryVpcId}}{peer_value_suffix}") }
                }
            },
            "PeerSecurityGroup": {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": { "GroupDescription": "peer of the primary VPC", "VpcId": { "Ref": "StandbyVpcId" } }
            }
        },
        "Outputs": { "PeerSecurityGroupId": { "Value": { "Ref": "PeerSecurityGroup" } } }
    });
    stacks.push(StackEntry {
        id: "peer-standby".into(),
        name: peer_name,
        component: "peer".into(),
        region: STANDBY.into(),
        template: "peer-standby.template.json".into(),
        depends_on: vec!["networking-primary".into(), "networking-standby".into()],
        parameters: vec![
            StackParameter {
                name: "PrimaryVpcId".into(),
                source: ParameterSource::StackOutput {
                    stack: "networking-primary".into(),
                    output: "VpcId".into(),
                },
            },
            StackParameter {
                name: "StandbyVpcId".into(),
                source: ParameterSource::StackOutput {
                    stack: "networking-standby".into(),
                    output: "VpcId".into(),
                },
            },
        ],
        outputs: vec!["PeerSecurityGroupId".into()],
        resource_count: 2,
        stateful_resources: vec![],
    });
    templates.insert(
        "peer-standby".into(),
        serde_json::to_string_pretty(&template).unwrap(),
    );
    let manifest = Manifest {
        stacks,
        ..full.manifest.clone()
    };
    (
        // moto's CloudFormation handler for KMS keys fails on their tags (see `SynthOutput::for_emulator`).
        SynthOutput::from_parts(dir.path().to_path_buf(), manifest, templates)
            .unwrap()
            .for_emulator(),
        dir,
    )
}

struct Recorder(Mutex<Vec<Progress>>);

impl Observer for Recorder {
    fn event(&self, event: Progress) {
        self.0.lock().unwrap().push(event);
    }
    fn approve_data_risk(&self, _: &str, _: &[StatefulRisk]) -> bool {
        false
    }
}

fn options() -> EngineOptions {
    EngineOptions {
        concurrency: 4,
        timeout: Duration::from_secs(120),
        poll_initial: Duration::from_millis(50),
        poll_max: Duration::from_millis(500),
        recompute_outputs: true,
        // moto 5.2 has no UpdateTerminationProtection (the CLI turns it off for emulators too).
        termination_protection: false,
        ..EngineOptions::default()
    }
}

async fn deploy(synth: &SynthOutput, apis: &BTreeMap<String, SdkRegion>) -> RunReport {
    let engine = Engine::new(synth, apis, options());
    let selection = engine.select(Some("networking-*,peer-*")).unwrap();
    let report = engine
        .deploy(
            &selection,
            &ArtifactLocations::new(),
            &BTreeMap::new(),
            &Recorder(Mutex::new(vec![])),
        )
        .await
        .expect("deploy runs");
    assert_eq!(report.exit_code(), exit::OK, "{report:#?}");
    assert_all_resources_exist(synth, apis).await;
    report
}

/// Fails when the endpoint lists fewer resources than a template declares (a silently skipped type).
async fn assert_all_resources_exist(synth: &SynthOutput, apis: &BTreeMap<String, SdkRegion>) {
    for s in &synth.manifest.stacks {
        let listed = apis[&s.region].stack_resources(&s.name).await.unwrap();
        let missing = missing_resources(&synth.template_resources(&s.id).unwrap(), &listed);
        assert!(
            missing.is_empty(),
            "{}: the endpoint did not create {missing:?}",
            s.id
        );
    }
}

fn outcomes(report: &RunReport) -> Vec<(String, &'static str)> {
    report
        .stacks
        .iter()
        .map(|s| (s.id.clone(), s.outcome.label()))
        .collect()
}

#[tokio::test]
async fn two_regions_deploy_stay_unchanged_apply_a_change_and_destroy() {
    let endpoint = endpoint();
    let environment = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let apis: BTreeMap<String, SdkRegion> = [PRIMARY, STANDBY]
        .iter()
        .map(|r| (r.to_string(), region_api(&endpoint, r)))
        .collect();

    // 1. Deploy: both networks, then the standby stack fed by the primary's output.
    let (synth, _dir) = synth_with_peer(&environment, "");
    let report = deploy(&synth, &apis).await;
    assert_eq!(report.exit_code(), exit::OK, "{report:#?}");
    assert!(
        report
            .stacks
            .iter()
            .all(|s| matches!(s.outcome, Outcome::Created { .. })),
        "{:?}",
        outcomes(&report)
    );
    let engine = Engine::new(&synth, &apis, options());
    let ids: Vec<String> = synth.manifest.stacks.iter().map(|s| s.id.clone()).collect();
    let status: BTreeMap<String, _> = engine
        .status(&ids)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let primary_vpc = status["networking-primary"].outputs["VpcId"].clone();
    let standby_vpc = status["networking-standby"].outputs["VpcId"].clone();
    assert!(primary_vpc.starts_with("vpc-") && standby_vpc.starts_with("vpc-"));
    assert!(
        vpc_exists(&endpoint, PRIMARY, &primary_vpc).await,
        "primary VPC in {PRIMARY}"
    );
    assert!(
        vpc_exists(&endpoint, STANDBY, &standby_vpc).await,
        "standby VPC in {STANDBY}"
    );
    assert!(
        !vpc_exists(&endpoint, PRIMARY, &standby_vpc).await,
        "each VPC lives in its own region"
    );
    let ssm = ssm(&endpoint, STANDBY);
    let parameter_name = format!("/lifeboat/{environment}/peer/primary-vpc");
    let value = ssm
        .get_parameter()
        .name(&parameter_name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        value.parameter().and_then(|p| p.value()),
        Some(primary_vpc.as_str()),
        "fed across regions"
    );

    // 2. Deploy again: every stack unchanged, nothing touched (no new stack events, same last update).
    let events_before = stack_event_counts(&synth, &apis).await;
    let report = deploy(&synth, &apis).await;
    assert!(
        report
            .stacks
            .iter()
            .all(|s| s.outcome == Outcome::Unchanged),
        "{:?}",
        outcomes(&report)
    );
    assert_eq!(
        stack_event_counts(&synth, &apis).await,
        events_before,
        "a stack was updated"
    );
    let after: BTreeMap<String, _> = engine
        .status(&ids)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    for id in &ids {
        assert_eq!(
            after[id].last_updated, status[id].last_updated,
            "{id} was updated"
        );
    }

    // 3. Change a property: diff shows a Modify, deploy applies it.
    let (changed, _dir2) = synth_with_peer(&environment, "-v2");
    let engine2 = Engine::new(&changed, &apis, options());
    let selection = engine2.select(Some("networking-*,peer-*")).unwrap();
    let diffs = engine2
        .diff(&selection, &ArtifactLocations::new())
        .await
        .unwrap();
    let by_id: BTreeMap<&str, &DiffResult> =
        diffs.iter().map(|d| (d.id.as_str(), &d.result)).collect();
    assert_eq!(by_id["networking-primary"], &DiffResult::NoChanges);
    assert_eq!(by_id["networking-standby"], &DiffResult::NoChanges);
    match by_id["peer-standby"] {
        DiffResult::Changes {
            changes,
            stateful_risks,
        } => {
            assert!(stateful_risks.is_empty());
            assert!(
                changes
                    .iter()
                    .any(|c| c.logical_id == "PrimaryVpcParameter" && c.action == Action::Modify),
                "{changes:?}"
            );
        }
        other => panic!("expected a Modify, got {other:?}"),
    }
    let unchanged_value = ssm
        .get_parameter()
        .name(&parameter_name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        unchanged_value.parameter().and_then(|p| p.value()),
        Some(primary_vpc.as_str()),
        "diff changed it"
    );
    let report = deploy(&changed, &apis).await;
    assert!(
        matches!(
            report.get("peer-standby").unwrap().outcome,
            Outcome::Updated { .. }
        ),
        "{report:#?}"
    );
    assert_eq!(
        report.get("networking-primary").unwrap().outcome,
        Outcome::Unchanged
    );
    let value = ssm
        .get_parameter()
        .name(&parameter_name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        value.parameter().and_then(|p| p.value()),
        Some(format!("{primary_vpc}-v2").as_str())
    );

    // 4. Destroy: dependents first, then everything is gone.
    let selection = engine2.select(None).unwrap();
    let plan = engine2.plan_destroy(&selection).await.unwrap();
    assert!(plan.data.is_empty(), "{:?}", plan.data);
    assert_eq!(
        plan.to_delete.first().map(String::as_str),
        Some("peer-standby")
    );
    remove_what_moto_cannot_delete(&endpoint, PRIMARY, &primary_vpc).await;
    remove_what_moto_cannot_delete(&endpoint, STANDBY, &standby_vpc).await;
    let report = engine2
        .destroy(&plan, false, &Recorder(Mutex::new(vec![])))
        .await
        .unwrap();
    assert_eq!(report.exit_code(), exit::OK, "{report:#?}");
    for s in &changed.manifest.stacks {
        assert_eq!(
            apis[&s.region].describe_stack(&s.name).await.unwrap(),
            None,
            "{} still exists",
            s.id
        );
    }
    assert!(
        !vpc_exists(&endpoint, PRIMARY, &primary_vpc).await,
        "primary VPC deleted"
    );
    assert!(
        !vpc_exists(&endpoint, STANDBY, &standby_vpc).await,
        "standby VPC deleted"
    );
    assert!(
        ssm.get_parameter()
            .name(&parameter_name)
            .send()
            .await
            .is_err(),
        "parameter deleted"
    );
}

async fn stack_event_counts(synth: &SynthOutput, apis: &BTreeMap<String, SdkRegion>) -> Vec<usize> {
    let mut counts = Vec::new();
    for s in &synth.manifest.stacks {
        counts.push(
            apis[&s.region]
                .stack_events(&s.name, None)
                .await
                .unwrap()
                .len(),
        );
    }
    counts
}

#[tokio::test]
async fn the_bootstrap_stack_creates_a_hardened_bucket_and_uploads_by_hash() {
    let endpoint = endpoint();
    let environment = format!("b{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let apis: BTreeMap<String, SdkRegion> = [PRIMARY, STANDBY]
        .iter()
        .map(|r| (r.to_string(), region_api(&endpoint, r)))
        .collect();
    let (synth, _dir) = synth_with_peer(&environment, "");
    // A stack in the primary region that takes a package location.
    let mut entry = synth.manifest.stacks[0].clone();
    entry.id = "code-primary".into();
    entry.name = format!("lifeboat-{environment}-code-primary");
    entry.region = PRIMARY.into();
    entry.depends_on = vec![];
    entry.outputs = vec![];
    entry.parameters = vec![
        StackParameter {
            name: "CodeBucket".into(),
            source: ParameterSource::Artifact {
                artifact: "storefront".into(),
                part: lifeboat_contract::manifest::ArtifactPart::Bucket,
            },
        },
        StackParameter {
            name: "CodeKey".into(),
            source: ParameterSource::Artifact {
                artifact: "storefront".into(),
                part: lifeboat_contract::manifest::ArtifactPart::Key,
            },
        },
    ];
    let template = r#"{"Parameters":{"CodeBucket":{"Type":"String"},"CodeKey":{"Type":"String"}},
        "Resources":{"Location":{"Type":"AWS::SSM::Parameter","Properties":{"Type":"String","Name":"LOCATION_NAME",
        "Value":{"Fn::Sub":"s3://${CodeBucket}/${CodeKey}"}}}}}"#;
    let location_name = format!("/lifeboat/{environment}/code-location");
    let template = template.replace("LOCATION_NAME", &location_name);
    let manifest = Manifest {
        stacks: vec![entry],
        ..synth.manifest.clone()
    };
    let code = SynthOutput::from_parts(
        PathBuf::new(),
        manifest,
        [("code-primary".to_string(), template)]
            .into_iter()
            .collect(),
    )
    .unwrap();
    let artifacts = tempfile::tempdir().unwrap();
    std::fs::write(
        artifacts.path().join("storefront.zip"),
        b"PK not really a zip, but bytes with a hash",
    )
    .unwrap();
    let recorder = Recorder(Mutex::new(vec![]));
    let prepared = lifeboat_aws::assets::prepare_assets(
        &code,
        &apis,
        &["code-primary".to_string()],
        Some(artifacts.path()),
        &options(),
        true,
        &recorder,
    )
    .await
    .unwrap();
    let location = &prepared.artifacts[&(PRIMARY.to_string(), "storefront".to_string())];
    let bootstrap_name = format!("lifeboat-{environment}-bootstrap");
    assert!(
        apis[PRIMARY]
            .describe_stack(&bootstrap_name)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        apis[STANDBY]
            .describe_stack(&bootstrap_name)
            .await
            .unwrap()
            .is_none(),
        "only where needed"
    );
    let s3 = apis[PRIMARY].s3();
    // moto 5.2 applies the bucket's encryption from the template but ignores its versioning and public
    // access block (both are asserted on the template in the unit tests).
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&location.bucket)
        .send()
        .await
        .unwrap();
    let rule = &encryption
        .server_side_encryption_configuration()
        .unwrap()
        .rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "aws:kms"
    );
    let object = s3
        .get_object()
        .bucket(&location.bucket)
        .key(&location.key)
        .send()
        .await
        .unwrap();
    let bytes = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(&bytes[..], b"PK not really a zip, but bytes with a hash");
    assert!(
        !recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Progress::Warning { .. })),
        "no placeholder"
    );

    // The deploy feeds the location; destroying refuses the non-empty bucket without --force.
    let engine = Engine::new(&code, &apis, options());
    let report = engine
        .deploy(
            &engine.select(None).unwrap(),
            &prepared.artifacts,
            &prepared.template_urls,
            &recorder,
        )
        .await
        .unwrap();
    assert_eq!(report.exit_code(), exit::OK, "{report:#?}");
    let ssm = ssm(&endpoint, PRIMARY);
    let fed = ssm
        .get_parameter()
        .name(&location_name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        fed.parameter().and_then(|p| p.value()),
        Some(format!("s3://{}/{}", location.bucket, location.key).as_str())
    );
    engine
        .destroy(
            &engine
                .plan_destroy(&engine.select(None).unwrap())
                .await
                .unwrap(),
            false,
            &recorder,
        )
        .await
        .unwrap();

    let boot = lifeboat_aws::assets::bootstrap_output(
        &code.manifest,
        &[PRIMARY.to_string()].into_iter().collect(),
    )
    .unwrap();
    let boot_engine = Engine::new(&boot, &apis, options());
    let plan = boot_engine
        .plan_destroy(&boot_engine.select(None).unwrap())
        .await
        .unwrap();
    assert_eq!(plan.data.len(), 1, "{:?}", plan.data);
    let refused = boot_engine
        .destroy(&plan, false, &recorder)
        .await
        .unwrap_err();
    assert_eq!(refused.exit_code(), exit::REFUSED);
    assert!(
        apis[PRIMARY]
            .describe_stack(&bootstrap_name)
            .await
            .unwrap()
            .is_some(),
        "refusal deleted nothing"
    );
    let report = boot_engine.destroy(&plan, true, &recorder).await.unwrap();
    assert_eq!(report.exit_code(), exit::OK, "{report:#?}");
    assert!(
        apis[PRIMARY]
            .describe_stack(&bootstrap_name)
            .await
            .unwrap()
            .is_none()
    );
}
