//! A model of CloudFormation (and of the little of S3 the deploy engine uses) behind real SDK clients, at the
//! transport layer (aws-smithy-mocks): stacks go through the documented states, so the CLI can be driven
//! through failures moto never produces (it never rolls back, and has no ROLLBACK_FAILED or UPDATE_ROLLBACK_*).
//!
//! The rules modelled, each from AWS's documentation:
//! - Stack statuses and what each allows
//!   (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html#cfn-console-view-stack-data-resources-status-codes):
//!   a failed create rolls back to ROLLBACK_COMPLETE, or ROLLBACK_FAILED when a resource cannot be deleted;
//!   a failed update rolls back to UPDATE_ROLLBACK_COMPLETE (the last good template and outputs stay), or
//!   UPDATE_ROLLBACK_FAILED when a resource cannot roll back; a failed delete ends in DELETE_FAILED.
//! - DeletionPolicy (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html):
//!   Retain keeps a resource in the account even when the create that made it rolls back; RetainExceptOnCreate
//!   keeps it on stack deletion but deletes it on that rollback; Delete and Snapshot delete it.
//! - A resource with a fixed name that already exists in the account fails to create ("already exists").
//! - A bucket that is not empty cannot be deleted
//!   (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucket.html), and an Application Load Balancer
//!   with access logs on writes a test object into its log bucket
//!   (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html).
//! - Change sets: an update with no change at all is FAILED with "didn't contain changes"; one that changes
//!   only outputs is CREATE_COMPLETE with no resource changes, and new outputs appear only when it is executed
//!   (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-changesets.html).
//! - DeleteStack RetainResources only for a stack in DELETE_FAILED; termination protection refuses DeleteStack
//!   (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeleteStack.html,
//!   https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-protect-stacks.html).
//! - ContinueUpdateRollback only from UPDATE_ROLLBACK_FAILED, skipping only resources in UPDATE_FAILED
//!   (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ContinueUpdateRollback.html).
//!
//! Operations complete at once: the first DescribeStacks after an operation sees its end state.

#![allow(
    dead_code,
    reason = "shared by several test binaries, each of which uses part of it"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_sdk_cloudformation as cfn;
use aws_sdk_cloudformation::error::ErrorMetadata;
use aws_sdk_s3 as s3;
use aws_smithy_mocks::{MockResponse, Rule, RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use lifeboat_aws::sdk::SdkRegion;
use serde_json::Value;

/// When a scripted failure strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Create,
    Update,
    /// Deleting the resource (stack deletion, or a create rollback).
    Delete,
    /// Rolling back the resource's update.
    Rollback,
}

#[derive(Debug, Clone)]
pub struct Failure {
    /// Stack name suffix, e.g. `database-primary`.
    pub stack: String,
    pub logical_id: String,
    pub when: When,
    pub reason: String,
    pub times: usize,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: String,
    pub status: String,
    pub reason: Option<String>,
    /// The account-wide key of its fixed name, if it has one.
    pub name_key: Option<String>,
    pub definition: Value,
}

#[derive(Debug, Clone, Default)]
pub struct Stack {
    pub name: String,
    pub status: String,
    pub reason: Option<String>,
    pub template: Value,
    pub body: String,
    pub params: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
    pub resources: Vec<Resource>,
    /// Newest first.
    pub events: Vec<cfn::types::StackEvent>,
    pub protection: bool,
}

#[derive(Debug, Clone)]
struct ChangeSet {
    region: String,
    stack: String,
    kind: String,
    template: Value,
    body: String,
    params: BTreeMap<String, String>,
    changes: Vec<(String, String, String)>,
}

#[derive(Debug, Default)]
pub struct Account {
    /// (region, stack name) → stack.
    pub stacks: BTreeMap<(String, String), Stack>,
    change_sets: BTreeMap<String, ChangeSet>,
    /// Name keys of resources that exist, with the stack that owns them (`None`: retained, owned by nobody).
    pub names: BTreeMap<String, Option<String>>,
    /// Bucket → key → bytes.
    pub buckets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    pub failures: Vec<Failure>,
    /// Every mutating call, in order: "ExecuteChangeSet us-east-1 shop-prod-networking-primary", ...
    pub calls: Vec<String>,
    /// Every resource failure reason the model produced.
    pub failure_reasons: Vec<String>,
    /// Hosted zones that exist and belong to no stack.
    pub orphan_zones: usize,
    next: u64,
}

pub type Shared = Arc<Mutex<Account>>;

fn now() -> DateTime {
    DateTime::from_secs(1_800_000_000)
}

impl Account {
    fn id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    pub fn stack(&self, region: &str, name: &str) -> Option<&Stack> {
        self.stacks.get(&(region.to_string(), name.to_string()))
    }

    pub fn status(&self, region: &str, name: &str) -> String {
        self.stack(region, name)
            .map(|s| s.status.clone())
            .unwrap_or_else(|| "NOT_DEPLOYED".into())
    }

    pub fn fail(&mut self, stack: &str, logical_id: &str, when: When, reason: &str, times: usize) {
        self.failures.push(Failure {
            stack: stack.into(),
            logical_id: logical_id.into(),
            when,
            reason: reason.into(),
            times,
        });
    }

    fn take_failure(&mut self, stack: &str, logical_id: &str, when: When) -> Option<String> {
        let f = self.failures.iter_mut().find(|f| {
            f.times > 0 && stack.ends_with(&f.stack) && f.logical_id == logical_id && f.when == when
        })?;
        f.times -= 1;
        Some(f.reason.clone())
    }

