//! The read budget of the control state (docs/aws-dr.md): an execution environment that renews on demand,
//! as the storefront does in Lambda, reads its control source at most once per lease however many requests
//! it serves at once, and not at all while the failed source is being retried too soon.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use lifeboat_contract::ControlState;
use storefront::control::{ControlError, ControlSource, DEFAULT_LEASE_MS};
use storefront::gate::WriteGate;
use storefront::metrics::Metrics;

/// A source that counts its reads and takes a few milliseconds to answer, like a DynamoDB Query.
struct Counting {
    reads: AtomicU64,
    failing: bool,
}

impl ControlSource for Counting {
    fn fetch(&self) -> BoxFuture<'_, Result<ControlState, ControlError>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if self.failing {
                return Err(ControlError {
                    source_name: "counting".into(),
                    message: "unreachable".into(),
                });
            }
            Ok(ControlState {
                active_region: "us-east-1".into(),
                epoch: 1,
                fence_raised: false,
                lease_ms: DEFAULT_LEASE_MS,
            })
        })
    }
    fn describe(&self) -> String {
        "counting".into()
    }
}

/// 64 concurrent requests, each asking for a write permit back to back for `run`; how many reads the
/// source saw and how many permits were granted.
async fn hammer(source: Arc<Counting>, run: Duration) -> (u64, u64) {
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .connect_lazy("mysql://unused@127.0.0.1:9/shop")
        .unwrap();
    let gate = WriteGate::new(
        "us-east-1",
        source.clone() as Arc<dyn ControlSource>,
        pool,
        Arc::new(Metrics::new()),
    );
    let granted = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + run;
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (gate, granted) = (Arc::clone(&gate), Arc::clone(&granted));
            tokio::spawn(async move {
                while Instant::now() < until {
                    if gate.permit().await.is_ok() {
                        granted.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (
        source.reads.load(Ordering::SeqCst),
        granted.load(Ordering::Relaxed),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_environment_reads_the_control_state_at_most_once_per_lease_under_any_load() {
    let run = Duration::from_millis(3500);
    let source = Arc::new(Counting {
        reads: AtomicU64::new(0),
        failing: false,
    });
    let (reads, granted) = hammer(Arc::clone(&source), run).await;
    let lease = Duration::from_millis(DEFAULT_LEASE_MS);
    // One read per started lease: ceil(run / lease).
    let bound = run.as_millis().div_ceil(lease.as_millis()) as u64;
    assert!(granted > 1000, "the requests were served: {granted}");
    assert!(
        reads <= bound,
        "{reads} control reads in {} ms with a {} ms lease (at most {bound})",
        run.as_millis(),
        lease.as_millis()
    );
    assert!(
        reads >= 3,
        "the state is renewed as leases run out: {reads}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_source_is_retried_at_most_ten_times_a_second_and_no_write_is_acknowledged()
{
    let run = Duration::from_millis(2000);
    let source = Arc::new(Counting {
        reads: AtomicU64::new(0),
        failing: true,
    });
    let (reads, granted) = hammer(Arc::clone(&source), run).await;
    assert_eq!(granted, 0, "no write without a confirmed control state");
    // A failed read holds the others off for 100 ms (plus the 5 ms the read took).
    assert!(
        reads <= 2 * 10 + 1,
        "{reads} reads of a failing source in {} ms",
        run.as_millis()
    );
}
