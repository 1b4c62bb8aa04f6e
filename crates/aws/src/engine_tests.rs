//! The engine's logic against an in-memory CloudFormation: ordering, parameter flow across regions, change
//! sets, failures, refusals, destroy order and data protection. No endpoint needed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use lifeboat_contract::exit;
use lifeboat_contract::manifest::{Manifest, ParameterSource, StackEntry, StackParameter};
use serde_json::{Value, json};

use crate::api::*;
use crate::changes::{Action, Replacement, ResourceChange, StatefulRisk};
use crate::engine::*;
use crate::error::EngineError;
use crate::graph;
use crate::progress::{Observer, Outcome, Progress};
use crate::synth_output::SynthOutput;

#[derive(Default)]
struct FakeStack {
    status: String,
    template: Value,
    params: BTreeMap<String, String>,
    outputs: BTreeMap<String, String>,
    events: Vec<StackEvent>,
    /// Describe calls left before an in-progress operation settles.
    settles_in: u32,
    settle_to: String,
}

struct FakeChangeSet {
    stack: String,
    kind: ChangeSetKind,
    template: Value,
    params: BTreeMap<String, String>,
    changes: Vec<ResourceChange>,
}

#[derive(Default)]
struct FakeState {
    stacks: BTreeMap<String, FakeStack>,
    change_sets: BTreeMap<String, FakeChangeSet>,
    /// Stack name → (logical id, reason): executing a change set of this stack fails on that resource.
    failing: BTreeMap<String, (String, String)>,
    /// Bucket → object count.
    buckets: BTreeMap<String, usize>,
    calls: Vec<String>,
    in_progress_max: usize,
    next_id: u64,
    /// Real CloudFormation marks an empty change set FAILED; the fake can do either.
    empty_change_set_fails: bool,
    /// The region's endpoint cannot be reached: every call fails as a connection failure does.
    lost: bool,
}

struct FakeRegion {
    region: String,
    state: Mutex<FakeState>,
}

impl FakeRegion {
    fn new(region: &str) -> Self {
        Self {
            region: region.into(),
            state: Mutex::new(FakeState::default()),
        }
    }
    fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }
    fn calls(&self, prefix: &str) -> Vec<String> {
        self.with(|s| {
            s.calls
                .iter()
                .filter(|c| c.starts_with(prefix))
                .cloned()
                .collect()
        })
    }
}