    fn event(
        &mut self,
        key: &(String, String),
        logical: &str,
        ty: &str,
        status: &str,
        reason: &str,
    ) {
        let id = self.id();
        let name = key.1.clone();
        let e = cfn::types::StackEvent::builder()
            .event_id(format!("ev-{id}"))
            .stack_name(&name)
            .logical_resource_id(logical)
            .resource_type(ty)
            .resource_status(cfn::types::ResourceStatus::from(status))
            .resource_status_reason(reason)
            .timestamp(now())
            .build();
        if status.ends_with("_FAILED") && !reason.is_empty() && logical != name {
            self.failure_reasons.push(format!("{logical}: {reason}"));
        }
        if let Some(s) = self.stacks.get_mut(key) {
            s.events.insert(0, e);
        }
    }

    fn stack_event(&mut self, key: &(String, String), status: &str, reason: &str) {
        let name = key.1.clone();
        self.event(key, &name, "AWS::CloudFormation::Stack", status, reason);
        if let Some(s) = self.stacks.get_mut(key) {
            s.status = status.into();
            s.reason = (!reason.is_empty()).then(|| reason.to_string());
        }
    }

    /// The account-wide key of a resource's fixed name: bucket names, IAM names and global cluster ids are
    /// global; the others are per region.
    fn name_key(region: &str, ty: &str, props: &Value) -> Option<String> {
        let (prop, global) = match ty {
            "AWS::S3::Bucket" => ("BucketName", true),
            "AWS::IAM::Role" => ("RoleName", true),
            "AWS::RDS::GlobalCluster" => ("GlobalClusterIdentifier", true),
            "AWS::RDS::DBCluster" => ("DBClusterIdentifier", false),
            "AWS::RDS::DBInstance" => ("DBInstanceIdentifier", false),
            "AWS::DynamoDB::Table" | "AWS::DynamoDB::GlobalTable" => ("TableName", false),
            "AWS::SecretsManager::Secret" => ("Name", false),
            "AWS::KMS::Alias" => ("AliasName", false),
            "AWS::Lambda::Function" => ("FunctionName", false),
            "AWS::Logs::LogGroup" => ("LogGroupName", false),
            "AWS::SNS::Topic" => ("TopicName", false),
            "AWS::SSM::Parameter" => ("Name", false),
            _ => return None,
        };
        let name = props.get(prop)?.as_str()?;
        Some(if global {
            format!("{ty} {name}")
        } else {
            format!("{ty} {name} in {region}")
        })
    }

    fn deletion_policy(def: &Value) -> &str {
        def["DeletionPolicy"].as_str().unwrap_or("Delete")
    }

    /// Creates one resource, or says why it failed.
    fn create_resource(
        &mut self,
        key: &(String, String),
        logical: &str,
        def: &Value,
    ) -> Result<Resource, String> {
        let ty = def["Type"].as_str().unwrap_or_default().to_string();
        if let Some(reason) = self.take_failure(&key.1, logical, When::Create) {
            return Err(reason);
        }
        let name_key = Self::name_key(&key.0, &ty, &def["Properties"]);
        if let Some(k) = &name_key
            && self.names.contains_key(k)
        {
            return Err(format!("{k} already exists"));
        }
        let props = &def["Properties"];
        let fixed = name_key
            .as_ref()
            .and_then(|_| {
                [
                    "BucketName",
                    "TableName",
                    "DBClusterIdentifier",
                    "Name",
                    "GlobalClusterIdentifier",
                ]
                .iter()
                .find_map(|p| props.get(*p).and_then(Value::as_str))
            })
            .map(str::to_string);
        let n = self.id();
        let physical = fixed.unwrap_or_else(|| format!("{}-{logical}-{n}", key.1));
        if let Some(k) = &name_key {
            self.names.insert(k.clone(), Some(key.1.clone()));
        }
        if ty == "AWS::S3::Bucket" {
            self.buckets.entry(physical.clone()).or_default();
        }
        Ok(Resource {
            logical_id: logical.into(),
            resource_type: ty,
            physical_id: physical,
            status: "CREATE_COMPLETE".into(),
            reason: None,
            name_key,
            definition: def.clone(),
        })
    }

