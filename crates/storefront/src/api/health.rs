//! `/health` (is the process up) and `/health/deep` (is this instance fit for its role, or for the role the
//! caller expects: the local front door asks `?expect=active`, which answers 200 only where writes would be
//! accepted right now).
//!
//! `/health/deep` is reachable from the internet through the load balancer, so it is not an open door: with a
//! health token configured, only a request carrying it in [`TOKEN_HEADER`] gets the full report (control
//! state, database role, errors) computed for it. Any other request gets the same status code with a minimal
//! body (`{"status":"ok"}` or `{"status":"unavailable"}`), taken from a result at most
//! [`HealthAccess::cache_for`] old, computed by one request at a time: a flood of requests cannot make the
//! storefront open a database connection each. Without a token (dev, local) every request gets the full
//! report, as before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{HEALTH_PROBE_TIMEOUT, SharedState};
use crate::db::{self, ReplicationStatus};
use crate::error::ApiError;

/// The header a health checker carries its token in.
pub const TOKEN_HEADER: &str = "x-lifeboat-health-token";

/// Who gets the full `/health/deep` report, and the cached answer everyone else gets.
pub struct HealthAccess {
    token: Option<String>,
    cache_for: Duration,
    /// Last status per `expect` value; the lock is held while a probe runs, so probes never overlap.
    cached: tokio::sync::Mutex<HashMap<Option<String>, (Instant, StatusCode)>>,
    probes: AtomicU64,
}

impl HealthAccess {
    /// `token`: the checker's secret (`None`: everyone gets the full report); `cache_for`: how old the answer
    /// to requests without the token may be.
    pub fn new(token: Option<String>, cache_for: Duration) -> Self {
        Self {
            token: token.filter(|t| !t.is_empty()),
            cache_for,
            cached: tokio::sync::Mutex::new(HashMap::new()),
            probes: AtomicU64::new(0),
        }
    }

    pub fn cache_for(&self) -> Duration {
        self.cache_for
    }

    pub fn token_configured(&self) -> bool {
        self.token.is_some()
    }

    /// Deep probes run so far (each opens one database connection of its own).
    pub fn probes(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }

    fn grants_full_report(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        headers
            .get(TOKEN_HEADER)
            .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
    }
}

