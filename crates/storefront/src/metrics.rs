//! Prometheus metrics, rendered as text at `/metrics` when the service runs as a local server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::gate::Refusal;

/// Upper bounds (seconds) of the request duration histogram.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Default)]
pub struct Metrics {
    /// (route, method, status) → count.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// route → durations.
    durations: Mutex<BTreeMap<String, Histogram>>,
    gate_refusals: [AtomicU64; Refusal::ALL.len()],
    control_refresh_ok: AtomicU64,
    control_refresh_failed: AtomicU64,
    orders_created: AtomicU64,
    commits_unconfirmed: AtomicU64,
    checkout_replays: AtomicU64,
}

/// Values read at scrape time from the rest of the service.
pub struct Gauges {
    pub region: String,
    pub epoch: Option<u64>,
    pub control_age_seconds: Option<f64>,
    pub writes_allowed_by_control: bool,
    pub db_pool_size: u32,
    pub db_pool_idle: usize,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        *lock(&self.requests)
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        let mut durations = lock(&self.durations);
        let h = durations.entry(route.to_owned()).or_default();
        h.count += 1;
        h.sum_seconds += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
    }

    pub fn gate_refusal(&self, why: Refusal) {
        let i = Refusal::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.gate_refusals[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn control_refresh(&self, ok: bool) {
        let c = if ok {
            &self.control_refresh_ok
        } else {
            &self.control_refresh_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn commit_unconfirmed(&self) {
        self.commits_unconfirmed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn order_created(&self) {
        self.orders_created.fetch_add(1, Ordering::Relaxed);
    }

    pub fn checkout_replayed(&self) {
        self.checkout_replays.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let region = escape(&gauges.region);
        let _ = writeln!(
            out,
            "# HELP storefront_http_requests_total HTTP requests answered, by route, method and status."
        );
        let _ = writeln!(out, "# TYPE storefront_http_requests_total counter");
        for ((route, method, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "storefront_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(route),
                escape(method)
            );
        }
        let _ = writeln!(
            out,
            "# HELP storefront_http_request_duration_seconds Time to answer, by route."
        );
        let _ = writeln!(
            out,
            "# TYPE storefront_http_request_duration_seconds histogram"
        );
        for (route, h) in lock(&self.durations).iter() {
            let route = escape(route);
            for (bound, n) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "storefront_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "storefront_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "storefront_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum_seconds
            );
            let _ = writeln!(
                out,
                "storefront_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP storefront_write_refusals_total Writes refused by the write gate, by reason."
        );
        let _ = writeln!(out, "# TYPE storefront_write_refusals_total counter");
        for (why, n) in Refusal::ALL.iter().zip(self.gate_refusals.iter()) {
            let _ = writeln!(
                out,
                "storefront_write_refusals_total{{reason=\"{}\"}} {}",
                why.code(),
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP storefront_control_refreshes_total Control state fetches, by outcome."
        );
        let _ = writeln!(out, "# TYPE storefront_control_refreshes_total counter");
        let _ = writeln!(
            out,
            "storefront_control_refreshes_total{{outcome=\"ok\"}} {}",
            self.control_refresh_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "storefront_control_refreshes_total{{outcome=\"failed\"}} {}",
            self.control_refresh_failed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP storefront_orders_created_total Orders written (replays not counted)."
        );
        let _ = writeln!(out, "# TYPE storefront_orders_created_total counter");
        let _ = writeln!(
            out,
            "storefront_orders_created_total {}",
            self.orders_created.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP storefront_commits_unconfirmed_total Writes committed but not acknowledged: the write permit lapsed during the commit."
        );
        let _ = writeln!(out, "# TYPE storefront_commits_unconfirmed_total counter");
        let _ = writeln!(
            out,
            "storefront_commits_unconfirmed_total {}",
            self.commits_unconfirmed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP storefront_checkout_replays_total Checkouts answered with an existing order for their key."
        );
        let _ = writeln!(out, "# TYPE storefront_checkout_replays_total counter");
        let _ = writeln!(
            out,
            "storefront_checkout_replays_total {}",
            self.checkout_replays.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP storefront_control_epoch Fencing epoch of the last control state fetched."
        );
        let _ = writeln!(out, "# TYPE storefront_control_epoch gauge");
        if let Some(epoch) = gauges.epoch {
            let _ = writeln!(
                out,
                "storefront_control_epoch{{region=\"{region}\"}} {epoch}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP storefront_control_age_seconds Age of the last control state fetched."
        );
        let _ = writeln!(out, "# TYPE storefront_control_age_seconds gauge");
        if let Some(age) = gauges.control_age_seconds {
            let _ = writeln!(
                out,
                "storefront_control_age_seconds{{region=\"{region}\"}} {age}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP storefront_writes_allowed 1 when the control state lets this region write now."
        );
        let _ = writeln!(out, "# TYPE storefront_writes_allowed gauge");
        let _ = writeln!(
            out,
            "storefront_writes_allowed{{region=\"{region}\"}} {}",
            u8::from(gauges.writes_allowed_by_control)
        );
        let _ = writeln!(
            out,
            "# HELP storefront_db_pool_connections Database pool connections, by state."
        );
        let _ = writeln!(out, "# TYPE storefront_db_pool_connections gauge");
        let _ = writeln!(
            out,
            "storefront_db_pool_connections{{state=\"open\"}} {}",
            gauges.db_pool_size
        );
        let _ = writeln!(
            out,
            "storefront_db_pool_connections{{state=\"idle\"}} {}",
            gauges.db_pool_idle
        );
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters only grow; a panic mid-update loses at most one increment.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram_buckets() {
        let m = Metrics::new();
        m.record_request("/products/{id}", "GET", 200, Duration::from_millis(3));
        m.record_request("/products/{id}", "GET", 200, Duration::from_millis(30));
        m.gate_refusal(Refusal::StaleEpoch);
        let text = m.render(&Gauges {
            region: "us-east-1".into(),
            epoch: Some(3),
            control_age_seconds: Some(0.1),
            writes_allowed_by_control: true,
            db_pool_size: 2,
            db_pool_idle: 1,
        });
        assert!(text.contains(r#"storefront_http_requests_total{route="/products/{id}",method="GET",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"storefront_http_request_duration_seconds_bucket{route="/products/{id}",le="0.005"} 1"#), "{text}");
        assert!(text.contains(r#"storefront_http_request_duration_seconds_bucket{route="/products/{id}",le="0.05"} 2"#), "{text}");
        assert!(
            text.contains(r#"storefront_write_refusals_total{reason="stale_epoch"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"storefront_control_epoch{region="us-east-1"} 3"#),
            "{text}"
        );
    }
}