    /// Side effects of a created resource that later deletions must cope with: a load balancer with access
    /// logs writes a test object into its log bucket.
    fn after_create(&mut self, key: &(String, String), created: &Resource) {
        if created.resource_type != "AWS::ElasticLoadBalancingV2::LoadBalancer" {
            return;
        }
        let attrs = created.definition["Properties"]["LoadBalancerAttributes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let logs_on = attrs.iter().any(|a| {
            a["Key"] == "access_logs.s3.enabled" && (a["Value"] == "true" || a["Value"] == true)
        });
        let bucket_ref = attrs
            .iter()
            .find(|a| a["Key"] == "access_logs.s3.bucket")
            .and_then(|a| a["Value"]["Ref"].as_str())
            .map(str::to_string);
        if !logs_on {
            return;
        }
        let Some(bucket_ref) = bucket_ref else { return };
        let bucket = self.stacks[key]
            .resources
            .iter()
            .find(|r| r.logical_id == bucket_ref)
            .map(|r| r.physical_id.clone());
        if let Some(bucket) = bucket {
            self.buckets
                .entry(bucket)
                .or_default()
                .insert("ELBAccessLogTestFile".into(), b"test".to_vec());
        }
    }

    /// Deletes one resource, or says why it cannot be deleted. `on_create_rollback`: the resource was made by
    /// the operation being rolled back (RetainExceptOnCreate then deletes it).
    fn delete_resource(
        &mut self,
        key: &(String, String),
        r: &Resource,
        on_create_rollback: bool,
    ) -> Result<&'static str, String> {
        let policy = Self::deletion_policy(&r.definition).to_string();
        let keep = policy == "Retain" || (policy == "RetainExceptOnCreate" && !on_create_rollback);
        if keep {
            if let Some(k) = &r.name_key {
                self.names.insert(k.clone(), None);
            }
            if r.resource_type == "AWS::Route53::HostedZone" {
                self.orphan_zones += 1;
            }
            return Ok("DELETE_SKIPPED");
        }
        if let Some(reason) = self.take_failure(&key.1, &r.logical_id, When::Delete) {
            return Err(reason);
        }
        // Deletion protection refuses the delete: a load balancer's attribute
        // (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#deletion-protection),
        // a database's property (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_DeleteCluster.html).
        let props = &r.definition["Properties"];
        let alb_protected = props["LoadBalancerAttributes"]
            .as_array()
            .is_some_and(|attrs| {
                attrs.iter().any(|a| {
                    a["Key"] == "deletion_protection.enabled"
                        && (a["Value"] == "true" || a["Value"] == true)
                })
            });
        if alb_protected {
            return Err(format!(
                "Operation not permitted: Load balancer '{}' cannot be deleted because deletion protection is enabled",
                r.physical_id
            ));
        }
        if r.resource_type.starts_with("AWS::RDS::") && props["DeletionProtection"] == true {
            return Err(format!(
                "Cannot delete protected Cluster {}, please disable deletion protection and try again.",
                r.physical_id
            ));
        }
        if r.resource_type == "AWS::S3::Bucket" {
            if self
                .buckets
                .get(&r.physical_id)
                .is_some_and(|b| !b.is_empty())
            {
                return Err(format!(
                    "The bucket you tried to delete is not empty (Service: S3, Status Code: 409) [{}]",
                    r.physical_id
                ));
            }
            self.buckets.remove(&r.physical_id);
        }
        if let Some(k) = &r.name_key {
            self.names.remove(k);
        }
        Ok("DELETE_COMPLETE")
    }

    fn outputs_of(
        &self,
        key: &(String, String),
        template: &Value,
        params: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let resources = &self.stacks[key].resources;
        template["Outputs"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let value = match v["Value"].get("Ref").and_then(Value::as_str) {
                    Some(p) if params.contains_key(p) => params[p].clone(),
                    Some(r) => resources
                        .iter()
                        .find(|x| x.logical_id == r)
                        .map(|x| x.physical_id.clone())
                        .unwrap_or_else(|| format!("{}:{k}", key.1)),
                    None => match &v["Value"] {
                        Value::String(s) => s.clone(),
                        _ => format!("{}:{k}", key.1),
                    },
                };
                (k.clone(), value)
            })
            .collect()
    }

    fn execute(&mut self, cs: ChangeSet) {
        let key = (cs.region.clone(), cs.stack.clone());
        self.calls
            .push(format!("ExecuteChangeSet {} {}", cs.region, cs.stack));
        let resources_new: Vec<(String, Value)> = cs.template["Resources"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        if cs.kind == "CREATE" {
            self.stack_event(&key, "CREATE_IN_PROGRESS", "User Initiated");
            let mut failed: Option<(String, String, String)> = None;
            for (logical, def) in &resources_new {
                let ty = def["Type"].as_str().unwrap_or_default().to_string();
                match self.create_resource(&key, logical, def) {
                    Ok(r) => {
                        self.event(&key, logical, &ty, "CREATE_COMPLETE", "");
                        self.stacks.get_mut(&key).unwrap().resources.push(r.clone());
                        self.after_create(&key, &r);
                    }
                    Err(reason) => {
                        failed = Some((logical.clone(), ty, reason));
                        break;
                    }
                }
            }
            if let Some((logical, ty, reason)) = failed {
                self.event(&key, &logical, &ty, "CREATE_FAILED", &reason);
                self.stack_event(
                    &key,
                    "ROLLBACK_IN_PROGRESS",
                    &format!("The following resource(s) failed to create: [{logical}]. Rollback requested by user."),
                );
                let created = std::mem::take(&mut self.stacks.get_mut(&key).unwrap().resources);
                let mut left = Vec::new();
                for r in created.into_iter().rev() {
                    match self.delete_resource(&key, &r, true) {
                        Ok(status) => self.event(&key, &r.logical_id, &r.resource_type, status, ""),
                        Err(reason) => {
                            self.event(
                                &key,
                                &r.logical_id,
                                &r.resource_type,
                                "DELETE_FAILED",
                                &reason,
                            );
                            left.push(Resource {
                                status: "DELETE_FAILED".into(),
                                reason: Some(reason),
                                ..r
                            });
                        }
                    }
                }
                let failed_any = !left.is_empty();
                self.stacks.get_mut(&key).unwrap().resources = left;
                self.stacks.get_mut(&key).unwrap().template = cs.template;
                self.stacks.get_mut(&key).unwrap().body = cs.body;
                self.stacks.get_mut(&key).unwrap().params = cs.params;
                if failed_any {
                    self.stack_event(
                        &key,
                        "ROLLBACK_FAILED",
                        "The following resource(s) failed to delete.",
                    );
                } else {
                    self.stack_event(&key, "ROLLBACK_COMPLETE", "");
                }
                return;
            }
            let outputs = self.outputs_of(&key, &cs.template, &cs.params);
            let st = self.stacks.get_mut(&key).unwrap();
            st.template = cs.template;
            st.body = cs.body;
            st.params = cs.params;
            st.outputs = outputs;
            self.stack_event(&key, "CREATE_COMPLETE", "");
            return;
        }
        // UPDATE
        self.stack_event(&key, "UPDATE_IN_PROGRESS", "User Initiated");
        let old: Vec<Resource> = self.stacks[&key].resources.clone();
        let mut added: Vec<Resource> = Vec::new();
        let mut modified: Vec<String> = Vec::new();
        let mut failed: Option<(String, String, String)> = None;
        for (logical, def) in &resources_new {
            let ty = def["Type"].as_str().unwrap_or_default().to_string();
            match old.iter().find(|r| &r.logical_id == logical) {
                None => match self.create_resource(&key, logical, def) {
                    Ok(r) => {
                        self.event(&key, logical, &ty, "CREATE_COMPLETE", "");
                        added.push(r);
                    }
                    Err(reason) => {
                        failed = Some((logical.clone(), ty, reason));
                        break;
                    }
                },
                Some(r) if r.definition != *def => {
                    if let Some(reason) = self.take_failure(&key.1, logical, When::Update) {
                        failed = Some((logical.clone(), ty, reason));
                        break;
                    }
                    self.event(&key, logical, &ty, "UPDATE_COMPLETE", "");
                    modified.push(logical.clone());
                }
                Some(_) => {}
            }
        }
        if let Some((logical, ty, reason)) = failed {
            self.event(&key, &logical, &ty, "UPDATE_FAILED", &reason);
            self.stack_event(
                &key,
                "UPDATE_ROLLBACK_IN_PROGRESS",
                &format!("The following resource(s) failed to update: [{logical}]."),
            );
            // Roll back: the modified resources (and the one that failed) go back to their old definition;
            // the added ones are deleted, as made by the operation being rolled back.
            let mut stuck = Vec::new();
            for m in modified.iter().chain(std::iter::once(&logical)) {
                if let Some(reason) = self.take_failure(&key.1, m, When::Rollback) {
                    let ty = old
                        .iter()
                        .find(|r| &r.logical_id == m)
                        .map(|r| r.resource_type.clone())
                        .unwrap_or_default();
                    self.event(&key, m, &ty, "UPDATE_FAILED", &reason);
                    stuck.push((m.clone(), reason));
                }
            }
            for r in added.iter().rev() {
                let _ = self.delete_resource(&key, r, true);
            }
            let st = self.stacks.get_mut(&key).unwrap();
            st.resources = old;
            for (m, reason) in &stuck {
                if let Some(r) = st.resources.iter_mut().find(|r| &r.logical_id == m) {
                    r.status = "UPDATE_FAILED".into();
                    r.reason = Some(reason.clone());
                }
            }
            if stuck.is_empty() {
                self.stack_event(&key, "UPDATE_ROLLBACK_COMPLETE", "");
            } else {
                self.stack_event(
                    &key,
                    "UPDATE_ROLLBACK_FAILED",
                    "The following resource(s) failed to update.",
                );
            }
            return;
        }
        // Removed resources go per their DeletionPolicy (an update, not a create rollback).
        let mut kept: Vec<Resource> = Vec::new();
        for r in old {
            match resources_new.iter().find(|(l, _)| *l == r.logical_id) {
                Some((_, def)) => kept.push(Resource {
                    definition: def.clone(),
                    status: "UPDATE_COMPLETE".into(),
                    ..r
                }),
                None => {
                    let _ = self.delete_resource(&key, &r, false);
                }
            }
        }
        kept.extend(added.clone());
        self.stacks.get_mut(&key).unwrap().resources = kept;
        for a in &added {
            self.after_create(&key, a);
        }
        let outputs = self.outputs_of(&key, &cs.template, &cs.params);
        let st = self.stacks.get_mut(&key).unwrap();
        st.template = cs.template;
        st.body = cs.body;
        st.params = cs.params;
        st.outputs = outputs;
        self.stack_event(&key, "UPDATE_COMPLETE", "");
    }

    fn delete_stack(&mut self, region: &str, name: &str, retain: &[String]) -> Result<(), String> {
        let key = (region.to_string(), name.to_string());
        self.calls.push(format!(
            "DeleteStack {region} {name}{}",
            if retain.is_empty() {
                String::new()
            } else {
                format!(" retaining {}", retain.join(","))
            }
        ));
        let Some(st) = self.stacks.get(&key) else {
            return Ok(());
        };
        if st.protection {
            return Err(format!(
                "Stack [{name}] cannot be deleted while TerminationProtection is enabled"
            ));
        }
        if !retain.is_empty() && st.status != "DELETE_FAILED" {
            return Err(format!(
                "Invalid operation on stack [{name}]: RetainResources can only be specified when the stack is in the DELETE_FAILED state"
            ));
        }
        if st.status == "REVIEW_IN_PROGRESS" {
            self.stacks.remove(&key);
            return Ok(());
        }
        self.stack_event(&key, "DELETE_IN_PROGRESS", "User Initiated");
        let resources = std::mem::take(&mut self.stacks.get_mut(&key).unwrap().resources);
        let mut left = Vec::new();
        for r in resources.into_iter().rev() {
            if retain.contains(&r.logical_id) {
                if let Some(k) = &r.name_key {
                    self.names.insert(k.clone(), None);
                }
                self.event(&key, &r.logical_id, &r.resource_type, "DELETE_SKIPPED", "");
                continue;
            }
            match self.delete_resource(&key, &r, false) {
                Ok(status) => self.event(&key, &r.logical_id, &r.resource_type, status, ""),
                Err(reason) => {
                    self.event(
                        &key,
                        &r.logical_id,
                        &r.resource_type,
                        "DELETE_FAILED",
                        &reason,
                    );
                    left.push(Resource {
                        status: "DELETE_FAILED".into(),
                        reason: Some(reason),
                        ..r
                    });
                }
            }
        }
        if left.is_empty() {
            self.stacks.remove(&key);
        } else {
            left.reverse();
            self.stacks.get_mut(&key).unwrap().resources = left;
            self.stack_event(
                &key,
                "DELETE_FAILED",
                "The following resource(s) failed to delete.",
            );
        }
        Ok(())
    }
}

