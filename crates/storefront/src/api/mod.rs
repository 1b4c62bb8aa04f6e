//! The HTTP API: routes, shared state, middleware.

mod carts;
mod checkout;
mod extract;
pub mod health;
pub mod openapi;
mod orders;
mod products;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sqlx::MySqlPool;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::error::ApiError;
use crate::gate::WriteGate;
use crate::images::Images;
use crate::metrics::Metrics;
use crate::model::MAX_BODY_BYTES;
use crate::sessions::SessionStore;

pub use extract::ApiJson;

/// Everything a request handler needs.
pub struct AppState {
    pub region: String,
    pub pool: MySqlPool,
    pub sessions: Arc<dyn SessionStore>,
    pub gate: Arc<WriteGate>,
    pub images: Images,
    pub metrics: Arc<Metrics>,
    /// `/metrics` is served by local servers; behind an ALB in Lambda CloudWatch takes that role.
    pub serve_metrics: bool,
    /// Admission for writes: one permit per write in progress (see [`admit_writes`]).
    pub write_admission: Arc<tokio::sync::Semaphore>,
    /// Who gets the full `/health/deep` report (see [`health`]).
    pub health: health::HealthAccess,
    /// Where the database credentials come from, re-read when the server refuses them.
    pub credentials: crate::credentials::Credentials,
}

/// Writes admitted at once per database connection: enough to keep every connection busy while others wait
/// on the replica's acknowledgement, few enough that no write waits long for a connection.
pub const WRITES_PER_CONNECTION: usize = 2;

pub type SharedState = Arc<AppState>;

pub fn router(state: SharedState) -> Router {
    let mut routes = Router::new()
        .route("/products", get(products::list))
        .route("/products/{id}", get(products::get_one))
        .route("/images/{name}", get(products::image))
        .route("/carts", post(carts::create))
        .route("/carts/{id}", get(carts::get_one))
        .route("/carts/{id}/items", post(carts::add_item))
        .route("/checkout", post(checkout::checkout))
        .route("/orders/{id}", get(orders::get_one))
        .route("/health", get(health::shallow))
        .route("/health/deep", get(health::deep))
        .route("/openapi.json", get(openapi::serve));
    if state.serve_metrics {
        routes = routes.route("/metrics", get(metrics));
    }
    routes
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            retry_after_rotation,
        ))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), admit_writes))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), record_metrics))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                        })
                        // A 503 refusal is the gate doing its job, not a failure worth an error line;
                        // internal errors log their detail themselves (ApiError::internal).
                        .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(CatchPanicLayer::custom(|_panic: Box<dyn std::any::Any + Send>| {
                    ApiError::internal("a request handler panicked").into_response()
                }))
                .layer(middleware::map_response(json_for_bare_errors))
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(state)
}

/// A request that failed because the server refused the database credentials (a rotation happened) runs
/// once more after the credentials are re-read from their source. The refusal happens when a connection is
/// opened, before any statement ran on it, so running the request again repeats nothing.
async fn retry_after_rotation(
    State(app): State<SharedState>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    // Bodies over the API's limit still reach the handlers, whose extractors answer 413 as before; only a
    // body far over it is refused here.
    let Ok(bytes) = axum::body::to_bytes(body, 64 * MAX_BODY_BYTES).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let request = |bytes: axum::body::Bytes| {
        let mut again = Request::new(axum::body::Body::from(bytes));
        *again.method_mut() = parts.method.clone();
        *again.uri_mut() = parts.uri.clone();
        *again.version_mut() = parts.version;
        *again.headers_mut() = parts.headers.clone();
        *again.extensions_mut() = parts.extensions.clone();
        again
    };
    let (response, refused) =
        crate::credentials::watch(next.clone().run(request(bytes.clone()))).await;
    if !refused || !app.credentials.refresh(&app.pool).await {
        return response;
    }
    next.run(request(bytes)).await
}

/// Load shedding for writes. Beyond the admitted number, a write is refused at once (503 `overloaded`,
/// `Retry-After: 1`) instead of queueing for a database connection: a queue only turns an overload into
/// timeouts, and clients that time out retry, which keeps the overload going after its cause is gone (a
/// region that just took over receives the retries of every checkout the switchover held up). Refused
/// writes did nothing, so a retry is always safe; reads are never refused here.
async fn admit_writes(State(app): State<SharedState>, req: Request, next: Next) -> Response {
    if req.method() == axum::http::Method::GET || req.method() == axum::http::Method::HEAD {
        return next.run(req).await;
    }
    match Arc::clone(&app.write_admission).try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(req).await;
            drop(permit);
            response
        }
        Err(_) => ApiError::unavailable(
            "overloaded",
            "this region is at its limit of writes in progress; retry in a second",
            None,
        )
        .into_response(),
    }
}

async fn record_metrics(State(app): State<SharedState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    app.metrics.record_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Errors produced outside our handlers (405, a path that does not decode, a body over the limit) come without
/// a body or as plain text; give them the same JSON shape as ours.
async fn json_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept that method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "the request body is over the limit"),
        StatusCode::NOT_FOUND => ("not_found", "no such resource"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send the body as application/json",
        ),
        s if s.is_client_error() => ("bad_request", "the request could not be understood"),
        _ => ("internal", "internal error; the server log has the detail"),
    };
    let mut fixed = ApiError::new(status, code, message).into_response();
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fixed.headers_mut().insert(name.clone(), value.clone());
        }
    }
    fixed
}

async fn not_found() -> ApiError {
    ApiError::not_found(
        "route_not_found",
        "no such route; GET /openapi.json lists them",
    )
}

async fn metrics(State(app): State<SharedState>) -> Response {
    let snapshot = app.gate.snapshot();
    let gauges = crate::metrics::Gauges {
        region: app.region.clone(),
        epoch: snapshot.as_ref().map(|s| s.state.epoch),
        control_age_seconds: snapshot.as_ref().map(|s| s.age().as_secs_f64()),
        writes_allowed_by_control: snapshot
            .as_ref()
            .is_some_and(|s| s.is_fresh() && s.state.allows_writes_in(&app.region)),
        db_pool_size: app.pool.size(),
        db_pool_idle: app.pool.num_idle(),
    };
    let mut response = app.metrics.render(&gauges).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Headers every accepted write carries.
pub(crate) fn write_headers(region: &str, epoch: u64) -> axum::http::HeaderMap {
    let mut headers = axum::http::HeaderMap::new();
    crate::error::insert_write_headers(&mut headers, region, Some(epoch));
    headers
}

/// Bound on the database and session-store probes of `/health/deep`.
pub(crate) const HEALTH_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
