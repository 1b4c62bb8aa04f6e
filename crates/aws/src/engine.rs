//! The deploy engine: applies, previews, destroys and reports the stacks of a synth output, in dependency order
//! across regions, through change sets. Generic over [`RegionApi`], so all of this runs in tests without AWS.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use lifeboat_contract::exit;
use lifeboat_contract::manifest::{ArtifactPart, ParameterSource, StackEntry};
use serde::Serialize;

use crate::api::{
    ApiError, ChangeSetKind, ChangeSetRequest, RegionApi, StackEvent, StackResource, StackSnapshot,
    TemplateSource, is_deployed, is_healthy, is_settled,
};
use crate::changes::{self, ResourceChange, StatefulRisk};
use crate::error::EngineError;
use crate::graph::{self, Selection};
use crate::progress::{Observer, Outcome, Phase, Progress, millis};
use crate::synth_output::SynthOutput;

/// Outputs per stack id.
pub type OutputsById = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Stacks worked on at the same time.
    pub concurrency: usize,
    /// Longest wait for one change set or one stack operation.
    pub timeout: Duration,
    /// First poll interval; doubled after each poll up to `poll_max`. Short first polls keep fast endpoints fast.
    pub poll_initial: Duration,
    pub poll_max: Duration,
    /// After each executed change set, apply the same template and parameters again with UpdateStack so the
    /// endpoint computes the stack's outputs. moto 5.2 never computes outputs for stacks created or updated
    /// through change sets (it does for UpdateStack); real CloudFormation does not need this. On only for a
    /// local endpoint.
    pub recompute_outputs: bool,
    /// Per stack id, the resources (logical ids) that ContinueUpdateRollback may skip when the stack is in
    /// UPDATE_ROLLBACK_FAILED (`deploy --skip-rollback-resources`). Skipping leaves those resources out of
    /// step with the template; only the user can decide that, so nothing is skipped unless named.
    pub rollback_skip: BTreeMap<String, Vec<String>>,
    /// Turn termination protection on for stateful stacks outside `dev` after they deploy. Off for local
    /// emulators, which do not implement UpdateTerminationProtection (moto 5.2 does not).
    pub termination_protection: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            timeout: Duration::from_secs(60 * 60),
            poll_initial: Duration::from_millis(200),
            poll_max: Duration::from_secs(5),
            recompute_outputs: false,
            rollback_skip: BTreeMap::new(),
            termination_protection: true,
        }
    }
}

/// Whether a stack should carry termination protection: it holds data (the manifest lists stateful resources)
/// and the environment is not `dev` (the same line the config draws for deletion protection, see
/// `lifeboat_config::Config::deletion_protection`). Termination protection makes DeleteStack fail until it is
/// turned off (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-protect-stacks.html).
pub fn wants_termination_protection(environment: &str, entry: &StackEntry) -> bool {
    environment != "dev" && !entry.stateful_resources.is_empty()
}

/// Buckets whose contents are logs lifeboat's own resources write (the load balancers' access logs): destroy
/// empties them without `--force`, and empties them again when a late delivery makes the deletion fail.
pub fn is_log_bucket(logical_id: &str) -> bool {
    logical_id.ends_with("LogsBucket")
}

/// Where an uploaded code package lies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactLocation {
    pub bucket: String,
    pub key: String,
}

/// Artifact locations by (region, artifact name).
pub type ArtifactLocations = BTreeMap<(String, String), ArtifactLocation>;

/// One stack's result in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackResult {
    pub id: String,
    pub name: String,
    pub region: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub stacks: Vec<StackResult>,
}

impl RunReport {
    /// Failures win over refusals: `FAILED` if any stack failed, else `REFUSED` if any was refused, else `OK`.
    /// Skipped stacks follow from one of those, so they do not decide the code themselves.
    pub fn exit_code(&self) -> i32 {
        if self
            .stacks
            .iter()
            .any(|s| matches!(s.outcome, Outcome::Failed { .. }))
        {
            exit::FAILED
        } else if self
            .stacks
            .iter()
            .any(|s| matches!(s.outcome, Outcome::Refused { .. }))
        {
            exit::REFUSED
        } else {
            exit::OK
        }
    }

    pub fn get(&self, id: &str) -> Option<&StackResult> {
        self.stacks.iter().find(|s| s.id == id)
    }
}

/// Feeds a stack's parameters from its dependencies' outputs, the uploaded artifacts and which stacks are
/// deployed (`deployed`: ids).
pub fn resolve_parameters(
    entry: &StackEntry,
    outputs: &OutputsById,
    artifacts: &ArtifactLocations,
    deployed: &BTreeSet<String>,
) -> Result<Vec<(String, String)>, String> {
    entry
        .parameters
        .iter()
        .map(|p| {
            let value = match &p.source {
                ParameterSource::StackOutput { stack, output } => outputs
                    .get(stack)
                    .and_then(|o| o.get(output))
                    .cloned()
                    .ok_or_else(|| {
                        format!("parameter {}: stack {stack} has no output {output}", p.name)
                    })?,
                ParameterSource::Artifact { artifact, part } => {
                    let loc = artifacts
                        .get(&(entry.region.clone(), artifact.clone()))
                        .ok_or_else(|| {
                            format!(
                                "parameter {}: artifact {artifact} was not uploaded to {}",
                                p.name, entry.region
                            )
                        })?;
                    match part {
                        ArtifactPart::Bucket => loc.bucket.clone(),
                        ArtifactPart::Key => loc.key.clone(),
                    }
                }
                ParameterSource::StackDeployed { stack } => deployed.contains(stack).to_string(),
            };
            Ok((p.name.clone(), value))
        })
        .collect()
}

/// The stacks a stack's `StackDeployed` parameters ask about.
fn referenced_stacks(entry: &StackEntry) -> Vec<&str> {
    entry
        .parameters
        .iter()
        .filter_map(|p| match &p.source {
            ParameterSource::StackDeployed { stack } => Some(stack.as_str()),
            _ => None,
        })
        .collect()
}

/// Whether every stack `entry`'s `StackDeployed` parameters ask about is deployed.
fn references_deployed(entry: &StackEntry, deployed: &BTreeSet<String>) -> bool {
    referenced_stacks(entry)
        .iter()
        .all(|stack| deployed.contains(*stack))
}

/// The failing event that explains a failed operation: the earliest `*_FAILED` resource event, preferring real
/// causes over the "Resource creation cancelled" that CloudFormation writes for the resources it stopped.
pub fn first_failure<'e>(
    events_newest_first: &'e [StackEvent],
    stack_name: &str,
) -> Option<&'e StackEvent> {
    let failed: Vec<&StackEvent> = events_newest_first
        .iter()
        .rev()
        .filter(|e| e.status.ends_with("_FAILED"))
        .collect();
    let is_cause = |e: &&&StackEvent| {
        e.logical_id != stack_name
            && !e
                .reason
                .as_deref()
                .unwrap_or("")
                .to_ascii_lowercase()
                .contains("cancelled")
    };
    failed
        .iter()
        .find(is_cause)
        .or_else(|| failed.iter().find(|e| e.logical_id != stack_name))
        .or(failed.first())
        .copied()
}

fn describe_failure(event: &StackEvent) -> String {
    format!(
        "{} ({}) {}: {}",
        event.logical_id,
        event.resource_type,
        event.status,
        event.reason.as_deref().unwrap_or("no reason given")
    )
}