fn cfn_error(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn params_of(params: &[cfn::types::Parameter]) -> BTreeMap<String, String> {
    params
        .iter()
        .filter_map(|p| {
            Some((
                p.parameter_key()?.to_string(),
                p.parameter_value()?.to_string(),
            ))
        })
        .collect()
}

/// Resource-level differences: (logical id, type, Add|Modify|Remove).
fn changes(
    old: Option<&Stack>,
    template: &Value,
    params: &BTreeMap<String, String>,
) -> Vec<(String, String, String)> {
    let empty = serde_json::Map::new();
    let new = template["Resources"].as_object().unwrap_or(&empty);
    let mut out = Vec::new();
    let old_defs: BTreeMap<String, Value> = old
        .map(|s| {
            s.resources
                .iter()
                .map(|r| (r.logical_id.clone(), r.definition.clone()))
                .collect()
        })
        .unwrap_or_default();
    // A changed parameter value modifies the resources that refer to one (CloudFormation re-resolves them).
    let params_changed = old.is_some_and(|s| s.params != *params);
    for (id, def) in new {
        let ty = def["Type"].as_str().unwrap_or_default().to_string();
        match old_defs.get(id) {
            None => out.push((id.clone(), ty, "Add".into())),
            Some(d) if d != def || (params_changed && def.to_string().contains("\"Ref\"")) => {
                out.push((id.clone(), ty, "Modify".into()))
            }
            _ => {}
        }
    }
    for (id, def) in &old_defs {
        if !new.contains_key(id) {
            out.push((
                id.clone(),
                def["Type"].as_str().unwrap_or_default().into(),
                "Remove".into(),
            ));
        }
    }
    out
}

/// Where the engine's template URLs point: https://BUCKET.s3.REGION.amazonaws.com/KEY.
fn object_of_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("https://")?;
    let (host, key) = rest.split_once('/')?;
    let bucket = host.split(".s3.").next()?;
    Some((bucket.to_string(), key.to_string()))
}

