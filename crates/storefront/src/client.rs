//! A small typed client for the storefront API. Cheap to clone (one shared connection pool), usable from many
//! tasks at once: the local runtime's load generator and the tests use it.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::model::{AddItemRequest, Cart, CheckoutRequest, ErrorBody, Order, Product, ProductList};

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service answered with an error body.
    #[error("{method} {path}: HTTP {status} {}: {}", body.error, body.message)]
    Api {
        method: Method,
        path: String,
        status: StatusCode,
        body: Box<ErrorBody>,
        retry_after_secs: Option<u64>,
    },
    /// No answer: connection refused, reset, timed out.
    #[error("{method} {path}: {source}")]
    Transport {
        method: Method,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// An answer we cannot read.
    #[error("{method} {path}: unexpected answer (HTTP {status}): {message}")]
    Unexpected {
        method: Method,
        path: String,
        status: StatusCode,
        message: String,
    },
}

impl ClientError {
    /// The error code of an API error (`region_passive`, `cart_empty`, ...).
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { body, .. } => Some(&body.error),
            _ => None,
        }
    }
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } | Self::Unexpected { status, .. } => Some(*status),
            Self::Transport { .. } => None,
        }
    }
    /// A write refused by the write gate: nothing was written; retry (elsewhere, or after `Retry-After`).
    pub fn is_write_refusal(&self) -> bool {
        matches!(
            self.code(),
            Some("region_passive" | "write_fenced" | "stale_epoch" | "control_unreachable")
        )
    }
    /// Whether the outcome of a write is unknown: it may or may not have been applied (no answer, or a 5xx).
    /// Retry a checkout with the same Idempotency-Key to find out.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Api { status, .. } | Self::Unexpected { status, .. } => {
                status.is_server_error() && !self.is_write_refusal()
            }
        }
    }
}

/// The answer to a write: the value, and the region and fencing epoch it was accepted under.
#[derive(Debug, Clone)]
pub struct Written<T> {
    pub value: T,
    pub region: Option<String>,
    pub epoch: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct CheckoutOutcome {
    pub order: Order,
    /// True when the order had been written by an earlier request with the same key (HTTP 200, not 201).
    pub replayed: bool,
    pub region: Option<String>,
    pub epoch: Option<u64>,
}

/// `GET /health/deep`: the status code and the report.
#[derive(Debug, Clone)]
pub struct DeepHealth {
    pub status: StatusCode,
    pub report: serde_json::Value,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Client {
    /// A client for the service at `base` (e.g. `http://127.0.0.1:8080`), with a 5 s timeout per request.
    pub fn new(base: &str) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self::with_http(http, base))
    }