fn resources_of(t: &Value) -> BTreeMap<String, Value> {
    t["Resources"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn compute_changes(
    old: Option<&FakeStack>,
    template: &Value,
    params: &BTreeMap<String, String>,
) -> Vec<ResourceChange> {
    let new = resources_of(template);
    let before = old.map(|s| resources_of(&s.template)).unwrap_or_default();
    let params_changed = old.is_some_and(|s| &s.params != params);
    let mut out = Vec::new();
    for (id, r) in &new {
        let ty = r["Type"].as_str().unwrap_or("").to_string();
        match before.get(id) {
            None => out.push(ResourceChange {
                logical_id: id.clone(),
                physical_id: None,
                resource_type: ty,
                action: Action::Add,
                replacement: None,
            }),
            Some(b) if b != r || params_changed => {
                // The fake's rule: changing a name replaces the resource.
                let renamed = ["BucketName", "TableName", "DBClusterIdentifier"]
                    .iter()
                    .any(|k| b["Properties"][k] != r["Properties"][k]);
                out.push(ResourceChange {
                    logical_id: id.clone(),
                    physical_id: Some(format!("phys-{id}")),
                    resource_type: ty,
                    action: Action::Modify,
                    replacement: Some(if renamed {
                        Replacement::True
                    } else {
                        Replacement::False
                    }),
                })
            }
            _ => {}
        }
    }
    for (id, b) in &before {
        if !new.contains_key(id) {
            out.push(ResourceChange {
                logical_id: id.clone(),
                physical_id: Some(format!("phys-{id}")),
                resource_type: b["Type"].as_str().unwrap_or("").into(),
                action: Action::Remove,
                replacement: None,
            });
        }
    }
    out
}

fn event(
    s: &mut FakeState,
    logical: &str,
    ty: &str,
    status: &str,
    reason: Option<&str>,
) -> StackEvent {
    s.next_id += 1;
    StackEvent {
        event_id: format!("ev-{}", s.next_id),
        timestamp: format!("2026-01-01T00:00:{:02}Z", s.next_id % 60),
        logical_id: logical.into(),
        resource_type: ty.into(),
        status: status.into(),
        reason: reason.map(str::to_string),
    }
}

fn update_in_progress_max(s: &mut FakeState) {
    let n = s
        .stacks
        .values()
        .filter(|x| x.status.ends_with("_IN_PROGRESS") && x.status != "REVIEW_IN_PROGRESS")
        .count();
    s.in_progress_max = s.in_progress_max.max(n);
}

impl RegionApi for FakeRegion {
    fn region(&self) -> &str {
        &self.region
    }

    async fn describe_stack(&self, name: &str) -> ApiResult<Option<StackSnapshot>> {
        if self.with(|s| s.lost) {
            return Err(ApiError {
                operation: "DescribeStacks",
                message: format!(
                    "dispatch failure: cannot connect to cloudformation.{}",
                    self.region
                ),
                unavailable: true,
            });
        }
        Ok(self.with(|s| {
            let st = s.stacks.get_mut(name)?;
            if st.settles_in > 0 {
                st.settles_in -= 1;
                if st.settles_in == 0 {
                    st.status = st.settle_to.clone();
                }
            }
            if st.status == "DELETE_COMPLETE" {
                s.stacks.remove(name);
                return None;
            }
            Some(StackSnapshot {
                stack_id: format!("arn:{name}"),
                name: name.into(),
                status: st.status.clone(),
                status_reason: None,
                last_updated: Some("2026-01-01T00:00:00Z".into()),
                drift_status: Some("NOT_CHECKED".into()),
                outputs: st.outputs.clone(),
                parameters: st.params.clone(),
                termination_protection: false,
            })
        }))
    }

    async fn create_change_set(&self, r: &ChangeSetRequest) -> ApiResult<String> {
        assert!(
            !self.with(|s| s.lost),
            "no change set is created in a lost region"
        );
        self.with(|s| {
            let params: Vec<String> = r
                .parameters
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s.calls.push(format!(
                "create_change_set {} {:?} {}",
                r.stack_name,
                r.kind,
                params.join(" ")
            ));
            let TemplateSource::Body(body) = &r.template else {
                panic!("fake takes bodies")
            };
            let template: Value = serde_json::from_str(body).unwrap();
            // Real CloudFormation checks that every parameter without a default gets a value.
            let declared = template["Parameters"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for (name, decl) in &declared {
                if decl.get("Default").is_none() && !r.parameters.iter().any(|(k, _)| k == name) {
                    return Err(ApiError {
                        operation: "CreateChangeSet",
                        message: format!("Parameters: [{name}] must have values"),
                        unavailable: false,
                    });
                }
            }
            let params: BTreeMap<String, String> = r.parameters.iter().cloned().collect();
            if r.kind == ChangeSetKind::Create {
                s.stacks
                    .entry(r.stack_name.clone())
                    .or_insert_with(|| FakeStack {
                        status: "REVIEW_IN_PROGRESS".into(),
                        ..Default::default()
                    });
            }
            let old = s
                .stacks
                .get(&r.stack_name)
                .filter(|x| x.status != "REVIEW_IN_PROGRESS");
            let changes = compute_changes(old, &template, &params);
            s.next_id += 1;
            let id = format!("cs-{}", s.next_id);
            s.change_sets.insert(
                id.clone(),
                FakeChangeSet {
                    stack: r.stack_name.clone(),
                    kind: r.kind,
                    template,
                    params,
                    changes,
                },
            );
            Ok(id)
        })
    }

    async fn describe_change_set(&self, id: &str) -> ApiResult<ChangeSetState> {
        self.with(|s| {
            let cs = s.change_sets.get(id).expect("known change set");
            if cs.changes.is_empty() && s.empty_change_set_fails {
                return Ok(ChangeSetState {
                    status: "FAILED".into(),
                    status_reason: Some("The submitted information didn't contain changes. Submit different information to create a change set.".into()),
                    changes: vec![],
                });
            }
            Ok(ChangeSetState { status: "CREATE_COMPLETE".into(), status_reason: None, changes: cs.changes.clone() })
        })
    }

    async fn execute_change_set(&self, id: &str) -> ApiResult<()> {
        self.with(|s| {
            let cs = s.change_sets.remove(id).expect("known change set");
            s.calls.push(format!("execute {}", cs.stack));
            let failing = s.failing.get(&cs.stack).cloned();
            let mut evs = Vec::new();
            let (ok_status, bad_status, verb) = match cs.kind {
                ChangeSetKind::Create => ("CREATE_COMPLETE", "ROLLBACK_COMPLETE", "CREATE"),
                ChangeSetKind::Update => ("UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "UPDATE"),
            };
            let settle_to = if let Some((logical, reason)) = &failing {
                for (rid, r) in resources_of(&cs.template) {
                    let ty = r["Type"].as_str().unwrap_or("").to_string();
                    if &rid == logical {
                        evs.push(event(s, &rid, &ty, &format!("{verb}_FAILED"), Some(reason)));
                    }
                }
                // After the real cause, CloudFormation cancels the rest: those events come later.
                evs.push(event(
                    s,
                    "Other",
                    "AWS::EC2::Subnet",
                    &format!("{verb}_FAILED"),
                    Some("Resource creation cancelled"),
                ));
                bad_status
            } else {
                ok_status
            };
            let st = s.stacks.get_mut(&cs.stack).expect("stack exists");
            st.status = format!("{verb}_IN_PROGRESS");
            st.settles_in = 2;
            st.settle_to = settle_to.into();
            for e in evs {
                st.events.insert(0, e);
            }
            if failing.is_none() {
                let outputs: BTreeMap<String, String> = cs.template["Outputs"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| {
                                let value = match v["Value"].get("Ref").and_then(Value::as_str) {
                                    Some(p) if cs.params.contains_key(p) => cs.params[p].clone(),
                                    _ => format!("{}:{k}", cs.stack),
                                };
                                (k.clone(), value)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                st.template = cs.template;
                st.params = cs.params;
                st.outputs = outputs;
            }
            update_in_progress_max(s);
            Ok(())
        })
    }

    async fn delete_change_set(&self, id: &str) -> ApiResult<()> {
        self.with(|s| {
            s.calls.push(format!("delete_change_set {id}"));
            s.change_sets.remove(id);
        });
        Ok(())
    }

    async fn delete_stack(&self, name: &str) -> ApiResult<()> {
        self.with(|s| {
            s.calls.push(format!("delete_stack {name}"));
            if let Some(st) = s.stacks.get_mut(name) {
                if st.status == "REVIEW_IN_PROGRESS" {
                    s.stacks.remove(name);
                } else {
                    st.status = "DELETE_IN_PROGRESS".into();
                    st.settles_in = 1;
                    st.settle_to = "DELETE_COMPLETE".into();
                }
            }
        });
        Ok(())
    }

    async fn delete_stack_retaining(&self, name: &str, retain: &[String]) -> ApiResult<()> {
        self.with(|s| {
            s.calls.push(format!(
                "delete_stack {name} retaining {}",
                retain.join(",")
            ))
        });
        self.delete_stack(name).await
    }

    async fn continue_update_rollback(&self, name: &str, skip: &[String]) -> ApiResult<()> {
        self.with(|s| {
            s.calls.push(format!(
                "continue_update_rollback {name} {}",
                skip.join(",")
            ));
            if let Some(st) = s.stacks.get_mut(name) {
                st.status = "UPDATE_ROLLBACK_COMPLETE".into();
            }
        });
        Ok(())
    }

    async fn set_termination_protection(&self, name: &str, enabled: bool) -> ApiResult<()> {
        self.with(|s| {
            s.calls
                .push(format!("termination_protection {name} {enabled}"))
        });
        Ok(())
    }

    async fn deployed_template(&self, name: &str) -> ApiResult<String> {
        Ok(self.with(|s| {
            s.stacks
                .get(name)
                .map(|st| st.template.to_string())
                .unwrap_or_default()
        }))
    }

    async fn stack_events(&self, name: &str, after: Option<&str>) -> ApiResult<Vec<StackEvent>> {
        Ok(self.with(|s| {
            let evs = s
                .stacks
                .get(name)
                .map(|x| x.events.clone())
                .unwrap_or_default();
            evs.into_iter()
                .take_while(|e| Some(e.event_id.as_str()) != after)
                .collect()
        }))
    }

    async fn stack_resources(&self, name: &str) -> ApiResult<Vec<StackResource>> {
        Ok(self.with(|s| {
            s.stacks
                .get(name)
                .map(|st| {
                    resources_of(&st.template)
                        .into_iter()
                        .map(|(id, r)| StackResource {
                            physical_id: Some(
                                r["Properties"]["BucketName"]
                                    .as_str()
                                    .map(str::to_string)
                                    .unwrap_or(format!("phys-{id}")),
                            ),
                            logical_id: id,
                            resource_type: r["Type"].as_str().unwrap_or("").into(),
                            status: "CREATE_COMPLETE".into(),
                            status_reason: None,
                        })
                        .collect()
                })
                .unwrap_or_default()
        }))
    }

    async fn reapply_stack(
        &self,
        name: &str,
        _: &TemplateSource,
        _: &[(String, String)],
    ) -> ApiResult<()> {
        self.with(|s| s.calls.push(format!("reapply {name}")));
        Ok(())
    }

    async fn bucket_has_objects(&self, bucket: &str) -> ApiResult<bool> {
        Ok(self.with(|s| s.buckets.get(bucket).copied().unwrap_or(0) > 0))
    }

    async fn empty_bucket(&self, bucket: &str) -> ApiResult<usize> {
        Ok(self.with(|s| {
            s.calls.push(format!("empty_bucket {bucket}"));
            s.buckets.insert(bucket.into(), 0).unwrap_or(0)
        }))
    }

    async fn put_object_if_absent(
        &self,
        bucket: &str,
        key: &str,
        _body: Vec<u8>,
    ) -> ApiResult<bool> {
        self.with(|s| s.calls.push(format!("put {bucket}/{key}")));
        Ok(true)
    }

    fn object_url(&self, bucket: &str, key: &str) -> String {
        format!("fake://{bucket}/{key}")
    }
}

/// Records events and answers the data-risk question with a fixed answer.
struct Recorder {
    approve: bool,
    events: Mutex<Vec<Progress>>,
    asked: Mutex<Vec<(String, Vec<StatefulRisk>)>>,
}

impl Recorder {
    fn new(approve: bool) -> Self {
        Self {
            approve,
            events: Mutex::new(vec![]),
            asked: Mutex::new(vec![]),
        }
    }
}

impl Observer for Recorder {
    fn event(&self, event: Progress) {
        self.events.lock().unwrap().push(event);
    }
    fn approve_data_risk(&self, stack: &str, risks: &[StatefulRisk]) -> bool {
        self.asked
            .lock()
            .unwrap()
            .push((stack.into(), risks.to_vec()));
        self.approve
    }
}

fn stack(
    id: &str,
    region: &str,
    deps: &[&str],
    params: &[(&str, &str, &str)],
    outputs: &[&str],
) -> StackEntry {
    StackEntry {
        id: id.into(),
        name: format!("shop-dev-{id}"),
        component: id.split('-').next().unwrap().into(),
        region: region.into(),
        template: format!("{id}.template.json"),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        parameters: params
            .iter()
            .map(|(name, st, out)| StackParameter {
                name: name.to_string(),
                source: ParameterSource::StackOutput {
                    stack: st.to_string(),
                    output: out.to_string(),
                },
            })
            .collect(),
        outputs: outputs.iter().map(|o| o.to_string()).collect(),
        resource_count: 1,
        stateful_resources: vec![],
    }
}

fn template(resources: Value, params: &[&str], outputs: Value) -> String {
    let p: serde_json::Map<String, Value> = params
        .iter()
        .map(|p| (p.to_string(), json!({"Type": "String"})))
        .collect();
    serde_json::to_string_pretty(
        &json!({"Parameters": p, "Resources": resources, "Outputs": outputs}),
    )
    .unwrap()
}

/// A small two-region platform: networks in both regions, storage (standby before primary, as replication
/// needs), and a stack in the standby region fed by the primary network's output.
fn platform() -> (Vec<StackEntry>, BTreeMap<String, String>) {
    let mut storage_standby = stack("storage-standby", "us-west-2", &[], &[], &["BucketArn"]);
    // Its rule back to the primary's bucket needs that bucket: on only once storage-primary is deployed.
    storage_standby.parameters.push(StackParameter {
        name: "ReplicateToPrimary".into(),
        source: ParameterSource::StackDeployed {
            stack: "storage-primary".into(),
        },
    });
    let stacks = vec![
        stack("networking-primary", "us-east-1", &[], &[], &["VpcId"]),
        stack("networking-standby", "us-west-2", &[], &[], &["VpcId"]),
        storage_standby,
        stack(
            "storage-primary",
            "us-east-1",
            &["storage-standby"],
            &[("ReplicaBucketArn", "storage-standby", "BucketArn")],
            &["BucketArn"],
        ),
        stack(
            "peering-standby",
            "us-west-2",
            &["networking-primary", "networking-standby"],
            &[
                ("PeerVpcId", "networking-primary", "VpcId"),
                ("VpcId", "networking-standby", "VpcId"),
            ],
            &["PeerVpcId"],
        ),
    ];
    let vpc = json!({"Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}}});
    let mut t = BTreeMap::new();
    t.insert(
        "networking-primary".into(),
        template(
            vpc.clone(),
            &[],
            json!({"VpcId": {"Value": {"Ref": "Vpc"}}}),
        ),
    );
    t.insert(
        "networking-standby".into(),
        template(vpc, &[], json!({"VpcId": {"Value": {"Ref": "Vpc"}}})),
    );
    t.insert(
        "storage-standby".into(),
        template(
            json!({"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "shop-standby"}}}),
            &["ReplicateToPrimary"],
            json!({"BucketArn": {"Value": "x"}}),
        ),
    );
    t.insert(
        "storage-primary".into(),
        template(
            json!({"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "shop-primary"}}}),
            &["ReplicaBucketArn"],
            json!({"BucketArn": {"Value": "x"}}),
        ),
    );
    t.insert(
        "peering-standby".into(),
        template(
            json!({"Sg": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "peer"}}}),
            &["PeerVpcId", "VpcId"],
            json!({"PeerVpcId": {"Value": {"Ref": "PeerVpcId"}}}),
        ),
    );
    (stacks, t)
}

fn synth(stacks: Vec<StackEntry>, templates: BTreeMap<String, String>) -> SynthOutput {
    let manifest = Manifest {
        format_version: lifeboat_contract::MANIFEST_FORMAT_VERSION,
        project: "shop".into(),
        environment: "dev".into(),
        primary_region: "us-east-1".into(),
        standby_region: "us-west-2".into(),
        stacks,
    };
    SynthOutput::from_parts(PathBuf::new(), manifest, templates).unwrap()
}

fn regions() -> BTreeMap<String, FakeRegion> {
    ["us-east-1", "us-west-2"]
        .iter()
        .map(|r| (r.to_string(), FakeRegion::new(r)))
        .collect()
}

fn options(concurrency: usize) -> EngineOptions {
    EngineOptions {
        concurrency,
        timeout: Duration::from_secs(5),
        poll_initial: Duration::from_millis(1),
        poll_max: Duration::from_millis(2),
        recompute_outputs: false,
        ..EngineOptions::default()
    }
}

async fn deploy_all(
    synth: &SynthOutput,
    apis: &BTreeMap<String, FakeRegion>,
    pattern: Option<&str>,
    obs: &Recorder,
) -> Result<RunReport, EngineError> {
    let engine = Engine::new(synth, apis, options(4));
    let sel = engine.select(pattern)?;
    engine
        .deploy(&sel, &ArtifactLocations::new(), &BTreeMap::new(), obs)
        .await
}

#[tokio::test]
async fn deploys_in_dependency_order_and_feeds_outputs_across_regions() {
    let (stacks, t) = platform();
    let s = synth(stacks, t);
    let apis = regions();
    let obs = Recorder::new(true);
    let report = deploy_all(&s, &apis, None, &obs).await.unwrap();
    assert_eq!(report.exit_code(), exit::OK, "{report:?}");
    assert!(
        report
            .stacks
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Created { .. })),
        "{report:?}"
    );

    // The standby stack got the primary region's VPC id as its parameter.
    let west = &apis["us-west-2"];
    let params = west.with(|st| st.stacks["shop-dev-peering-standby"].params.clone());
    assert_eq!(params["PeerVpcId"], "shop-dev-networking-primary:VpcId");
    assert_eq!(params["VpcId"], "shop-dev-networking-standby:VpcId");
    // The replication source was created only after its destination finished.
    let finished: Vec<String> = obs
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Progress::Finished { stack, .. } => Some(stack.clone()),
            _ => None,
        })
        .collect();
    let pos = |id: &str| finished.iter().position(|x| x == id).unwrap();
    assert!(pos("storage-standby") < pos("storage-primary"));
    assert!(pos("networking-primary") < pos("peering-standby"));
}

#[tokio::test]
async fn a_stack_asking_whether_another_is_deployed_is_applied_again_once_it_is() {
    let (stacks, t) = platform();
    let s = synth(stacks, t);
    let apis = regions();
    let report = deploy_all(&s, &apis, None, &Recorder::new(true))
        .await
        .unwrap();
    assert_eq!(report.exit_code(), exit::OK, "{report:?}");
    assert!(
        matches!(
            report.get("storage-standby").unwrap().outcome,
            Outcome::Created { .. }
        ),
        "a stack created in this run is reported created: {report:?}"
    );
    let west = &apis["us-west-2"];
    let sent: Vec<Option<String>> = west.with(|st| {
        st.calls
            .iter()
            .filter(|c| c.starts_with("create_change_set shop-dev-storage-standby"))
            .map(|c| {
                c.split_whitespace()
                    .find_map(|w| w.strip_prefix("ReplicateToPrimary="))
                    .map(str::to_owned)
            })
            .collect()
    });
    assert_eq!(
        sent,
        [Some("false".to_owned()), Some("true".to_owned())],
        "first without the primary's bucket, then with it"
    );
    let params = west.with(|st| st.stacks["shop-dev-storage-standby"].params.clone());
    assert_eq!(params["ReplicateToPrimary"], "true");

    // Next deploy: the primary's storage exists from the start, one pass, nothing to change.
    let changes_before = west
        .calls("create_change_set shop-dev-storage-standby")
        .len();
    let report = deploy_all(&s, &apis, None, &Recorder::new(true))
        .await
        .unwrap();
    assert_eq!(
        report.get("storage-standby").unwrap().outcome,
        Outcome::Unchanged
    );
    assert_eq!(
        west.calls("create_change_set shop-dev-storage-standby")
            .len(),
        changes_before + 1
    );
}

#[tokio::test]
async fn a_second_deploy_reports_unchanged_and_executes_nothing() {
    for real_aws_behaviour in [false, true] {
        let (stacks, t) = platform();
        let s = synth(stacks, t);
        let apis = regions();
        for api in apis.values() {
            api.with(|st| st.empty_change_set_fails = real_aws_behaviour);
        }
        deploy_all(&s, &apis, None, &Recorder::new(true))
            .await
            .unwrap();
        let executes_before: usize = apis.values().map(|a| a.calls("execute").len()).sum();
        let report = deploy_all(&s, &apis, None, &Recorder::new(true))
            .await
            .unwrap();
        assert!(
            report
                .stacks
                .iter()
                .all(|r| r.outcome == Outcome::Unchanged),
            "{report:?}"
        );
        let executes_after: usize = apis.values().map(|a| a.calls("execute").len()).sum();
        assert_eq!(executes_before, executes_after);
        // Every empty change set was cleaned up.
        assert!(
            apis.values()
                .all(|a| a.with(|st| st.change_sets.is_empty()))
        );
    }
}

#[tokio::test]
async fn a_failure_names_the_first_failing_resource_skips_dependents_and_lets_others_finish() {
    let (stacks, t) = platform();
    let s = synth(stacks, t);
    let apis = regions();
    apis["us-east-1"].with(|st| {
        st.failing.insert(
            "shop-dev-networking-primary".into(),
            ("Vpc".into(), "CIDR block 10.0.0.0/16 overlaps".into()),
        );
    });
    let obs = Recorder::new(true);
    let report = deploy_all(&s, &apis, None, &obs).await.unwrap();
    assert_eq!(report.exit_code(), exit::FAILED);
    match &report.get("networking-primary").unwrap().outcome {
        Outcome::Failed { reason } => {
            assert!(
                reason.contains("Vpc") && reason.contains("overlaps"),
                "{reason}"
            );
            assert!(!reason.contains("cancelled"), "{reason}");
        }
        other => panic!("expected failure, got {other:?}"),
    }
    assert!(matches!(
        report.get("peering-standby").unwrap().outcome,
        Outcome::Skipped { .. }
    ));
    for independent in ["networking-standby", "storage-standby", "storage-primary"] {
        assert!(
            matches!(
                report.get(independent).unwrap().outcome,
                Outcome::Created { .. }
            ),
            "{independent}"
        );
    }
    assert!(
        obs.events.lock().unwrap().iter().any(
            |e| matches!(e, Progress::ResourceFailed { logical_id, .. } if logical_id == "Vpc")
        )
    );
    // A rerun with the cause gone deletes the rolled-back stack and creates it again, in one pass.
    apis["us-east-1"].with(|st| st.failing.clear());
    let report = deploy_all(&s, &apis, None, &Recorder::new(true))
        .await
        .unwrap();
    assert_eq!(report.exit_code(), exit::OK, "{report:?}");
    assert!(matches!(
        report.get("networking-primary").unwrap().outcome,
        Outcome::Created { .. }
    ));
    assert_eq!(
        apis["us-east-1"]
            .calls("delete_stack shop-dev-networking-primary")
            .len(),
        1
    );
}

#[tokio::test]
async fn replacing_a_bucket_needs_approval() {
    let (stacks, t) = platform();
    let s = synth(stacks.clone(), t.clone());
    let apis = regions();
    deploy_all(&s, &apis, None, &Recorder::new(true))
        .await
        .unwrap();
    let executed_before = apis["us-west-2"]
        .calls("execute shop-dev-storage-standby")
        .len();

    let mut t2 = t;
    t2.insert(
        "storage-standby".into(),
        t2["storage-standby"].replace("shop-standby", "shop-standby-2"),
    );
    let s2 = synth(stacks, t2);
    let refusing = Recorder::new(false);
    let report = deploy_all(&s2, &apis, Some("storage-*"), &refusing)
        .await
        .unwrap();
    assert_eq!(report.exit_code(), exit::REFUSED);
    assert!(
        matches!(&report.get("storage-standby").unwrap().outcome, Outcome::Refused { risks } if risks[0].contains("replace Bucket"))
    );
    assert!(matches!(
        report.get("storage-primary").unwrap().outcome,
        Outcome::Skipped { .. }
    ));
    assert_eq!(refusing.asked.lock().unwrap()[0].0, "storage-standby");
    assert!(
        apis["us-west-2"]
            .calls("execute shop-dev-storage-standby")
            .len()
            == executed_before,
        "only the first deploy's change sets ran"
    );
    assert!(apis["us-west-2"].with(|st| st.change_sets.is_empty()));

    let report = deploy_all(&s2, &apis, Some("storage-*"), &Recorder::new(true))
        .await
        .unwrap();
    assert!(
        matches!(report.get("storage-standby").unwrap().outcome, Outcome::Updated { changes } if changes.replace == 1)
    );
}

#[tokio::test]
async fn with_the_primary_region_lost_the_standby_deploys_alone_from_the_values_it_recorded() {
    let (stacks, t) = platform();
    let s = synth(stacks.clone(), t.clone());
    let apis = regions();
    deploy_all(&s, &apis, None, &Recorder::new(true))
        .await
        .unwrap();
    let recorded =
        apis["us-west-2"].with(|st| st.stacks["shop-dev-peering-standby"].params.clone());

    // A change to a standby stack, while us-east-1 cannot be reached.
    let mut changed = t.clone();
    changed.insert(
        "peering-standby".into(),
        template(
            json!({
                "Sg": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "peer"}},
                "Sg2": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "second"}}
            }),
            &["PeerVpcId", "VpcId"],
            json!({"PeerVpcId": {"Value": {"Ref": "PeerVpcId"}}}),
        ),
    );
    let s = synth(stacks.clone(), changed);
    apis["us-east-1"].with(|st| st.lost = true);
    let obs = Recorder::new(true);
    let report = deploy_all(&s, &apis, Some("*-standby"), &obs)
        .await
        .unwrap();
    assert_eq!(report.exit_code(), exit::OK, "{report:?}");
    assert!(matches!(
        report.get("peering-standby").unwrap().outcome,
        Outcome::Updated { .. }
    ));
    let now = apis["us-west-2"].with(|st| st.stacks["shop-dev-peering-standby"].params.clone());
    assert_eq!(
        now, recorded,
        "the primary's outputs are the values recorded at the last deploy"
    );
    let warned = obs.events.lock().unwrap().iter().any(|e| {
        matches!(e, Progress::Warning { message } if message.contains("networking-primary") && message.contains("cannot be reached"))
    });
    assert!(
        warned,
        "the deploy says which values it did not read from the source"
    );

    // Never deployed, a standby stack has no record to deploy from: refused, naming it.
    let apis = regions();
    deploy_all(&s, &apis, Some("networking-*"), &Recorder::new(true))
        .await
        .unwrap();
    apis["us-east-1"].with(|st| st.lost = true);
    let err = deploy_all(&s, &apis, Some("*-standby"), &Recorder::new(true))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("networking-primary") && msg.contains("peering-standby was never deployed"),
        "{msg}"
    );
}

#[tokio::test]
async fn dependencies_outside_the_pattern_must_exist() {
    let (stacks, t) = platform();
    let s = synth(stacks, t);
    let apis = regions();
    let err = deploy_all(&s, &apis, Some("peering-*"), &Recorder::new(true))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), exit::UNAVAILABLE);
    let msg = err.to_string();
    assert!(
        msg.contains("networking-primary") && msg.contains("networking-standby"),
        "{msg}"
    );
    assert!(
        apis.values()
            .all(|a| a.calls("create_change_set").is_empty()),
        "nothing was attempted"
    );

    deploy_all(&s, &apis, Some("networking-*"), &Recorder::new(true))
        .await
        .unwrap();
    let report = deploy_all(&s, &apis, Some("peering-*"), &Recorder::new(true))
        .await
        .unwrap();
    assert!(matches!(
        report.get("peering-standby").unwrap().outcome,
        Outcome::Created { .. }
    ));
}

