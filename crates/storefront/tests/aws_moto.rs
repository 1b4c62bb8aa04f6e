//! The storefront's AWS code paths, driven through the real `storefront` binary (built with `aws`) configured as
//! on AWS, against the local AWS endpoint (moto, `LIFEBOAT_TEST_AWS_ENDPOINT`) and a real MariaDB
//! (`LIFEBOAT_TEST_MYSQL_URL`): carts in DynamoDB, the write gate fed from SSM Parameter Store, product images as
//! presigned S3 URLs.
//!
//! Every test names its resources after a project of its own (`lifeboat_config::Names`, as the platform and the
//! orchestrator do), so the tests share one endpoint and run in parallel; nothing here resets the endpoint.
//! Effects are checked through the API and in the stores themselves, so a call the emulator silently ignored
//! would fail a test rather than pass it.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_ssm::types::ParameterType;
use common::{TestDb, expect_error};
use lifeboat_config::Config;
use serde_json::json;
use sqlx::MySqlPool;
use storefront::Client;
use storefront::model::{Cart, CartItem};

const BIN: &str = env!("CARGO_BIN_EXE_storefront");
const REGION: &str = "us-east-1";
const STANDBY: &str = "us-west-2";

fn aws_endpoint() -> String {
    std::env::var("LIFEBOAT_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "LIFEBOAT_TEST_AWS_ENDPOINT is not set: these tests need a local AWS endpoint (moto). Run ./scripts/test, \
             or start one with `source scripts/lib.sh; start_moto DIR` and export the variable it sets."
        )
    })
}

async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(aws_endpoint())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

/// A project of its own: physical names as the platform derives them, unique to this test.
fn test_config() -> Config {
    let name = format!("sf{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    Config::from_toml_str(
        &format!(
            "[project]\nname = \"{name}\"\nenvironment = \"test\"\n[certificates]\nallow_insecure_http = true\n"
        ),
        "test.toml",
    )
    .unwrap()
}

/// AWS clients aimed at the local endpoint.
struct Aws {
    dynamo: aws_sdk_dynamodb::Client,
    ssm: aws_sdk_ssm::Client,
    s3: aws_sdk_s3::Client,
}

impl Aws {
    async fn new() -> Self {
        let config = sdk_config().await;
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build();
        Self {
            dynamo: aws_sdk_dynamodb::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3),
        }
    }

    /// The sessions table with the key and TTL attribute the platform's storage stack declares.
    async fn create_sessions_table(&self, table: &str) {
        let key = lifeboat_platform::storage::SESSIONS_KEY;
        self.dynamo
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(key)
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "creating table {table}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )
            });
        self.dynamo
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(lifeboat_platform::storage::SESSIONS_TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Every item of a table, read consistently.
    async fn items(&self, table: &str) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        self.dynamo
            .scan()
            .table_name(table)
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items()
            .to_vec()
    }

    /// A control parameter, written the way the orchestrator writes it (String, overwrite).
    async fn put_param(&self, name: &str, value: &str) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "writing {name}: {}",
                    aws_sdk_ssm::error::DisplayErrorContext(e)
                )
            });
    }
}