    /// Share an existing reqwest client (and its connection pool and timeouts).
    pub fn with_http(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: Arc::from(base.trim_end_matches('/')),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&(dyn erased::Json + Sync)>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, ClientError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_json());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let transport = |source| ClientError::Transport {
            method: method.clone(),
            path: path.to_owned(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport)?.to_vec();
        if status.is_success() {
            return Ok(Answer {
                status,
                headers,
                body,
            });
        }
        let retry_after_secs = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(body) => Err(ClientError::Api {
                method,
                path: path.to_owned(),
                status,
                body: Box::new(body),
                retry_after_secs,
            }),
            Err(_) => Err(ClientError::Unexpected {
                method,
                path: path.to_owned(),
                status,
                message: String::from_utf8_lossy(&body).chars().take(200).collect(),
            }),
        }
    }

    fn decode<T: DeserializeOwned>(
        method: Method,
        path: &str,
        answer: &Answer,
    ) -> Result<T, ClientError> {
        serde_json::from_slice(&answer.body).map_err(|e| ClientError::Unexpected {
            method,
            path: path.to_owned(),
            status: answer.status,
            message: e.to_string(),
        })
    }

    fn written<T: DeserializeOwned>(
        method: Method,
        path: &str,
        answer: &Answer,
    ) -> Result<Written<T>, ClientError> {
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Written {
            value: Self::decode(method, path, answer)?,
            region: header(crate::error::HEADER_REGION),
            epoch: header(crate::error::HEADER_EPOCH).and_then(|e| e.parse().ok()),
        })
    }

    pub async fn products(&self) -> Result<Vec<Product>, ClientError> {
        let answer = self.send(Method::GET, "/products", None, &[]).await?;
        Ok(Self::decode::<ProductList>(Method::GET, "/products", &answer)?.products)
    }

    pub async fn product(&self, id: u64) -> Result<Product, ClientError> {
        let path = format!("/products/{id}");
        let answer = self.send(Method::GET, &path, None, &[]).await?;
        Self::decode(Method::GET, &path, &answer)
    }

    pub async fn create_cart(&self) -> Result<Written<Cart>, ClientError> {
        let answer = self.send(Method::POST, "/carts", None, &[]).await?;
        Self::written(Method::POST, "/carts", &answer)
    }

    pub async fn cart(&self, id: &str) -> Result<Cart, ClientError> {
        let path = format!("/carts/{id}");
        let answer = self.send(Method::GET, &path, None, &[]).await?;
        Self::decode(Method::GET, &path, &answer)
    }

    pub async fn add_item(
        &self,
        cart_id: &str,
        product_id: u64,
        quantity: i64,
    ) -> Result<Written<Cart>, ClientError> {
        let path = format!("/carts/{cart_id}/items");
        let body = AddItemRequest {
            product_id,
            quantity,
        };
        let answer = self.send(Method::POST, &path, Some(&body), &[]).await?;
        Self::written(Method::POST, &path, &answer)
    }

    /// Check out a cart. Retrying with the same `idempotency_key` never writes a second order.
    pub async fn checkout(
        &self,
        cart_id: &str,
        idempotency_key: &str,
    ) -> Result<CheckoutOutcome, ClientError> {
        let body = CheckoutRequest {
            cart_id: cart_id.to_owned(),
        };
        let answer = self
            .send(
                Method::POST,
                "/checkout",
                Some(&body),
                &[("idempotency-key", idempotency_key)],
            )
            .await?;
        let written: Written<Order> = Self::written(Method::POST, "/checkout", &answer)?;
        Ok(CheckoutOutcome {
            order: written.value,
            replayed: answer.status == StatusCode::OK,
            region: written.region,
            epoch: written.epoch,
        })
    }

    /// An order, or None when the service does not know it (404).
    pub async fn order(&self, id: &str) -> Result<Option<Order>, ClientError> {
        let path = format!("/orders/{id}");
        match self.send(Method::GET, &path, None, &[]).await {
            Ok(answer) => Self::decode(Method::GET, &path, &answer).map(Some),
            Err(ClientError::Api {
                status: StatusCode::NOT_FOUND,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn health(&self) -> Result<(), ClientError> {
        self.send(Method::GET, "/health", None, &[])
            .await
            .map(|_| ())
    }

    /// `/health/deep`, answered 200 or 503 alike (the report says why).
    pub async fn health_deep(&self, expect: Option<&str>) -> Result<DeepHealth, ClientError> {
        let path = match expect {
            Some(role) => format!("/health/deep?expect={role}"),
            None => "/health/deep".to_owned(),
        };
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                method: Method::GET,
                path: path.clone(),
                source,
            })?;
        let status = response.status();
        let report = response.json().await.map_err(|e| ClientError::Unexpected {
            method: Method::GET,
            path: path.clone(),
            status,
            message: e.to_string(),
        })?;
        Ok(DeepHealth { status, report })
    }
}

mod erased {
    /// A request body that can be serialised without making `send` generic.
    pub trait Json {
        fn to_json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Vec<u8> {
            // Our request types serialise infallibly (plain structs of strings and integers).
            serde_json::to_vec(self).unwrap_or_default()
        }
    }
}
