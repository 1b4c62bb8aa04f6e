//! `/health/deep` is not an open door: with a health token configured, only requests carrying it get the full
//! report; everyone else gets the same status code with a minimal body, from a cached result, so a flood of
//! requests opens no database connection each (counted). Against MariaDB (`LIFEBOAT_TEST_MYSQL_URL`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestDb, active_state};
use storefront::api::health::TOKEN_HEADER;
use storefront::app::{HealthSettings, ImagesSpec, SessionsSpec, Settings};
use storefront::control::{ControlSpec, StaticControl};

const TOKEN: &str = "s3cr3t-health-token";

struct Server {
    base: String,
    state: storefront::api::SharedState,
    _db: TestDb,
}

async fn start(database_url: Option<String>, health: HealthSettings) -> Server {
    let db = TestDb::create().await;
    let settings = Settings {
        region: "us-east-1".into(),
        database_url: database_url.unwrap_or_else(|| db.url.clone()),
        control: ControlSpec::Static {
            active_region: "us-east-1".into(),
            epoch: 1,
        },
        sessions: SessionsSpec::Mysql,
        images: ImagesSpec::Local,
        assets_dir: None,
        max_connections: 4,
        serve_metrics: true,
        health,
        credentials: Default::default(),
    };
    let control = StaticControl::new(active_state("us-east-1", 1));
    let state = storefront::app::build_with_control(&settings, Arc::new(control))
        .await
        .unwrap();
    let _ = storefront::db::prepare(&state.pool).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = storefront::router(Arc::clone(&state));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server {
        base,
        state,
        _db: db,
    }
}

fn guarded(cache_for: Duration) -> HealthSettings {
    HealthSettings {
        token: Some(TOKEN.into()),
        cache_for,
    }
}

async fn get(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.header(TOKEN_HEADER, token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn without_the_token_the_answer_is_minimal_and_many_requests_probe_the_database_once() {
    let server = start(None, guarded(Duration::from_secs(60))).await;
    let url = format!("{}/health/deep?expect=active", server.base);
    let before = server.state.health.probes();
    let mut requests = Vec::new();
    for _ in 0..40 {
        let url = url.clone();
        requests.push(tokio::spawn(async move { get(&url, None).await }));
    }
    for request in requests {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200);
        // Nothing about the control state, the database or errors.
        assert_eq!(body, serde_json::json!({ "status": "ok" }));
    }
    assert_eq!(
        server.state.health.probes() - before,
        1,
        "40 requests without the token probed the database more than once"
    );
    // A wrong token is no token.
    let (status, body) = get(&url, Some("guess")).await;
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::json!({ "status": "ok" }));
    assert_eq!(server.state.health.probes() - before, 1);

    // The checker's token gets today's full answer, computed for it.
    let (status, body) = get(&url, Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["role"], "active");
    assert_eq!(body["database"]["reachable"], true);
    assert_eq!(server.state.health.probes() - before, 2);
}

#[tokio::test]
async fn the_cached_status_code_is_the_real_one_and_is_refreshed_after_the_interval() {
    // A database nobody can reach: deep health is 503 for everyone.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let server = start(
        Some(format!("mysql://nobody:nothing@127.0.0.1:{port}/shop")),
        guarded(Duration::from_millis(1500)),
    )
    .await;
    let url = format!("{}/health/deep", server.base);
    let (status, body) = get(&url, None).await;
    assert_eq!(status, 503);
    assert_eq!(body, serde_json::json!({ "status": "unavailable" }));
    let (status, body) = get(&url, Some(TOKEN)).await;
    assert_eq!(status, 503);
    assert!(
        body["database"]["error"].is_string(),
        "the checker sees why: {body}"
    );
    let probes = server.state.health.probes();
    get(&url, None).await;
    assert_eq!(
        server.state.health.probes(),
        probes,
        "served from the cache"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (status, _) = get(&url, None).await;
    assert_eq!(status, 503);
    assert_eq!(
        server.state.health.probes(),
        probes + 1,
        "refreshed once after the interval"
    );
    // A bad `expect` is still refused before anything is probed.
    let (status, _) = get(&format!("{url}?expect=primary"), None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn without_a_configured_token_everyone_gets_the_full_report() {
    let server = start(None, HealthSettings::default()).await;
    let url = format!("{}/health/deep", server.base);
    let before = server.state.health.probes();
    for _ in 0..3 {
        let (status, body) = get(&url, None).await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "healthy");
        assert!(body["control"].is_object());
    }
    assert_eq!(server.state.health.probes() - before, 3);
}
