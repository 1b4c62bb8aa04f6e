//! Route 53: where the failover record pair sends traffic, and moving it.
//!
//! The record pair (PRIMARY in the configured primary region, SECONDARY in the standby) is never edited:
//! traffic moves through health-check state in the Route 53 data plane. To send traffic to the standby,
//! the primary's health check is inverted (a healthy endpoint then reports unhealthy, so Route 53 answers
//! with the SECONDARY record); to send it back, the inversion is removed.

use aws_sdk_route53::types::ResourceRecordSetFailover;
use lifeboat_runbook::BackendError;

use crate::errors::sdk_error;
use crate::topology::Topology;

/// The Route 53 ids the backend acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route53Ids {
    pub hosted_zone_id: String,
    /// Health check of the PRIMARY record (the configured primary region).
    pub primary_health_check: String,
    /// Health check of the SECONDARY record, if it has one.
    pub standby_health_check: Option<String>,
}

/// Looks up (or takes from the topology) the hosted zone and the health checks of the failover records.
pub async fn resolve(
    route53: &aws_sdk_route53::Client,
    topology: &Topology,
) -> Result<Route53Ids, BackendError> {
    let zone_id = match &topology.hosted_zone_id {
        Some(id) => id.clone(),
        None => {
            let out = route53
                .list_hosted_zones_by_name()
                .dns_name(&topology.domain)
                .send()
                .await
                .map_err(|e| {
                    sdk_error(
                        &format!("looking up hosted zone {}", topology.domain),
                        "route53",
                        e,
                    )
                })?;
            let wanted = format!("{}.", topology.domain.trim_end_matches('.'));
            let zone = out
                .hosted_zones()
                .iter()
                .find(|z| z.name() == wanted)
                .ok_or_else(|| {
                    BackendError::rejected(format!(
                        "no Route 53 hosted zone named {wanted} (dns.domain)"
                    ))
                })?;
            zone.id().trim_start_matches("/hostedzone/").to_owned()
        }
    };
    let mut primary = topology
        .health_check_ids
        .get(&topology.primary_region)
        .cloned();
    let mut standby = topology
        .health_check_ids
        .get(&topology.standby_region)
        .cloned();
    if primary.is_none() {
        let record = format!("{}.", topology.record_name.trim_end_matches('.'));
        let out = route53
            .list_resource_record_sets()
            .hosted_zone_id(&zone_id)
            .start_record_name(&record)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("listing the records of {record}"), "route53", e))?;
        for set in out
            .resource_record_sets()
            .iter()
            .filter(|s| s.name() == record)
        {
            match set.failover() {
                Some(ResourceRecordSetFailover::Primary) => {
                    primary = set.health_check_id().map(str::to_owned)
                }
                Some(ResourceRecordSetFailover::Secondary) if standby.is_none() => {
                    standby = set.health_check_id().map(str::to_owned)
                }
                _ => {}
            }
        }
    }
    let primary_health_check = primary.ok_or_else(|| {
        BackendError::rejected(format!(
            "the PRIMARY failover record {} in hosted zone {zone_id} has no health check",
            topology.record_name
        ))
    })?;
    Ok(Route53Ids {
        hosted_zone_id: zone_id,
        primary_health_check,
        standby_health_check: standby,
    })
}

/// A health check's configuration flags and latest observed verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckState {
    pub inverted: bool,
    pub disabled: bool,
    /// Whether the checkers' latest observations say the endpoint answers (`None`: no observation).
    pub endpoint_healthy: Option<bool>,
}

impl HealthCheckState {
    /// Whether Route 53 treats the guarded record as healthy: a disabled check counts as healthy; an
    /// inverted one reports the opposite of what the checkers see.
    pub fn record_healthy(&self) -> bool {
        if self.disabled {
            return true;
        }
        let seen = self.endpoint_healthy.unwrap_or(true);
        seen != self.inverted
    }
}

