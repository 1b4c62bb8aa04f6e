//! The one error type handlers return, and how it becomes a JSON response.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::model::ErrorBody;

pub const HEADER_REGION: &str = "x-lifeboat-region";
pub const HEADER_EPOCH: &str = "x-lifeboat-epoch";

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub active_region: Option<String>,
    /// Set on refusals a client should retry shortly (503).
    pub retry_after_secs: Option<u32>,
    /// Region (and epoch, when one was held) of the instance that refused a write.
    pub write_context: Option<(String, Option<u64>)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            active_region: None,
            retry_after_secs: None,
            write_context: None,
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    /// A refusal the client should retry in a second, possibly in another region.
    pub fn unavailable(
        code: &'static str,
        message: impl Into<String>,
        active_region: Option<String>,
    ) -> Self {
        Self {
            active_region,
            retry_after_secs: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }
    /// An unexpected failure: the detail goes to the log, the client gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the detail",
        )
    }
    pub fn with_write_context(mut self, region: &str, epoch: Option<u64>) -> Self {
        self.write_context = Some((region.to_owned(), epoch));
        self
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        database_error(&e)
    }
}

/// MySQL error 1290 (ER_OPTION_PREVENTS_STATEMENT) and 1836 (ER_READ_ONLY_MODE): the database is read-only,
/// i.e. it is a replica or a demoted primary.
pub fn is_read_only_error(e: &sqlx::Error) -> bool {
    mysql_error_number(e).is_some_and(|n| n == 1290 || n == 1836)
}

pub fn mysql_error_number(e: &sqlx::Error) -> Option<u16> {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .map(|m| m.number()),
        _ => None,
    }
}

pub fn database_error(e: &sqlx::Error) -> ApiError {
    crate::credentials::note(e);
    if is_read_only_error(e) {
        return ApiError::unavailable(
            "write_fenced",
            "the database is read-only here; writes go to the active region",
            None,
        );
    }
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => {
            tracing::warn!(error = %e, "database unavailable");
            ApiError::unavailable(
                "database_unavailable",
                "the database is not reachable right now",
                None,
            )
        }
        other => ApiError::internal(format!("database: {other}")),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
            active_region: self.active_region,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some((region, epoch)) = self.write_context {
            insert_write_headers(headers, &region, epoch);
        }
        response
    }
}

pub fn insert_write_headers(headers: &mut axum::http::HeaderMap, region: &str, epoch: Option<u64>) {
    if let Ok(v) = HeaderValue::from_str(region) {
        headers.insert(HeaderName::from_static(HEADER_REGION), v);
    }
    if let Some(epoch) = epoch {
        headers.insert(
            HeaderName::from_static(HEADER_EPOCH),
            HeaderValue::from(epoch),
        );
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