/// The real binary, killed when dropped; its log is kept for failure messages.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Start `storefront` in `REGION` on `db` with these extra flags, configured from the environment the way
    /// Lambda configures it (static credentials, the endpoint through `AWS_ENDPOINT_URL`).
    fn start(db: &TestDb, flags: &[String]) -> Self {
        let mut args = vec!["--region".to_owned(), REGION.to_owned()];
        args.extend_from_slice(flags);
        Self::start_with(&args, &[("DATABASE_URL", db.url.as_str())])
    }

    /// Start `storefront` with these flags and variables only (besides the AWS endpoint and credentials).
    fn start_with(flags: &[String], vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("storefront.log");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(BIN);
        command
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(flags);
        // Nothing of the surrounding environment may configure the instance behind the test's back.
        for (name, _) in std::env::vars() {
            if name.starts_with("STOREFRONT_")
                || name.starts_with("AWS_")
                || name.starts_with("DATABASE_")
                || name.starts_with("LIFEBOAT_")
                || ["SESSIONS_TABLE", "ASSETS_BUCKET", "CONTROL_SSM_PREFIX"]
                    .contains(&name.as_str())
            {
                command.env_remove(name);
            }
        }
        let child = command
            .envs(vars.iter().copied())
            .env("AWS_ENDPOINT_URL", aws_endpoint())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Wait until the catalog is served (and, with `active`, until the instance is fit to write).
    async fn ready(&self, active: bool) -> Client {
        let client = Client::new(&self.base).unwrap();
        let started = Instant::now();
        loop {
            let catalog = client.products().await.is_ok_and(|p| !p.is_empty());
            let fit = !active
                || client
                    .health_deep(Some("active"))
                    .await
                    .is_ok_and(|h| h.status == 200);
            if catalog && fit {
                return client;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "storefront not ready after 30 s; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn count(pool: &MySqlPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn post_json(
    http: &reqwest::Client,
    url: String,
    body: serde_json::Value,
) -> reqwest::Response {
    http.post(url).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn carts_live_in_dynamodb_and_follow_the_cart_rules() {
    let config = test_config();
    let table = config.names().sessions_table();
    let aws = Aws::new().await;
    aws.create_sessions_table(&table).await;
    let db = TestDb::create().await;
    let server = Server::start(&db, &[format!("--sessions=dynamodb:{table}")]);
    let client = server.ready(true).await;
    let pool = MySqlPool::connect(&db.url).await.unwrap();
    let http = reqwest::Client::new();

    let health = client.health_deep(None).await.unwrap();
    assert_eq!(
        health.report["session_store"]["kind"], "dynamodb",
        "{}",
        health.report
    );
    assert_eq!(
        health.report["session_store"]["ok"], true,
        "{}",
        health.report
    );

    // Create, add, read back: quantities of one product add up, as with the MySQL store.
    let created = client.create_cart().await.unwrap();
    assert_eq!(created.region.as_deref(), Some(REGION));
    assert_eq!(created.epoch, Some(1));
    assert_eq!(created.value.items, vec![]);
    let id = created.value.id;
    client.add_item(&id, 3, 2).await.unwrap();
    client.add_item(&id, 10, 5).await.unwrap();
    let cart = client.add_item(&id, 3, 1).await.unwrap().value;
    let expected = Cart {
        id: id.clone(),
        items: vec![
            CartItem {
                product_id: 3,
                quantity: 3,
            },
            CartItem {
                product_id: 10,
                quantity: 5,
            },
        ],
        version: 3,
    };
    assert_eq!(cart, expected);
    assert_eq!(client.cart(&id).await.unwrap(), expected);

    // The cart is a DynamoDB item (and not a row of the database's carts table), with the TTL attribute set.
    assert_eq!(count(&pool, "carts").await, 0, "the cart went to MySQL");
    let items = aws.items(&table).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_eq!(
        item[lifeboat_platform::storage::SESSIONS_KEY]
            .as_s()
            .unwrap(),
        &id
    );
    let stored: Vec<CartItem> = serde_json::from_str(item["items"].as_s().unwrap()).unwrap();
    assert_eq!(stored, expected.items);
    assert_eq!(item["version"].as_n().unwrap(), "3");
    let expires_at: u64 = item[lifeboat_platform::storage::SESSIONS_TTL_ATTRIBUTE]
        .as_n()
        .unwrap()
        .parse()
        .unwrap();
    let ttl = storefront::sessions::CART_TTL.as_secs();
    assert!(
        expires_at > unix_now() + ttl - 300 && expires_at <= unix_now() + ttl,
        "expires_at {expires_at} is not about {ttl} s ahead"
    );

    // Bad input: the same answers as with the MySQL store, and the cart is left alone.
    let items_url = server.url(&format!("/carts/{id}/items"));
    for quantity in [0, -1, 101] {
        let r = post_json(
            &http,
            items_url.clone(),
            json!({ "product_id": 3, "quantity": quantity }),
        )
        .await;
        expect_error(r, 422, "quantity_out_of_range").await;
    }
    client.add_item(&id, 3, 97).await.unwrap();
    let r = post_json(
        &http,
        items_url.clone(),
        json!({ "product_id": 3, "quantity": 1 }),
    )
    .await;
    let body = expect_error(r, 422, "quantity_out_of_range").await;
    assert!(body["message"].as_str().unwrap().contains("101"), "{body}");
    let r = post_json(
        &http,
        items_url.clone(),
        json!({ "product_id": 999, "quantity": 1 }),
    )
    .await;
    expect_error(r, 422, "unknown_product").await;
    let r = http
        .post(items_url.clone())
        .header("content-type", "application/json")
        .body("{\"product_id\": 3,")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "malformed_json").await;
    let after = client.cart(&id).await.unwrap();
    assert_eq!(
        after.items[0],
        CartItem {
            product_id: 3,
            quantity: 100
        }
    );
    assert_eq!(after.version, 4, "only the accepted add changed the cart");

    let unknown = uuid::Uuid::new_v4();
    let r = post_json(
        &http,
        server.url(&format!("/carts/{unknown}/items")),
        json!({ "product_id": 3, "quantity": 1 }),
    )
    .await;
    expect_error(r, 404, "cart_not_found").await;
    let r = http
        .get(server.url(&format!("/carts/{unknown}")))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "cart_not_found").await;
    let r = http
        .get(server.url("/carts/not-a-cart"))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "invalid_id").await;

    // A cart past its expiry that DynamoDB has not deleted yet (it deletes lazily) is gone for the API.
    let expired = uuid::Uuid::new_v4().to_string();
    aws.dynamo
        .put_item()
        .table_name(&table)
        .item(
            lifeboat_platform::storage::SESSIONS_KEY,
            AttributeValue::S(expired.clone()),
        )
        .item(
            "items",
            AttributeValue::S(r#"[{"product_id":2,"quantity":1}]"#.into()),
        )
        .item("version", AttributeValue::N("1".into()))
        .item(
            lifeboat_platform::storage::SESSIONS_TTL_ATTRIBUTE,
            AttributeValue::N((unix_now() - 60).to_string()),
        )
        .send()
        .await
        .unwrap();
    let r = http
        .get(server.url(&format!("/carts/{expired}")))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "cart_not_found").await;
    let r = post_json(
        &http,
        server.url(&format!("/carts/{expired}/items")),
        json!({ "product_id": 3, "quantity": 1 }),
    )
    .await;
    expect_error(r, 404, "cart_not_found").await;
    aws.dynamo
        .delete_item()
        .table_name(&table)
        .key(
            lifeboat_platform::storage::SESSIONS_KEY,
            AttributeValue::S(expired),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        aws.items(&table).await.len(),
        1,
        "a refused write created an item"
    );

    // Concurrent adds to one cart go through conditional writes: each lands or is refused as 409 cart_busy after
    // its retries, never anything else, and every answer and the stored cart are consistent (one version step
    // per unit). That the cart holds exactly the acknowledged units cannot be asserted here: moto evaluates a
    // condition and stores the item without a lock, so two concurrent writers can both pass `version = :v`
    // (measured: 3 units lost of 294 acknowledged in 40 rounds of 12 concurrent adds). DynamoDB itself makes
    // the conditional write atomic.
    let busy = client.create_cart().await.unwrap().value.id;
    let adds = (0..8).map(|_| {
        let client = client.clone();
        let busy = busy.clone();
        tokio::spawn(async move { client.add_item(&busy, 1, 1).await })
    });
    let (mut landed, mut refused) = (0u32, 0u32);
    for outcome in futures::future::join_all(adds).await {
        match outcome.unwrap() {
            Ok(written) => {
                landed += 1;
                let line = &written.value.items[0];
                assert_eq!(
                    u64::from(line.quantity),
                    written.value.version,
                    "{:?}",
                    written.value
                );
            }
            Err(e) => {
                assert_eq!(e.code(), Some("cart_busy"), "{e}");
                refused += 1;
            }
        }
    }
    let busy_cart = client.cart(&busy).await.unwrap();
    eprintln!(
        "8 concurrent adds: {landed} acknowledged, {refused} refused as cart_busy, cart holds {:?}",
        busy_cart.items
    );
    assert!(landed >= 1);
    assert_eq!(busy_cart.items.len(), 1, "{busy_cart:?}");
    let held = busy_cart.items[0].quantity;
    assert!(
        (1..=landed).contains(&held),
        "the cart holds {held} units but {landed} adds were acknowledged"
    );
    assert_eq!(busy_cart.version, u64::from(held));

    // Checkout reads the DynamoDB cart and writes the order to the database.
    let outcome = client.checkout(&id, "dynamo-cart-1").await.unwrap();
    assert!(!outcome.replayed);
    let order = outcome.order;
    assert_eq!(order.cart_id, id);
    let lines: Vec<(u64, u32)> = order
        .lines
        .iter()
        .map(|l| (l.product_id, l.quantity))
        .collect();
    assert_eq!(lines, vec![(3, 100), (10, 5)]);
    assert_eq!(count(&pool, "orders").await, 1);
    let replay = client.checkout(&id, "dynamo-cart-1").await.unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.order, order);
    let r = post_json(&http, items_url, json!({ "product_id": 1, "quantity": 1 })).await;
    expect_error(r, 409, "cart_already_ordered").await;
}