pub async fn health_check_state(
    route53: &aws_sdk_route53::Client,
    id: &str,
) -> Result<HealthCheckState, BackendError> {
    let out = route53
        .get_health_check()
        .health_check_id(id)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("reading health check {id}"), "route53", e))?;
    let config = out.health_check().and_then(|h| h.health_check_config());
    let inverted = config.and_then(|c| c.inverted()).unwrap_or(false);
    let disabled = config.and_then(|c| c.disabled()).unwrap_or(false);
    let endpoint_healthy = match route53
        .get_health_check_status()
        .health_check_id(id)
        .send()
        .await
    {
        Ok(status) => {
            let observations = status.health_check_observations();
            if observations.is_empty() {
                None
            } else {
                // Route 53 considers an endpoint healthy when more than 18 % of its checkers do.
                let ok = observations
                    .iter()
                    .filter(|o| {
                        o.status_report()
                            .and_then(|r| r.status())
                            .is_some_and(|s| s.starts_with("Success"))
                    })
                    .count();
                Some(ok * 100 > observations.len() * 18)
            }
        }
        Err(_) => None,
    };
    Ok(HealthCheckState {
        inverted,
        disabled,
        endpoint_healthy,
    })
}

/// The region Route 53 answers with for the failover record, from the health-check states.
pub async fn dns_target(
    route53: &aws_sdk_route53::Client,
    ids: &Route53Ids,
    topology: &Topology,
) -> Result<String, BackendError> {
    let primary = health_check_state(route53, &ids.primary_health_check).await?;
    Ok(if primary.record_healthy() {
        topology.primary_region.clone()
    } else {
        topology.standby_region.clone()
    })
}

/// Sets a health check's inversion (and enables it), unless it already is so. Returns whether it changed.
async fn set_inverted(
    route53: &aws_sdk_route53::Client,
    id: &str,
    inverted: bool,
) -> Result<bool, BackendError> {
    let state = health_check_state(route53, id).await?;
    if state.inverted == inverted && !state.disabled {
        return Ok(false);
    }
    route53
        .update_health_check()
        .health_check_id(id)
        .inverted(inverted)
        .disabled(false)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("updating health check {id}"), "route53", e))?;
    Ok(true)
}

/// Points the failover record at `to` through health-check state. Idempotent.
pub async fn shift_to(
    route53: &aws_sdk_route53::Client,
    ids: &Route53Ids,
    topology: &Topology,
    to: &str,
) -> Result<String, BackendError> {
    let invert_primary = if to == topology.primary_region {
        false
    } else if to == topology.standby_region {
        true
    } else {
        return Err(BackendError::rejected(format!(
            "cannot send traffic to {to}: not one of the environment's regions"
        )));
    };
    let mut changed = Vec::new();
    // The standby's own check must be live and honest first, so the SECONDARY record can take traffic.
    if let Some(standby) = &ids.standby_health_check
        && set_inverted(route53, standby, false).await?
    {
        changed.push(format!(
            "health check {standby} of {} restored",
            topology.standby_region
        ));
    }
    if set_inverted(route53, &ids.primary_health_check, invert_primary).await? {
        changed.push(format!(
            "health check {} of {} {}",
            ids.primary_health_check,
            topology.primary_region,
            if invert_primary {
                "inverted"
            } else {
                "restored"
            }
        ));
    }
    let now = dns_target(route53, ids, topology).await?;
    if now != to {
        return Err(BackendError::not_yet(format!(
            "{} still resolves to {now} after the health-check change (the {} endpoint's own health check decides)",
            topology.record_name, topology.primary_region
        )));
    }
    Ok(if changed.is_empty() {
        format!("{} already points at {to}", topology.record_name)
    } else {
        format!(
            "{} now points at {to}: {}",
            topology.record_name,
            changed.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_health_follows_inversion_and_disabling() {
        let s = |inverted, disabled, seen| HealthCheckState {
            inverted,
            disabled,
            endpoint_healthy: seen,
        };
        assert!(s(false, false, Some(true)).record_healthy());
        assert!(!s(true, false, Some(true)).record_healthy());
        assert!(!s(false, false, Some(false)).record_healthy());
        assert!(s(true, false, Some(false)).record_healthy());
        assert!(
            s(true, true, Some(true)).record_healthy(),
            "a disabled check counts as healthy"
        );
        assert!(!s(true, false, None).record_healthy());
    }
}