const DEPLOYED: &[&str] = &[
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
];

fn cfn_rules(account: &Shared, region: &str) -> Vec<Rule> {
    use cfn::operation::*;
    let mut rules = Vec::new();
    let (a, r) = (account.clone(), region.to_string());
    rules.push(
        mock!(cfn::Client::describe_stacks).then_compute_response(move |req| {
            let acc = a.lock().unwrap();
            let name = req.stack_name().unwrap_or_default();
            match acc.stack(&r, name) {
                None => {
                    MockResponse::Error(describe_stacks::DescribeStacksError::generic(cfn_error(
                        "ValidationError",
                        &format!("Stack with id {name} does not exist"),
                    )))
                }
                Some(s) => {
                    let mut b = cfn::types::Stack::builder()
                        .stack_id(format!(
                            "arn:aws:cloudformation:{r}:123456789012:stack/{name}/1"
                        ))
                        .stack_name(name)
                        .stack_status(cfn::types::StackStatus::from(s.status.as_str()))
                        .set_stack_status_reason(s.reason.clone())
                        .creation_time(now())
                        .enable_termination_protection(s.protection);
                    for (k, v) in &s.outputs {
                        b = b.outputs(
                            cfn::types::Output::builder()
                                .output_key(k)
                                .output_value(v)
                                .build(),
                        );
                    }
                    for (k, v) in &s.params {
                        b = b.parameters(
                            cfn::types::Parameter::builder()
                                .parameter_key(k)
                                .parameter_value(v)
                                .build(),
                        );
                    }
                    MockResponse::Output(
                        describe_stacks::DescribeStacksOutput::builder()
                            .stacks(b.build())
                            .build(),
                    )
                }
            }
        }),
    );
    let (a, r) = (account.clone(), region.to_string());
    rules.push(
        mock!(cfn::Client::create_change_set).then_compute_response(move |req| {
            let mut acc = a.lock().unwrap();
            let name = req.stack_name().unwrap_or_default().to_string();
            let body = match (req.template_body(), req.template_url()) {
                (Some(b), _) => b.to_string(),
                (None, Some(url)) => {
                    let Some((bucket, key)) = object_of_url(url) else {
                        return MockResponse::Error(
                            create_change_set::CreateChangeSetError::generic(cfn_error(
                                "ValidationError",
                                "bad TemplateURL",
                            )),
                        );
                    };
                    match acc.buckets.get(&bucket).and_then(|b| b.get(&key)) {
                        Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                        None => {
                            return MockResponse::Error(
                                create_change_set::CreateChangeSetError::generic(cfn_error(
                                    "ValidationError",
                                    &format!("S3 error: the template at {url} does not exist"),
                                )),
                            );
                        }
                    }
                }
                _ => String::new(),
            };
            let template: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let params = params_of(req.parameters());
            for (p, decl) in template["Parameters"].as_object().into_iter().flatten() {
                if decl.get("Default").is_none() && !params.contains_key(p) {
                    return MockResponse::Error(create_change_set::CreateChangeSetError::generic(
                        cfn_error(
                            "ValidationError",
                            &format!("Parameters: [{p}] must have values"),
                        ),
                    ));
                }
            }
            let kind = req
                .change_set_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_else(|| "UPDATE".into());
            let key = (r.clone(), name.clone());
            let existing_status = acc.stack(&r, &name).map(|s| s.status.clone());
            match (kind.as_str(), existing_status.as_deref()) {
                ("CREATE", None) => {
                    acc.stacks.insert(
                        key.clone(),
                        Stack {
                            name: name.clone(),
                            status: "REVIEW_IN_PROGRESS".into(),
                            ..Default::default()
                        },
                    );
                }
                ("CREATE", Some("REVIEW_IN_PROGRESS")) => {}
                ("CREATE", Some(_)) => {
                    return MockResponse::Error(create_change_set::CreateChangeSetError::generic(
                        cfn_error(
                            "AlreadyExistsException",
                            &format!("Stack [{name}] already exists"),
                        ),
                    ));
                }
                (_, None) => {
                    return MockResponse::Error(create_change_set::CreateChangeSetError::generic(
                        cfn_error("ValidationError", &format!("Stack [{name}] does not exist")),
                    ));
                }
                (_, Some(s)) if !DEPLOYED.contains(&s) => {
                    return MockResponse::Error(create_change_set::CreateChangeSetError::generic(
                        cfn_error(
                            "ValidationError",
                            &format!("Stack:{name} is in {s} state and can not be updated."),
                        ),
                    ));
                }
                _ => {}
            }
            let old = acc
                .stacks
                .get(&key)
                .filter(|s| s.status != "REVIEW_IN_PROGRESS");
            let changes = changes(old, &template, &params);
            let n = acc.id();
            let id = format!(
                "arn:aws:cloudformation:{r}:123456789012:changeSet/{}/{n}",
                req.change_set_name().unwrap_or_default()
            );
            acc.change_sets.insert(
                id.clone(),
                ChangeSet {
                    region: r.clone(),
                    stack: name,
                    kind,
                    template,
                    body,
                    params,
                    changes,
                },
            );
            MockResponse::Output(
                create_change_set::CreateChangeSetOutput::builder()
                    .id(id)
                    .build(),
            )
        }),
    );
    let a = account.clone();
    rules.push(mock!(cfn::Client::describe_change_set).then_compute_response(move |req| {
        let acc = a.lock().unwrap();
        let Some(cs) = acc.change_sets.get(req.change_set_name().unwrap_or_default()) else {
            return MockResponse::Error(describe_change_set::DescribeChangeSetError::generic(cfn_error("ChangeSetNotFound", "no such change set")));
        };
        let stack = acc.stack(&cs.region, &cs.stack).filter(|s| s.status != "REVIEW_IN_PROGRESS");
        let identical = stack.is_some_and(|s| s.template == cs.template && s.params == cs.params);
        if cs.changes.is_empty() && identical {
            return MockResponse::Output(
                describe_change_set::DescribeChangeSetOutput::builder()
                    .status(cfn::types::ChangeSetStatus::Failed)
                    .status_reason("The submitted information didn't contain changes. Submit different information to create a change set.")
                    .build(),
            );
        }
        let mut b = describe_change_set::DescribeChangeSetOutput::builder().status(cfn::types::ChangeSetStatus::CreateComplete);
        for (id, ty, action) in &cs.changes {
            let mut rc = cfn::types::ResourceChange::builder()
                .action(cfn::types::ChangeAction::from(action.as_str()))
                .logical_resource_id(id)
                .resource_type(ty);
            if action == "Modify" {
                rc = rc.replacement(cfn::types::Replacement::False);
            }
            b = b.changes(cfn::types::Change::builder().resource_change(rc.build()).build());
        }
        MockResponse::Output(b.build())
    }));
    let a = account.clone();
    rules.push(
        mock!(cfn::Client::execute_change_set).then_compute_response(move |req| {
            let mut acc = a.lock().unwrap();
            let Some(cs) = acc
                .change_sets
                .remove(req.change_set_name().unwrap_or_default())
            else {
                return MockResponse::Error(execute_change_set::ExecuteChangeSetError::generic(
                    cfn_error("ChangeSetNotFound", "no such change set"),
                ));
            };
            acc.execute(cs);
            MockResponse::Output(execute_change_set::ExecuteChangeSetOutput::builder().build())
        }),
    );
    let a = account.clone();
    rules.push(
        mock!(cfn::Client::delete_change_set).then_compute_response(move |req| {
            let mut acc = a.lock().unwrap();
            acc.change_sets
                .remove(req.change_set_name().unwrap_or_default());
            MockResponse::Output(delete_change_set::DeleteChangeSetOutput::builder().build())
        }),
    );
    let (a, r) = (account.clone(), region.to_string());
    rules.push(
        mock!(cfn::Client::delete_stack).then_compute_response(move |req| {
            let mut acc = a.lock().unwrap();
            match acc.delete_stack(
                &r,
                req.stack_name().unwrap_or_default(),
                req.retain_resources(),
            ) {
                Ok(()) => MockResponse::Output(delete_stack::DeleteStackOutput::builder().build()),
                Err(m) => MockResponse::Error(delete_stack::DeleteStackError::generic(cfn_error(
                    "ValidationError",
                    &m,
                ))),
            }
        }),
    );
    let (a, r) = (account.clone(), region.to_string());
    rules.push(
        mock!(cfn::Client::describe_stack_events).then_compute_response(move |req| {
            let acc = a.lock().unwrap();
            let events = acc
                .stack(&r, req.stack_name().unwrap_or_default())
                .map(|s| s.events.clone())
                .unwrap_or_default();
            MockResponse::Output(
                describe_stack_events::DescribeStackEventsOutput::builder()
                    .set_stack_events(Some(events))
                    .build(),
            )
        }),
    );
    let (a, r) = (account.clone(), region.to_string());
    rules.push(
        mock!(cfn::Client::describe_stack_resources).then_compute_response(move |req| {
            let acc = a.lock().unwrap();
            let name = req.stack_name().unwrap_or_default();
            let resources: Vec<cfn::types::StackResource> = acc
                .stack(&r, name)
                .map(|s| {
                    s.resources
                        .iter()
                        .map(|x| {
                            cfn::types::StackResource::builder()
                                .stack_name(name)
                                .logical_resource_id(&x.logical_id)
                                .physical_resource_id(&x.physical_id)
                                .resource_type(&x.resource_type)
                                .resource_status(cfn::types::ResourceStatus::from(
                                    x.status.as_str(),
                                ))
                                .set_resource_status_reason(x.reason.clone())
                                .timestamp(now())
                                .build()
                        })
                        .collect()
                })
                .unwrap_or_default();
            MockResponse::Output(
                describe_stack_resources::DescribeStackResourcesOutput::builder()
                    .set_stack_resources(Some(resources))
                    .build(),
            )
        }),
    );
    let (a, r) = (account.clone(), region.to_string());
    rules.push(
        mock!(cfn::Client::get_template).then_compute_response(move |req| {
            let acc = a.lock().unwrap();
            match acc.stack(&r, req.stack_name().unwrap_or_default()) {
                Some(s) => MockResponse::Output(
                    get_template::GetTemplateOutput::builder()
                        .template_body(&s.body)
                        .build(),
                ),
                None => MockResponse::Error(get_template::GetTemplateError::generic(cfn_error(
                    "ValidationError",
                    "does not exist",
                ))),
            }
        }),
    );
    let (a, r) = (account.clone(), region.to_string());
    rules.push(
        mock!(cfn::Client::continue_update_rollback).then_compute_response(move |req| {
            let mut acc = a.lock().unwrap();
            let name = req.stack_name().unwrap_or_default().to_string();
            let key = (r.clone(), name.clone());
            let skip: Vec<String> = req.resources_to_skip().to_vec();
            acc.calls.push(format!(
                "ContinueUpdateRollback {r} {name} skipping [{}]",
                skip.join(",")
            ));
            let Some(st) = acc.stacks.get(&key) else {
                return MockResponse::Error(
                    continue_update_rollback::ContinueUpdateRollbackError::generic(cfn_error(
                        "ValidationError",
                        "does not exist",
                    )),
                );
            };
            if st.status != "UPDATE_ROLLBACK_FAILED" {
                return MockResponse::Error(
                    continue_update_rollback::ContinueUpdateRollbackError::generic(cfn_error(
                        "ValidationError",
                        &format!(
                            "Stack {name} is in {} state and can not continue its rollback",
                            st.status
                        ),
                    )),
                );
            }
            let stuck: Vec<String> = st
                .resources
                .iter()
                .filter(|x| x.status == "UPDATE_FAILED")
                .map(|x| x.logical_id.clone())
                .collect();
            if let Some(bad) = skip.iter().find(|s| !stuck.contains(s)) {
                return MockResponse::Error(
                    continue_update_rollback::ContinueUpdateRollbackError::generic(cfn_error(
                        "ValidationError",
                        &format!(
                            "Resource {bad} is not in UPDATE_FAILED state and cannot be skipped"
                        ),
                    )),
                );
            }
            acc.stack_event(&key, "UPDATE_ROLLBACK_IN_PROGRESS", "User Initiated");
            let mut still = Vec::new();
            for logical in &stuck {
                let ty = acc.stacks[&key]
                    .resources
                    .iter()
                    .find(|x| &x.logical_id == logical)
                    .map(|x| x.resource_type.clone())
                    .unwrap_or_default();
                if skip.contains(logical) {
                    acc.event(
                        &key,
                        logical,
                        &ty,
                        "UPDATE_COMPLETE",
                        "Resource skipped during rollback",
                    );
                } else if let Some(reason) = acc.take_failure(&name, logical, When::Rollback) {
                    acc.event(&key, logical, &ty, "UPDATE_FAILED", &reason);
                    still.push(logical.clone());
                } else {
                    acc.event(&key, logical, &ty, "UPDATE_COMPLETE", "");
                }
            }
            let st = acc.stacks.get_mut(&key).unwrap();
            for x in st.resources.iter_mut() {
                if x.status == "UPDATE_FAILED" && !still.contains(&x.logical_id) {
                    x.status = "UPDATE_COMPLETE".into();
                    x.reason = None;
                }
            }
            if still.is_empty() {
                acc.stack_event(&key, "UPDATE_ROLLBACK_COMPLETE", "");
            } else {
                acc.stack_event(
                    &key,
                    "UPDATE_ROLLBACK_FAILED",
                    "The following resource(s) failed to update.",
                );
            }
            MockResponse::Output(
                continue_update_rollback::ContinueUpdateRollbackOutput::builder().build(),
            )
        }),
    );
    let (a, r) = (account.clone(), region.to_string());
    rules.push(
        mock!(cfn::Client::update_termination_protection).then_compute_response(move |req| {
            let mut acc = a.lock().unwrap();
            let name = req.stack_name().unwrap_or_default().to_string();
            let on = req.enable_termination_protection().unwrap_or(false);
            acc.calls
                .push(format!("UpdateTerminationProtection {r} {name} {on}"));
            match acc.stacks.get_mut(&(r.clone(), name)) {
                Some(s) => {
                    s.protection = on;
                    MockResponse::Output(
                        update_termination_protection::UpdateTerminationProtectionOutput::builder()
                            .build(),
                    )
                }
                None => MockResponse::Error(
                    update_termination_protection::UpdateTerminationProtectionError::generic(
                        cfn_error("ValidationError", "does not exist"),
                    ),
                ),
            }
        }),
    );
    rules
}

