//! The boundary between the engine's logic and AWS: the few CloudFormation and S3 operations the engine needs,
//! for one region, in our own types. [`crate::sdk`] implements it on aws-sdk-rust; the engine's tests implement
//! it in memory.

use std::collections::BTreeMap;
use std::future::Future;

use crate::changes::ResourceChange;

/// What describe-stacks says about one stack.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StackSnapshot {
    pub stack_id: String,
    pub name: String,
    pub status: String,
    pub status_reason: Option<String>,
    /// RFC 3339, the last update or else the creation time.
    pub last_updated: Option<String>,
    /// `IN_SYNC`, `DRIFTED`, `NOT_CHECKED`, ... when the API reports it.
    pub drift_status: Option<String>,
    pub outputs: BTreeMap<String, String>,
    /// The parameter values the stack was last deployed with.
    pub parameters: BTreeMap<String, String>,
    /// Whether DeleteStack is refused until termination protection is turned off.
    pub termination_protection: bool,
}

// Stack statuses, as CloudFormation documents them
// (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html#cfn-console-view-stack-data-resources-status-codes,
// and the API's StackStatus type, https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Stack.html).
// What deploy, destroy and status do with each is in docs/deploy.md.

/// Whether a stack status is the end state of an operation (nothing is in progress).
pub fn is_settled(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS")
}

/// Whether a settled status means the last operation succeeded.
pub fn is_healthy(status: &str) -> bool {
    matches!(
        status,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE"
    )
}

/// Whether the stack is deployed and usable: its last operation succeeded, or a failed update or import was
/// rolled back to the last good template (UPDATE_ROLLBACK_COMPLETE, IMPORT_ROLLBACK_COMPLETE). RollbackStack's
/// documentation lists exactly these five as a stack's "last known stable state"
/// (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_RollbackStack.html). Its outputs are
/// readable and it can be updated. ROLLBACK_COMPLETE is not among them: a failed *create* rolled back leaves a
/// stack with no resources that can only be deleted.
pub fn is_deployed(status: &str) -> bool {
    is_healthy(status)
        || matches!(
            status,
            "UPDATE_ROLLBACK_COMPLETE" | "IMPORT_ROLLBACK_COMPLETE"
        )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeSetKind {
    Create,
    Update,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    Body(String),
    /// An S3 URL, for templates above the 51,200-byte limit of an inline body.
    Url(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSetRequest {
    pub stack_name: String,
    pub change_set_name: String,
    pub kind: ChangeSetKind,
    pub template: TemplateSource,
    pub parameters: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

/// A change set as describe-change-set returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSetState {
    /// `CREATE_PENDING`, `CREATE_IN_PROGRESS`, `CREATE_COMPLETE`, `FAILED`, ...
    pub status: String,
    pub status_reason: Option<String>,
    pub changes: Vec<ResourceChange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackEvent {
    pub event_id: String,
    /// RFC 3339.
    pub timestamp: String,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackResource {
    /// Empty when the endpoint returned an entry without one (moto does this for resources it skipped).
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub status: String,
    pub status_reason: Option<String>,
}

/// An AWS call that failed, with the service's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct ApiError {
    pub operation: &'static str,
    pub message: String,
    /// The endpoint could not be reached or credentials could not be found: nothing to retry per stack.
    pub unavailable: bool,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The operations of one region. Implementations are cheap to share by reference.
pub trait RegionApi: Sync {
    fn region(&self) -> &str;

    /// `Ok(None)` when no such stack exists (deleted stacks included).
    fn describe_stack(
        &self,
        name: &str,
    ) -> impl Future<Output = ApiResult<Option<StackSnapshot>>> + Send;
    /// Returns the change set id.
    fn create_change_set(
        &self,
        request: &ChangeSetRequest,
    ) -> impl Future<Output = ApiResult<String>> + Send;
    fn describe_change_set(
        &self,
        id: &str,
    ) -> impl Future<Output = ApiResult<ChangeSetState>> + Send;
    fn execute_change_set(&self, id: &str) -> impl Future<Output = ApiResult<()>> + Send;
    fn delete_change_set(&self, id: &str) -> impl Future<Output = ApiResult<()>> + Send;
    fn delete_stack(&self, name: &str) -> impl Future<Output = ApiResult<()>> + Send;
    /// DeleteStack with RetainResources: only for a stack in DELETE_FAILED; the stack goes, the resources named
    /// (logical ids) stay in the account.
    fn delete_stack_retaining(
        &self,
        name: &str,
        retain: &[String],
    ) -> impl Future<Output = ApiResult<()>> + Send;
    /// ContinueUpdateRollback for a stack in UPDATE_ROLLBACK_FAILED, skipping the resources named (logical ids
    /// of resources whose rollback failed).
    fn continue_update_rollback(
        &self,
        name: &str,
        skip: &[String],
    ) -> impl Future<Output = ApiResult<()>> + Send;
    /// UpdateTerminationProtection.
    fn set_termination_protection(
        &self,
        name: &str,
        enabled: bool,
    ) -> impl Future<Output = ApiResult<()>> + Send;
    /// The template the stack was last deployed with (GetTemplate, stage Original).
    fn deployed_template(&self, name: &str) -> impl Future<Output = ApiResult<String>> + Send;
    /// Events newer than `after_event_id` (all when `None`), newest first.
    fn stack_events(
        &self,
        name: &str,
        after_event_id: Option<&str>,
    ) -> impl Future<Output = ApiResult<Vec<StackEvent>>> + Send;
    fn stack_resources(
        &self,
        name: &str,
    ) -> impl Future<Output = ApiResult<Vec<StackResource>>> + Send;
    /// UpdateStack with the template and parameters the stack already has. Only used against emulators
    /// that do not compute outputs for stacks applied through change sets (see
    /// [`crate::engine::EngineOptions::recompute_outputs`]); an answer of "No updates are to be performed"
    /// is success.
    fn reapply_stack(
        &self,
        name: &str,
        template: &TemplateSource,
        parameters: &[(String, String)],
    ) -> impl Future<Output = ApiResult<()>> + Send;

    /// Whether a bucket holds any object version or delete marker (either blocks deleting it).
    fn bucket_has_objects(&self, bucket: &str) -> impl Future<Output = ApiResult<bool>> + Send;
    /// Deletes every object version and delete marker of a bucket.
    fn empty_bucket(&self, bucket: &str) -> impl Future<Output = ApiResult<usize>> + Send;
    /// Uploads unless an object with that key exists already (keys are content hashes). True when uploaded.
    fn put_object_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = ApiResult<bool>> + Send;
    /// The URL CloudFormation reads an uploaded template from.
    fn object_url(&self, bucket: &str, key: &str) -> String;
}