#[tokio::test]
async fn a_missing_sessions_table_refuses_cart_writes_and_fails_deep_health() {
    let config = test_config();
    let table = config.names().sessions_table();
    let db = TestDb::create().await;
    let server = Server::start(&db, &[format!("--sessions=dynamodb:{table}")]);
    let client = server.ready(false).await;
    let http = reqwest::Client::new();

    let r = http.post(server.url("/carts")).send().await.unwrap();
    expect_error(r, 503, "session_store_unavailable").await;
    let r = http
        .get(server.url(&format!("/carts/{}", uuid::Uuid::new_v4())))
        .send()
        .await
        .unwrap();
    expect_error(r, 503, "session_store_unavailable").await;

    let health = client.health_deep(None).await.unwrap();
    assert_eq!(health.status, 503, "{}", health.report);
    assert_eq!(
        health.report["session_store"]["ok"], false,
        "{}",
        health.report
    );
    let error = health.report["session_store"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains(&table),
        "the health report does not name the table: {error}"
    );
    // The catalog does not depend on the session store.
    assert_eq!(client.product(7).await.unwrap().sku, "epirb");
}

/// Poll a write until it is refused; returns the refusal body and how long it took.
async fn until_refused(
    http: &reqwest::Client,
    url: &str,
    since: Instant,
    limit: Duration,
) -> (serde_json::Value, Duration) {
    loop {
        let r = http.post(url).send().await.unwrap();
        if r.status() == 503 {
            assert_eq!(r.headers()["retry-after"], "1");
            let body: serde_json::Value = r.json().await.unwrap();
            return (body, since.elapsed());
        }
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        assert!(
            since.elapsed() < limit,
            "writes still accepted {:?} after the change",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Poll a write until it is accepted; returns how long it took.
async fn until_accepted(client: &Client, since: Instant, limit: Duration) -> Duration {
    loop {
        match client.create_cart().await {
            Ok(_) => return since.elapsed(),
            Err(e) => assert!(e.is_write_refusal(), "{e}"),
        }
        assert!(
            since.elapsed() < limit,
            "writes still refused {:?} after the change",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_write_gate_follows_the_control_parameters_in_ssm() {
    let config = test_config();
    let names = config.names();
    let (table, prefix) = (names.sessions_table(), names.ssm_prefix());
    let (active_region, epoch, fence) = (
        names.ssm_active_region(),
        names.ssm_epoch(),
        names.ssm_fence(),
    );
    let aws = Aws::new().await;
    aws.create_sessions_table(&table).await;
    aws.put_param(&fence, "lowered").await;
    aws.put_param(&epoch, "1").await;
    aws.put_param(&active_region, REGION).await;
    let db = TestDb::create().await;
    let server = Server::start(
        &db,
        &[
            format!("--control=ssm:{prefix}"),
            format!("--sessions=dynamodb:{table}"),
        ],
    );
    let client = server.ready(true).await;
    let pool = MySqlPool::connect(&db.url).await.unwrap();
    let http = reqwest::Client::new();
    let health = client.health_deep(None).await.unwrap();
    assert_eq!(health.report["role"], "active", "{}", health.report);
    assert_eq!(health.report["epoch"], 1, "{}", health.report);

    // Active, fence down, epoch current: a checkout is accepted under epoch 1.
    let first = client.create_cart().await.unwrap().value.id;
    client.add_item(&first, 2, 1).await.unwrap();
    let order = client.checkout(&first, "ssm-1").await.unwrap();
    assert_eq!(
        (order.region.as_deref(), order.epoch),
        (Some(REGION), Some(1))
    );
    assert_eq!(order.order.epoch, 1);
    let waiting = client.create_cart().await.unwrap().value.id;
    client.add_item(&waiting, 4, 1).await.unwrap();

    // The orchestrator raises the fence (fence first, then the new epoch): writes stop within the 1 s bound.
    let raised = Instant::now();
    aws.put_param(&fence, "raised").await;
    aws.put_param(&epoch, "2").await;
    let (body, took) = until_refused(
        &http,
        &server.url("/carts"),
        raised,
        Duration::from_millis(1500),
    )
    .await;
    assert_eq!(body["error"], "write_fenced", "{body}");
    assert_eq!(body["active_region"], REGION, "{body}");
    eprintln!("fence raised in SSM → first refused write after {took:?}");

    // Nothing is written while the fence is up; reads go on.
    let (orders, carts) = (count(&pool, "orders").await, aws.items(&table).await.len());
    let r = http
        .post(server.url("/checkout"))
        .header("idempotency-key", "ssm-2")
        .json(&json!({ "cart_id": waiting }))
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 503, "write_fenced").await;
    assert_eq!(body["active_region"], REGION);
    let r = post_json(
        &http,
        server.url(&format!("/carts/{waiting}/items")),
        json!({ "product_id": 4, "quantity": 1 }),
    )
    .await;
    expect_error(r, 503, "write_fenced").await;
    assert_eq!(count(&pool, "orders").await, orders);
    assert_eq!(aws.items(&table).await.len(), carts);
    assert_eq!(
        client.cart(&waiting).await.unwrap().items,
        vec![CartItem {
            product_id: 4,
            quantity: 1
        }]
    );
    assert_eq!(
        client.products().await.unwrap().len(),
        storefront::db::DEMO_CATALOG.len()
    );
    assert_eq!(
        client.order(&order.order.id).await.unwrap(),
        Some(order.order.clone())
    );
    assert_eq!(
        client.health_deep(None).await.unwrap().report["role"],
        "fenced"
    );

    // The fence comes down at epoch 2 (epoch and region first, fence last): writes resume under epoch 2, and
    // the instance carries epoch 2 into the fencing row.
    let lowered = Instant::now();
    aws.put_param(&active_region, REGION).await;
    aws.put_param(&fence, "lowered").await;
    until_accepted(&client, lowered, Duration::from_millis(1500)).await;
    let second = client.checkout(&waiting, "ssm-2").await.unwrap();
    assert_eq!(second.epoch, Some(2));
    assert_eq!(second.order.epoch, 2);
    let row: u64 = sqlx::query_scalar("SELECT epoch FROM lifeboat_fence WHERE id = 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row, 2);

    // A stale epoch: the database is fenced at epoch 3 while SSM still says 2. Every write is refused by the
    // fencing row, in the database and in DynamoDB alike, and nothing is written.
    let third = client.create_cart().await.unwrap().value.id;
    client.add_item(&third, 5, 1).await.unwrap();
    sqlx::query("UPDATE lifeboat_fence SET epoch = 3 WHERE id = 1")
        .execute(&pool)
        .await
        .unwrap();
    let (orders, carts) = (count(&pool, "orders").await, aws.items(&table).await.len());
    let r = http.post(server.url("/carts")).send().await.unwrap();
    expect_error(r, 503, "stale_epoch").await;
    let r = post_json(
        &http,
        server.url(&format!("/carts/{third}/items")),
        json!({ "product_id": 5, "quantity": 1 }),
    )
    .await;
    expect_error(r, 503, "stale_epoch").await;
    let r = http
        .post(server.url("/checkout"))
        .header("idempotency-key", "ssm-3")
        .json(&json!({ "cart_id": third }))
        .send()
        .await
        .unwrap();
    expect_error(r, 503, "stale_epoch").await;
    assert_eq!(count(&pool, "orders").await, orders);
    assert_eq!(aws.items(&table).await.len(), carts);
    assert_eq!(client.cart(&third).await.unwrap().version, 1);
    assert_eq!(client.product(5).await.unwrap().id, 5);
    // Once SSM publishes epoch 3 the instance holds it and writes again.
    let caught_up = Instant::now();
    aws.put_param(&epoch, "3").await;
    until_accepted(&client, caught_up, Duration::from_millis(1500)).await;
    assert_eq!(
        client.checkout(&third, "ssm-3").await.unwrap().order.epoch,
        3
    );

    // Another region becomes active: this one is passive and names it.
    let moved = Instant::now();
    aws.put_param(&active_region, STANDBY).await;
    let (body, _) = until_refused(
        &http,
        &server.url("/carts"),
        moved,
        Duration::from_millis(1500),
    )
    .await;
    assert_eq!(body["error"], "region_passive", "{body}");
    assert_eq!(body["active_region"], STANDBY, "{body}");
    assert_eq!(
        client.health_deep(None).await.unwrap().report["role"],
        "standby"
    );
    assert_eq!(
        client.health_deep(Some("active")).await.unwrap().status,
        503
    );
    assert!(client.product(1).await.is_ok());

    // The parameters become unreadable: the cached state runs out after its 1 s lease and writes stop.
    aws.put_param(&active_region, REGION).await;
    until_accepted(&client, Instant::now(), Duration::from_millis(1500)).await;
    let lost = Instant::now();
    aws.ssm
        .delete_parameter()
        .name(&fence)
        .send()
        .await
        .unwrap();
    let (body, took) = until_refused(
        &http,
        &server.url("/carts"),
        lost,
        Duration::from_millis(2000),
    )
    .await;
    assert_eq!(body["error"], "control_unreachable", "{body}");
    assert!(body["message"].as_str().unwrap().contains(&fence), "{body}");
    eprintln!("fence parameter deleted → first refused write after {took:?}");
    assert!(client.product(1).await.is_ok());
}

#[tokio::test]
async fn product_images_are_presigned_urls_of_the_assets_bucket() {
    let config = test_config();
    let bucket = config.names().assets_bucket_in(REGION, "123456789012");
    let aws = Aws::new().await;
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let picture =
        format!("<svg xmlns=\"http://www.w3.org/2000/svg\"><title>{bucket}</title></svg>");
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key("products/epirb.svg")
        .content_type("image/svg+xml")
        .body(picture.clone().into_bytes().into())
        .send()
        .await
        .unwrap();
    let db = TestDb::create().await;
    let server = Server::start(&db, &[format!("--images=s3:{bucket}/products")]);
    let client = server.ready(false).await;
    let http = reqwest::Client::new();

    let product = client.product(7).await.unwrap();
    let url = reqwest::Url::parse(&product.image_url)
        .unwrap_or_else(|e| panic!("image_url {:?} is not a URL: {e}", product.image_url));
    let endpoint = reqwest::Url::parse(&aws_endpoint()).unwrap();
    assert_eq!(url.host_str(), endpoint.host_str());
    assert_eq!(url.port(), endpoint.port());
    assert_eq!(url.path(), format!("/{bucket}/products/epirb.svg"));
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        query.get("X-Amz-Expires").map(String::as_str),
        Some("900"),
        "{url}"
    );
    assert_eq!(
        query.get("X-Amz-Algorithm").map(String::as_str),
        Some("AWS4-HMAC-SHA256"),
        "{url}"
    );
    assert!(
        query.get("X-Amz-Signature").is_some_and(|s| s.len() == 64),
        "{url}"
    );
    assert!(
        query["X-Amz-Credential"].contains(&format!("/{REGION}/s3/")),
        "{url}"
    );

    // A plain GET of the presigned URL returns the object; the same URL without its signature does not.
    let fetched = http.get(url.clone()).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.text().await.unwrap(), picture);
    let mut unsigned = url.clone();
    unsigned.set_query(None);
    assert_eq!(http.get(unsigned).send().await.unwrap().status(), 403);

    // Every product's URL names its own key; one that was never uploaded is missing in the bucket.
    let products = client.products().await.unwrap();
    for p in &products {
        let path = reqwest::Url::parse(&p.image_url).unwrap().path().to_owned();
        assert_eq!(path, format!("/{bucket}/products/{}.svg", p.sku));
    }
    let missing = &products
        .iter()
        .find(|p| p.sku == "paddle")
        .unwrap()
        .image_url;
    assert_eq!(http.get(missing).send().await.unwrap().status(), 404);
    // Images are not served locally in this mode.
    let r = http
        .get(server.url("/images/epirb.svg"))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "image_not_found").await;
}

#[test]
fn the_storefront_reads_what_the_platform_declares() {
    use lifeboat_platform::compute::env as platform;
    use storefront::app::platform_env as ours;
    assert_eq!(platform::DATABASE_SECRET_ARN, ours::DATABASE_SECRET_ARN);
    assert_eq!(platform::DATABASE_HOST, ours::DATABASE_HOST);
    assert_eq!(platform::DATABASE_NAME, ours::DATABASE_NAME);
    assert_eq!(platform::SESSIONS_TABLE, ours::SESSIONS_TABLE);
    assert_eq!(platform::ASSETS_BUCKET, ours::ASSETS_BUCKET);
    assert_eq!(platform::CONTROL_SSM_PREFIX, ours::CONTROL_SSM_PREFIX);
    assert_eq!(platform::REGION, "LIFEBOAT_REGION");
    assert_eq!(
        lifeboat_platform::storage::SESSIONS_KEY,
        storefront::sessions::DYNAMO_KEY
    );
    assert_eq!(
        lifeboat_platform::storage::SESSIONS_TTL_ATTRIBUTE,
        storefront::sessions::DYNAMO_TTL_ATTRIBUTE
    );
}

#[tokio::test]
async fn the_platform_environment_alone_configures_an_instance_on_aws() {
    use lifeboat_platform::compute::env;
    let config = test_config();
    let names = config.names();
    let (table, bucket) = (
        names.sessions_table(),
        names.assets_bucket_in(REGION, "123456789012"),
    );
    let aws = Aws::new().await;
    aws.create_sessions_table(&table).await;
    aws.put_param(&names.ssm_fence(), "lowered").await;
    aws.put_param(&names.ssm_epoch(), "4").await;
    aws.put_param(&names.ssm_active_region(), REGION).await;
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key("images/epirb.svg")
        .body(b"<svg/>".to_vec().into())
        .send()
        .await
        .unwrap();

    // A database user whose password needs encoding in a URL, as generated passwords do.
    let db = TestDb::create().await;
    let admin = MySqlPool::connect(&common::server_url()).await.unwrap();
    let user = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let password = "p:w#d%x?y z&+=;!";
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'"
    )))
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "GRANT ALL ON `{}`.* TO '{user}'@'127.0.0.1'",
        db.name
    )))
    .execute(&admin)
    .await
    .unwrap();
    let secret_arn = aws_sdk_secretsmanager::Client::new(&sdk_config().await)
        .create_secret()
        .name(names.database_secret())
        .secret_string(json!({ "username": user, "password": password }).to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let server_address = common::server_url()
        .rsplit_once('@')
        .unwrap()
        .1
        .trim_end_matches('/')
        .to_owned();

    // Exactly the variables the compute stack sets on the function, and no flags.
    let prefix = names.ssm_prefix();
    let server = Server::start_with(
        &[],
        &[
            (env::REGION, REGION),
            (env::DATABASE_SECRET_ARN, &secret_arn),
            (env::DATABASE_HOST, &server_address),
            (env::DATABASE_NAME, &db.name),
            (env::SESSIONS_TABLE, &table),
            (env::ASSETS_BUCKET, &bucket),
            (env::CONTROL_SSM_PREFIX, &prefix),
        ],
    );
    let client = server.ready(true).await;
    assert!(
        !server.log().contains(password),
        "the log shows the database password"
    );
    let health = client.health_deep(None).await.unwrap();
    assert_eq!(
        health.report["control"]["source"],
        format!("ssm:{prefix}"),
        "{}",
        health.report
    );
    assert_eq!(
        health.report["session_store"]["kind"], "dynamodb",
        "{}",
        health.report
    );
    assert_eq!(health.report["epoch"], 4, "{}", health.report);

    let cart = client.create_cart().await.unwrap().value.id;
    client.add_item(&cart, 7, 1).await.unwrap();
    assert_eq!(aws.items(&table).await.len(), 1);
    let order = client.checkout(&cart, "platform-env-1").await.unwrap();
    assert_eq!(order.order.epoch, 4);
    let pool = MySqlPool::connect(&db.url).await.unwrap();
    assert_eq!(count(&pool, "orders").await, 1);

    let image = reqwest::Url::parse(&client.product(7).await.unwrap().image_url).unwrap();
    assert_eq!(image.path(), format!("/{bucket}/images/epirb.svg"));
    let fetched = reqwest::get(image).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), b"<svg/>");

    drop(server);
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP USER '{user}'@'127.0.0.1'"
    )))
    .execute(&admin)
    .await;
}

