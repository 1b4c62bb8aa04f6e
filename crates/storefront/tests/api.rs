//! The whole API against a real MariaDB (LIFEBOAT_TEST_MYSQL_URL), each test on a database of its own.

mod common;

use std::time::Duration;

use common::{TestApp, active_state, expect_error};
use serde_json::json;
use storefront::model::{Order, ProductList};

#[tokio::test]
async fn catalog_is_seeded_and_readable() {
    let app = TestApp::start().await;
    let products = app.client.products().await.unwrap();
    assert_eq!(products.len(), storefront::db::DEMO_CATALOG.len());
    assert_eq!(products[0].id, 1);
    let one = app.client.product(7).await.unwrap();
    assert_eq!(one.sku, "epirb");
    assert_eq!(one.image_url, "/images/epirb.svg");
    let image = app.http.get(app.url(&one.image_url)).send().await.unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/svg+xml");

    expect_error(
        app.http.get(app.url("/products/999")).send().await.unwrap(),
        404,
        "product_not_found",
    )
    .await;
    expect_error(
        app.http
            .get(app.url("/images/nope.png"))
            .send()
            .await
            .unwrap(),
        404,
        "image_not_found",
    )
    .await;

    // Seeding happens on an empty catalog only: preparing again adds nothing.
    assert_eq!(
        storefront::db::prepare(&app.state.pool).await.unwrap(),
        storefront::db::Preparation::Prepared { seeded: 0 }
    );
    assert_eq!(app.count("products").await, products.len() as i64);
}

