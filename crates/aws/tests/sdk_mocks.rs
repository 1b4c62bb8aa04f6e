//! The engine over the real SDK adapter, with CloudFormation answers that moto never gives: per-resource failure
//! events, ROLLBACK_COMPLETE, the FAILED change sets of "no changes", and a change set that fails outright.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ErrorMetadata;
use aws_sdk_cloudformation::operation::create_change_set::CreateChangeSetOutput;
use aws_sdk_cloudformation::operation::delete_change_set::DeleteChangeSetOutput;
use aws_sdk_cloudformation::operation::delete_stack::DeleteStackOutput;
use aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput;
use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
use aws_sdk_cloudformation::operation::describe_stack_resources::DescribeStackResourcesOutput;
use aws_sdk_cloudformation::operation::describe_stacks::{
    DescribeStacksError, DescribeStacksOutput,
};
use aws_sdk_cloudformation::operation::execute_change_set::ExecuteChangeSetOutput;
use aws_sdk_cloudformation::types::{
    Change, ChangeAction, ChangeSetStatus, ChangeSetType, Output, ResourceChange, ResourceStatus,
    Stack, StackEvent, StackStatus,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use lifeboat_aws::api::RegionApi;
use lifeboat_aws::changes::StatefulRisk;
use lifeboat_aws::engine::{ArtifactLocations, Engine, EngineOptions};
use lifeboat_aws::progress::{Observer, Outcome, Progress};
use lifeboat_aws::sdk::SdkRegion;
use lifeboat_aws::synth_output::SynthOutput;
use lifeboat_contract::exit;
use lifeboat_contract::manifest::{Manifest, StackEntry};

const NAME: &str = "shop-dev-networking-primary";

fn synth() -> SynthOutput {
    let entry = StackEntry {
        id: "networking-primary".into(),
        name: NAME.into(),
        component: "networking".into(),
        region: "us-east-1".into(),
        template: "networking-primary.template.json".into(),
        depends_on: vec![],
        parameters: vec![],
        outputs: vec!["VpcId".into()],
        resource_count: 2,
        stateful_resources: vec![],
    };
    let manifest = Manifest {
        format_version: lifeboat_contract::MANIFEST_FORMAT_VERSION,
        project: "shop".into(),
        environment: "dev".into(),
        primary_region: "us-east-1".into(),
        standby_region: "us-west-2".into(),
        stacks: vec![entry],
    };
    let template = r#"{"Resources":{"Vpc":{"Type":"AWS::EC2::VPC","Properties":{"CidrBlock":"10.0.0.0/16"}},
        "Subnet":{"Type":"AWS::EC2::Subnet","Properties":{"VpcId":{"Ref":"Vpc"},"CidrBlock":"10.0.0.0/24"}}},
        "Outputs":{"VpcId":{"Value":{"Ref":"Vpc"}}}}"#;
    let templates = [("networking-primary".to_string(), template.to_string())]
        .into_iter()
        .collect();
    SynthOutput::from_parts(PathBuf::new(), manifest, templates).unwrap()
}

struct Recorder(Mutex<Vec<Progress>>);

impl Observer for Recorder {
    fn event(&self, event: Progress) {
        self.0.lock().unwrap().push(event);
    }
    fn approve_data_risk(&self, _: &str, _: &[StatefulRisk]) -> bool {
        true
    }
}

fn stack(status: StackStatus) -> DescribeStacksOutput {
    DescribeStacksOutput::builder()
        .stacks(
            Stack::builder()
                .stack_id(format!(
                    "arn:aws:cloudformation:us-east-1:123456789012:stack/{NAME}/1"
                ))
                .stack_name(NAME)
                .stack_status(status)
                .creation_time(DateTime::from_secs(1_700_000_000))
                .outputs(
                    Output::builder()
                        .output_key("VpcId")
                        .output_value("vpc-0abc")
                        .build(),
                )
                .build(),
        )
        .build()
}

fn not_found() -> DescribeStacksError {
    DescribeStacksError::generic(
        ErrorMetadata::builder()
            .code("ValidationError")
            .message(format!("Stack with id {NAME} does not exist"))
            .build(),
    )
}

fn event(id: &str, logical: &str, ty: &str, status: ResourceStatus, reason: &str) -> StackEvent {
    StackEvent::builder()
        .event_id(id)
        .stack_name(NAME)
        .logical_resource_id(logical)
        .resource_type(ty)
        .resource_status(status)
        .resource_status_reason(reason)
        .timestamp(DateTime::from_secs(1_700_000_000))
        .build()
}

fn add(logical: &str, ty: &str) -> Change {
    Change::builder()
        .resource_change(
            ResourceChange::builder()
                .action(ChangeAction::Add)
                .logical_resource_id(logical)
                .resource_type(ty)
                .build(),
        )
        .build()
}