/// A proxy in front of the AWS endpoint that loses the answer to the first conditional cart update: the update
/// lands in the table, the caller's connection drops, and the SDK sends the request again. Returns the proxy's
/// URL and how many answers it dropped.
async fn proxy_losing_one_answer() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One HTTP/1.1 message: the head and a body of Content-Length bytes.
    async fn read_message(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
        let mut message = Vec::new();
        let mut byte = [0u8; 1];
        while !message.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.ok()? == 0 {
                return None;
            }
            message.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&message).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.ok()?;
        message.extend_from_slice(&body);
        Some(message)
    }

    let upstream = reqwest::Url::parse(&aws_endpoint()).unwrap();
    let upstream = format!(
        "{}:{}",
        upstream.host_str().unwrap(),
        upstream.port().unwrap()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dropped = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&dropped);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (upstream, dropped) = (upstream.clone(), Arc::clone(&counter));
            tokio::spawn(async move {
                while let Some(request) = read_message(&mut client).await {
                    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    let lose = text.contains("dynamodb_20120810.putitem")
                        && text.contains("version = :expected")
                        && dropped
                            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok();
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    if server.write_all(&request).await.is_err() {
                        return;
                    }
                    let Some(response) = read_message(&mut server).await else {
                        return;
                    };
                    if lose {
                        // The write is done upstream; the caller never hears of it.
                        return;
                    }
                    if client.write_all(&response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, dropped)
}

#[tokio::test]
async fn a_cart_update_whose_answer_was_lost_is_applied_once() {
    let config = test_config();
    let table = config.names().sessions_table();
    let aws = Aws::new().await;
    aws.create_sessions_table(&table).await;
    let (proxy, dropped) = proxy_losing_one_answer().await;
    let db = TestDb::create().await;
    let server = Server::start_with(
        &[
            "--region".into(),
            REGION.into(),
            format!("--sessions=dynamodb:{table}"),
        ],
        &[
            ("DATABASE_URL", db.url.as_str()),
            ("AWS_ENDPOINT_URL_DYNAMODB", proxy.as_str()),
        ],
    );
    let client = server.ready(true).await;

    let cart = client.create_cart().await.unwrap().value.id;
    let added = client.add_item(&cart, 3, 2).await.unwrap_or_else(|e| {
        panic!(
            "the add failed: {e}; the storefront's log:\n{}",
            server.log()
        )
    });
    assert_eq!(
        dropped.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the proxy lost no answer, so the test proved nothing"
    );
    let once = vec![CartItem {
        product_id: 3,
        quantity: 2,
    }];
    assert_eq!(added.value.items, once);
    let stored = client.cart(&cart).await.unwrap();
    assert_eq!(stored.items, once, "the retried update was applied twice");
    assert_eq!(stored.version, 1);
}
