//! The storefront's OpenAPI document as an exact contract: Schemathesis, a property-based API fuzzer, reads
//! `/openapi.json` from the real `storefront` binary (on MariaDB, active under a control file) and sends what
//! the document calls valid and invalid — every operation, edge values of every bound, and stateful
//! sequences along the document's links (cart → items → checkout → order). Every check must hold: no 5xx
//! where none is documented, only documented status codes, content types, headers and bodies, valid requests
//! accepted, invalid ones refused. What the settings mean is in `tests/fuzz/schemathesis.toml`.
//!
//! Needs `LIFEBOAT_TEST_MYSQL_URL` and `LIFEBOAT_SCHEMATHESIS` (the path of `schemathesis`); `scripts/test`
//! sets both.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Server, TestDb, migrate};
use storefront::Client;

/// Starts the binary on port 0 and returns it with the address it reports in its `listening` log line (no
/// port is chosen before the server binds it, so none can be taken in between).
fn start(db_url: &str, control: &std::path::Path) -> (Server, String) {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--region", "us-east-1"])
        .arg("--control")
        .arg(format!("file:{}", control.display()))
        .env("DATABASE_URL", db_url)
        .env("STOREFRONT_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    // Keeps reading after the address is found, so a chatty server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if sent {
                continue;
            }
            let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if let Some(address) = entry["fields"]["address"].as_str() {
                let _ = address_tx.send(address.to_owned());
                sent = true;
            }
        }
    });
    let address = address_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the storefront logged no `listening` address within 20 s");
    (server, address)
}

fn schemathesis() -> PathBuf {
    std::env::var_os("LIFEBOAT_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "LIFEBOAT_SCHEMATHESIS is not set: point it at schemathesis (scripts/test installs it and sets it)"
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_the_document_allows_or_forbids_is_answered_as_documented() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.json");
    std::fs::write(
        &control,
        r#"{"active_region":"us-east-1","epoch":3,"fence_raised":false,"lease_ms":300000}"#,
    )
    .unwrap();
    migrate(&db.url);
    let (_server, address) = start(&db.url, &control);
    let base = format!("http://{address}");
    let client = Client::new(&base).unwrap();
    let started = Instant::now();
    while !client
        .health_deep(Some("active"))
        .await
        .is_ok_and(|h| h.status == 200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the storefront was not fit to write within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/schemathesis.toml");
    let reports = dir.path().join("reports");
    let output = tokio::process::Command::new(schemathesis())
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        // Fixed seed: the same requests on every run, so a failure reproduces (the output says how). One
        // worker: with two threads Hypothesis 6's lambda-description cache races and the coverage phase
        // reports an internal "AST constructor recursion depth mismatch" error now and then.
        .args(["--seed", "1", "--max-examples", "50", "--workers", "1"])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&reports)
        .output()
        .await
        .expect("schemathesis runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures (exit {}):\n{text}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // A run that tested nothing would also exit 0: every operation and every phase must have run.
    assert!(
        text.contains("Selected: 11/11") && text.contains("Tested: 11"),
        "not every operation of the document was tested:\n{text}"
    );
    for phase in ["Coverage", "Fuzzing", "Stateful"] {
        assert!(
            text.contains(&format!("✅ {phase}")),
            "the {phase} phase did not pass:\n{text}"
        );
    }
    let pool = sqlx::MySqlPool::connect(&db.url).await.unwrap();
    let orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        orders > 0,
        "the stateful sequences never reached a checkout:\n{text}"
    );
}