#[tokio::test]
async fn independent_stacks_run_concurrently_within_the_limit() {
    let stacks: Vec<StackEntry> = (0..6)
        .map(|i| stack(&format!("s{i}"), "us-east-1", &[], &[], &[]))
        .collect();
    let t = (0..6)
        .map(|i| {
            (
                format!("s{i}"),
                template(json!({"Q": {"Type": "AWS::SQS::Queue"}}), &[], json!({})),
            )
        })
        .collect();
    let s = synth(stacks, t);
    for limit in [1, 3] {
        let apis = regions();
        let engine = Engine::new(&s, &apis, options(limit));
        let sel = engine.select(None).unwrap();
        engine
            .deploy(
                &sel,
                &ArtifactLocations::new(),
                &BTreeMap::new(),
                &Recorder::new(true),
            )
            .await
            .unwrap();
        let max = apis["us-east-1"].with(|st| st.in_progress_max);
        assert!(
            max <= limit && max >= limit.min(2),
            "limit {limit}, max in progress {max}"
        );
    }
}

#[tokio::test]
async fn diff_shows_additions_and_modifications_and_leaves_nothing_behind() {
    let (stacks, t) = platform();
    let s = synth(stacks.clone(), t.clone());
    let apis = regions();
    let engine = Engine::new(&s, &apis, options(4));
    let sel = engine.select(Some("networking-*,storage-*")).unwrap();
    let diffs = engine.diff(&sel, &ArtifactLocations::new()).await.unwrap();
    assert!(diffs.iter().all(|d| !d.exists));
    let primary = diffs.iter().find(|d| d.id == "storage-primary").unwrap();
    // Its parameter comes from a stack not deployed yet: the template's resources are listed as additions.
    assert!(
        matches!(&primary.result, DiffResult::Unknown { changes, .. } if changes[0].action == Action::Add)
    );
    let standby = diffs.iter().find(|d| d.id == "storage-standby").unwrap();
    assert!(
        matches!(&standby.result, DiffResult::Changes { changes, .. } if changes.len() == 1 && changes[0].action == Action::Add)
    );
    assert!(
        apis.values()
            .all(|a| a.with(|st| st.stacks.is_empty() && st.change_sets.is_empty())),
        "preview left stacks"
    );

    deploy_all(&s, &apis, None, &Recorder::new(true))
        .await
        .unwrap();
    let mut t2 = t;
    t2.insert(
        "networking-standby".into(),
        t2["networking-standby"].replace("10.0.0.0/16", "10.1.0.0/16"),
    );
    t2.insert(
        "storage-standby".into(),
        t2["storage-standby"].replace("shop-standby", "shop-standby-2"),
    );
    let s2 = synth(stacks, t2);
    let engine = Engine::new(&s2, &apis, options(4));
    let diffs = engine
        .diff(&engine.select(None).unwrap(), &ArtifactLocations::new())
        .await
        .unwrap();
    let by_id: BTreeMap<&str, &StackDiff> = diffs.iter().map(|d| (d.id.as_str(), d)).collect();
    assert_eq!(by_id["networking-primary"].result, DiffResult::NoChanges);
    assert!(
        matches!(&by_id["networking-standby"].result, DiffResult::Changes { changes, stateful_risks } if changes[0].action == Action::Modify && stateful_risks.is_empty())
    );
    assert!(
        matches!(&by_id["storage-standby"].result, DiffResult::Changes { stateful_risks, .. } if stateful_risks.len() == 1)
    );
    assert!(
        apis.values()
            // us-west-2: its three stacks, storage-standby twice (its second pass once storage-primary existed).
            .all(|a| a.calls("execute").len() == if a.region == "us-east-1" { 2 } else { 4 }),
        "diff executed something"
    );
}

