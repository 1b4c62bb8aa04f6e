//! The control server: the local counterpart of the SSM parameters a storefront reads on AWS.
//!
//! It holds one [`ControlState`] (active region, epoch, fence, lease) and when each region last renewed
//! its lease. Storefronts call `GET /v1/control?region=R`, which answers the state and renews R's lease;
//! a region cut off from this server cannot renew and stops acknowledging writes when its lease runs out.
//! The DR backend changes the state through the admin endpoints. The state is written to
//! `control.json` (atomically) at every change, so a restarted server keeps the epoch.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lifeboat_contract::ControlState;
use serde::{Deserialize, Serialize};

use crate::error::{LocalError, Result};
use crate::layout::write_atomic;

/// A change the DR backend asks for; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence_raised: Option<bool>,
}

/// What the admin endpoint reports: the state, and each region's last lease renewal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlView {
    pub state: ControlState,
    /// Region → last renewal, milliseconds since the Unix epoch.
    pub leases: BTreeMap<String, u64>,
    /// Region → last renewal whose answer allowed that region to write (active, no fence): the write
    /// lease a storefront there may still be acting on. No such renewal happens once the fence is raised.
    #[serde(default)]
    pub write_leases: BTreeMap<String, u64>,
    /// When the server answered (same clock as `leases`).
    pub now_ms: u64,
}

struct Shared {
    state: ControlState,
    leases: BTreeMap<String, u64>,
    write_leases: BTreeMap<String, u64>,
    regions: Vec<String>,
    file: PathBuf,
}

type AppState = Arc<Mutex<Shared>>;

/// The initial state in `file` if present, else `initial` (first start).
pub fn load_or(file: &Path, initial: ControlState) -> Result<ControlState> {
    match std::fs::read(file) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            LocalError::Failed(format!(
                "control state {} is not valid: {e}",
                file.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(initial),
        Err(e) => Err(LocalError::io("reading the control state", file, e)),
    }
}

pub fn save(file: &Path, state: &ControlState) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| LocalError::Failed(format!("encoding control state: {e}")))?;
    write_atomic(file, &bytes)
}

/// The control server's routes over `state`, persisted to `file`, for the `regions` of the pair.
pub fn router(state: ControlState, regions: Vec<String>, file: PathBuf) -> Router {
    let shared: AppState = Arc::new(Mutex::new(Shared {
        state,
        leases: BTreeMap::new(),
        write_leases: BTreeMap::new(),
        regions,
        file,
    }));
    Router::new()
        .route("/v1/control", get(read_and_renew))
        .route("/v1/admin/state", get(admin_view).put(admin_update))
        .route("/health", get(|| async { "ok" }))
        .with_state(shared)
}

/// Serves the control server on `addr` until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| LocalError::Failed(format!("control server cannot listen on {addr}: {e}")))?;
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| LocalError::Failed(format!("control server on {addr} stopped: {e}")))
}

#[derive(Deserialize)]
struct RegionQuery {
    region: Option<String>,
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

fn lock(shared: &AppState) -> std::sync::MutexGuard<'_, Shared> {
    // A panic while holding the lock cannot leave the state half-changed (every change is a whole-value
    // assignment), so a poisoned lock is still usable.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

async fn read_and_renew(State(shared): State<AppState>, Query(q): Query<RegionQuery>) -> Response {
    let mut s = lock(&shared);
    let Some(region) = q.region else {
        return error(
            StatusCode::BAD_REQUEST,
            "query parameter `region` is required".into(),
        );
    };
    if !s.regions.contains(&region) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("unknown region {region:?}: expected one of {:?}", s.regions),
        );
    }
    let now = crate::events::now_ms();
    if s.state.allows_writes_in(&region) {
        s.write_leases.insert(region.clone(), now);
    }
    s.leases.insert(region, now);
    Json(s.state.clone()).into_response()
}

fn view(s: &Shared) -> ControlView {
    ControlView {
        state: s.state.clone(),
        leases: s.leases.clone(),
        write_leases: s.write_leases.clone(),
        now_ms: crate::events::now_ms(),
    }
}

async fn admin_view(State(shared): State<AppState>) -> Response {
    let s = lock(&shared);
    Json(view(&s)).into_response()
}

async fn admin_update(
    State(shared): State<AppState>,
    Json(update): Json<ControlUpdate>,
) -> Response {
    let mut s = lock(&shared);
    let mut next = s.state.clone();
    if let Some(epoch) = update.epoch {
        if epoch < next.epoch {
            return error(
                StatusCode::CONFLICT,
                format!(
                    "epoch {epoch} is older than the current epoch {}: epochs never go back",
                    next.epoch
                ),
            );
        }
        next.epoch = epoch;
    }
    if let Some(region) = update.active_region {
        if !s.regions.contains(&region) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown region {region:?}: expected one of {:?}", s.regions),
            );
        }
        next.active_region = region;
    }
    if let Some(fence) = update.fence_raised {
        next.fence_raised = fence;
    }
    if next != s.state {
        if let Err(e) = save(&s.file, &next) {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("could not persist the control state: {e}"),
            );
        }
        s.state = next;
    }
    Json(view(&s)).into_response()
}

/// A client of the control server (DR backend, status, drills).
#[derive(Debug, Clone)]
pub struct ControlClient {
    base: String,
    http: reqwest::Client,
}

impl ControlClient {
    /// `base`: `http://<bridge ip>:<control port>`.
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(1))
            .build()
            .unwrap_or_default();
        ControlClient {
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> LocalError {
        LocalError::Unavailable(format!(
            "control server at {} did not answer: {e}",
            self.base
        ))
    }

    /// The state and every region's last lease renewal (does not renew anything).
    pub async fn view(&self) -> Result<ControlView> {
        let response = self
            .http
            .get(format!("{}/v1/admin/state", self.base))
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        decode(response).await
    }

    pub async fn state(&self) -> Result<ControlState> {
        Ok(self.view().await?.state)
    }

    /// Applies `update`; an epoch older than the current one is refused (an error).
    pub async fn update(&self, update: &ControlUpdate) -> Result<ControlView> {
        let response = self
            .http
            .put(format!("{}/v1/admin/state", self.base))
            .json(update)
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        decode(response).await
    }
}

async fn decode<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T> {
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| LocalError::Unavailable(format!("reading a control answer: {e}")))?;
    if !status.is_success() {
        return Err(LocalError::Failed(format!(
            "control server answered {status}: {text}"
        )));
    }
    serde_json::from_str(&text)
        .map_err(|e| LocalError::Failed(format!("control server answer is not valid: {e}")))
}