impl Default for HealthAccess {
    fn default() -> Self {
        Self::new(None, Duration::from_secs(5))
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn minimal(status: StatusCode) -> Response {
    let body = if status == StatusCode::OK {
        "ok"
    } else {
        "unavailable"
    };
    (status, Json(serde_json::json!({ "status": body }))).into_response()
}

pub async fn shallow() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeepQuery {
    expect: Option<String>,
}

#[derive(Debug, Serialize)]
struct DeepHealth {
    status: &'static str,
    region: String,
    /// `active`, `standby`, `fenced` (this region is active but the fence is raised) or `unknown` (no control
    /// state has ever been fetched).
    role: &'static str,
    expect: Option<String>,
    epoch: Option<u64>,
    writes_accepted: bool,
    control: ControlReport,
    database: DatabaseReport,
    session_store: SessionReport,
}

#[derive(Debug, Serialize)]
struct ControlReport {
    source: String,
    active_region: Option<String>,
    fence_raised: Option<bool>,
    lease_ms: Option<u64>,
    age_ms: Option<u64>,
    fresh: bool,
    last_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct DatabaseReport {
    reachable: bool,
    read_only: Option<bool>,
    fence_epoch: Option<u64>,
    replication: Option<ReplicationStatus>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct SessionReport {
    kind: &'static str,
    ok: bool,
    error: Option<String>,
}

async fn probe<T>(
    what: &str,
    f: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(HEALTH_PROBE_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {HEALTH_PROBE_TIMEOUT:?}")),
    }
}

pub async fn deep(
    State(app): State<SharedState>,
    headers: HeaderMap,
    Query(query): Query<DeepQuery>,
) -> Result<Response, ApiError> {
    if let Some(expect) = &query.expect
        && expect != "active"
        && expect != "standby"
    {
        return Err(ApiError::bad_request(
            "invalid_expect",
            format!("expect must be active or standby, not {expect:?}"),
        ));
    }
    let access = &app.health;
    if access.grants_full_report(&headers) {
        let (status, report) = full_report(&app, query.expect).await;
        return Ok((status, Json(report)).into_response());
    }
    let mut cached = access.cached.lock().await;
    if let Some((at, status)) = cached.get(&query.expect)
        && at.elapsed() < access.cache_for
    {
        return Ok(minimal(*status));
    }
    let (status, _) = full_report(&app, query.expect.clone()).await;
    cached.insert(query.expect, (Instant::now(), status));
    Ok(minimal(status))
}

async fn full_report(app: &SharedState, expect: Option<String>) -> (StatusCode, DeepHealth) {
    app.health.probes.fetch_add(1, Ordering::Relaxed);
    // Refreshes only when the background refresh has not kept the state fresh (e.g. in Lambda).
    let fresh = app.gate.fresh_snapshot().await;
    let last = app.gate.snapshot();
    let state = last.as_ref().map(|s| &s.state);
    let role = match state {
        None => "unknown",
        Some(s) if s.active_region != app.region => "standby",
        Some(s) if s.fence_raised => "fenced",
        Some(_) => "active",
    };
    let control = ControlReport {
        source: app.gate.source_description(),
        active_region: state.map(|s| s.active_region.clone()),
        fence_raised: state.map(|s| s.fence_raised),
        lease_ms: state.map(|s| s.lease_ms),
        age_ms: last.as_ref().map(|s| s.age().as_millis() as u64),
        fresh: fresh.is_some(),
        last_error: app.gate.last_error(),
    };

    let mut database = DatabaseReport {
        reachable: false,
        read_only: None,
        fence_epoch: None,
        replication: None,
        error: None,
    };
    match probe("connecting", db::probe_connection(&app.pool)).await {
        Ok(mut conn) => {
            match probe("read_only", db::is_read_only(&mut conn)).await {
                Ok(read_only) => {
                    database.reachable = true;
                    database.read_only = Some(read_only);
                    match probe("fencing row", db::fence_epoch(&mut conn)).await {
                        Ok(epoch) => database.fence_epoch = epoch,
                        Err(e) => database.error = Some(e),
                    }
                    // Needs a replication-monitor privilege; absent it, the report just has no replication
                    // part.
                    database.replication = probe("replication", db::replication_status(&mut conn))
                        .await
                        .ok()
                        .flatten();
                }
                Err(e) => database.error = Some(e),
            }
            // A polite goodbye keeps the server's log free of aborted connections; bounded like the rest.
            let _ = tokio::time::timeout(HEALTH_PROBE_TIMEOUT, sqlx::Connection::close(conn)).await;
        }
        Err(e) => database.error = Some(e),
    }

    let session_store = match tokio::time::timeout(HEALTH_PROBE_TIMEOUT, app.sessions.check()).await
    {
        Ok(Ok(())) => SessionReport {
            kind: app.sessions.describe(),
            ok: true,
            error: None,
        },
        Ok(Err(e)) => SessionReport {
            kind: app.sessions.describe(),
            ok: false,
            error: Some(e),
        },
        Err(_) => SessionReport {
            kind: app.sessions.describe(),
            ok: false,
            error: Some("no answer".into()),
        },
    };

    let epoch = state.map(|s| s.epoch);
    let writes_accepted = fresh.is_some()
        && role == "active"
        && database.read_only == Some(false)
        && matches!((database.fence_epoch, epoch), (Some(db), Some(held)) if db <= held)
        && session_store.ok;
    let healthy = match expect.as_deref().unwrap_or(if role == "active" {
        "active"
    } else {
        "standby"
    }) {
        "active" => writes_accepted,
        _ => database.reachable && role != "active",
    };
    let report = DeepHealth {
        status: if healthy { "healthy" } else { "unhealthy" },
        region: app.region.clone(),
        role,
        expect,
        epoch,
        writes_accepted,
        control,
        database,
        session_store,
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, report)
}
