//! The load generator: real checkouts at a fixed rate, each recorded in the client ledger.
//!
//! Open loop: checkout `n` starts at `start + n / rate` whatever happened to the ones before it, as real
//! customers do; a slow or failing server does not slow the offered load down. Each checkout is a fresh cart,
//! its items and a checkout with a unique Idempotency-Key. A failed checkout is retried with the *same* key
//! (so a retry can never create a second order), bounded in attempts and in time.
//!
//! Two bounds keep the client from burying the machine it shares with the shop while the shop is down: at
//! most [`LoadConfig::max_in_flight`] checkouts are in progress (a new one beyond that is abandoned unsent, as
//! a customer who cannot even reach the page), and at most [`LoadConfig::max_requests`] HTTP exchanges are
//! open at once (an attempt that finds every slot taken for a whole request timeout counts as a failed
//! attempt and backs off). Without the second bound a 200/s load against a region that hangs kept every
//! retry's connection open: 10,900 established connections on the host, and the drill's own reads of the
//! control state failed behind them.

use crate::ledger::{Abandoned, Ack, Client, FailedAttempt, Ledger, OrderLine, UnixMs, now_ms};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
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
    /// HTTP exchanges open at once, over all checkouts (an attempt holds one slot for its requests).
    pub max_requests: usize,
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
            // Ten seconds of offered load retrying at once: a recovery a drill expects (a few seconds) fits,
            // and a longer outage sheds new checkouts instead of piling them up.
            max_in_flight: ((rate * 10.0) as usize).clamp(64, 2000),
            // A healthy shop answers a checkout in tens of milliseconds, so a 200/s load needs a few dozen
            // slots; 256 leaves room for a slow region without letting hanging requests take the host's
            // connections.
            max_requests: 256,
        }
    }
}

/// A running load. Stop it with [`Load::stop_at`] / [`Load::stop_now`], then [`Load::finish`] for the
/// ledger.
pub struct Load {
    stop_at: Arc<AtomicI64>,
    started_ms: UnixMs,
    ledger: Arc<Mutex<Ledger>>,
    gauges: Arc<ClientGauges>,
    scheduler: tokio::task::JoinHandle<()>,
}

/// How busy the client was: current and highest counts of checkouts in progress and of open HTTP
/// exchanges. The highest counts go into the drill report, so a run that saturated its own client says so.
#[derive(Debug, Default)]
pub struct ClientGauges {
    checkouts: AtomicUsize,
    checkouts_peak: AtomicUsize,
    requests: AtomicUsize,
    requests_peak: AtomicUsize,
}

/// The highest counts a load reached ([`ClientGauges::peaks`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientPeaks {
    pub checkouts_in_flight: usize,
    pub requests_in_flight: usize,
}

impl ClientGauges {
    pub fn peaks(&self) -> ClientPeaks {
        ClientPeaks {
            checkouts_in_flight: self.checkouts_peak.load(Ordering::Relaxed),
            requests_in_flight: self.requests_peak.load(Ordering::Relaxed),
        }
    }

    fn enter(count: &AtomicUsize, peak: &AtomicUsize) {
        let now = count.fetch_add(1, Ordering::Relaxed) + 1;
        peak.fetch_max(now, Ordering::Relaxed);
    }