#[tokio::test]
async fn destroy_deletes_dependents_first_and_refuses_data_without_force() {
    let (stacks, t) = platform();
    let s = synth(stacks, t);
    let apis = regions();
    deploy_all(&s, &apis, None, &Recorder::new(true))
        .await
        .unwrap();
    apis["us-west-2"].with(|st| st.buckets.insert("shop-standby".into(), 3));
    let engine = Engine::new(&s, &apis, options(4));

    // Destroying only the networks would strand the stack that uses them.
    let err = engine
        .plan_destroy(&engine.select(Some("networking-*")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert!(err.to_string().contains("peering-standby"), "{err}");

    let plan = engine
        .plan_destroy(&engine.select(None).unwrap())
        .await
        .unwrap();
    assert_eq!(plan.data.len(), 1, "{plan:?}");
    assert_eq!(plan.data[0].physical_id.as_deref(), Some("shop-standby"));
    let pos = |id: &str| plan.to_delete.iter().position(|x| x == id).unwrap();
    assert!(pos("storage-primary") < pos("storage-standby"));
    assert!(pos("peering-standby") < pos("networking-primary"));

    let err = engine
        .destroy(&plan, false, &Recorder::new(true))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert!(err.to_string().contains("shop-standby"));
    assert!(
        apis.values().all(|a| a.calls("delete_stack").is_empty()),
        "nothing deleted"
    );

    let report = engine
        .destroy(&plan, true, &Recorder::new(true))
        .await
        .unwrap();
    assert_eq!(report.exit_code(), exit::OK, "{report:?}");
    assert_eq!(
        apis["us-west-2"].calls("empty_bucket"),
        vec!["empty_bucket shop-standby"]
    );
    assert!(apis.values().all(|a| a.with(|st| st.stacks.is_empty())));
    let status = engine
        .status(&engine.select(None).unwrap().ordered)
        .await
        .unwrap();
    assert!(status.iter().all(|r| r.status == "NOT_DEPLOYED"));
}

#[tokio::test]
async fn artifacts_are_uploaded_to_a_bootstrapped_bucket_and_fed_as_parameters() {
    use crate::assets;
    use lifeboat_contract::manifest::ArtifactPart;
    let mut entry = stack("compute-primary", "us-east-1", &[], &[], &[]);
    entry.parameters = vec![
        StackParameter {
            name: "CodeBucket".into(),
            source: ParameterSource::Artifact {
                artifact: "storefront".into(),
                part: ArtifactPart::Bucket,
            },
        },
        StackParameter {
            name: "CodeKey".into(),
            source: ParameterSource::Artifact {
                artifact: "storefront".into(),
                part: ArtifactPart::Key,
            },
        },
    ];
    let t = [(
        "compute-primary".to_string(),
        template(
            json!({"Q": {"Type": "AWS::SQS::Queue"}}),
            &["CodeBucket", "CodeKey"],
            json!({}),
        ),
    )]
    .into_iter()
    .collect();
    let s = synth(vec![entry], t);
    let apis = regions();
    let obs = Recorder::new(true);
    let prepared = assets::prepare_assets(
        &s,
        &apis,
        &["compute-primary".into()],
        None,
        &options(4),
        true,
        &obs,
    )
    .await
    .unwrap();
    // Only the region that needs a package was bootstrapped.
    assert!(apis["us-east-1"].with(|st| st.stacks.contains_key("shop-dev-bootstrap")));
    assert!(apis["us-west-2"].with(|st| st.stacks.is_empty()));
    let loc = &prepared.artifacts[&("us-east-1".to_string(), "storefront".to_string())];
    assert_eq!(loc.bucket, "shop-dev-bootstrap:AssetsBucketName");
    assert!(loc.key.starts_with("lambda/storefront/") && loc.key.ends_with(".zip"));
    assert!(
        obs.events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Progress::Warning { message } if message.contains("PLACEHOLDER")))
    );
    assert_eq!(apis["us-east-1"].calls("put").len(), 1);

    let engine = Engine::new(&s, &apis, options(4));
    let sel = engine.select(None).unwrap();
    engine
        .deploy(&sel, &prepared.artifacts, &prepared.template_urls, &obs)
        .await
        .unwrap();
    let params = apis["us-east-1"].with(|st| st.stacks["shop-dev-compute-primary"].params.clone());
    assert_eq!(params["CodeKey"], loc.key);
}

