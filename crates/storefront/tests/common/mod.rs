//! Helpers shared by the integration tests: a database of its own per test, and an in-process server.
#![allow(
    dead_code,
    reason = "shared by several test binaries, each of which uses part of it"
)]

use std::sync::Arc;

use lifeboat_contract::ControlState;
use sqlx::MySqlPool;
use storefront::Client;
use storefront::api::SharedState;
use storefront::app::{ImagesSpec, SessionsSpec, Settings};
use storefront::control::{ControlSpec, StaticControl};

/// The server `scripts/test` starts. Tests fail (never skip) without it.
pub fn server_url() -> String {
    std::env::var("LIFEBOAT_TEST_MYSQL_URL").unwrap_or_else(|_| {
        panic!(
            "LIFEBOAT_TEST_MYSQL_URL is not set: these tests need a MariaDB server. Run ./scripts/test, or start one \
             with `source scripts/lib.sh; start_mariadb DIR` and export the variable it sets."
        )
    })
}

/// A database created for one test and dropped when the test ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
    server: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let server = server_url();
        let name = format!("sf_{}", uuid::Uuid::new_v4().simple());
        let admin = MySqlPool::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {server}: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let url = format!("{}/{name}", server.trim_end_matches('/'));
        Self { name, url, server }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Drop runs outside any async context we could borrow; a short-lived runtime on its own thread does it.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(admin) = MySqlPool::connect(&server).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS `{name}`"
                    )))
                    .execute(&admin)
                    .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub db: TestDb,
    pub base: String,
    pub client: Client,
    pub control: StaticControl,
    pub state: SharedState,
    /// A separate pool for assertions on what was (not) written.
    pub pool: MySqlPool,
    pub http: reqwest::Client,
}

pub fn active_state(region: &str, epoch: u64) -> ControlState {
    ControlState {
        active_region: region.into(),
        epoch,
        fence_raised: false,
        lease_ms: 1000,
    }
}

impl TestApp {
    /// An instance in us-east-1, active at epoch 1, on a fresh migrated and seeded database.
    pub async fn start() -> Self {
        Self::start_with("us-east-1", active_state("us-east-1", 1)).await
    }

    pub async fn start_with(region: &str, state: ControlState) -> Self {
        let db = TestDb::create().await;
        Self::start_on(db, region, state).await
    }

    pub async fn start_on(db: TestDb, region: &str, state: ControlState) -> Self {
        let control = StaticControl::new(state);
        let settings = Settings {
            region: region.into(),
            database_url: db.url.clone(),
            control: ControlSpec::Static {
                active_region: region.into(),
                epoch: 1,
            },
            sessions: SessionsSpec::Mysql,
            images: ImagesSpec::Local,
            assets_dir: None,
            max_connections: 16,
            serve_metrics: true,
            health: Default::default(),
            credentials: Default::default(),
        };
        let app_state = storefront::app::build_with_control(&settings, Arc::new(control.clone()))
            .await
            .unwrap();
        storefront::db::prepare(&app_state.pool).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = storefront::router(Arc::clone(&app_state));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let pool = MySqlPool::connect(&db.url).await.unwrap();
        Self {
            client: Client::new(&base).unwrap(),
            base,
            control,
            state: app_state,
            pool,
            db,
            http: reqwest::Client::new(),
        }
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn fence_epoch(&self) -> u64 {
        sqlx::query_scalar("SELECT epoch FROM lifeboat_fence WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A cart holding one product.
    pub async fn filled_cart(&self) -> String {
        let cart = self.client.create_cart().await.unwrap().value;
        self.client.add_item(&cart.id, 1, 2).await.unwrap();
        cart.id
    }
}

/// Assert a response is a JSON error with this status and code; returns the body.
pub async fn expect_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    let got = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap();
    assert_eq!(
        got, status,
        "expected HTTP {status} {code}, got {got}: {text}"
    );
    assert!(
        content_type.starts_with("application/json"),
        "error without JSON content type ({content_type}): {text}"
    );
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

/// The `storefront` binary of this crate.
pub const BIN: &str = env!("CARGO_BIN_EXE_storefront");

/// A `storefront` process, killed when the test ends.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `storefront migrate` against `db_url`; panics with its stderr when it fails.
pub fn migrate(db_url: &str) {
    let migrate = std::process::Command::new(BIN)
        .arg("migrate")
        .env("DATABASE_URL", db_url)
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "migrate failed: {}",
        String::from_utf8_lossy(&migrate.stderr)
    );
}
