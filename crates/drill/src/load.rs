//! The load generator: real checkouts at a fixed rate, each recorded in the client ledger.
//!
//! Open loop: checkout `n` starts at `start + n / rate` whatever happened to the ones before it, as real
//! customers do; a slow or failing server does not slow the offered load down. Each checkout is a fresh cart,
//! its items and a checkout with a unique Idempotency-Key. A failed checkout is retried with the *same* key
//! (so a retry can never create a second order), bounded in attempts and in time.

use crate::ledger::{Abandoned, Ack, Client, FailedAttempt, Ledger, OrderLine, UnixMs, now_ms};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use storefront::client::{Client as ShopClient, ClientError};
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Where checkouts go: the front door, or a region's storefront directly.
    pub base_url: String,
    pub rate: f64,
    /// Prefix of every Idempotency-Key, unique per drill run: the ledger check finds this run's orders by it.
    pub key_prefix: String,
    pub client: Client,
    /// Products to buy (ids from the catalog).
    pub products: Vec<u64>,
    /// Per-request timeout: a request that hangs on a dead server must not hold a checkout forever.
    pub request_timeout: Duration,
    /// Retries stop after this many attempts of one checkout...
    pub max_attempts: u32,
    /// ...or this long after the load stops offering new checkouts.
    pub retry_grace: Duration,
    /// Checkouts in flight at once; beyond this a new checkout is abandoned unsent (the client is saturated).
    pub max_in_flight: usize,
}

impl LoadConfig {
    pub fn new(
        base_url: &str,
        rate: f64,
        key_prefix: &str,
        client: Client,
        products: Vec<u64>,
    ) -> Self {
        LoadConfig {
            base_url: base_url.to_owned(),
            rate,
            key_prefix: key_prefix.to_owned(),
            client,
            products,
            request_timeout: Duration::from_secs(2),
            max_attempts: 60,
            retry_grace: Duration::from_secs(20),
            // Thirty seconds of offered load: enough to ride out any recovery a drill expects.
            max_in_flight: ((rate * 30.0) as usize).clamp(64, 8000),
        }
    }
}

/// A running load. Stop it with [`Load::stop_at`] / [`Load::stop_now`], then [`Load::finish`] for the
/// ledger.
pub struct Load {
    stop_at: Arc<AtomicI64>,
    started_ms: UnixMs,
    ledger: Arc<Mutex<Ledger>>,
    scheduler: tokio::task::JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot build an HTTP client: {0}")]
    Http(String),
    #[error("the catalog at {url} could not be read: {message}")]
    Catalog { url: String, message: String },
}

/// The ids of up to `max` products from the catalog at `base_url`.
pub async fn catalog(base_url: &str, max: usize) -> Result<Vec<u64>, LoadError> {
    let client = ShopClient::new(base_url).map_err(|e| LoadError::Http(e.to_string()))?;
    let mut last = String::new();
    // The catalog is a read: it is served by whichever region the front door picks; retry briefly in case a
    // health check is just flipping.
    for _ in 0..20 {
        match client.products().await {
            Ok(products) if !products.is_empty() => {
                return Ok(products.into_iter().take(max).map(|p| p.id).collect());
            }
            Ok(_) => last = "the catalog is empty".into(),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(LoadError::Catalog {
        url: base_url.to_owned(),
        message: last,
    })
}

impl Load {
    /// Starts offering load now; it runs until stopped.
    pub fn start(config: LoadConfig) -> Result<Load, LoadError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_millis(500))
            .pool_max_idle_per_host(512)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| LoadError::Http(e.to_string()))?;
        let shop = ShopClient::with_http(http, &config.base_url);
        let stop_at = Arc::new(AtomicI64::new(i64::MAX));
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let started_ms = now_ms();
        let scheduler = tokio::spawn(schedule(
            shop,
            config,
            Arc::clone(&stop_at),
            Arc::clone(&ledger),
        ));
        Ok(Load {
            stop_at,
            started_ms,
            ledger,
            scheduler,
        })
    }

    pub fn started_ms(&self) -> UnixMs {
        self.started_ms
    }

    /// No new checkouts from `at_ms` on (checkouts already started keep retrying within the grace).
    pub fn stop_at(&self, at_ms: UnixMs) {
        self.stop_at.store(at_ms, Ordering::SeqCst);
    }

    pub fn stop_now(&self) {
        self.stop_at(now_ms());
    }

    pub fn stops_at(&self) -> UnixMs {
        self.stop_at.load(Ordering::SeqCst)
    }

    /// How many acknowledgements so far (for progress output).
    pub fn acknowledged(&self) -> usize {
        lock(&self.ledger).acks.len()
    }

    /// The ledger so far (a copy), for a check while the load keeps running: every acknowledgement in it
    /// was received before the copy was taken.
    pub fn snapshot(&self) -> Ledger {
        lock(&self.ledger).clone()
    }

    /// Waits until every started checkout is acknowledged or given up, and returns the ledger.
    pub async fn finish(self) -> Ledger {
        // The scheduler waits for its checkouts itself; a panic in it would be a bug, and the ledger gathered
        // so far is still the truth of what the clients saw.
        let _ = self.scheduler.await;
        std::mem::take(&mut *lock(&self.ledger))
    }
}

fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn schedule(
    shop: ShopClient,
    config: LoadConfig,
    stop_at: Arc<AtomicI64>,
    ledger: Arc<Mutex<Ledger>>,
) {
    let interval_us = (1_000_000.0 / config.rate).max(1.0);
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut n: u64 = 0;
    loop {
        let due = start + Duration::from_micros((n as f64 * interval_us) as u64);
        tokio::time::sleep_until(due).await;
        let stop = stop_at.load(Ordering::SeqCst);
        if now_ms() >= stop {
            break;
        }
        let key = format!("{}-{n}", config.key_prefix);
        lock(&ledger).keys_used.push(key.clone());
        match Arc::clone(&in_flight).try_acquire_owned() {
            Ok(permit) => {
                let shop = shop.clone();
                let config = config.clone();
                let ledger = Arc::clone(&ledger);
                let stop_at = Arc::clone(&stop_at);
                let lines = lines_for(n, &config.products);
                tasks.spawn(async move {
                    checkout(&shop, &config, &key, lines, &stop_at, &ledger).await;
                    drop(permit);
                });
            }
            Err(_) => lock(&ledger).abandoned.push(Abandoned {
                idempotency_key: key,
                started_ms: now_ms(),
                attempts: 0,
                last_reason: format!(
                    "client saturated: {} checkouts already in flight",
                    config.max_in_flight
                ),
                client: config.client.clone(),
            }),
        }
        n += 1;
        // Reap finished checkouts as we go so the set does not grow with the whole run.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// One or two products, one to three of each, varying with `n`: lines worth checking, deterministic per key.
pub fn lines_for(n: u64, products: &[u64]) -> Vec<OrderLine> {
    if products.is_empty() {
        return Vec::new();
    }
    let count = products.len() as u64;
    let first_index = n % count;
    let mut lines = vec![OrderLine {
        product_id: products[first_index as usize],
        quantity: (n % 3) as u32 + 1,
    }];
    if n % 2 == 1 && count > 1 {
        // Any other product: an offset of 1..count-1 from the first.
        let second_index = (first_index + 1 + (n / 2) % (count - 1)) % count;
        lines.push(OrderLine {
            product_id: products[second_index as usize],
            quantity: ((n / 3) % 2) as u32 + 1,
        });
    }
    lines
}

enum Next {
    /// Try again (same key); keep the cart when it is complete.
    Retry { keep_cart: bool, after: Duration },
    /// Nothing more to try: the answer says this checkout cannot succeed.
    GiveUp,
}

/// Exponential backoff with full jitter, 100 ms doubling up to 1 s: while a region is down, a few hundred
/// checkouts in flight must not turn into a retry storm that buries the region taking over. New checkouts
/// keep arriving at the offered rate meanwhile, so the first success after a recovery is not delayed by it.
fn backoff(attempt: u32) -> Duration {
    let ceiling = (100u64 << attempt.saturating_sub(1).min(4)).min(1000);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(ceiling / 2 + 1)) as u64;
    Duration::from_millis(ceiling / 2 + jitter)
}

fn classify(error: &ClientError, attempt: u32) -> Next {
    let backoff = backoff(attempt);
    match error.code() {
        // The cart is gone (a failover to a database that never got it): start a new cart, same key.
        Some("unknown_cart" | "cart_not_found") => Next::Retry {
            keep_cart: false,
            after: backoff,
        },
        // The key already names an order for another cart: an earlier attempt's order exists, its answer
        // was lost. Nothing was acknowledged, so there is nothing to record.
        Some("idempotency_key_reused" | "cart_already_ordered") => Next::GiveUp,
        _ if error.is_write_refusal() || error.outcome_unknown() => {
            let after = match error {
                ClientError::Api {
                    retry_after_secs: Some(s),
                    ..
                } => Duration::from_secs(*s).min(backoff * 4),
                _ => backoff,
            };
            Next::Retry {
                keep_cart: true,
                after,
            }
        }
        // Other 4xx: the request itself is wrong; retrying it cannot help.
        _ if error
            .status()
            .is_some_and(|s| s.is_client_error() && s.as_u16() != 409 && s.as_u16() != 429) =>
        {
            Next::GiveUp
        }
        _ => Next::Retry {
            keep_cart: true,
            after: backoff,
        },
    }
}

/// The storefront's `created_at` (`2026-11-25T15:02:31.595284Z`) as Unix milliseconds.
fn parse_server_time(text: &str) -> Option<UnixMs> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

fn reason(error: &ClientError) -> String {
    match error {
        ClientError::Api { status, body, .. } => format!("{} {}", status.as_u16(), body.error),
        ClientError::Unexpected { status, .. } => format!("{} unexpected answer", status.as_u16()),
        ClientError::Transport { source, .. } if source.is_timeout() => "timeout".into(),
        ClientError::Transport { source, .. } if source.is_connect() => "connect".into(),
        ClientError::Transport { .. } => "transport".into(),
    }
}

async fn checkout(
    shop: &ShopClient,
    config: &LoadConfig,
    key: &str,
    lines: Vec<OrderLine>,
    stop_at: &AtomicI64,
    ledger: &Mutex<Ledger>,
) {
    let started_ms = now_ms();
    let mut cart: Option<String> = None;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let attempt_ms = now_ms();
        let result = async {
            let cart_id = match &cart {
                Some(id) => id.clone(),
                None => {
                    let created = shop.create_cart().await?;
                    for line in &lines {
                        shop.add_item(&created.value.id, line.product_id, i64::from(line.quantity))
                            .await?;
                    }
                    // Only a cart with every line in it is kept for retries; a half-built one is dropped so a
                    // retry can never double a line.
                    cart = Some(created.value.id.clone());
                    created.value.id
                }
            };
            shop.checkout(&cart_id, key).await
        }
        .await;
        match result {
            Ok(outcome) => {
                let ack = Ack {
                    idempotency_key: key.to_owned(),
                    order_id: outcome.order.id.clone(),
                    started_ms,
                    last_attempt_ms: attempt_ms,
                    acked_ms: now_ms(),
                    region: outcome
                        .region
                        .clone()
                        .unwrap_or_else(|| outcome.order.region.clone()),
                    epoch: outcome.epoch.unwrap_or(outcome.order.epoch),
                    lines,
                    attempts,
                    client: config.client.clone(),
                    replayed: outcome.replayed,
                    written_ms: parse_server_time(&outcome.order.created_at),
                };
                lock(ledger).acks.push(ack);
                return;
            }
            Err(error) => {
                let why = reason(&error);
                lock(ledger).failures.push(FailedAttempt {
                    idempotency_key: key.to_owned(),
                    at_ms: now_ms(),
                    reason: why.clone(),
                    client: config.client.clone(),
                });
                let deadline = stop_at
                    .load(Ordering::SeqCst)
                    .saturating_add(config.retry_grace.as_millis() as i64);
                let next = classify(&error, attempts);
                let give_up = matches!(next, Next::GiveUp)
                    || attempts >= config.max_attempts
                    || now_ms() >= deadline;
                if give_up {
                    lock(ledger).abandoned.push(Abandoned {
                        idempotency_key: key.to_owned(),
                        started_ms,
                        attempts,
                        last_reason: why,
                        client: config.client.clone(),
                    });
                    return;
                }
                if let Next::Retry { keep_cart, after } = next {
                    if !keep_cart {
                        cart = None;
                    }
                    tokio::time::sleep(after).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_times_parse_to_milliseconds() {
        assert_eq!(parse_server_time("1970-01-01T00:00:01.250000Z"), Some(1250));
        assert_eq!(parse_server_time("yesterday"), None);
    }

    #[test]
    fn backoff_grows_to_a_second_with_jitter() {
        for attempt in 1..20 {
            let ceiling = (100u64 << (attempt - 1).min(4)).min(1000);
            let b = backoff(attempt).as_millis() as u64;
            assert!(
                (ceiling / 2..=ceiling).contains(&b),
                "attempt {attempt}: {b} ms"
            );
        }
    }

    #[test]
    fn lines_vary_but_are_deterministic_and_never_repeat_a_product() {
        let products = [11, 12, 13];
        assert_eq!(
            lines_for(0, &products),
            vec![OrderLine {
                product_id: 11,
                quantity: 1
            }]
        );
        let l1 = lines_for(1, &products);
        assert_eq!(l1.len(), 2);
        assert_ne!(l1[0].product_id, l1[1].product_id);
        assert_eq!(lines_for(1, &products), l1);
        for n in 0..100 {
            let lines = lines_for(n, &products);
            assert!(lines.iter().all(|l| (1..=3).contains(&l.quantity)));
            assert!(lines.len() == 1 || lines[0].product_id != lines[1].product_id);
        }
        assert!(lines_for(5, &[]).is_empty());
    }
}