fn s3_rules(account: &Shared) -> Vec<Rule> {
    use s3::operation::*;
    let mut rules = Vec::new();
    let a = account.clone();
    rules.push(
        mock!(s3::Client::head_object).then_compute_response(move |req| {
            let acc = a.lock().unwrap();
            let found = acc
                .buckets
                .get(req.bucket().unwrap_or_default())
                .is_some_and(|b| b.contains_key(req.key().unwrap_or_default()));
            if found {
                MockResponse::Output(head_object::HeadObjectOutput::builder().build())
            } else {
                MockResponse::Error(head_object::HeadObjectError::NotFound(
                    s3::types::error::NotFound::builder().build(),
                ))
            }
        }),
    );
    let a = account.clone();
    rules.push(
        mock!(s3::Client::put_object).then_compute_response(move |req| {
            let mut acc = a.lock().unwrap();
            let bucket = req.bucket().unwrap_or_default().to_string();
            let key = req.key().unwrap_or_default().to_string();
            let bytes = req.body().bytes().map(<[u8]>::to_vec).unwrap_or_default();
            acc.calls.push(format!("PutObject {bucket}/{key}"));
            match acc.buckets.get_mut(&bucket) {
                Some(b) => {
                    b.insert(key, bytes);
                    MockResponse::Output(put_object::PutObjectOutput::builder().build())
                }
                None => MockResponse::Error(put_object::PutObjectError::generic(cfn_error(
                    "NoSuchBucket",
                    "The specified bucket does not exist",
                ))),
            }
        }),
    );
    let a = account.clone();
    rules.push(
        mock!(s3::Client::list_object_versions).then_compute_response(move |req| {
            let acc = a.lock().unwrap();
            let keys: Vec<String> = acc
                .buckets
                .get(req.bucket().unwrap_or_default())
                .map(|b| b.keys().cloned().collect())
                .unwrap_or_default();
            let mut b = list_object_versions::ListObjectVersionsOutput::builder();
            for k in keys {
                b = b.versions(
                    s3::types::ObjectVersion::builder()
                        .key(k)
                        .version_id("v1")
                        .build(),
                );
            }
            MockResponse::Output(b.build())
        }),
    );
    let a = account.clone();
    rules.push(
        mock!(s3::Client::delete_objects).then_compute_response(move |req| {
            let mut acc = a.lock().unwrap();
            let bucket = req.bucket().unwrap_or_default().to_string();
            let keys: Vec<String> = req
                .delete()
                .map(|d| d.objects().iter().map(|o| o.key().to_string()).collect())
                .unwrap_or_default();
            acc.calls
                .push(format!("DeleteObjects {bucket} {}", keys.len()));
            if let Some(b) = acc.buckets.get_mut(&bucket) {
                for k in keys {
                    b.remove(&k);
                }
            }
            MockResponse::Output(delete_objects::DeleteObjectsOutput::builder().build())
        }),
    );
    rules
}

/// SDK clients for each region, answered by the model.
pub fn clients(account: &Shared, regions: &[&str]) -> BTreeMap<String, SdkRegion> {
    regions
        .iter()
        .map(|region| {
            let cfn_rules = cfn_rules(account, region);
            let s3_rules = s3_rules(account);
            let cfn_client: cfn::Client = mock_client!(cfn, RuleMode::MatchAny, cfn_rules.iter());
            let s3_client: s3::Client = mock_client!(s3, RuleMode::MatchAny, s3_rules.iter());
            (
                region.to_string(),
                SdkRegion::from_clients(region, None, cfn_client, s3_client),
            )
        })
        .collect()
}

/// Names of retained resources owned by no stack.
pub fn leftovers(account: &Account) -> BTreeSet<String> {
    account
        .names
        .iter()
        .filter(|(_, owner)| owner.is_none())
        .map(|(k, _)| k.clone())
        .collect()
}