#[test]
fn first_failure_prefers_the_cause_over_cancellations_and_the_stack_event() {
    let ev = |id: &str, logical: &str, status: &str, reason: &str| StackEvent {
        event_id: id.into(),
        timestamp: String::new(),
        logical_id: logical.into(),
        resource_type: "T".into(),
        status: status.into(),
        reason: Some(reason.into()),
    };
    // Newest first, as the API returns them.
    let events = vec![
        ev(
            "4",
            "shop",
            "ROLLBACK_IN_PROGRESS",
            "The following resource(s) failed to create: [Db]",
        ),
        ev(
            "3",
            "Subnet",
            "CREATE_FAILED",
            "Resource creation cancelled",
        ),
        ev(
            "2",
            "Db",
            "CREATE_FAILED",
            "DBClusterIdentifier already exists",
        ),
        ev("1", "Vpc", "CREATE_COMPLETE", ""),
    ];
    assert_eq!(first_failure(&events, "shop").unwrap().logical_id, "Db");
    assert!(first_failure(&events[3..], "shop").is_none());
}

#[test]
fn missing_resources_catches_skipped_and_anonymous_entries() {
    let template = vec![
        ("Vpc".to_string(), "AWS::EC2::VPC".to_string()),
        ("Alarm".to_string(), "AWS::CloudWatch::Alarm".to_string()),
    ];
    let listed = vec![
        StackResource {
            logical_id: "Vpc".into(),
            physical_id: Some("vpc-1".into()),
            resource_type: "AWS::EC2::VPC".into(),
            status: "CREATE_COMPLETE".into(),
            status_reason: None,
        },
        StackResource {
            logical_id: String::new(),
            physical_id: None,
            resource_type: String::new(),
            status: String::new(),
            status_reason: None,
        },
    ];
    let missing = missing_resources(&template, &listed);
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert!(missing[0].contains("Alarm"));
    assert!(missing_resources(&template[..1], &listed[..1]).is_empty());
}