#[tokio::test]
async fn cart_checkout_order_round_trip() {
    let app = TestApp::start().await;
    let created = app.client.create_cart().await.unwrap();
    assert_eq!(created.region.as_deref(), Some("us-east-1"));
    assert_eq!(created.epoch, Some(1));
    let cart_id = created.value.id;
    app.client.add_item(&cart_id, 3, 2).await.unwrap();
    app.client.add_item(&cart_id, 10, 5).await.unwrap();
    let cart = app.client.add_item(&cart_id, 3, 1).await.unwrap().value;
    assert_eq!(cart.items.len(), 2);
    assert_eq!(
        cart.items[0].quantity, 3,
        "quantities of one product add up"
    );
    assert_eq!(app.client.cart(&cart_id).await.unwrap(), cart);

    let outcome = app.client.checkout(&cart_id, "round-trip-1").await.unwrap();
    assert!(!outcome.replayed);
    assert_eq!(outcome.epoch, Some(1));
    let order = outcome.order;
    assert_eq!(order.cart_id, cart_id);
    assert_eq!(order.region, "us-east-1");
    assert_eq!(order.lines.len(), 2);
    assert_eq!(order.total_cents, 3 * 5_400 + 5 * 400);
    assert_eq!(
        app.client.order(&order.id).await.unwrap(),
        Some(order.clone())
    );

    // The same key again: the same order, answered 200, nothing new written.
    let replay = app
        .http
        .post(app.url("/checkout"))
        .header("idempotency-key", "round-trip-1")
        .json(&json!({ "cart_id": cart_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Order>().await.unwrap(), order);
    assert_eq!(app.count("orders").await, 1);
    assert_eq!(app.count("order_lines").await, 2);

    // The region and epoch are stored with the order.
    let (region, epoch): (String, u64) =
        sqlx::query_as("SELECT region, epoch FROM orders WHERE id = ?")
            .bind(&order.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((region.as_str(), epoch), ("us-east-1", 1));

    // Another key for the same cart, the same key for another cart, a change to an ordered cart: all refused.
    let other = app
        .http
        .post(app.url("/checkout"))
        .header("idempotency-key", "round-trip-2")
        .json(&json!({ "cart_id": cart_id }))
        .send()
        .await
        .unwrap();
    expect_error(other, 409, "cart_already_ordered").await;
    let second_cart = app.filled_cart().await;
    let reused = app
        .http
        .post(app.url("/checkout"))
        .header("idempotency-key", "round-trip-1")
        .json(&json!({ "cart_id": second_cart }))
        .send()
        .await
        .unwrap();
    expect_error(reused, 409, "idempotency_key_reused").await;
    let late = app
        .http
        .post(app.url(&format!("/carts/{cart_id}/items")))
        .json(&json!({ "product_id": 1, "quantity": 1 }))
        .send()
        .await
        .unwrap();
    expect_error(late, 409, "cart_already_ordered").await;
    assert_eq!(app.count("orders").await, 1);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_write_exactly_one_order() {
    let app = TestApp::start().await;
    let cart_id = app.filled_cart().await;
    let attempts = (0..24).map(|_| {
        let client = app.client.clone();
        let cart_id = cart_id.clone();
        tokio::spawn(async move { client.checkout(&cart_id, "retry-storm").await })
    });
    let outcomes: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    let created = outcomes.iter().filter(|o| !o.replayed).count();
    assert_eq!(
        created, 1,
        "exactly one request writes the order; the rest replay it"
    );
    let first = &outcomes[0].order;
    assert!(
        outcomes.iter().all(|o| o.order == *first),
        "every answer carries the same order"
    );
    assert_eq!(app.count("orders").await, 1);

    // Concurrent checkouts of one cart under different keys: still one order.
    let cart_id = app.filled_cart().await;
    let attempts = (0..12).map(|i| {
        let client = app.client.clone();
        let cart_id = cart_id.clone();
        tokio::spawn(async move { client.checkout(&cart_id, &format!("distinct-{i}")).await })
    });
    let results: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(r.code(), Some("cart_already_ordered"), "{r}");
    }
    assert_eq!(app.count("orders").await, 2);
}

#[tokio::test]
async fn a_raised_fence_refuses_writes_and_keeps_reads() {
    let app = TestApp::start().await;
    let cart_id = app.filled_cart().await;
    let (carts, orders) = (app.count("carts").await, app.count("orders").await);
    app.control.update(|s| s.fence_raised = true);
    app.state.gate.refresh().await.unwrap();

    let refused = app.http.post(app.url("/carts")).send().await.unwrap();
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.headers()["x-lifeboat-region"], "us-east-1");
    let body = expect_error(refused, 503, "write_fenced").await;
    assert_eq!(body["active_region"], "us-east-1");
    let add = app
        .http
        .post(app.url(&format!("/carts/{cart_id}/items")))
        .json(&json!({ "product_id": 2, "quantity": 1 }))
        .send()
        .await
        .unwrap();
    expect_error(add, 503, "write_fenced").await;
    let checkout = app
        .http
        .post(app.url("/checkout"))
        .header("idempotency-key", "fenced")
        .json(&json!({ "cart_id": cart_id }))
        .send()
        .await
        .unwrap();
    expect_error(checkout, 503, "write_fenced").await;

    assert_eq!(app.client.products().await.unwrap().len(), 12);
    assert_eq!(
        app.client.cart(&cart_id).await.unwrap().items.len(),
        1,
        "the refused add changed nothing"
    );
    assert_eq!(
        (app.count("carts").await, app.count("orders").await),
        (carts, orders)
    );
    let deep = app.client.health_deep(Some("active")).await.unwrap();
    assert_eq!(deep.status, 503);
    assert_eq!(deep.report["role"], "fenced");

    app.control.update(|s| s.fence_raised = false);
    app.state.gate.refresh().await.unwrap();
    app.client.checkout(&cart_id, "after-fence").await.unwrap();
}

#[tokio::test]
async fn the_passive_region_refuses_writes_and_names_the_active_one() {
    let app = TestApp::start_with("us-west-2", active_state("us-east-1", 4)).await;
    let refused = app.http.post(app.url("/carts")).send().await.unwrap();
    assert_eq!(refused.headers()["x-lifeboat-epoch"], "4");
    let body = expect_error(refused, 503, "region_passive").await;
    assert_eq!(body["active_region"], "us-east-1");
    assert_eq!(app.count("carts").await, 0);
    assert_eq!(
        app.client.product(1).await.unwrap().id,
        1,
        "reads work in the standby"
    );
    let deep = app.client.health_deep(None).await.unwrap();
    assert_eq!(deep.status, 200, "{}", deep.report);
    assert_eq!(deep.report["role"], "standby");
    assert_eq!(
        app.client.health_deep(Some("active")).await.unwrap().status,
        503
    );
    assert_eq!(
        app.client
            .health_deep(Some("standby"))
            .await
            .unwrap()
            .status,
        200
    );
}

#[tokio::test]
async fn a_stale_epoch_writes_nothing_and_a_newer_one_advances_the_fencing_row() {
    let app = TestApp::start().await;
    let cart_id = app.filled_cart().await;
    assert_eq!(
        app.fence_epoch().await,
        1,
        "the first write carried epoch 1 into the fencing row"
    );
    // The orchestrator fences this database at epoch 5: this instance (epoch 1) is now stale.
    sqlx::query("UPDATE lifeboat_fence SET epoch = 5 WHERE id = 1")
        .execute(&app.pool)
        .await
        .unwrap();
    let version_before = app.client.cart(&cart_id).await.unwrap().version;

    let checkout = app
        .http
        .post(app.url("/checkout"))
        .header("idempotency-key", "stale")
        .json(&json!({ "cart_id": cart_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(checkout.headers()["retry-after"], "1");
    expect_error(checkout, 503, "stale_epoch").await;
    let add = app
        .http
        .post(app.url(&format!("/carts/{cart_id}/items")))
        .json(&json!({ "product_id": 1, "quantity": 1 }))
        .send()
        .await
        .unwrap();
    expect_error(add, 503, "stale_epoch").await;
    expect_error(
        app.http.post(app.url("/carts")).send().await.unwrap(),
        503,
        "stale_epoch",
    )
    .await;
    assert_eq!(app.count("orders").await, 0);
    assert_eq!(app.count("carts").await, 1);
    assert_eq!(
        app.client.cart(&cart_id).await.unwrap().version,
        version_before
    );
    assert_eq!(
        app.client.health_deep(Some("active")).await.unwrap().status,
        503
    );

    // Promoted at epoch 6: the instance carries the newer epoch into the database and writes again.
    app.control.update(|s| s.epoch = 6);
    app.state.gate.refresh().await.unwrap();
    let outcome = app.client.checkout(&cart_id, "stale").await.unwrap();
    assert_eq!(outcome.order.epoch, 6);
    assert_eq!(outcome.epoch, Some(6));
    assert_eq!(app.fence_epoch().await, 6);
    assert_eq!(
        app.client.health_deep(Some("active")).await.unwrap().status,
        200
    );
}

#[tokio::test]
async fn an_instance_that_cannot_refresh_control_stops_writing() {
    let mut state = active_state("us-east-1", 1);
    state.lease_ms = 200;
    let app = TestApp::start_with("us-east-1", state).await;
    let cart_id = app.filled_cart().await;
    app.control.set_failing(true);
    tokio::time::sleep(Duration::from_millis(250)).await;

    let checkout = app
        .http
        .post(app.url("/checkout"))
        .header("idempotency-key", "cut-off")
        .json(&json!({ "cart_id": cart_id }))
        .send()
        .await
        .unwrap();
    let body = expect_error(checkout, 503, "control_unreachable").await;
    assert!(
        body["message"].as_str().unwrap().contains("static"),
        "{body}"
    );
    expect_error(
        app.http.post(app.url("/carts")).send().await.unwrap(),
        503,
        "control_unreachable",
    )
    .await;
    assert_eq!(app.count("orders").await, 0);
    assert_eq!(
        app.client.product(2).await.unwrap().id,
        2,
        "reads keep working"
    );
    let deep = app.client.health_deep(None).await.unwrap();
    assert_eq!(deep.status, 503, "{}", deep.report);
    assert_eq!(deep.report["control"]["fresh"], false);

    app.control.set_failing(false);
    // Writers refuse for a moment after a failed fetch rather than queueing; a fetch of our own ends that.
    app.state.gate.refresh().await.unwrap();
    app.client.checkout(&cart_id, "cut-off").await.unwrap();
}

#[tokio::test]
async fn a_commit_that_outlives_the_write_permit_is_not_acknowledged() {
    let mut state = active_state("us-east-1", 1);
    state.lease_ms = 200;
    let app = TestApp::start_with("us-east-1", state).await;
    let cart_id = app.filled_cart().await;

    // Hold the fencing row so the checkout's transaction waits after it got its permit, as a commit waiting
    // for a semi-synchronous acknowledgement would; meanwhile the region loses its control source.
    let mut blocker = app.pool.begin().await.unwrap();
    sqlx::query("SELECT epoch FROM lifeboat_fence WHERE id = 1 FOR UPDATE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let checkout = tokio::spawn({
        let http = app.http.clone();
        let url = app.url("/checkout");
        let cart_id = cart_id.clone();
        async move {
            http.post(url)
                .header("idempotency-key", "slow-commit")
                .json(&json!({ "cart_id": cart_id }))
                .send()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.control.set_failing(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocker.rollback().await.unwrap();

    let answer = checkout.await.unwrap();
    expect_error(answer, 503, "commit_unconfirmed").await;
    assert_eq!(
        app.count("orders").await,
        1,
        "the order was committed, only its acknowledgement was withheld"
    );

    // Back in contact: a retry with the same key finds the committed order instead of writing a second one.
    app.control.set_failing(false);
    app.state.gate.refresh().await.unwrap();
    let replay = app.client.checkout(&cart_id, "slow-commit").await.unwrap();
    assert!(replay.replayed, "the retry must replay the committed order");
    assert_eq!(replay.order.cart_id, cart_id);
    assert_eq!(app.count("orders").await, 1);
}

#[tokio::test]
async fn bad_input_gets_4xx_json() {
    let app = TestApp::start().await;
    let cart_id = app.client.create_cart().await.unwrap().value.id;
    let items = app.url(&format!("/carts/{cart_id}/items"));
    let post_raw = |url: String, body: String| {
        app.http
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    expect_error(
        post_raw(items.clone(), "{\"product_id\": 1,".into())
            .await
            .unwrap(),
        400,
        "malformed_json",
    )
    .await;
    expect_error(
        post_raw(items.clone(), "not json".into()).await.unwrap(),
        400,
        "malformed_json",
    )
    .await;
    expect_error(
        post_raw(
            items.clone(),
            r#"{"product_id":1,"quantity":1,"price":0}"#.into(),
        )
        .await
        .unwrap(),
        400,
        "invalid_body",
    )
    .await;
    expect_error(
        post_raw(items.clone(), r#"{"product_id":1}"#.into())
            .await
            .unwrap(),
        400,
        "invalid_body",
    )
    .await;
    let huge_body = format!(
        r#"{{"product_id":1,"quantity":1,"pad":"{}"}}"#,
        "x".repeat(64 * 1024)
    );
    expect_error(
        post_raw(items.clone(), huge_body).await.unwrap(),
        413,
        "body_too_large",
    )
    .await;
    for quantity in ["0", "-1", "101", "2147483648"] {
        let body = format!(r#"{{"product_id":1,"quantity":{quantity}}}"#);
        expect_error(
            post_raw(items.clone(), body).await.unwrap(),
            422,
            "quantity_out_of_range",
        )
        .await;
    }
    // JSON Schema's integers include numbers with a zero fraction: `2.0` adds two, `4.0` names product 4.
    // (On a cart of its own: the one above must stay empty for the checks further down.)
    let other_cart = app.client.create_cart().await.unwrap().value.id;
    let added = post_raw(
        app.url(&format!("/carts/{other_cart}/items")),
        r#"{"product_id":4.0,"quantity":2.0}"#.into(),
    )
    .await
    .unwrap();
    assert_eq!(added.status(), 200, "an integral float is an integer");
    let cart = app.client.cart(&other_cart).await.unwrap();
    assert_eq!(
        cart.items,
        vec![storefront::model::CartItem {
            product_id: 4,
            quantity: 2
        }]
    );
    for quantity in ["1e30", "99999999999999999999999", "1.5", "\"3\"", "null"] {
        let body = format!(r#"{{"product_id":1,"quantity":{quantity}}}"#);
        expect_error(
            post_raw(items.clone(), body).await.unwrap(),
            400,
            "invalid_body",
        )
        .await;
    }
    expect_error(
        post_raw(items.clone(), r#"{"product_id":4242,"quantity":1}"#.into())
            .await
            .unwrap(),
        422,
        "unknown_product",
    )
    .await;
    expect_error(
        post_raw(items.clone(), r#"{"product_id":-3,"quantity":1}"#.into())
            .await
            .unwrap(),
        400,
        "invalid_body",
    )
    .await;
    let without_type = app
        .http
        .post(items.clone())
        .body(r#"{"product_id":1,"quantity":1}"#)
        .send()
        .await
        .unwrap();
    expect_error(without_type, 415, "unsupported_media_type").await;

    let missing_cart = uuid::Uuid::new_v4();
    expect_error(
        post_raw(
            app.url(&format!("/carts/{missing_cart}/items")),
            r#"{"product_id":1,"quantity":1}"#.into(),
        )
        .await
        .unwrap(),
        404,
        "cart_not_found",
    )
    .await;
    expect_error(
        app.http
            .get(app.url(&format!("/carts/{missing_cart}")))
            .send()
            .await
            .unwrap(),
        404,
        "cart_not_found",
    )
    .await;
    expect_error(
        app.http
            .get(app.url(&format!("/orders/{missing_cart}")))
            .send()
            .await
            .unwrap(),
        404,
        "order_not_found",
    )
    .await;

    for path in [
        "/products/abc",
        "/products/0",
        "/products/-1",
        "/products/1.0",
        "/products/99999999999999999999999",
        "/carts/xyz",
        "/carts/12",
        "/orders/not-an-order",
        "/orders/%00",
    ] {
        expect_error(
            app.http.get(app.url(path)).send().await.unwrap(),
            400,
            "invalid_id",
        )
        .await;
    }
    expect_error(
        post_raw(
            app.url("/carts/zzz/items"),
            r#"{"product_id":1,"quantity":1}"#.into(),
        )
        .await
        .unwrap(),
        400,
        "invalid_id",
    )
    .await;

    let checkout = |key: Option<&str>, body: &str| {
        let mut request = app
            .http
            .post(app.url("/checkout"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send()
    };
    let cart_body = format!(r#"{{"cart_id":"{cart_id}"}}"#);
    expect_error(
        checkout(None, &cart_body).await.unwrap(),
        400,
        "missing_idempotency_key",
    )
    .await;
    expect_error(
        checkout(Some("has space"), &cart_body).await.unwrap(),
        400,
        "invalid_idempotency_key",
    )
    .await;
    expect_error(
        checkout(Some(&"k".repeat(65)), &cart_body).await.unwrap(),
        400,
        "invalid_idempotency_key",
    )
    .await;
    expect_error(
        checkout(Some("k1"), &cart_body).await.unwrap(),
        422,
        "cart_empty",
    )
    .await;
    expect_error(
        checkout(Some("k2"), r#"{"cart_id":"nope"}"#).await.unwrap(),
        400,
        "invalid_id",
    )
    .await;
    expect_error(
        checkout(Some("k3"), &format!(r#"{{"cart_id":"{missing_cart}"}}"#))
            .await
            .unwrap(),
        422,
        "unknown_cart",
    )
    .await;
    expect_error(
        checkout(Some("k4"), r#"{"cart":"x"}"#).await.unwrap(),
        400,
        "invalid_body",
    )
    .await;
    expect_error(
        checkout(Some("k5"), "[").await.unwrap(),
        400,
        "malformed_json",
    )
    .await;

    expect_error(
        app.http
            .get(app.url("/no/such/route"))
            .send()
            .await
            .unwrap(),
        404,
        "route_not_found",
    )
    .await;
    expect_error(
        app.http.delete(app.url("/products")).send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    expect_error(
        app.http
            .get(app.url("/health/deep?expect=leader"))
            .send()
            .await
            .unwrap(),
        400,
        "invalid_expect",
    )
    .await;
    expect_error(
        app.http
            .get(app.url("/health/deep?bogus=1"))
            .send()
            .await
            .unwrap(),
        400,
        "bad_request",
    )
    .await;

    assert_eq!(
        app.count("orders").await,
        0,
        "no bad request wrote an order"
    );
    assert!(
        app.client.cart(&cart_id).await.unwrap().items.is_empty(),
        "no bad request changed the cart"
    );
}

#[tokio::test]
async fn health_reports_role_epoch_and_database() {
    let app = TestApp::start().await;
    let shallow = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(shallow.status(), 200);
    app.filled_cart().await;
    let deep = app.client.health_deep(Some("active")).await.unwrap();
    assert_eq!(deep.status, 200, "{}", deep.report);
    let r = &deep.report;
    assert_eq!(r["region"], "us-east-1");
    assert_eq!(r["role"], "active");
    assert_eq!(r["epoch"], 1);
    assert_eq!(r["writes_accepted"], true);
    assert_eq!(r["database"]["reachable"], true);
    assert_eq!(r["database"]["read_only"], false);
    assert_eq!(r["database"]["fence_epoch"], 1);
    assert_eq!(r["session_store"]["ok"], true);
    assert_eq!(r["control"]["fresh"], true);
    assert_eq!(
        app.client
            .health_deep(Some("standby"))
            .await
            .unwrap()
            .status,
        503
    );
}

#[tokio::test]
async fn writes_beyond_the_admitted_number_are_refused_at_once_and_reads_are_not() {
    let app = TestApp::start().await;
    let cart = app.filled_cart().await;
    let orders_before = app.count("orders").await;
    // Every admission permit taken, as by as many writes in progress.
    let permits = app.state.write_admission.available_permits() as u32;
    assert_eq!(permits, 32, "two writes per pooled connection");
    let held = std::sync::Arc::clone(&app.state.write_admission)
        .try_acquire_many_owned(permits)
        .unwrap();
    // The same checkout, first refused, then (permits free again) accepted.
    let checkout = || async {
        app.http
            .post(app.url("/checkout"))
            .header("Idempotency-Key", "admission-1")
            .json(&json!({ "cart_id": cart }))
            .send()
            .await
            .unwrap()
    };
    let refused = checkout().await;
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    expect_error(refused, 503, "overloaded").await;
    assert_eq!(app.count("orders").await, orders_before, "nothing written");
    let read = app.http.get(app.url("/products")).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let health = app.client.health_deep(Some("active")).await.unwrap();
    assert_eq!(health.status, 200, "{}", health.report);

    drop(held);
    let order = checkout().await;
    assert_eq!(order.status(), 201);
    assert_eq!(app.count("orders").await, orders_before + 1);
}

#[tokio::test]
async fn deep_health_tells_the_truth_while_every_pooled_connection_is_busy() {
    let app = TestApp::start().await;
    // A first write moves the fencing row to the epoch this instance holds.
    app.filled_cart().await;
    // Every connection of the service's pool taken, as when all of them wait on the replica's acknowledgement.
    let mut held = Vec::new();
    while let Ok(Ok(conn)) =
        tokio::time::timeout(Duration::from_millis(300), app.state.pool.acquire()).await
    {
        held.push(conn);
    }
    assert_eq!(held.len(), 16, "the pool is exhausted");
    let deep = app.client.health_deep(Some("active")).await.unwrap();
    assert_eq!(deep.status, 200, "{}", deep.report);
    assert_eq!(deep.report["database"]["reachable"], true);
    assert_eq!(deep.report["database"]["fence_epoch"], 1);
    assert_eq!(deep.report["session_store"]["ok"], true);
    // And the probe's own connection is gone again: it does not leak one per check.
    drop(held);
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.PROCESSLIST")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for _ in 0..5 {
        app.client.health_deep(Some("active")).await.unwrap();
    }
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.PROCESSLIST")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        after <= before + 1,
        "{before} connections before, {after} after"
    );
}

#[tokio::test]
async fn an_unreachable_database_makes_reads_503_and_deep_health_unhealthy() {
    // A port nothing listens on: the pool cannot connect.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let settings = storefront::app::Settings {
        region: "us-east-1".into(),
        database_url: format!("mysql://nobody:nothing@127.0.0.1:{port}/shop"),
        control: storefront::control::ControlSpec::Static {
            active_region: "us-east-1".into(),
            epoch: 1,
        },
        sessions: storefront::app::SessionsSpec::Mysql,
        images: storefront::app::ImagesSpec::Local,
        assets_dir: None,
        max_connections: 2,
        serve_metrics: true,
        health: Default::default(),
        credentials: Default::default(),
    };
    let service = storefront::app::build(&settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, storefront::router(service.state)).await });
    let http = reqwest::Client::new();
    expect_error(
        http.get(format!("{base}/products/1")).send().await.unwrap(),
        503,
        "database_unavailable",
    )
    .await;
    let deep = http
        .get(format!("{base}/health/deep"))
        .send()
        .await
        .unwrap();
    assert_eq!(deep.status(), 503);
    let report: serde_json::Value = deep.json().await.unwrap();
    assert_eq!(report["database"]["reachable"], false);
    assert_eq!(
        http.get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn openapi_documents_every_route_and_metrics_count_requests() {
    let app = TestApp::start().await;
    let doc: serde_json::Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = [
        ("get", "/products"),
        ("get", "/products/{id}"),
        ("get", "/images/{name}"),
        ("post", "/carts"),
        ("get", "/carts/{id}"),
        ("post", "/carts/{id}/items"),
        ("post", "/checkout"),
        ("get", "/orders/{id}"),
        ("get", "/health"),
        ("get", "/health/deep"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(
        paths.len(),
        routes
            .iter()
            .map(|r| r.1)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    for (method, path) in routes {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
        // And the route exists: a placeholder id answers anything but route_not_found / method_not_allowed.
        let url = app.url(&path.replace("{id}", "1").replace("{name}", "x.svg"));
        let response = app
            .http
            .request(method.to_uppercase().parse().unwrap(), url)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert!(
            status != 405 && !text.contains("route_not_found"),
            "{method} {path}: {status} {text}"
        );
    }
    assert!(
        doc["paths"]["/checkout"]["post"]["responses"]["200"].is_object(),
        "replays are documented"
    );

    // The route check above fetched /products once already.
    let _: ProductList = app
        .http
        .get(app.url("/products"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"storefront_http_requests_total{route="/products",method="GET",status="200"} 2"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"storefront_control_epoch{region="us-east-1"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let app = TestApp::start().await;
    let response = app.http.get(app.url("/products/1")).send().await.unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let given = app
        .http
        .get(app.url("/products/1"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(
        given.headers()["x-request-id"],
        "trace-me-42",
        "a caller's id is kept"
    );
}

/// A control source that never answers, like one behind a network partition.
struct Unanswering;

impl storefront::control::ControlSource for Unanswering {
    fn fetch(
        &self,
    ) -> futures::future::BoxFuture<
        '_,
        Result<lifeboat_contract::ControlState, storefront::control::ControlError>,
    > {
        Box::pin(futures::future::pending())
    }
    fn describe(&self) -> String {
        "unanswering".into()
    }
}

#[tokio::test]
async fn writers_do_not_queue_up_behind_a_silent_control_source() {
    let db = common::TestDb::create().await;
    let settings = storefront::app::Settings {
        region: "us-east-1".into(),
        database_url: db.url.clone(),
        control: storefront::control::ControlSpec::Static {
            active_region: "us-east-1".into(),
            epoch: 1,
        },
        sessions: storefront::app::SessionsSpec::Mysql,
        images: storefront::app::ImagesSpec::Local,
        assets_dir: None,
        // Two admitted writes per connection: all 16 writers below get past admission to the gate.
        max_connections: 8,
        serve_metrics: true,
        health: Default::default(),
        credentials: Default::default(),
    };
    let state = storefront::app::build_with_control(&settings, std::sync::Arc::new(Unanswering))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, storefront::router(state)).await });
    let client = storefront::Client::new(&base).unwrap();

    let started = std::time::Instant::now();
    let writers = (0..16).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.create_cart().await })
    });
    for result in futures::future::join_all(writers).await {
        let err = result.unwrap().unwrap_err();
        assert_eq!(err.code(), Some("control_unreachable"), "{err}");
    }
    // One fetch times out (500 ms); the writers behind it refuse at once instead of each waiting for their own.
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "16 refusals took {elapsed:?}"
    );
}