fn options() -> EngineOptions {
    EngineOptions {
        concurrency: 2,
        timeout: Duration::from_secs(10),
        poll_initial: Duration::from_millis(1),
        poll_max: Duration::from_millis(5),
        recompute_outputs: false,
        ..EngineOptions::default()
    }
}

async fn run(rules: &[&Rule]) -> (lifeboat_aws::RunReport, Vec<Progress>) {
    let cfn: Client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, rules);
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[]);
    let region = SdkRegion::from_clients("us-east-1", None, cfn, s3);
    assert_eq!(region.region(), "us-east-1");
    let apis: BTreeMap<String, SdkRegion> =
        [("us-east-1".to_string(), region)].into_iter().collect();
    let synth = synth();
    let engine = Engine::new(&synth, &apis, options());
    let selection = engine.select(None).unwrap();
    let observer = Recorder(Mutex::new(vec![]));
    let report = engine
        .deploy(
            &selection,
            &ArtifactLocations::new(),
            &BTreeMap::new(),
            &observer,
        )
        .await
        .unwrap();
    (report, observer.0.into_inner().unwrap())
}

#[tokio::test]
async fn a_rolled_back_create_names_the_failing_resource_from_per_resource_events() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .error(not_found)
        .output(|| stack(StackStatus::RollbackComplete))
        .repeatedly()
        .build();
    let create = mock!(Client::create_change_set)
        .match_requests(|r| {
            r.change_set_type() == Some(&ChangeSetType::Create) && r.stack_name() == Some(NAME)
        })
        .then_output(|| {
            CreateChangeSetOutput::builder()
                .id("cs-1")
                .stack_id("arn:stack")
                .build()
        });
    let describe_cs = mock!(Client::describe_change_set).then_output(|| {
        DescribeChangeSetOutput::builder()
            .status(ChangeSetStatus::CreateComplete)
            .changes(add("Vpc", "AWS::EC2::VPC"))
            .changes(add("Subnet", "AWS::EC2::Subnet"))
            .build()
    });
    let events = mock!(Client::describe_stack_events)
        .sequence()
        .output(|| {
            DescribeStackEventsOutput::builder()
                .stack_events(event(
                    "e0",
                    NAME,
                    "AWS::CloudFormation::Stack",
                    ResourceStatus::from("REVIEW_IN_PROGRESS"),
                    "User Initiated",
                ))
                .build()
        })
        .output(|| {
            DescribeStackEventsOutput::builder()
                .stack_events(event(
                    "e5",
                    NAME,
                    "AWS::CloudFormation::Stack",
                    ResourceStatus::RollbackComplete,
                    "",
                ))
                .stack_events(event(
                    "e4",
                    "Subnet",
                    "AWS::EC2::Subnet",
                    ResourceStatus::CreateFailed,
                    "Resource creation cancelled",
                ))
                .stack_events(event(
                    "e3",
                    "Vpc",
                    "AWS::EC2::VPC",
                    ResourceStatus::CreateFailed,
                    "The maximum number of VPCs has been reached. (Service: Ec2, Status Code: 400)",
                ))
                .stack_events(event(
                    "e2",
                    "Vpc",
                    "AWS::EC2::VPC",
                    ResourceStatus::CreateInProgress,
                    "",
                ))
                .stack_events(event(
                    "e0",
                    NAME,
                    "AWS::CloudFormation::Stack",
                    ResourceStatus::from("REVIEW_IN_PROGRESS"),
                    "User Initiated",
                ))
                .build()
        })
        .repeatedly()
        .build();
    let execute =
        mock!(Client::execute_change_set).then_output(|| ExecuteChangeSetOutput::builder().build());
    let resources = mock!(Client::describe_stack_resources)
        .then_output(|| DescribeStackResourcesOutput::builder().build());

    let (report, events_seen) = run(&[
        &describe,
        &create,
        &describe_cs,
        &events,
        &execute,
        &resources,
    ])
    .await;
    assert_eq!(report.exit_code(), exit::FAILED);
    let Outcome::Failed { reason } = &report.stacks[0].outcome else {
        panic!("{report:?}")
    };
    assert!(
        reason.starts_with("Vpc (AWS::EC2::VPC) CREATE_FAILED"),
        "{reason}"
    );
    assert!(reason.contains("maximum number of VPCs"), "{reason}");
    assert_eq!(execute.num_calls(), 1);
    // Each failing resource got its own progress line, the cancelled one included.
    let failed: Vec<&str> = events_seen
        .iter()
        .filter_map(|e| match e {
            Progress::ResourceFailed { logical_id, .. } => Some(logical_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(failed, vec!["Vpc", "Subnet"]);
}

async fn no_change_case(reason: &'static str) {
    let describe =
        mock!(Client::describe_stacks).then_output(|| stack(StackStatus::UpdateComplete));
    let create = mock!(Client::create_change_set)
        .match_requests(|r| r.change_set_type() == Some(&ChangeSetType::Update))
        .then_output(|| CreateChangeSetOutput::builder().id("cs-2").build());
    let describe_cs = mock!(Client::describe_change_set).then_output(move || {
        DescribeChangeSetOutput::builder()
            .status(ChangeSetStatus::Failed)
            .status_reason(reason)
            .build()
    });
    let delete_cs = mock!(Client::delete_change_set)
        .match_requests(|r| r.change_set_name() == Some("cs-2"))
        .then_output(|| DeleteChangeSetOutput::builder().build());
    let execute =
        mock!(Client::execute_change_set).then_output(|| ExecuteChangeSetOutput::builder().build());

    let (report, _) = run(&[&describe, &create, &describe_cs, &delete_cs, &execute]).await;
    assert_eq!(report.stacks[0].outcome, Outcome::Unchanged, "{reason}");
    assert_eq!(report.exit_code(), exit::OK);
    assert_eq!(execute.num_calls(), 0, "nothing executed");
    assert_eq!(delete_cs.num_calls(), 1, "the empty change set was removed");
}

#[tokio::test]
async fn an_empty_change_set_that_cloudformation_marks_failed_means_unchanged() {
    no_change_case("The submitted information didn't contain changes. Submit different information to create a change set.").await;
    no_change_case("No updates are to be performed.").await;
}

#[tokio::test]
async fn a_failed_change_set_fails_the_stack_with_its_reason_and_is_cleaned_up() {
    let describe =
        mock!(Client::describe_stacks).then_output(|| stack(StackStatus::UpdateComplete));
    let create = mock!(Client::create_change_set)
        .then_output(|| CreateChangeSetOutput::builder().id("cs-3").build());
    let describe_cs = mock!(Client::describe_change_set).then_output(|| {
        DescribeChangeSetOutput::builder()
            .status(ChangeSetStatus::Failed)
            .status_reason(
                "Template error: instance of Fn::GetAtt references undefined resource Missing",
            )
            .build()
    });
    let delete_cs =
        mock!(Client::delete_change_set).then_output(|| DeleteChangeSetOutput::builder().build());
    let execute =
        mock!(Client::execute_change_set).then_output(|| ExecuteChangeSetOutput::builder().build());

    let (report, _) = run(&[&describe, &create, &describe_cs, &delete_cs, &execute]).await;
    let Outcome::Failed { reason } = &report.stacks[0].outcome else {
        panic!("{report:?}")
    };
    assert!(reason.contains("undefined resource Missing"), "{reason}");
    assert_eq!(report.exit_code(), exit::FAILED);
    assert_eq!(execute.num_calls(), 0);
    assert_eq!(delete_cs.num_calls(), 1);
}

#[tokio::test]
async fn a_stack_left_in_rollback_complete_is_deleted_and_created_again() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::RollbackComplete))
        .output(|| stack(StackStatus::DeleteInProgress))
        .error(not_found)
        .output(|| stack(StackStatus::CreateInProgress))
        .output(|| stack(StackStatus::CreateComplete))
        .repeatedly()
        .build();
    let delete = mock!(Client::delete_stack).then_output(|| DeleteStackOutput::builder().build());
    let create = mock!(Client::create_change_set)
        .match_requests(|r| r.change_set_type() == Some(&ChangeSetType::Create))
        .then_output(|| CreateChangeSetOutput::builder().id("cs-4").build());
    let describe_cs = mock!(Client::describe_change_set).then_output(|| {
        DescribeChangeSetOutput::builder()
            .status(ChangeSetStatus::CreateComplete)
            .changes(add("Vpc", "AWS::EC2::VPC"))
            .build()
    });
    let events = mock!(Client::describe_stack_events)
        .then_output(|| DescribeStackEventsOutput::builder().build());
    let execute =
        mock!(Client::execute_change_set).then_output(|| ExecuteChangeSetOutput::builder().build());
    let resources = mock!(Client::describe_stack_resources)
        .then_output(|| DescribeStackResourcesOutput::builder().build());

    let (report, _) = run(&[
        &describe,
        &delete,
        &create,
        &describe_cs,
        &events,
        &execute,
        &resources,
    ])
    .await;
    assert!(
        matches!(report.stacks[0].outcome, Outcome::Created { .. }),
        "{report:?}"
    );
    assert_eq!(delete.num_calls(), 1);
    assert_eq!(create.num_calls(), 1);
}

#[tokio::test]
async fn a_missing_stack_is_reported_as_not_deployed() {
    let describe = mock!(Client::describe_stacks).then_error(not_found);
    let cfn: Client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, &[&describe]);
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[]);
    let region = SdkRegion::from_clients("us-east-1", None, cfn, s3);
    assert_eq!(region.describe_stack(NAME).await.unwrap(), None);
    let apis: BTreeMap<String, SdkRegion> =
        [("us-east-1".to_string(), region)].into_iter().collect();
    let synth = synth();
    let engine = Engine::new(&synth, &apis, options());
    let rows = engine
        .status(&["networking-primary".to_string()])
        .await
        .unwrap();
    assert_eq!(rows[0].status, "NOT_DEPLOYED");
}