#[test]
fn invalid_manifests_are_rejected_before_any_call() {
    let (mut stacks, t) = platform();
    stacks[3].depends_on.clear(); // storage-primary still takes an output of storage-standby
    let manifest = Manifest {
        format_version: lifeboat_contract::MANIFEST_FORMAT_VERSION,
        project: "shop".into(),
        environment: "dev".into(),
        primary_region: "us-east-1".into(),
        standby_region: "us-west-2".into(),
        stacks,
    };
    let err = SynthOutput::from_parts(PathBuf::new(), manifest, t)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("storage-primary") && err.contains("depends_on"),
        "{err}"
    );
    let err = graph::select(&[], None).unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE);
}

#[tokio::test]
async fn outputs_are_recomputed_after_executes_only_when_asked() {
    let (stacks, t) = platform();
    let s = synth(stacks, t);
    let apis = regions();
    let mut opts = options(4);
    opts.recompute_outputs = true;
    let engine = Engine::new(&s, &apis, opts);
    let sel = engine.select(None).unwrap();
    let obs = Recorder::new(true);
    engine
        .deploy(&sel, &ArtifactLocations::new(), &BTreeMap::new(), &obs)
        .await
        .unwrap();
    let reapplied: usize = apis.values().map(|a| a.calls("reapply").len()).sum();
    // Five stacks, storage-standby applied twice (once more when storage-primary existed).
    assert_eq!(reapplied, 6, "once per executed change set");
    engine
        .deploy(&sel, &ArtifactLocations::new(), &BTreeMap::new(), &obs)
        .await
        .unwrap();
    let reapplied: usize = apis.values().map(|a| a.calls("reapply").len()).sum();
    assert_eq!(reapplied, 6, "an unchanged stack is not touched");
}