/// Resources of the template that the endpoint does not list: a resource silently skipped (moto does this
/// for types it does not support) must never pass as deployed.
pub fn missing_resources(
    template_resources: &[(String, String)],
    listed: &[crate::api::StackResource],
) -> Vec<String> {
    let present: BTreeSet<&str> = listed.iter().map(|r| r.logical_id.as_str()).collect();
    let mut missing: Vec<String> = template_resources
        .iter()
        .filter(|(id, _)| !present.contains(id.as_str()))
        .map(|(id, ty)| format!("{id} ({ty})"))
        .collect();
    let anonymous = listed.iter().filter(|r| r.logical_id.is_empty()).count();
    if anonymous > 0 {
        missing.push(format!(
            "{anonymous} resource(s) listed without a logical id"
        ));
    }
    missing
}

/// What `diff` found for one stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackDiff {
    pub id: String,
    pub name: String,
    pub region: String,
    /// False when the stack does not exist yet.
    pub exists: bool,
    #[serde(flatten)]
    pub result: DiffResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "diff", rename_all = "snake_case")]
pub enum DiffResult {
    NoChanges,
    Changes {
        changes: Vec<ResourceChange>,
        stateful_risks: Vec<StatefulRisk>,
    },
    /// A change set could not be made (its inputs come from stacks not deployed yet); `changes` lists the
    /// template's resources as additions when the stack is new.
    Unknown {
        reason: String,
        changes: Vec<ResourceChange>,
    },
    Failed {
        reason: String,
    },
}

/// One row of `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackStatus {
    pub id: String,
    pub name: String,
    pub region: String,
    pub component: String,
    /// The CloudFormation status, or `NOT_DEPLOYED`.
    pub status: String,
    pub status_reason: Option<String>,
    pub last_updated: Option<String>,
    pub drift_status: Option<String>,
    pub outputs: BTreeMap<String, String>,
    pub termination_protection: bool,
    /// What `deploy` and `destroy` would do with a stack in this status, when it is not an ordinary one.
    pub next_step: Option<String>,
}

/// What deploy and destroy do with a stack in `status` when that is not simply "update it" / "delete it".
/// The same table is in docs/deploy.md.
pub fn next_step(status: &str) -> Option<&'static str> {
    Some(match status {
        "ROLLBACK_COMPLETE" => {
            "a first create failed and was rolled back; deploy deletes the empty stack and creates it again"
        }
        "ROLLBACK_FAILED" => {
            "a first create failed and could not be rolled back; deploy deletes it (emptying its buckets, \
             retaining and listing what still cannot be deleted) and creates it again; destroy deletes it"
        }
        "DELETE_FAILED" => {
            "a deletion failed; destroy (or deploy) deletes it again, retaining and listing what cannot be deleted"
        }
        "UPDATE_ROLLBACK_COMPLETE" | "IMPORT_ROLLBACK_COMPLETE" => {
            "deployed with its last good template (the last update failed and was rolled back); deploy updates it"
        }
        "UPDATE_ROLLBACK_FAILED" => {
            "an update failed and its rollback too; deploy continues the rollback (ContinueUpdateRollback, \
             --skip-rollback-resources STACK:RESOURCE for resources that cannot roll back), then updates it"
        }
        "CREATE_FAILED" | "UPDATE_FAILED" => {
            "an operation failed with rollback disabled; roll it back (aws cloudformation rollback-stack) or \
             destroy it, then deploy"
        }
        "IMPORT_ROLLBACK_FAILED" => {
            "a resource import failed to roll back; fix the resources named in its events, or destroy it"
        }
        "REVIEW_IN_PROGRESS" => "an unexecuted change set created it; deploy creates it",
        s if !is_settled(s) => "an operation is in progress; deploy and destroy wait for it to end",
        _ => return None,
    })
}

/// Data that destroying the selected stacks would delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataFinding {
    pub stack: String,
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: Option<String>,
    pub what: String,
}

impl std::fmt::Display for DataFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} {} ({}) {}",
            self.stack,
            self.resource_type,
            self.logical_id,
            self.physical_id.as_deref().unwrap_or("-"),
            self.what
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestroyPlan {
    /// Existing stacks, in deletion order (dependents first).
    pub to_delete: Vec<String>,
    pub absent: Vec<String>,
    pub data: Vec<DataFinding>,
    /// Non-empty buckets per stack, emptied before the stack is deleted (log buckets always, the others only
    /// with `--force`).
    pub buckets_to_empty: BTreeMap<String, Vec<String>>,
    /// Stacks with termination protection on: destroy turns it off only with `--force`.
    pub protected: Vec<String>,
    /// The buckets of `buckets_to_empty` that hold only logs (see [`is_log_bucket`]): emptied without `--force`.
    pub log_buckets: BTreeSet<String>,
}

/// A finished apply: stack id, outcome, outputs, time taken.
type Applied = (String, Outcome, BTreeMap<String, String>, Duration);

type BoxFuture<'a, T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

pub struct Engine<'a, A: RegionApi> {
    pub synth: &'a SynthOutput,
    pub apis: &'a BTreeMap<String, A>,
    pub options: EngineOptions,
}

impl<'a, A: RegionApi> Engine<'a, A> {
    pub fn new(
        synth: &'a SynthOutput,
        apis: &'a BTreeMap<String, A>,
        options: EngineOptions,
    ) -> Self {
        Self {
            synth,
            apis,
            options,
        }
    }

