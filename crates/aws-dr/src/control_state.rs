//! The DR control state (active region, fencing epoch, write fence) is live state: runbooks change it, and
//! no stack owns it. CloudFormation re-applies a resource's template values whenever it updates that
//! resource and deletes it with its stack
//! (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-update-behaviors.html),
//! so a parameter owned by a stack would be put back to "primary active, epoch 1" by any later template
//! change. `lifeboat deploy` creates the parameters once instead, with [`seed`], and never overwrites them.

use aws_sdk_ssm::types::ParameterType;
use lifeboat_runbook::BackendError;

use crate::clients::{Clients, RegionClients};
use crate::errors::sdk_error;
use crate::observe::{self, ControlParams};
use crate::topology::Topology;

/// The epoch a pair starts at before any runbook ran (the value the stacks used to create).
pub const INITIAL_EPOCH: u64 = 1;

/// What [`seed`] did in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    pub region: String,
    /// Parameters created, `name=value`; empty when every one existed already.
    pub created: Vec<String>,
    /// The region's API could not be reached: nothing was read or created there (it is seeded at the
    /// next deploy that reaches it).
    pub unreachable: Option<String>,
}

/// The control state as published under the newest epoch in either region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlTruth {
    pub active_region: String,
    pub epoch: u64,
    pub fence_raised: bool,
}

/// The newest control state either region publishes; `None` where neither has any.
///
/// `lifeboat deploy` reads it before updating stacks: an update of a stack that still owns the parameters
/// (templates older than this rule) deletes them, and [`seed`] afterwards puts back what was read here.
pub async fn current(
    clients: &Clients,
    topology: &Topology,
) -> Result<Option<ControlTruth>, BackendError> {
    let (held, items, _) = read_reachable(clients, topology).await?;
    Ok(newest(held.iter().map(|(_, p)| p), &items, None))
}

