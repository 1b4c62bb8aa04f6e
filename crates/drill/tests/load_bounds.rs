//! The load generator against a shop that accepts connections and never answers (a region whose database
//! hangs): the client keeps its HTTP exchanges within its bound, sheds what it cannot carry, and accounts for
//! every checkout it started.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lifeboat_drill::ledger::Client;
use lifeboat_drill::load::{Load, LoadConfig};
use tokio::io::AsyncReadExt;

/// Accepts every connection and reads until the client hangs up, answering nothing. Returns its address and
/// the highest number of connections it held open at once.
async fn hanging_shop() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let peak_seen = Arc::clone(&peak);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let open = Arc::clone(&open);
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while matches!(socket.read(&mut buffer).await, Ok(n) if n > 0) {}
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (address, peak_seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_shop_never_holds_more_requests_than_the_bound_and_every_checkout_is_accounted_for()
 {
    let (address, server_peak) = hanging_shop().await;
    let mut config = LoadConfig::new(&address, 200.0, "bounds", Client::FrontDoor, vec![1, 2]);
    config.request_timeout = Duration::from_millis(300);
    config.retry_grace = Duration::from_millis(500);
    config.max_requests = 8;
    config.max_in_flight = 100;
    let load = Load::start(config).unwrap();
    let gauges = load.gauges();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    load.stop_now();
    let ledger = load.finish().await;

    let peaks = gauges.peaks();
    assert!(
        peaks.requests_in_flight <= 8,
        "the client held {} requests open at once, its bound is 8",
        peaks.requests_in_flight
    );
    assert_eq!(
        peaks.requests_in_flight, 8,
        "the bound was reached: {peaks:?}"
    );
    assert!(peaks.checkouts_in_flight <= 100, "{peaks:?}");
    // The server may see a closed connection a moment after the client has opened the next one.
    let server_peak = server_peak.load(Ordering::SeqCst);
    assert!(
        (1..=16).contains(&server_peak),
        "the hanging shop held {server_peak} connections at once"
    );
    assert!(ledger.acks.is_empty(), "nothing can be acknowledged");
    assert!(
        ledger
            .failures
            .iter()
            .any(|f| f.reason.starts_with("client saturated")),
        "attempts that found no free slot are recorded as such"
    );
    assert!(
        ledger
            .abandoned
            .iter()
            .any(|a| a.last_reason.contains("already in flight")),
        "checkouts beyond the in-flight bound are shed"
    );
    // 1.5 s at 200/s: about 300 checkouts started, every one of them given up and recorded once.
    assert!(ledger.keys_used.len() >= 200, "{}", ledger.keys_used.len());
    assert_eq!(ledger.abandoned.len(), ledger.keys_used.len());
    let mut keys: Vec<&str> = ledger
        .abandoned
        .iter()
        .map(|a| a.idempotency_key.as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(
        keys.len(),
        ledger.keys_used.len(),
        "one record per checkout"
    );
}
