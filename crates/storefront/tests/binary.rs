//! The real `storefront` binary: flags and environment, `migrate`, and a cart → checkout → order round trip
//! over HTTP, then the fence raised through a control file (writes 503, reads 200).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Server, TestDb, migrate};
use storefront::Client;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_control(path: &std::path::Path, fence_raised: bool) {
    let state = serde_json::json!({ "active_region": "us-east-1", "epoch": 3, "fence_raised": fence_raised, "lease_ms": 300 });
    // Write then rename, so the server never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, state.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn the_binary_serves_a_round_trip_and_obeys_the_fence() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.json");
    write_control(&control, false);

    migrate(&db.url);

    let port = free_port();
    let child = Command::new(BIN)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--region",
            "us-east-1",
        ])
        .arg("--control")
        .arg(format!("file:{}", control.display()))
        .env("DATABASE_URL", &db.url)
        .env("STOREFRONT_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(child);
    let client = Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let started = Instant::now();
    // Ready when the catalog is seeded and the instance is fit to write.
    loop {
        if let Ok(h) = client.health_deep(Some("active")).await
            && h.status == 200
            && client.products().await.is_ok_and(|p| !p.is_empty())
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the storefront did not become ready in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let cart = client.create_cart().await.unwrap();
    assert_eq!(cart.epoch, Some(3));
    client.add_item(&cart.value.id, 5, 2).await.unwrap();
    let first = client.checkout(&cart.value.id, "binary-1").await.unwrap();
    assert!(!first.replayed);
    let again = client.checkout(&cart.value.id, "binary-1").await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.order, first.order);
    assert_eq!(
        client.order(&first.order.id).await.unwrap(),
        Some(first.order.clone())
    );

    write_control(&control, true);
    let deadline = Instant::now() + Duration::from_secs(5);
    let refusal = loop {
        match client.create_cart().await {
            Err(e) if e.is_write_refusal() => break e,
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "the raised fence was not obeyed within 5 s"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(refusal.code(), Some("write_fenced"));
    assert_eq!(refusal.status().map(|s| s.as_u16()), Some(503));
    assert!(
        client.product(5).await.is_ok(),
        "reads answer 200 under the fence"
    );
    assert_eq!(
        client.order(&first.order.id).await.unwrap(),
        Some(first.order)
    );
}

#[test]
fn missing_settings_are_usage_errors() {
    let out = Command::new(BIN)
        .env_remove("DATABASE_URL")
        .env("LIFEBOAT_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(lifeboat_contract::exit::USAGE));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
    let out = Command::new(BIN)
        .args(["--control", "ftp://x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(lifeboat_contract::exit::USAGE));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected static:"));
}

#[test]
fn migrate_against_an_unreachable_database_says_so() {
    let port = free_port();
    let out = Command::new(BIN)
        .arg("migrate")
        .env("DATABASE_URL", format!("mysql://x:y@127.0.0.1:{port}/shop"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(lifeboat_contract::exit::UNAVAILABLE)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the database"));
}