    fn leave(count: &AtomicUsize) {
        count.fetch_sub(1, Ordering::Relaxed);
    }
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
            .pool_max_idle_per_host(config.max_requests)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| LoadError::Http(e.to_string()))?;
        let shop = ShopClient::with_http(http, &config.base_url);
        let stop_at = Arc::new(AtomicI64::new(i64::MAX));
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let gauges = Arc::new(ClientGauges::default());
        let started_ms = now_ms();
        let scheduler = tokio::spawn(schedule(
            shop,
            config,
            Arc::clone(&stop_at),
            Arc::clone(&ledger),
            Arc::clone(&gauges),
        ));
        Ok(Load {
            stop_at,
            started_ms,
            ledger,
            gauges,
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

    /// The client's load gauges; they stay readable after [`Load::finish`].
    pub fn gauges(&self) -> Arc<ClientGauges> {
        Arc::clone(&self.gauges)
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
    gauges: Arc<ClientGauges>,
) {
    let interval_us = (1_000_000.0 / config.rate).max(1.0);
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight));
    let requests = Arc::new(Semaphore::new(config.max_requests));
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
                let requests = Arc::clone(&requests);
                let gauges = Arc::clone(&gauges);
                tasks.spawn(async move {
                    ClientGauges::enter(&gauges.checkouts, &gauges.checkouts_peak);
                    let limits = Limits {
                        requests: &requests,
                        gauges: &gauges,
                    };
                    checkout(&shop, &config, &key, lines, &stop_at, &ledger, limits).await;
                    ClientGauges::leave(&gauges.checkouts);
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

/// The shared bounds one checkout's attempts run under.
struct Limits<'a> {
    requests: &'a Semaphore,
    gauges: &'a ClientGauges,
}

/// Why an attempt did not get to the shop at all.
const SATURATED: &str = "client saturated: no free request slot";

async fn checkout(
    shop: &ShopClient,
    config: &LoadConfig,
    key: &str,
    lines: Vec<OrderLine>,
    stop_at: &AtomicI64,
    ledger: &Mutex<Ledger>,
    limits: Limits<'_>,
) {
    let started_ms = now_ms();
    let mut cart: Option<String> = None;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let attempt_ms = now_ms();
        // One slot for the whole attempt (cart, lines, checkout): an attempt is what a customer's browser does
        // in one go. Waiting longer than a request would have is a failed attempt like a timeout.
        let slot =
            match tokio::time::timeout(config.request_timeout, limits.requests.acquire()).await {
                Ok(Ok(slot)) => slot,
                _ => {
                    if !retry_after_failure(
                        config, key, started_ms, attempts, SATURATED, stop_at, ledger,
                    ) {
                        return;
                    }
                    tokio::time::sleep(backoff(attempts)).await;
                    continue;
                }
            };
        ClientGauges::enter(&limits.gauges.requests, &limits.gauges.requests_peak);
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
        ClientGauges::leave(&limits.gauges.requests);
        drop(slot);
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
                let next = classify(&error, attempts);
                let Next::Retry { keep_cart, after } = next else {
                    record_failure(config, key, &reason(&error), ledger);
                    abandon(config, key, started_ms, attempts, &reason(&error), ledger);
                    return;
                };
                if !retry_after_failure(
                    config,
                    key,
                    started_ms,
                    attempts,
                    &reason(&error),
                    stop_at,
                    ledger,
                ) {
                    return;
                }
                if !keep_cart {
                    cart = None;
                }
                tokio::time::sleep(after).await;
            }
        }
    }
}

/// Records a failed attempt and whether the checkout may try again (attempts and time left); when it may
/// not, it is recorded as abandoned.
fn retry_after_failure(
    config: &LoadConfig,
    key: &str,
    started_ms: UnixMs,
    attempts: u32,
    why: &str,
    stop_at: &AtomicI64,
    ledger: &Mutex<Ledger>,
) -> bool {
    record_failure(config, key, why, ledger);
    let deadline = stop_at
        .load(Ordering::SeqCst)
        .saturating_add(config.retry_grace.as_millis() as i64);
    if attempts >= config.max_attempts || now_ms() >= deadline {
        abandon(config, key, started_ms, attempts, why, ledger);
        return false;
    }
    true
}

fn record_failure(config: &LoadConfig, key: &str, why: &str, ledger: &Mutex<Ledger>) {
    lock(ledger).failures.push(FailedAttempt {
        idempotency_key: key.to_owned(),
        at_ms: now_ms(),
        reason: why.to_owned(),
        client: config.client.clone(),
    });
}

fn abandon(
    config: &LoadConfig,
    key: &str,
    started_ms: UnixMs,
    attempts: u32,
    why: &str,
    ledger: &Mutex<Ledger>,
) {
    lock(ledger).abandoned.push(Abandoned {
        idempotency_key: key.to_owned(),
        started_ms,
        attempts,
        last_reason: why.to_owned(),
        client: config.client.clone(),
    });
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
