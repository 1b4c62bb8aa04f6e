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
}

/// Whether a stack status is the end state of an operation (nothing is in progress).
pub fn is_settled(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS")
}

/// Whether a settled status means the last operation succeeded and the stack can be used.
pub fn is_healthy(status: &str) -> bool {
    matches!(
        status,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE"
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
