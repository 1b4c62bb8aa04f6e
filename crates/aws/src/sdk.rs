//! [`RegionApi`] on aws-sdk-rust: one CloudFormation and one S3 client per region, built from the standard
//! credential chain, with an optional endpoint override for a local endpoint.

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_cloudformation as cfn;
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3 as s3;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::api::{
    ApiError, ApiResult, ChangeSetKind, ChangeSetRequest, ChangeSetState, RegionApi, StackEvent,
    StackResource, StackSnapshot, TemplateSource,
};
use crate::changes::{Action, Replacement, ResourceChange};

/// Where and as whom to talk to AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    /// A local endpoint such as moto (`http://127.0.0.1:5000`); `None` for AWS itself.
    pub endpoint_url: Option<String>,
    /// A named profile of the shared config files; `None` for the default chain.
    pub profile: Option<String>,
}

/// CloudFormation and S3 clients for one region.
#[derive(Debug, Clone)]
pub struct SdkRegion {
    region: String,
    endpoint_url: Option<String>,
    cfn: cfn::Client,
    s3: s3::Client,
}

impl SdkRegion {
    pub async fn connect(target: &AwsTarget, region: &str) -> Self {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_string()));
        if let Some(p) = &target.profile {
            loader = loader.profile_name(p);
        }
        if let Some(url) = &target.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        // Local endpoints serve buckets under the path, not as subdomains.
        let s3_config = s3::config::Builder::from(&config)
            .force_path_style(target.endpoint_url.is_some())
            .build();
        Self {
            region: region.to_string(),
            endpoint_url: target.endpoint_url.clone(),
            cfn: cfn::Client::new(&config),
            s3: s3::Client::from_conf(s3_config),
        }
    }

    /// Clients built elsewhere (tests hand in mocked ones).
    pub fn from_clients(
        region: &str,
        endpoint_url: Option<String>,
        cfn: cfn::Client,
        s3: s3::Client,
    ) -> Self {
        Self {
            region: region.to_string(),
            endpoint_url,
            cfn,
            s3,
        }
    }

    pub fn cloudformation(&self) -> &cfn::Client {
        &self.cfn
    }

    pub fn s3(&self) -> &s3::Client {
        &self.s3
    }
}

/// One client set per region, for every region given.
pub async fn connect_regions(target: &AwsTarget, regions: &[&str]) -> BTreeMap<String, SdkRegion> {
    let mut map = BTreeMap::new();
    for r in regions {
        if !map.contains_key(*r) {
            map.insert(r.to_string(), SdkRegion::connect(target, r).await);
        }
    }
    map
}

fn api_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let unavailable = matches!(
        err,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ConstructionFailure(_)
    );
    let message = match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            match (e.code(), e.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (None, Some(msg)) => msg.to_string(),
                _ => DisplayErrorContext(&err).to_string(),
            }
        }
        _ => DisplayErrorContext(&err).to_string(),
    };
    ApiError {
        operation,
        message,
        unavailable,
    }
}

fn rfc3339(t: &aws_smithy_types::DateTime) -> String {
    t.fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| t.secs().to_string())
}