    fn api(&self, region: &str) -> Result<&'a A, EngineError> {
        self.apis
            .get(region)
            .ok_or_else(|| EngineError::Input(format!("no AWS client for region {region}")))
    }

    fn entry(&self, id: &str) -> &'a StackEntry {
        // Ids come from the validated manifest.
        self.synth
            .stack(id)
            .unwrap_or_else(|| unreachable_stack(id))
    }

    pub fn select(&self, pattern: Option<&str>) -> Result<Selection, EngineError> {
        graph::select(&self.synth.manifest.stacks, pattern)
    }

    /// Outputs of deployed stacks, for the ids given; the ones not deployed (or not usable) are returned apart.
    pub async fn current_outputs(
        &self,
        ids: impl IntoIterator<Item = &str>,
    ) -> Result<(OutputsById, Vec<String>), EngineError> {
        let mut outputs = OutputsById::new();
        let mut missing = Vec::new();
        for id in ids {
            let entry = self.entry(id);
            match self
                .api(&entry.region)?
                .describe_stack(&entry.name)
                .await
                .map_err(api_error)?
            {
                Some(s) if is_deployed(&s.status) => {
                    outputs.insert(id.to_string(), s.outputs);
                }
                Some(s) => missing.push(format!(
                    "{id} ({} in {}: {})",
                    entry.name, entry.region, s.status
                )),
                None => missing.push(format!(
                    "{id} ({} in {}: not deployed)",
                    entry.name, entry.region
                )),
            }
        }
        Ok((outputs, missing))
    }

    /// Which stacks named by the `StackDeployed` parameters of `ids` are deployed now. One whose region
    /// cannot be reached counts as deployed when a consumer was last deployed with `true` for it (its
    /// recorded parameter): deploying the standby alone with the primary region lost keeps what it had.
    async fn deployed_references(&self, ids: &[String]) -> Result<BTreeSet<String>, EngineError> {
        let mut deployed = BTreeSet::new();
        for id in ids {
            let consumer = self.entry(id);
            for p in &consumer.parameters {
                let ParameterSource::StackDeployed { stack } = &p.source else {
                    continue;
                };
                if deployed.contains(stack) {
                    continue;
                }
                let referenced = self.entry(stack);
                let answer = self
                    .api(&referenced.region)?
                    .describe_stack(&referenced.name)
                    .await;
                let is = match answer {
                    Ok(snapshot) => snapshot.is_some_and(|s| is_deployed(&s.status)),
                    Err(e) if e.unavailable => self
                        .api(&consumer.region)?
                        .describe_stack(&consumer.name)
                        .await
                        .map_err(api_error)?
                        .is_some_and(|s| {
                            s.parameters.get(&p.name).map(String::as_str) == Some("true")
                        }),
                    Err(e) => return Err(api_error(e)),
                };
                if is {
                    deployed.insert(stack.clone());
                }
            }
        }
        Ok(deployed)
    }

    /// The outputs of the stacks outside `selection` that selected ones depend on. A dependency whose
    /// region cannot be reached (the primary region lost, and the standby is being deployed alone) is read
    /// from what its consumers recorded: the parameter values each selected stack was last deployed with,
    /// as CloudFormation keeps them in the consumer's own region. A consumer never deployed has no record:
    /// that is reported as missing.
    async fn outputs_for_deploy(
        &self,
        selection: &Selection,
        observer: &dyn Observer,
    ) -> Result<(OutputsById, Vec<String>), EngineError> {
        let mut reachable = Vec::new();
        let mut unreachable = Vec::new();
        for id in &selection.external_dependencies {
            let entry = self.entry(id);
            match self.api(&entry.region)?.describe_stack(&entry.name).await {
                Err(e) if e.unavailable => unreachable.push((id.clone(), e)),
                _ => reachable.push(id.as_str()),
            }
        }
        let (mut outputs, mut missing) = self.current_outputs(reachable).await?;
        for (producer, error) in unreachable {
            let producer_entry = self.entry(&producer);
            let mut recorded: BTreeMap<String, String> = BTreeMap::new();
            for consumer in &selection.ordered {
                let entry = self.entry(consumer);
                let fed: Vec<(&str, &str)> = entry
                    .parameters
                    .iter()
                    .filter_map(|p| match &p.source {
                        ParameterSource::StackOutput { stack, output } if *stack == producer => {
                            Some((p.name.as_str(), output.as_str()))
                        }
                        _ => None,
                    })
                    .collect();
                if fed.is_empty() {
                    continue;
                }
                let deployed = self
                    .api(&entry.region)?
                    .describe_stack(&entry.name)
                    .await
                    .map_err(api_error)?
                    .filter(|s| is_deployed(&s.status));
                let Some(deployed) = deployed else {
                    missing.push(format!(
                        "{producer} ({} in {}: unreachable, {error}; {consumer} was never deployed, so it recorded none of its outputs)",
                        producer_entry.name, producer_entry.region
                    ));
                    continue;
                };
                for (parameter, output) in fed {
                    match deployed.parameters.get(parameter) {
                        Some(value) => {
                            if let Some(other) = recorded.get(output)
                                && other != value
                            {
                                return Err(EngineError::Input(format!(
                                    "{producer} cannot be reached and the stacks that use its output {output} recorded different values ({other}, {value}); deploy them when {} is reachable",
                                    producer_entry.region
                                )));
                            }
                            recorded.insert(output.to_owned(), value.clone());
                        }
                        None => missing.push(format!(
                            "{producer} ({} in {}: unreachable; {consumer} has no recorded value for {parameter})",
                            producer_entry.name, producer_entry.region
                        )),
                    }
                }
            }
            observer.event(Progress::Warning {
                message: format!(
                    "{producer} in {} cannot be reached ({error}): its outputs are the values the stacks deployed here recorded at their last deploy",
                    producer_entry.region
                ),
            });
            outputs.insert(producer, recorded);
        }
        Ok((outputs, missing))
    }

    /// Deploys the selected stacks. Stacks outside the selection that selected ones depend on must be deployed.
    pub async fn deploy(
        &self,
        selection: &Selection,
        artifacts: &ArtifactLocations,
        template_urls: &BTreeMap<String, String>,
        observer: &dyn Observer,
    ) -> Result<RunReport, EngineError> {
        let (mut outputs, missing) = self.outputs_for_deploy(selection, observer).await?;
        if !missing.is_empty() {
            return Err(EngineError::Unavailable(format!(
                "the selected stacks depend on stacks that are not deployed; deploy them first or widen --stacks: {}",
                missing.join(", ")
            )));
        }
        let mut deployed = self.deployed_references(&selection.ordered).await?;
        // Stacks applied while a stack their parameters ask about was not deployed yet: applied again at the
        // end if it got deployed meanwhile.
        let mut applied_before_reference: Vec<String> = Vec::new();
        let mut results: BTreeMap<String, StackResult> = BTreeMap::new();
        let mut pending: Vec<String> = selection.ordered.clone();
        let mut running: FuturesUnordered<BoxFuture<'_, Applied>> = FuturesUnordered::new();
        let concurrency = self.options.concurrency.max(1);

        loop {
            // Start every stack whose dependencies are settled, up to the concurrency limit; a stack whose
            // dependency did not succeed is skipped (and so, in turn, are its own dependents).
            let mut i = 0;
            while i < pending.len() {
                let entry = self.entry(&pending[i]);
                let blocked_by = entry.depends_on.iter().find(|d| {
                    results
                        .get(d.as_str())
                        .is_some_and(|r| !r.outcome.is_success())
                });
                if let Some(dep) = blocked_by {
                    let outcome = Outcome::Skipped {
                        because: format!("{dep} did not deploy"),
                    };
                    self.finish(observer, &mut results, entry, outcome, Duration::ZERO);
                    pending.remove(i);
                    continue;
                }
                let ready = entry.depends_on.iter().all(|d| {
                    outputs.contains_key(d)
                        && (results.contains_key(d) || selection.external_dependencies.contains(d))
                });
                if ready && running.len() < concurrency {
                    let id = pending.remove(i);
                    let params = resolve_parameters(entry, &outputs, artifacts, &deployed);
                    if !references_deployed(entry, &deployed) {
                        applied_before_reference.push(id.clone());
                    }
                    let template = self.template_source(&id, template_urls);
                    running.push(Box::pin(async move {
                        let started = Instant::now();
                        let (outcome, outs) = match params {
                            Ok(params) => self.apply_stack(entry, params, template, observer).await,
                            Err(reason) => (Outcome::Failed { reason }, BTreeMap::new()),
                        };
                        (id, outcome, outs, started.elapsed())
                    }));
                    continue;
                }
                i += 1;
            }
            let Some((id, outcome, outs, elapsed)) = running.next().await else {
                break;
            };
            if outcome.is_success() {
                outputs.insert(id.clone(), outs);
                deployed.insert(id.clone());
            }
            self.finish(observer, &mut results, self.entry(&id), outcome, elapsed);
        }
        // The second pass: a stack whose parameters said "not deployed" about a stack that is deployed now.
        for id in applied_before_reference {
            let entry = self.entry(&id);
            let first_succeeded = results.get(&id).is_some_and(|r| r.outcome.is_success());
            if !first_succeeded || !references_deployed(entry, &deployed) {
                continue;
            }
            let params = match resolve_parameters(entry, &outputs, artifacts, &deployed) {
                Ok(params) => params,
                Err(reason) => {
                    self.finish(
                        observer,
                        &mut results,
                        entry,
                        Outcome::Failed { reason },
                        Duration::ZERO,
                    );
                    continue;
                }
            };
            let template = self.template_source(&id, template_urls);
            let started = Instant::now();
            let (second, outs) = self.apply_stack(entry, params, template, observer).await;
            let first = results[&id].outcome.clone();
            let outcome = match second {
                Outcome::Failed { reason } => Outcome::Failed {
                    reason: format!(
                        "applied once; the second pass, once {} was deployed, failed: {reason}",
                        referenced_stacks(entry).join(", ")
                    ),
                },
                second => {
                    outputs.insert(id.clone(), outs);
                    // A stack created in this run stays "created"; one that was unchanged at first and
                    // changed now reports the change.
                    if first == Outcome::Unchanged {
                        second
                    } else {
                        first
                    }
                }
            };
            let elapsed = started.elapsed() + Duration::from_millis(results[&id].elapsed_ms);
            self.finish(observer, &mut results, entry, outcome, elapsed);
        }
        // Anything left could not start (a dependency never finished): say so rather than drop it.
        for id in pending {
            let entry = self.entry(&id);
            self.finish(
                observer,
                &mut results,
                entry,
                Outcome::Skipped {
                    because: "dependencies not met".into(),
                },
                Duration::ZERO,
            );
        }
        let stacks = selection
            .ordered
            .iter()
            .filter_map(|id| results.remove(id))
            .collect();
        Ok(RunReport { stacks })
    }

    /// The uploaded template of a stack when there is one, else its body.
    fn template_source(
        &self,
        id: &str,
        template_urls: &BTreeMap<String, String>,
    ) -> TemplateSource {
        match template_urls.get(id) {
            Some(url) => TemplateSource::Url(url.clone()),
            None => TemplateSource::Body(self.synth.template(id).to_string()),
        }
    }

    fn finish(
        &self,
        observer: &dyn Observer,
        results: &mut BTreeMap<String, StackResult>,
        entry: &StackEntry,
        outcome: Outcome,
        elapsed: Duration,
    ) {
        observer.event(Progress::Finished {
            stack: entry.id.clone(),
            outcome: outcome.clone(),
            elapsed_ms: millis(elapsed),
        });
        results.insert(
            entry.id.clone(),
            StackResult {
                id: entry.id.clone(),
                name: entry.name.clone(),
                region: entry.region.clone(),
                outcome,
                elapsed_ms: millis(elapsed),
            },
        );
    }

    /// Applies one stack through a change set. Returns the outcome and, on success, the stack's outputs.
    async fn apply_stack(
        &self,
        entry: &StackEntry,
        params: Vec<(String, String)>,
        template: TemplateSource,
        observer: &dyn Observer,
    ) -> (Outcome, BTreeMap<String, String>) {
        match self
            .try_apply_stack(entry, params, template, observer)
            .await
        {
            Ok(r) => r,
            Err(e) => (Outcome::Failed { reason: e }, BTreeMap::new()),
        }
    }

    async fn try_apply_stack(
        &self,
        entry: &StackEntry,
        params: Vec<(String, String)>,
        template: TemplateSource,
        observer: &dyn Observer,
    ) -> Result<(Outcome, BTreeMap<String, String>), String> {
        let api = self.api(&entry.region).map_err(|e| e.to_string())?;
        let id = entry.id.clone();
        observer.event(Progress::Phase {
            stack: id.clone(),
            phase: Phase::Planning,
        });

        let mut existing = api
            .describe_stack(&entry.name)
            .await
            .map_err(|e| e.to_string())?;
        // Another operation is running (someone else's deploy, a rollback, a cleanup): wait for its end state,
        // then decide from that.
        if let Some(s) = &existing
            && !is_settled(&s.status)
            && s.status != "REVIEW_IN_PROGRESS"
        {
            observer.event(Progress::Phase {
                stack: id.clone(),
                phase: Phase::WaitingForOperation,
            });
            existing = self.settle(api, entry, None, observer).await?.0;
        }
        let kind = match existing.as_ref().map(|s| s.status.as_str()) {
            None | Some("REVIEW_IN_PROGRESS") => ChangeSetKind::Create,
            Some("ROLLBACK_COMPLETE") => {
                // A failed first create rolled back: the stack holds nothing and can only be deleted
                // (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/troubleshooting.html#troubleshooting-errors-rollback-complete).
                // Its resources were deleted or, per their DeletionPolicy, retained; RetainExceptOnCreate on the
                // stateful ones makes CloudFormation delete them too, so the create below finds no leftovers.
                observer.event(Progress::Phase {
                    stack: id.clone(),
                    phase: Phase::RemovingFailedStack,
                });
                api.delete_stack(&entry.name)
                    .await
                    .map_err(|e| e.to_string())?;
                self.wait_stack(api, entry, None, Wait::Deleted, observer)
                    .await?;
                ChangeSetKind::Create
            }
            Some(status @ ("ROLLBACK_FAILED" | "DELETE_FAILED")) => {
                // ROLLBACK_FAILED: a first create failed and CloudFormation could not delete everything it had
                // created; the only operation left is DeleteStack. Everything in the stack was created by that
                // failed attempt, so the buckets hold only what was written during it (a load balancer's test
                // log object): emptying them is safe. DELETE_FAILED: an earlier deletion stopped; its buckets
                // may hold real data, so only log buckets are emptied. What still cannot be deleted is retained
                // (DeleteStack RetainResources, allowed for DELETE_FAILED stacks:
                // https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeleteStack.html) and
                // listed, and the stack is created again.
                observer.event(Progress::Phase {
                    stack: id.clone(),
                    phase: Phase::RemovingFailedStack,
                });
                let empty_all = status == "ROLLBACK_FAILED";
                self.remove_stack(api, entry, &[], empty_all, false, observer)
                    .await?;
                ChangeSetKind::Create
            }
            Some("UPDATE_ROLLBACK_FAILED") => {
                self.continue_rollback(api, entry, observer).await?;
                ChangeSetKind::Update
            }
            Some(s) if is_deployed(s) => ChangeSetKind::Update,
            Some(s) => {
                let snapshot = existing.as_ref();
                return Err(format!(
                    "{} is in {s} ({}); {}",
                    entry.name,
                    snapshot
                        .and_then(|x| x.status_reason.as_deref())
                        .unwrap_or("no reason given"),
                    next_step(s)
                        .unwrap_or("lifeboat does not handle this status; see docs/deploy.md")
                ));
            }
        };

        let request = ChangeSetRequest {
            stack_name: entry.name.clone(),
            change_set_name: format!("lifeboat-{}", uuid::Uuid::new_v4().simple()),
            kind,
            template,
            parameters: params,
            tags: vec![],
        };
        let request = &request;
        let mut cs = self.prepare_change_set(api, request).await?;
        // A change set that CloudFormation computed but that lists no resource change still changes
        // something: real CloudFormation marks a change set with nothing at all to do FAILED ("didn't contain
        // changes"), so an empty CREATE_COMPLETE one changes outputs (or parameters, tags, metadata). New
        // outputs are published only when it is executed; deleting it would leave dependents reading "has no
        // output". Emulators answer empty change sets for unchanged stacks too, so compare with the deployed
        // template and parameters before executing.
        if let Prepared::Ready(cs_id, changes) = &cs
            && changes.is_empty()
            && kind == ChangeSetKind::Update
            && !self.differs_from_deployed(api, entry, request).await?
        {
            cs = Prepared::NoChanges(cs_id.clone());
        }
        let (cs_id, changes) = match cs {
            Prepared::NoChanges(cs_id) => {
                if !cs_id.is_empty() {
                    let _ = api.delete_change_set(&cs_id).await;
                }
                let snapshot = api
                    .describe_stack(&entry.name)
                    .await
                    .map_err(|e| e.to_string())?;
                self.protect(api, entry, snapshot.as_ref(), observer)
                    .await?;
                return Ok((
                    Outcome::Unchanged,
                    snapshot.map(|s| s.outputs).unwrap_or_default(),
                ));
            }
            Prepared::Failed(cs_id, reason) => {
                let _ = api.delete_change_set(&cs_id).await;
                return Err(format!("change set failed: {reason}"));
            }
            Prepared::Ready(cs_id, changes) => (cs_id, changes),
        };

        let risks = changes::stateful_risks(&changes, &entry.stateful_resources);
        if !risks.is_empty() && !observer.approve_data_risk(&id, &risks) {
            let _ = api.delete_change_set(&cs_id).await;
            if kind == ChangeSetKind::Create {
                let _ = api.delete_stack(&entry.name).await;
            }
            return Ok((
                Outcome::Refused {
                    risks: risks.iter().map(ToString::to_string).collect(),
                },
                BTreeMap::new(),
            ));
        }

        let marker = api
            .stack_events(&entry.name, None)
            .await
            .ok()
            .and_then(|events| events.first().map(|e| e.event_id.clone()));
        let phase = if kind == ChangeSetKind::Create {
            Phase::Creating
        } else {
            Phase::Updating
        };
        observer.event(Progress::Phase {
            stack: id.clone(),
            phase,
        });
        api.execute_change_set(&cs_id)
            .await
            .map_err(|e| format!("executing the change set: {}", e.message))?;
        let mut snapshot = self
            .wait_stack(api, entry, marker, Wait::Applied, observer)
            .await?;
        if self.options.recompute_outputs {
            api.reapply_stack(&entry.name, &request.template, &request.parameters)
                .await
                .map_err(|e| format!("recomputing outputs: {e}"))?;
            snapshot = self
                .wait_stack(api, entry, None, Wait::Applied, observer)
                .await?;
        }
        self.protect(api, entry, snapshot.as_ref(), observer)
            .await?;
        let counts = changes::count(&changes);
        let outcome = match kind {
            ChangeSetKind::Create => Outcome::Created { changes: counts },
            ChangeSetKind::Update => Outcome::Updated { changes: counts },
        };
        Ok((outcome, snapshot.map(|s| s.outputs).unwrap_or_default()))
    }

    /// Creates a change set and waits until CloudFormation has computed it.
    async fn prepare_change_set(
        &self,
        api: &A,
        request: &ChangeSetRequest,
    ) -> Result<Prepared, String> {
        let cs_id = match api.create_change_set(request).await {
            Ok(id) => id,
            // Some endpoints refuse an unchanged update when the change set is created (moto does). There is
            // no change set to delete then: an empty id says so.
            Err(e) if changes::is_no_change_reason(&e.message) => {
                return Ok(Prepared::NoChanges(String::new()));
            }
            Err(e) => return Err(e.to_string()),
        };
        let started = Instant::now();
        let mut interval = self.options.poll_initial;
        loop {
            let state = api
                .describe_change_set(&cs_id)
                .await
                .map_err(|e| e.to_string())?;
            match state.status.as_str() {
                // Possibly without resource changes: the caller decides (see `differs_from_deployed`).
                "CREATE_COMPLETE" => return Ok(Prepared::Ready(cs_id, state.changes)),
                "FAILED" => {
                    let reason = state
                        .status_reason
                        .unwrap_or_else(|| "no reason given".into());
                    if changes::is_no_change_reason(&reason) {
                        return Ok(Prepared::NoChanges(cs_id));
                    }
                    return Ok(Prepared::Failed(cs_id, reason));
                }
                _ => {}
            }
            if started.elapsed() > self.options.timeout {
                let _ = api.delete_change_set(&cs_id).await;
                return Err(format!(
                    "change set not ready after {} s (status {})",
                    self.options.timeout.as_secs(),
                    state.status
                ));
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(self.options.poll_max);
        }
    }

    /// Waits until the stack's current operation settles, reporting resource progress and failing resources;
    /// an end state other than the one wanted is an error naming the first failing resource.
    async fn wait_stack(
        &self,
        api: &A,
        entry: &StackEntry,
        marker: Option<String>,
        want: Wait,
        observer: &dyn Observer,
    ) -> Result<Option<StackSnapshot>, String> {
        let (snapshot, failures) = self
            .settle_reporting(api, entry, marker, want == Wait::Applied, observer)
            .await?;
        let status = snapshot.as_ref().map(|s| s.status.clone());
        match (want, status.as_deref()) {
            (Wait::Deleted, None | Some("DELETE_COMPLETE")) => Ok(None),
            (Wait::Applied, None) => {
                Err(format!("{} disappeared while being deployed", entry.name))
            }
            (Wait::Applied, Some(s)) if is_healthy(s) => Ok(snapshot),
            (_, Some(s)) => {
                let newest_first: Vec<StackEvent> = failures.iter().rev().cloned().collect();
                let mut reason = match first_failure(&newest_first, &entry.name) {
                    Some(e) => describe_failure(e),
                    None => format!(
                        "stack ended in {s}: {}",
                        snapshot
                            .as_ref()
                            .and_then(|x| x.status_reason.clone())
                            .unwrap_or_else(|| "no reason given".into())
                    ),
                };
                if let Some(step) = next_step(s) {
                    reason.push_str(&format!(" [{} is now {s}: {step}]", entry.name));
                }
                Err(reason)
            }
        }
    }

    /// Waits until the stack's current operation settles; returns the end state (`None`: the stack is gone)
    /// and the failing events seen on the way.
    async fn settle(
        &self,
        api: &A,
        entry: &StackEntry,
        marker: Option<String>,
        observer: &dyn Observer,
    ) -> Result<(Option<StackSnapshot>, Vec<StackEvent>), String> {
        self.settle_reporting(api, entry, marker, false, observer)
            .await
    }

    async fn settle_reporting(
        &self,
        api: &A,
        entry: &StackEntry,
        marker: Option<String>,
        report_resources: bool,
        observer: &dyn Observer,
    ) -> Result<(Option<StackSnapshot>, Vec<StackEvent>), String> {
        let started = Instant::now();
        let mut interval = self.options.poll_initial;
        let mut reported: BTreeSet<String> = BTreeSet::new();
        let mut failures: Vec<StackEvent> = Vec::new();
        let mut last_done = usize::MAX;
        loop {
            let snapshot = api
                .describe_stack(&entry.name)
                .await
                .map_err(|e| e.to_string())?;
            // Events are best effort: some endpoints only record stack-level events.
            if let Ok(events) = api.stack_events(&entry.name, marker.as_deref()).await {
                for e in events
                    .iter()
                    .rev()
                    .filter(|e| e.status.ends_with("_FAILED"))
                {
                    if reported.insert(e.event_id.clone()) {
                        failures.push(e.clone());
                        if e.logical_id != entry.name {
                            observer.event(Progress::ResourceFailed {
                                stack: entry.id.clone(),
                                logical_id: e.logical_id.clone(),
                                resource_type: e.resource_type.clone(),
                                reason: e.reason.clone().unwrap_or_default(),
                            });
                        }
                    }
                }
            }
            let status = snapshot.as_ref().map(|s| s.status.clone());
            match status.as_deref() {
                None => return Ok((None, failures)),
                Some(s) if is_settled(s) => return Ok((snapshot, failures)),
                _ => {}
            }
            if report_resources && let Ok(resources) = api.stack_resources(&entry.name).await {
                let done = resources
                    .iter()
                    .filter(|r| r.status.ends_with("_COMPLETE"))
                    .count();
                if done != last_done {
                    last_done = done;
                    observer.event(Progress::Resources {
                        stack: entry.id.clone(),
                        done,
                        total: entry.resource_count,
                    });
                }
            }
            if started.elapsed() > self.options.timeout {
                return Err(format!(
                    "timed out after {} s waiting for {} (status {})",
                    self.options.timeout.as_secs(),
                    entry.name,
                    status.unwrap_or_default()
                ));
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(self.options.poll_max);
        }
    }

    /// Deletes a stack whatever its state, and returns what CloudFormation had to leave in the account.
    ///
    /// `buckets` are emptied first (destroy `--force`). A deletion that ends in DELETE_FAILED is looked at:
    /// buckets among the resources that failed to delete are emptied (log buckets always, every bucket if
    /// `empty_all_failed`) and the deletion retried once, since a bucket that is not empty cannot be deleted
    /// and a load balancer may deliver its last logs after the first emptying. Whatever still fails is
    /// retained with DeleteStack RetainResources, which CloudFormation accepts for stacks in DELETE_FAILED
    /// (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeleteStack.html): the stack
    /// goes, those resources stay, and each is reported (type, logical id, physical id, region, reason).
    async fn remove_stack(
        &self,
        api: &A,
        entry: &StackEntry,
        buckets: &[String],
        empty_all_failed: bool,
        lift_protection: bool,
        observer: &dyn Observer,
    ) -> Result<Vec<String>, String> {
        if !buckets.is_empty() {
            observer.event(Progress::Phase {
                stack: entry.id.clone(),
                phase: Phase::EmptyingBuckets,
            });
            for b in buckets {
                api.empty_bucket(b).await.map_err(|e| e.to_string())?;
            }
        }
        let Some(current) = api
            .describe_stack(&entry.name)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(vec![]);
        };
        if current.termination_protection {
            if !lift_protection {
                return Err(format!(
                    "{} has termination protection; `lifeboat destroy --force` turns it off and deletes the stack",
                    entry.name
                ));
            }
            api.set_termination_protection(&entry.name, false)
                .await
                .map_err(|e| format!("turning off termination protection: {e}"))?;
        }
        let mut status = current.status;
        let mut emptied_after_failure = false;
        loop {
            if status != "DELETE_FAILED" {
                let marker = latest_event(api, &entry.name).await;
                observer.event(Progress::Phase {
                    stack: entry.id.clone(),
                    phase: Phase::Deleting,
                });
                api.delete_stack(&entry.name)
                    .await
                    .map_err(|e| e.to_string())?;
                let (end, failures) = self.settle(api, entry, marker, observer).await?;
                let Some(end) = end.filter(|s| s.status != "DELETE_COMPLETE") else {
                    return Ok(vec![]);
                };
                if end.status != "DELETE_FAILED" {
                    let newest_first: Vec<StackEvent> = failures.iter().rev().cloned().collect();
                    return Err(match first_failure(&newest_first, &entry.name) {
                        Some(e) => describe_failure(e),
                        None => format!("deleting {} ended in {}", entry.name, end.status),
                    });
                }
            }
            let failed = failed_deletions(api, &entry.name).await?;
            let to_empty: Vec<String> = failed
                .iter()
                .filter(|r| {
                    r.resource_type == "AWS::S3::Bucket"
                        && (empty_all_failed || is_log_bucket(&r.logical_id))
                })
                .filter_map(|r| r.physical_id.clone().filter(|p| !p.is_empty()))
                .collect();
            if emptied_after_failure || to_empty.is_empty() {
                break;
            }
            emptied_after_failure = true;
            observer.event(Progress::Phase {
                stack: entry.id.clone(),
                phase: Phase::EmptyingBuckets,
            });
            for b in &to_empty {
                api.empty_bucket(b).await.map_err(|e| e.to_string())?;
            }
            status = String::new();
        }
        let failed = failed_deletions(api, &entry.name).await?;
        let retain: Vec<String> = failed.iter().map(|r| r.logical_id.clone()).collect();
        let left: Vec<String> = failed
            .iter()
            .map(|r| {
                format!(
                    "{} {} ({}) in {}: {}",
                    r.resource_type,
                    r.logical_id,
                    r.physical_id.as_deref().unwrap_or("-"),
                    entry.region,
                    r.status_reason.as_deref().unwrap_or("could not be deleted")
                )
            })
            .collect();
        observer.event(Progress::Phase {
            stack: entry.id.clone(),
            phase: Phase::RetainingResources,
        });
        let marker = latest_event(api, &entry.name).await;
        api.delete_stack_retaining(&entry.name, &retain)
            .await
            .map_err(|e| e.to_string())?;
        let (end, _) = self.settle(api, entry, marker, observer).await?;
        if let Some(end) = end.filter(|s| s.status != "DELETE_COMPLETE") {
            return Err(format!(
                "{} is still {} after retaining {}",
                entry.name,
                end.status,
                retain.join(", ")
            ));
        }
        for what in &left {
            observer.event(Progress::Warning {
                message: format!(
                    "{} ({}) was deleted but CloudFormation left this in the account; delete it yourself once it is \
                     no longer needed: {what}",
                    entry.id, entry.name
                ),
            });
        }
        Ok(left)
    }

    /// Brings a stack in UPDATE_ROLLBACK_FAILED back to UPDATE_ROLLBACK_COMPLETE (its last good template) with
    /// ContinueUpdateRollback, skipping only the resources the user named for this stack
    /// (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ContinueUpdateRollback.html: only
    /// resources in UPDATE_FAILED because their rollback failed may be skipped, and skipped ones are then out of
    /// step with the template).
    async fn continue_rollback(
        &self,
        api: &A,
        entry: &StackEntry,
        observer: &dyn Observer,
    ) -> Result<(), String> {
        let skip = self
            .options
            .rollback_skip
            .get(&entry.id)
            .cloned()
            .unwrap_or_default();
        observer.event(Progress::Phase {
            stack: entry.id.clone(),
            phase: Phase::ContinuingRollback,
        });
        let marker = latest_event(api, &entry.name).await;
        api.continue_update_rollback(&entry.name, &skip)
            .await
            .map_err(|e| e.to_string())?;
        let (end, failures) = self.settle(api, entry, marker, observer).await?;
        let status = end.map(|s| s.status).unwrap_or_default();
        if status == "UPDATE_ROLLBACK_COMPLETE" {
            return Ok(());
        }
        let stuck: Vec<String> = api
            .stack_resources(&entry.name)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|r| r.status == "UPDATE_FAILED")
            .map(|r| format!("{}:{}", entry.id, r.logical_id))
            .collect();
        let newest_first: Vec<StackEvent> = failures.iter().rev().cloned().collect();
        let cause = first_failure(&newest_first, &entry.name)
            .map(describe_failure)
            .unwrap_or_else(|| "no reason given".into());
        Err(format!(
            "{} was in UPDATE_ROLLBACK_FAILED and continuing the rollback ended in {status}: {cause}. Fix the \
             resource, or, if it cannot roll back, deploy again with --skip-rollback-resources {}",
            entry.name,
            if stuck.is_empty() {
                format!("{}:<LogicalId>", entry.id)
            } else {
                stuck.join(",")
            }
        ))
    }

    /// Whether the request would change the deployed stack: its parameter values or its template.
    async fn differs_from_deployed(
        &self,
        api: &A,
        entry: &StackEntry,
        request: &ChangeSetRequest,
    ) -> Result<bool, String> {
        let Some(current) = api
            .describe_stack(&entry.name)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(true);
        };
        // DescribeStacks also lists parameters left at their defaults; only the ones sent can differ.
        if request
            .parameters
            .iter()
            .any(|(k, v)| current.parameters.get(k) != Some(v))
        {
            return Ok(true);
        }
        let deployed = api
            .deployed_template(&entry.name)
            .await
            .map_err(|e| e.to_string())?;
        let ours = self.synth.template(&entry.id);
        let parse = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
        Ok(match (parse(&deployed), parse(ours)) {
            (Some(a), Some(b)) => a != b,
            _ => deployed.trim() != ours.trim(),
        })
    }

    /// Turns termination protection on where [`wants_termination_protection`] says so and it is off.
    async fn protect(
        &self,
        api: &A,
        entry: &StackEntry,
        snapshot: Option<&StackSnapshot>,
        observer: &dyn Observer,
    ) -> Result<(), String> {
        if !self.options.termination_protection
            || !wants_termination_protection(&self.synth.manifest.environment, entry)
            || snapshot.is_none_or(|s| s.termination_protection)
        {
            return Ok(());
        }
        api.set_termination_protection(&entry.name, true)
            .await
            .map_err(|e| format!("turning on termination protection: {e}"))?;
        observer.event(Progress::Phase {
            stack: entry.id.clone(),
            phase: Phase::Protected,
        });
        Ok(())
    }

    /// Previews the selected stacks: a change set each, described, then deleted. Nothing is executed.
    pub async fn diff(
        &self,
        selection: &Selection,
        artifacts: &ArtifactLocations,
    ) -> Result<Vec<StackDiff>, EngineError> {
        let mut deps: BTreeSet<&str> = BTreeSet::new();
        for id in &selection.ordered {
            deps.extend(self.entry(id).depends_on.iter().map(String::as_str));
        }
        let (outputs, _) = self.current_outputs(deps).await?;
        let deployed = self.deployed_references(&selection.ordered).await?;
        let futures = selection.ordered.iter().map(|id| {
            let entry = self.entry(id);
            let outputs = &outputs;
            let deployed = &deployed;
            async move { self.diff_stack(entry, outputs, artifacts, deployed).await }
        });
        let diffs: Vec<Result<StackDiff, EngineError>> = futures::stream::iter(futures)
            .buffered(self.options.concurrency.max(1))
            .collect()
            .await;
        diffs.into_iter().collect()
    }

    async fn diff_stack(
        &self,
        entry: &StackEntry,
        outputs: &OutputsById,
        artifacts: &ArtifactLocations,
        deployed: &BTreeSet<String>,
    ) -> Result<StackDiff, EngineError> {
        let api = self.api(&entry.region)?;
        let existing = api.describe_stack(&entry.name).await.map_err(api_error)?;
        let exists = existing
            .as_ref()
            .is_some_and(|s| s.status != "REVIEW_IN_PROGRESS");
        let make = |result| StackDiff {
            id: entry.id.clone(),
            name: entry.name.clone(),
            region: entry.region.clone(),
            exists,
            result,
        };
        let all_new = || -> Result<Vec<ResourceChange>, EngineError> {
            Ok(self
                .synth
                .template_resources(&entry.id)?
                .into_iter()
                .map(|(logical_id, resource_type)| ResourceChange {
                    logical_id,
                    physical_id: None,
                    resource_type,
                    action: changes::Action::Add,
                    replacement: None,
                })
                .collect())
        };
        let params = match resolve_parameters(entry, outputs, artifacts, deployed) {
            Ok(p) => p,
            Err(reason) => {
                let changes = if exists { vec![] } else { all_new()? };
                return Ok(make(DiffResult::Unknown { reason, changes }));
            }
        };
        if let Some(s) = &existing {
            if !is_settled(&s.status) && s.status != "REVIEW_IN_PROGRESS" {
                return Ok(make(DiffResult::Unknown {
                    reason: format!("stack is busy ({})", s.status),
                    changes: vec![],
                }));
            }
            if matches!(
                s.status.as_str(),
                "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" | "DELETE_FAILED"
            ) {
                return Ok(make(DiffResult::Unknown {
                    reason: format!(
                        "stack is in {}: {}",
                        s.status,
                        next_step(&s.status).unwrap_or_default()
                    ),
                    changes: all_new()?,
                }));
            }
            if s.status != "REVIEW_IN_PROGRESS" && !is_deployed(&s.status) {
                return Ok(make(DiffResult::Unknown {
                    reason: format!(
                        "stack is in {}: {}",
                        s.status,
                        next_step(&s.status).unwrap_or_default()
                    ),
                    changes: vec![],
                }));
            }
        }
        let kind = if exists {
            ChangeSetKind::Update
        } else {
            ChangeSetKind::Create
        };
        let request = ChangeSetRequest {
            stack_name: entry.name.clone(),
            change_set_name: format!("lifeboat-diff-{}", uuid::Uuid::new_v4().simple()),
            kind,
            template: TemplateSource::Body(self.synth.template(&entry.id).to_string()),
            parameters: params,
            tags: vec![],
        };
        let mut prepared = self.prepare_change_set(api, &request).await;
        // As in deploy: an empty change set of an existing stack changes outputs only if the template or the
        // parameters differ from the deployed ones.
        if let Ok(Prepared::Ready(cs_id, changes)) = &prepared
            && changes.is_empty()
            && kind == ChangeSetKind::Update
            && !self
                .differs_from_deployed(api, entry, &request)
                .await
                .unwrap_or(true)
        {
            prepared = Ok(Prepared::NoChanges(cs_id.clone()));
        }
        let cs_id = match &prepared {
            Ok(Prepared::NoChanges(id) | Prepared::Failed(id, _) | Prepared::Ready(id, _)) => {
                Some(id.clone())
            }
            Err(_) => None,
        };
        if let Some(cs_id) = cs_id.filter(|id| !id.is_empty()) {
            let _ = api.delete_change_set(&cs_id).await;
        }
        // A CREATE change set leaves an empty stack in REVIEW_IN_PROGRESS behind; remove it so a preview of a
        // new stack leaves nothing.
        if kind == ChangeSetKind::Create && existing.is_none() {
            let _ = api.delete_stack(&entry.name).await;
        }
        let result = match prepared {
            Ok(Prepared::NoChanges(_)) => DiffResult::NoChanges,
            Ok(Prepared::Ready(_, changes)) => {
                let stateful_risks = changes::stateful_risks(&changes, &entry.stateful_resources);
                DiffResult::Changes {
                    changes,
                    stateful_risks,
                }
            }
            Ok(Prepared::Failed(_, reason)) | Err(reason) => DiffResult::Failed { reason },
        };
        Ok(make(result))
    }

    /// State, last update, drift status and outputs of the selected stacks.
    pub async fn status(&self, ids: &[String]) -> Result<Vec<StackStatus>, EngineError> {
        let mut rows = Vec::new();
        for id in ids {
            let entry = self.entry(id);
            let snapshot = self
                .api(&entry.region)?
                .describe_stack(&entry.name)
                .await
                .map_err(api_error)?;
            let snapshot = snapshot.filter(|s| s.status != "REVIEW_IN_PROGRESS");
            rows.push(StackStatus {
                id: entry.id.clone(),
                name: entry.name.clone(),
                region: entry.region.clone(),
                component: entry.component.clone(),
                status: snapshot
                    .as_ref()
                    .map(|s| s.status.clone())
                    .unwrap_or_else(|| "NOT_DEPLOYED".into()),
                status_reason: snapshot.as_ref().and_then(|s| s.status_reason.clone()),
                last_updated: snapshot.as_ref().and_then(|s| s.last_updated.clone()),
                drift_status: snapshot.as_ref().and_then(|s| s.drift_status.clone()),
                termination_protection: snapshot.as_ref().is_some_and(|s| s.termination_protection),
                next_step: snapshot
                    .as_ref()
                    .and_then(|s| next_step(&s.status))
                    .map(str::to_string),
                outputs: snapshot.map(|s| s.outputs).unwrap_or_default(),
            });
        }
        Ok(rows)
    }

    /// Works out what destroying the selection would delete, and which of it is data. Changes nothing.
    pub async fn plan_destroy(&self, selection: &Selection) -> Result<DestroyPlan, EngineError> {
        let stacks = &self.synth.manifest.stacks;
        let chosen: BTreeSet<&str> = selection.ordered.iter().map(String::as_str).collect();
        let mut existing = BTreeSet::new();
        let mut absent = Vec::new();
        let mut protected = Vec::new();
        for id in &selection.ordered {
            let entry = self.entry(id);
            match self
                .api(&entry.region)?
                .describe_stack(&entry.name)
                .await
                .map_err(api_error)?
            {
                // An unexecuted CREATE change set's empty stack holds nothing: deleting it is just tidying.
                Some(s) => {
                    if s.termination_protection {
                        protected.push(format!("{id} ({})", entry.name));
                    }
                    existing.insert(id.clone());
                }
                None => absent.push(id.clone()),
            }
        }
        // A stack outside the selection that uses a selected one would lose its inputs: refuse.
        let mut blockers = Vec::new();
        for id in &existing {
            for dependent in graph::transitive_dependents(stacks, id) {
                if chosen.contains(dependent.as_str()) {
                    continue;
                }
                let entry = self.entry(&dependent);
                if self
                    .api(&entry.region)?
                    .describe_stack(&entry.name)
                    .await
                    .map_err(api_error)?
                    .is_some()
                {
                    blockers.push(format!("{dependent} (uses {id})"));
                }
            }
        }
        if !blockers.is_empty() {
            blockers.sort();
            blockers.dedup();
            return Err(EngineError::Refused(format!(
                "stacks outside the selection still depend on it; destroy them too or first: {}",
                blockers.join(", ")
            )));
        }
        let mut data = Vec::new();
        let mut buckets_to_empty: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut log_buckets = BTreeSet::new();
        for id in &existing {
            let entry = self.entry(id);
            let api = self.api(&entry.region)?;
            let resources = api.stack_resources(&entry.name).await.map_err(api_error)?;
            for r in resources {
                let finding = |what: &str| DataFinding {
                    stack: id.clone(),
                    logical_id: r.logical_id.clone(),
                    resource_type: r.resource_type.clone(),
                    physical_id: r.physical_id.clone(),
                    what: what.to_string(),
                };
                match r.resource_type.as_str() {
                    "AWS::S3::Bucket" => {
                        let Some(bucket) = r.physical_id.as_deref().filter(|b| !b.is_empty())
                        else {
                            continue;
                        };
                        if api.bucket_has_objects(bucket).await.map_err(api_error)? {
                            if is_log_bucket(&r.logical_id) {
                                log_buckets.insert(bucket.to_string());
                            } else {
                                data.push(finding("is not empty"));
                            }
                            buckets_to_empty
                                .entry(id.clone())
                                .or_default()
                                .push(bucket.to_string());
                        }
                    }
                    "AWS::DynamoDB::Table" | "AWS::DynamoDB::GlobalTable" => {
                        data.push(finding("is a table"))
                    }
                    "AWS::RDS::DBCluster" | "AWS::RDS::DBInstance" | "AWS::RDS::GlobalCluster" => {
                        // Protected unless the template says `false` literally: a condition may turn it on.
                        let protection =
                            self.synth
                                .resource_property(id, &r.logical_id, "DeletionProtection");
                        if !matches!(protection, None | Some(serde_json::Value::Bool(false))) {
                            data.push(finding("has deletion protection"));
                        } else {
                            data.push(finding("is a database"));
                        }
                    }
                    _ => {}
                }
            }
        }
        let order =
            graph::topological_order(stacks, &existing.iter().map(String::as_str).collect());
        Ok(DestroyPlan {
            to_delete: order.into_iter().rev().collect(),
            absent,
            data,
            buckets_to_empty,
            protected,
            log_buckets,
        })
    }

    /// Deletes the planned stacks, dependents first. Refuses data unless `force`.
    pub async fn destroy(
        &self,
        plan: &DestroyPlan,
        force: bool,
        observer: &dyn Observer,
    ) -> Result<RunReport, EngineError> {
        if !plan.data.is_empty() && !force {
            let list: Vec<String> = plan.data.iter().map(ToString::to_string).collect();
            return Err(EngineError::Refused(format!(
                "destroying would delete data; nothing was deleted. Pass --force to delete it:\n  {}",
                list.join("\n  ")
            )));
        }
        if !plan.protected.is_empty() && !force {
            return Err(EngineError::Refused(format!(
                "termination protection is on for {}; nothing was deleted. Pass --force to turn it off and delete them",
                plan.protected.join(", ")
            )));
        }
        let stacks = &self.synth.manifest.stacks;
        let mut results: BTreeMap<String, StackResult> = BTreeMap::new();
        for id in &plan.absent {
            self.finish(
                observer,
                &mut results,
                self.entry(id),
                Outcome::Absent,
                Duration::ZERO,
            );
        }
        let mut pending: Vec<String> = plan.to_delete.clone();
        let in_plan: BTreeSet<&str> = plan.to_delete.iter().map(String::as_str).collect();
        let mut running: FuturesUnordered<BoxFuture<'_, (String, Outcome, Duration)>> =
            FuturesUnordered::new();
        let concurrency = self.options.concurrency.max(1);
        loop {
            let mut i = 0;
            while i < pending.len() {
                let id = pending[i].clone();
                let dependents: Vec<String> = graph::transitive_dependents(stacks, &id)
                    .into_iter()
                    .filter(|d| in_plan.contains(d.as_str()))
                    .collect();
                if let Some(kept) = dependents
                    .iter()
                    .find(|d| results.get(*d).is_some_and(|r| !r.outcome.is_success()))
                {
                    let outcome = Outcome::Skipped {
                        because: format!("{kept} still uses it"),
                    };
                    self.finish(
                        observer,
                        &mut results,
                        self.entry(&id),
                        outcome,
                        Duration::ZERO,
                    );
                    pending.remove(i);
                    continue;
                }
                let ready = dependents.iter().all(|d| results.contains_key(d));
                if ready && running.len() < concurrency {
                    pending.remove(i);
                    let entry = self.entry(&id);
                    // Log buckets are emptied in any case; the others are data, emptied only with --force.
                    let buckets: Vec<String> = plan
                        .buckets_to_empty
                        .get(&id)
                        .into_iter()
                        .flatten()
                        .filter(|b| force || plan.log_buckets.contains(*b))
                        .cloned()
                        .collect();
                    running.push(Box::pin(async move {
                        let started = Instant::now();
                        let outcome = match self.api(&entry.region) {
                            Err(e) => Outcome::Failed {
                                reason: e.to_string(),
                            },
                            Ok(api) => match self
                                .remove_stack(api, entry, &buckets, force, force, observer)
                                .await
                            {
                                Ok(retained) if retained.is_empty() => Outcome::Deleted,
                                Ok(retained) => Outcome::DeletedRetaining { retained },
                                Err(reason) => Outcome::Failed { reason },
                            },
                        };
                        (id, outcome, started.elapsed())
                    }));
                    continue;
                }
                i += 1;
            }
            let Some((id, outcome, elapsed)) = running.next().await else {
                break;
            };
            self.finish(observer, &mut results, self.entry(&id), outcome, elapsed);
        }
        let mut ordered: Vec<StackResult> = plan
            .to_delete
            .iter()
            .filter_map(|id| results.remove(id))
            .collect();
        ordered.extend(results.into_values());
        Ok(RunReport { stacks: ordered })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Applied,
    Deleted,
}

enum Prepared {
    NoChanges(String),
    Ready(String, Vec<ResourceChange>),
    Failed(String, String),
}

/// The newest event of a stack, so a wait only looks at what comes after it.
async fn latest_event<A: RegionApi>(api: &A, name: &str) -> Option<String> {
    api.stack_events(name, None)
        .await
        .ok()
        .and_then(|events| events.first().map(|e| e.event_id.clone()))
}

/// The resources of a stack in DELETE_FAILED that CloudFormation could not delete.
async fn failed_deletions<A: RegionApi>(api: &A, name: &str) -> Result<Vec<StackResource>, String> {
    Ok(api
        .stack_resources(name)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| r.status == "DELETE_FAILED")
        .collect())
}

fn api_error(e: ApiError) -> EngineError {
    if e.unavailable {
        EngineError::Unavailable(e.to_string())
    } else {
        EngineError::Aws(e.to_string())
    }
}

#[cold]
fn unreachable_stack(id: &str) -> &'static StackEntry {
    // Every id the engine handles comes from the validated manifest; reaching this is a bug in the engine.
    panic!("stack id {id} is not in the manifest")
}
