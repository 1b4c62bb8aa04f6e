//! Route 53: where the failover record pair sends traffic, and moving it.
//!
//! The record pair (PRIMARY in the configured primary region, SECONDARY in the standby) is never edited:
//! traffic moves through health-check state in the Route 53 data plane, as AWS recommends for failover
//! (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-types.html).
//!
//! The region that should take traffic gets its own health check back as it was created: enabled and not
//! inverted, so Route 53 follows what its checkers really see. The other region's check is *forced
//! unhealthy*: disabled **and** inverted. Inverting alone is not enough: an inverted check of a dead
//! endpoint counts as healthy, so a failover with the primary down would send traffic straight back to it
//! (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-invert.html). Disabling alone
//! is not enough either: a disabled check always counts as healthy, and Route 53 "continues to route traffic
//! to the corresponding resources"; to stop that, the API reference says to change `Inverted` as well
//! (https://docs.aws.amazon.com/Route53/latest/APIReference/API_UpdateHealthCheck.html, `Disabled`). A
//! disabled and inverted check is unhealthy whatever the endpoint does, so neither a later failure nor a
//! recovery of the region that was left moves traffic back to it.

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
    /// Whether Route 53 treats the guarded record as healthy. A disabled check counts as healthy before
    /// inversion (`Disabled`, API reference), and `Inverted` turns the status around
    /// (Developer Guide, "Inverting health checks"); so disabled + inverted is always unhealthy. Without
    /// observations yet, a new check counts as healthy (Route 53 starts new checks as healthy:
    /// https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html).
    pub fn record_healthy(&self) -> bool {
        let status = if self.disabled {
            true
        } else {
            self.endpoint_healthy.unwrap_or(true)
        };
        status != self.inverted
    }

    /// Disabled and inverted: unhealthy whatever the endpoint does.
    pub fn forced_unhealthy(&self) -> bool {
        self.disabled && self.inverted
    }

    /// Enabled and not inverted: the checkers decide.
    pub fn follows_endpoint(&self) -> bool {
        !self.disabled && !self.inverted
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
                // Route 53 considers an endpoint healthy when more than 18 % of its checkers do
                // (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html).
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

/// The region Route 53 answers with for the failover record, from the health-check states: the PRIMARY
/// record while it is healthy, else the SECONDARY while that is healthy; when both are unhealthy Route 53
/// answers as if both were healthy, that is with the PRIMARY
/// (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-complex-configs.html).
pub async fn dns_target(
    route53: &aws_sdk_route53::Client,
    ids: &Route53Ids,
    topology: &Topology,
) -> Result<String, BackendError> {
    let primary = health_check_state(route53, &ids.primary_health_check).await?;
    let standby = match &ids.standby_health_check {
        Some(id) => Some(health_check_state(route53, id).await?),
        None => None,
    };
    Ok(answer(&primary, standby.as_ref(), topology).to_owned())
}

fn answer<'a>(
    primary: &HealthCheckState,
    standby: Option<&HealthCheckState>,
    topology: &'a Topology,
) -> &'a str {
    // A record without a health check counts as healthy.
    let standby_healthy = standby.is_none_or(HealthCheckState::record_healthy);
    if primary.record_healthy() || !standby_healthy {
        &topology.primary_region
    } else {
        &topology.standby_region
    }
}

/// What a health check should look like for its region to take traffic (`serve`) or be kept off it.
async fn set_check(
    route53: &aws_sdk_route53::Client,
    id: &str,
    serve: bool,
) -> Result<bool, BackendError> {
    let state = health_check_state(route53, id).await?;
    let in_place = if serve {
        state.follows_endpoint()
    } else {
        state.forced_unhealthy()
    };
    if in_place {
        return Ok(false);
    }
    route53
        .update_health_check()
        .health_check_id(id)
        .inverted(!serve)
        .disabled(!serve)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("updating health check {id}"), "route53", e))?;
    Ok(true)
}

/// Points the failover record at `to` through health-check state. Idempotent.
///
/// `to`'s check follows its endpoint again; the other region's check is forced unhealthy, except when `to`
/// is the configured primary: then the standby's check follows its endpoint too, so the SECONDARY record
/// is the ordinary fallback it was deployed as.
pub async fn shift_to(
    route53: &aws_sdk_route53::Client,
    ids: &Route53Ids,
    topology: &Topology,
    to: &str,
) -> Result<String, BackendError> {
    let to_primary = if to == topology.primary_region {
        true
    } else if to == topology.standby_region {
        false
    } else {
        return Err(BackendError::rejected(format!(
            "cannot send traffic to {to}: not one of the environment's regions"
        )));
    };
    let mut changed = Vec::new();
    // The region gaining traffic first: for a moment both may serve, never neither.
    let (gaining, losing) = if to_primary {
        (
            Some(ids.primary_health_check.as_str()),
            ids.standby_health_check.as_deref(),
        )
    } else {
        (
            ids.standby_health_check.as_deref(),
            Some(ids.primary_health_check.as_str()),
        )
    };
    if let Some(id) = gaining
        && set_check(route53, id, true).await?
    {
        changed.push(format!("health check {id} of {to} follows its endpoint"));
    }
    if let Some(id) = losing {
        // Back on the primary, the standby's check is its ordinary self again; away from it, the primary's
        // is forced unhealthy.
        let serve = to_primary;
        if set_check(route53, id, serve).await? {
            changed.push(if serve {
                format!(
                    "health check {id} of {} follows its endpoint",
                    topology.standby_region
                )
            } else {
                format!(
                    "health check {id} of {} forced unhealthy (disabled and inverted)",
                    topology.primary_region
                )
            });
        }
    }
    let now = dns_target(route53, ids, topology).await?;
    if now != to {
        return Err(BackendError::not_yet(format!(
            "{} still resolves to {now}: the health check of {to} does not see its endpoint healthy yet",
            topology.record_name
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

    fn s(inverted: bool, disabled: bool, seen: Option<bool>) -> HealthCheckState {
        HealthCheckState {
            inverted,
            disabled,
            endpoint_healthy: seen,
        }
    }

    #[test]
    fn record_health_follows_inversion_and_disabling() {
        assert!(s(false, false, Some(true)).record_healthy());
        assert!(!s(true, false, Some(true)).record_healthy());
        assert!(!s(false, false, Some(false)).record_healthy());
        assert!(
            s(true, false, Some(false)).record_healthy(),
            "an inverted check of a dead endpoint is healthy: why inversion alone cannot fail over"
        );
        assert!(
            s(false, true, Some(false)).record_healthy(),
            "a disabled check counts as healthy"
        );
        for seen in [Some(true), Some(false), None] {
            assert!(
                !s(true, true, seen).record_healthy(),
                "disabled and inverted is unhealthy whatever the endpoint does ({seen:?})"
            );
        }
    }

    #[test]
    fn both_unhealthy_answers_the_primary() {
        let topology = Topology::from_config(&lifeboat_config::Config::default());
        let forced = s(true, true, Some(true));
        let up = s(false, false, Some(true));
        let down = s(false, false, Some(false));
        assert_eq!(answer(&up, Some(&up), &topology), topology.primary_region);
        assert_eq!(
            answer(&forced, Some(&up), &topology),
            topology.standby_region
        );
        assert_eq!(
            answer(&forced, Some(&down), &topology),
            topology.primary_region
        );
        assert_eq!(answer(&down, None, &topology), topology.standby_region);
    }
}