fn snapshot(s: &cfn::types::Stack) -> StackSnapshot {
    StackSnapshot {
        stack_id: s.stack_id().unwrap_or_default().to_string(),
        name: s.stack_name().unwrap_or_default().to_string(),
        status: s
            .stack_status()
            .map(|x| x.as_str().to_string())
            .unwrap_or_default(),
        status_reason: s.stack_status_reason().map(str::to_string),
        last_updated: s.last_updated_time().or(s.creation_time()).map(rfc3339),
        drift_status: s
            .drift_information()
            .and_then(|d| d.stack_drift_status())
            .map(|d| d.as_str().to_string()),
        outputs: s
            .outputs()
            .iter()
            .filter_map(|o| {
                Some((
                    o.output_key()?.to_string(),
                    o.output_value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        parameters: s
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_string(),
                    p.parameter_value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        termination_protection: s.enable_termination_protection().unwrap_or(false),
    }
}

fn resource_change(c: &cfn::types::Change) -> Option<ResourceChange> {
    let rc = c.resource_change()?;
    let action = match rc.action()? {
        cfn::types::ChangeAction::Add => Action::Add,
        cfn::types::ChangeAction::Modify => Action::Modify,
        cfn::types::ChangeAction::Remove => Action::Remove,
        cfn::types::ChangeAction::Import => Action::Import,
        _ => Action::Dynamic,
    };
    let replacement = rc.replacement().map(|r| match r {
        cfn::types::Replacement::True => Replacement::True,
        cfn::types::Replacement::Conditional => Replacement::Conditional,
        _ => Replacement::False,
    });
    Some(ResourceChange {
        logical_id: rc.logical_resource_id().unwrap_or_default().to_string(),
        physical_id: rc
            .physical_resource_id()
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        resource_type: rc.resource_type().unwrap_or_default().to_string(),
        action,
        replacement,
    })
}

impl RegionApi for SdkRegion {
    fn region(&self) -> &str {
        &self.region
    }

    async fn describe_stack(&self, name: &str) -> ApiResult<Option<StackSnapshot>> {
        match self.cfn.describe_stacks().stack_name(name).send().await {
            Ok(out) => Ok(out
                .stacks()
                .first()
                .map(snapshot)
                .filter(|s| s.status != "DELETE_COMPLETE")),
            Err(err) => {
                let e = api_error("DescribeStacks", err);
                // CloudFormation answers a missing stack with a ValidationError, not an empty list.
                if e.message.contains("does not exist") {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn create_change_set(&self, r: &ChangeSetRequest) -> ApiResult<String> {
        let mut req = self
            .cfn
            .create_change_set()
            .stack_name(&r.stack_name)
            .change_set_name(&r.change_set_name)
            .change_set_type(match r.kind {
                ChangeSetKind::Create => cfn::types::ChangeSetType::Create,
                ChangeSetKind::Update => cfn::types::ChangeSetType::Update,
            })
            .capabilities(cfn::types::Capability::CapabilityIam)
            .capabilities(cfn::types::Capability::CapabilityNamedIam)
            .capabilities(cfn::types::Capability::CapabilityAutoExpand)
            .description("lifeboat deploy");
        req = match &r.template {
            TemplateSource::Body(b) => req.template_body(b),
            TemplateSource::Url(u) => req.template_url(u),
        };
        for (k, v) in &r.parameters {
            req = req.parameters(
                cfn::types::Parameter::builder()
                    .parameter_key(k)
                    .parameter_value(v)
                    .build(),
            );
        }
        for (k, v) in &r.tags {
            req = req.tags(cfn::types::Tag::builder().key(k).value(v).build());
        }
        let out = req
            .send()
            .await
            .map_err(|e| api_error("CreateChangeSet", e))?;
        out.id().map(str::to_string).ok_or_else(|| ApiError {
            operation: "CreateChangeSet",
            message: "the response carries no change set id".into(),
            unavailable: false,
        })
    }

    async fn describe_change_set(&self, id: &str) -> ApiResult<ChangeSetState> {
        let mut changes = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .cfn
                .describe_change_set()
                .change_set_name(id)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| api_error("DescribeChangeSet", e))?;
            changes.extend(out.changes().iter().filter_map(resource_change));
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(ChangeSetState {
                    status: out
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    status_reason: out.status_reason().map(str::to_string),
                    changes,
                });
            }
        }
    }

    async fn execute_change_set(&self, id: &str) -> ApiResult<()> {
        self.cfn
            .execute_change_set()
            .change_set_name(id)
            .send()
            .await
            .map_err(|e| api_error("ExecuteChangeSet", e))?;
        Ok(())
    }

    async fn delete_change_set(&self, id: &str) -> ApiResult<()> {
        self.cfn
            .delete_change_set()
            .change_set_name(id)
            .send()
            .await
            .map_err(|e| api_error("DeleteChangeSet", e))?;
        Ok(())
    }

    async fn delete_stack(&self, name: &str) -> ApiResult<()> {
        self.cfn
            .delete_stack()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| api_error("DeleteStack", e))?;
        Ok(())
    }

    async fn stack_events(
        &self,
        name: &str,
        after_event_id: Option<&str>,
    ) -> ApiResult<Vec<StackEvent>> {
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        // Ten pages (1,000 events) reach back far enough for one operation; older history is not needed.
        for _ in 0..10 {
            let out = self
                .cfn
                .describe_stack_events()
                .stack_name(name)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| api_error("DescribeStackEvents", e))?;
            for e in out.stack_events() {
                let id = e.event_id().unwrap_or_default();
                if after_event_id == Some(id) {
                    return Ok(events);
                }
                events.push(StackEvent {
                    event_id: id.to_string(),
                    timestamp: e.timestamp().map(rfc3339).unwrap_or_default(),
                    logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
                    resource_type: e.resource_type().unwrap_or_default().to_string(),
                    status: e
                        .resource_status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    reason: e.resource_status_reason().map(str::to_string),
                });
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(events)
    }

    async fn stack_resources(&self, name: &str) -> ApiResult<Vec<StackResource>> {
        let out = self
            .cfn
            .describe_stack_resources()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| api_error("DescribeStackResources", e))?;
        Ok(out
            .stack_resources()
            .iter()
            .map(|r| StackResource {
                logical_id: r.logical_resource_id().unwrap_or_default().to_string(),
                physical_id: r.physical_resource_id().map(str::to_string),
                resource_type: r.resource_type().unwrap_or_default().to_string(),
                status: r
                    .resource_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                status_reason: r.resource_status_reason().map(str::to_string),
            })
            .collect())
    }

    async fn delete_stack_retaining(&self, name: &str, retain: &[String]) -> ApiResult<()> {
        self.cfn
            .delete_stack()
            .stack_name(name)
            .set_retain_resources(Some(retain.to_vec()))
            .send()
            .await
            .map_err(|e| api_error("DeleteStack", e))?;
        Ok(())
    }

    async fn continue_update_rollback(&self, name: &str, skip: &[String]) -> ApiResult<()> {
        self.cfn
            .continue_update_rollback()
            .stack_name(name)
            .set_resources_to_skip((!skip.is_empty()).then(|| skip.to_vec()))
            .send()
            .await
            .map_err(|e| api_error("ContinueUpdateRollback", e))?;
        Ok(())
    }

    async fn set_termination_protection(&self, name: &str, enabled: bool) -> ApiResult<()> {
        self.cfn
            .update_termination_protection()
            .stack_name(name)
            .enable_termination_protection(enabled)
            .send()
            .await
            .map_err(|e| api_error("UpdateTerminationProtection", e))?;
        Ok(())
    }

    async fn deployed_template(&self, name: &str) -> ApiResult<String> {
        let out = self
            .cfn
            .get_template()
            .stack_name(name)
            .template_stage(cfn::types::TemplateStage::Original)
            .send()
            .await
            .map_err(|e| api_error("GetTemplate", e))?;
        Ok(out.template_body().unwrap_or_default().to_string())
    }

    async fn reapply_stack(
        &self,
        name: &str,
        template: &TemplateSource,
        parameters: &[(String, String)],
    ) -> ApiResult<()> {
        let mut req = self
            .cfn
            .update_stack()
            .stack_name(name)
            .capabilities(cfn::types::Capability::CapabilityIam)
            .capabilities(cfn::types::Capability::CapabilityNamedIam)
            .capabilities(cfn::types::Capability::CapabilityAutoExpand);
        req = match template {
            TemplateSource::Body(b) => req.template_body(b),
            TemplateSource::Url(u) => req.template_url(u),
        };
        for (k, v) in parameters {
            req = req.parameters(
                cfn::types::Parameter::builder()
                    .parameter_key(k)
                    .parameter_value(v)
                    .build(),
            );
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = api_error("UpdateStack", e);
                if crate::changes::is_no_change_reason(&e.message) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn bucket_has_objects(&self, bucket: &str) -> ApiResult<bool> {
        let out = self
            .s3
            .list_object_versions()
            .bucket(bucket)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| api_error("ListObjectVersions", e))?;
        Ok(!out.versions().is_empty() || !out.delete_markers().is_empty())
    }

    async fn empty_bucket(&self, bucket: &str) -> ApiResult<usize> {
        let mut deleted = 0;
        loop {
            let out = self
                .s3
                .list_object_versions()
                .bucket(bucket)
                .send()
                .await
                .map_err(|e| api_error("ListObjectVersions", e))?;
            let mut ids = Vec::new();
            for v in out.versions() {
                ids.push((v.key().unwrap_or_default(), v.version_id()));
            }
            for m in out.delete_markers() {
                ids.push((m.key().unwrap_or_default(), m.version_id()));
            }
            if ids.is_empty() {
                return Ok(deleted);
            }
            let objects = ids
                .iter()
                .filter_map(|(k, v)| {
                    s3::types::ObjectIdentifier::builder()
                        .key(*k)
                        .set_version_id(v.map(str::to_string))
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>();
            let count = objects.len();
            let delete = s3::types::Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| ApiError {
                    operation: "DeleteObjects",
                    message: e.to_string(),
                    unavailable: false,
                })?;
            self.s3
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| api_error("DeleteObjects", e))?;
            deleted += count;
        }
    }

    async fn put_object_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> ApiResult<bool> {
        if self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .is_ok()
        {
            return Ok(false);
        }
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(s3::primitives::ByteStream::from(body))
            .send()
            .await
            .map_err(|e| api_error("PutObject", e))?;
        Ok(true)
    }

    fn object_url(&self, bucket: &str, key: &str) -> String {
        match &self.endpoint_url {
            Some(url) => format!("{}/{bucket}/{key}", url.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{}.amazonaws.com/{key}", self.region),
        }
    }
}