/// Each region's parameters and control items, skipping a region whose API cannot be reached (a standby
/// deployed while the primary region is lost); fails only when no region answers. Returns the regions
/// skipped, with why.
async fn read_reachable<'c>(
    clients: &'c Clients,
    topology: &Topology,
) -> Result<
    (
        Vec<(&'c RegionClients, ControlParams)>,
        Vec<ControlTruth>,
        Vec<(String, String)>,
    ),
    BackendError,
> {
    let mut held = Vec::new();
    let mut items = Vec::new();
    let mut unreachable = Vec::new();
    let mut first_error = None;
    for region in topology.regions() {
        let c = clients.region(region)?;
        let read_both = async {
            let params = read(c, topology).await?;
            let found = read_items(c, topology).await?;
            Ok::<_, BackendError>((params, found))
        };
        match read_both.await {
            Ok((params, found)) => {
                held.push((c, params));
                items.extend(found);
            }
            Err(e) if e.kind == lifeboat_runbook::BackendErrorKind::Unavailable => {
                unreachable.push((region.to_owned(), e.message.clone()));
                first_error.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    match first_error {
        Some(e) if held.is_empty() => Err(e),
        _ => Ok((held, items, unreachable)),
    }
}

/// The newest of the parameters' states, the control items' and what was remembered; at equal epochs a
/// raised fence wins, as it does for storefronts (`lifeboat_contract::control::newest`).
fn newest<'a>(
    held: impl Iterator<Item = &'a ControlParams>,
    items: &[ControlTruth],
    remembered: Option<&ControlTruth>,
) -> Option<ControlTruth> {
    held.filter_map(|p| {
        Some(ControlTruth {
            active_region: p.active_region.clone()?,
            epoch: p.epoch?,
            fence_raised: p.fence_raised.unwrap_or(false),
        })
    })
    .chain(items.iter().cloned())
    .chain(remembered.cloned())
    .max_by_key(|t| (t.epoch, t.fence_raised))
}

/// The control items in `replica`'s copy of the journal table; none where the table is not deployed yet.
/// A run that could not reach a region's parameters still wrote its items through the other replica, so
/// they may be newer than every parameter.
async fn read_items(
    replica: &RegionClients,
    topology: &Topology,
) -> Result<Vec<ControlTruth>, BackendError> {
    use aws_sdk_dynamodb::types::AttributeValue;
    use lifeboat_contract::control::item;
    let result = replica
        .dynamodb()
        .query()
        .table_name(&topology.journal_table)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", item::PARTITION_KEY)
        .expression_attribute_values(":pk", AttributeValue::S(item::PARTITION.into()))
        .consistent_read(true)
        .send()
        .await;
    let out = match result {
        Ok(out) => out,
        Err(e) if crate::errors::error_code(&e) == Some("ResourceNotFoundException") => {
            return Ok(Vec::new());
        }
        Err(e) => {
            return Err(sdk_error("reading the control items", &replica.region, e));
        }
    };
    Ok(out
        .items()
        .iter()
        .filter_map(|i| {
            let text = |k: &str| i.get(k).and_then(|v| v.as_s().ok()).cloned();
            Some(ControlTruth {
                active_region: text(item::ACTIVE_REGION)?,
                epoch: i.get(item::EPOCH)?.as_n().ok()?.parse().ok()?,
                fence_raised: text(item::FENCE)
                    .as_deref()
                    .and_then(lifeboat_contract::control::fence::parse)
                    .unwrap_or(false),
            })
        })
        .collect())
}

/// Creates the control parameters that are missing in either region, never touching one that exists.
///
/// A missing value is taken from the state published under the newest epoch in either region (its
/// parameters or the control items of either replica) or in `remembered` (a region redeployed after a failover learns who is active now); only where there is no
/// state at all is it the initial one: the configured primary active, [`INITIAL_EPOCH`], fence lowered.
pub async fn seed(
    clients: &Clients,
    topology: &Topology,
    remembered: Option<&ControlTruth>,
) -> Result<Vec<Seeded>, BackendError> {
    let (held, items, unreachable) = read_reachable(clients, topology).await?;
    let truth = newest(held.iter().map(|(_, p)| p), &items, remembered).unwrap_or(ControlTruth {
        active_region: topology.primary_region.clone(),
        epoch: INITIAL_EPOCH,
        fence_raised: false,
    });
    let mut report = Vec::new();
    for (c, params) in &held {
        let mut created = Vec::new();
        let wanted = [
            (
                topology.ssm_active_region(),
                params.active_region.is_none(),
                truth.active_region.clone(),
            ),
            (
                topology.ssm_epoch(),
                params.epoch.is_none(),
                truth.epoch.to_string(),
            ),
            (
                topology.ssm_fence(),
                params.fence_raised.is_none(),
                lifeboat_contract::control::fence::word(truth.fence_raised).to_owned(),
            ),
        ];
        for (name, missing, value) in wanted {
            if missing && create(c, &name, &value).await? {
                created.push(format!("{name}={value}"));
            }
        }
        // The same state as this region's control item, which storefronts read (see
        // `lifeboat_contract::control::item`), in every replica that has the table yet.
        for replica in held.iter().map(|(r, _)| *r) {
            if create_item(replica, topology, &c.region, &truth).await? {
                created.push(format!(
                    "control item of {} in {}",
                    c.region, replica.region
                ));
            }
        }
        report.push(Seeded {
            region: c.region.clone(),
            created,
            unreachable: None,
        });
    }
    for (region, why) in unreachable {
        report.push(Seeded {
            region,
            created: Vec::new(),
            unreachable: Some(why),
        });
    }
    Ok(report)
}

async fn read(c: &RegionClients, topology: &Topology) -> Result<ControlParams, BackendError> {
    observe::control_params(
        c,
        &topology.ssm_active_region(),
        &topology.ssm_epoch(),
        &topology.ssm_fence(),
        &topology.ssm_endpoint(&c.region),
    )
    .await
}

/// Creates `for_region`'s control item in `replica`'s copy of the journal table unless it exists; whether
/// it created it. A table not deployed yet (the DR automation stacks come after the compute stacks) is not
/// an error: `lifeboat deploy` seeds again once the stacks are in place.
async fn create_item(
    replica: &RegionClients,
    topology: &Topology,
    for_region: &str,
    truth: &ControlTruth,
) -> Result<bool, BackendError> {
    use aws_sdk_dynamodb::types::AttributeValue;
    use lifeboat_contract::control::item;
    let result = replica
        .dynamodb()
        .put_item()
        .table_name(&topology.journal_table)
        .item(
            item::PARTITION_KEY,
            AttributeValue::S(item::PARTITION.into()),
        )
        .item(item::SORT_KEY, AttributeValue::S(for_region.into()))
        .item(
            item::ACTIVE_REGION,
            AttributeValue::S(truth.active_region.clone()),
        )
        .item(item::EPOCH, AttributeValue::N(truth.epoch.to_string()))
        .item(
            item::FENCE,
            AttributeValue::S(lifeboat_contract::control::fence::word(truth.fence_raised).into()),
        )
        .item(
            item::UPDATED_AT,
            AttributeValue::S(
                time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            ),
        )
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", item::PARTITION_KEY)
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) => match crate::errors::error_code(&e) {
            Some("ConditionalCheckFailedException" | "ResourceNotFoundException") => Ok(false),
            _ => Err(sdk_error(
                &format!("creating the control item of {for_region}"),
                &replica.region,
                e,
            )),
        },
    }
}

/// Creates `name` unless it exists (a concurrent deploy may have just made it); whether it created it.
async fn create(c: &RegionClients, name: &str, value: &str) -> Result<bool, BackendError> {
    match c
        .ssm()
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::String)
        .overwrite(false)
        .description("lifeboat DR control state: changed by runbooks, never by a stack")
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_already_exists()) =>
        {
            Ok(false)
        }
        Err(e) => Err(sdk_error(
            &format!("creating parameter {name}"),
            &c.region,
            e,
        )),
    }
}
