//! The storefront's own database user: created by the migrate path (as admin) with only the privileges the
//! storefront's queries need. It serves the shop, and it cannot DROP, ALTER or GRANT (the server's error is
//! checked). Against MariaDB (`LIFEBOAT_TEST_MYSQL_URL`).

mod common;

use std::sync::Arc;

use common::{TestDb, active_state, server_url};
use sqlx::MySqlPool;
use storefront::app::{ImagesSpec, SessionsSpec, Settings};
use storefront::control::{ControlSpec, StaticControl};
use storefront::db::AppUser;
use storefront::error::mysql_error_number;

async fn drop_user(admin: &MySqlPool, name: &str) {
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP USER IF EXISTS '{name}'@'%'"
    )))
    .execute(admin)
    .await;
}

/// The error of `statement` run as the app user: it must be refused as a privilege error.
async fn refused(app: &MySqlPool, statement: &str) -> (u16, String) {
    let err = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(app)
        .await
        .expect_err(statement);
    let number = mysql_error_number(&err).unwrap_or_else(|| panic!("{statement}: {err}"));
    (number, err.to_string())
}

#[tokio::test]
async fn the_storefront_user_serves_the_shop_but_cannot_drop_alter_or_grant() {
    let db = TestDb::create().await;
    let admin = MySqlPool::connect(&db.url).await.unwrap();
    storefront::db::prepare(&admin).await.unwrap();
    let user = AppUser {
        name: format!("sfapp_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]),
        password: "p'a\\ss:w#rd%".into(),
    };
    storefront::db::create_app_user(&admin, &db.name, "%", &user)
        .await
        .unwrap();
    // Idempotent: a second run (a later `storefront migrate`) only resets the password.
    storefront::db::create_app_user(&admin, &db.name, "%", &user)
        .await
        .unwrap();

    let app_url = format!(
        "mysql://{}:{}@{}/{}",
        user.name,
        "p%27a%5Css%3Aw%23rd%25",
        server_url()
            .rsplit_once('@')
            .map(|(_, a)| a.trim_end_matches('/'))
            .unwrap(),
        db.name
    );
    let app = MySqlPool::connect(&app_url).await.unwrap();

    // Everything the storefront needs.
    let products: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(&app)
        .await
        .unwrap();
    assert_eq!(products, 12);
    assert!(
        storefront::db::migrations_applied(&app).await.unwrap(),
        "the app user can tell nothing is pending"
    );
    assert_eq!(
        storefront::db::prepare(&app).await.unwrap(),
        storefront::db::Preparation::Prepared { seeded: 0 },
        "serving as the app user prepares without DDL"
    );

    // Nothing else: each refused with a privilege error naming the user.
    for (statement, numbers) in [
        ("DROP TABLE orders", &[1142][..]),
        ("ALTER TABLE products ADD COLUMN x INT", &[1142][..]),
        ("CREATE TABLE stolen (id INT)", &[1142][..]),
        ("TRUNCATE TABLE orders", &[1142][..]),
        (
            "GRANT SELECT ON *.* TO CURRENT_USER",
            &[1044, 1045, 1142, 1227][..],
        ),
        ("CREATE USER 'intruder'@'%'", &[1227][..]),
    ] {
        let (number, message) = refused(&app, statement).await;
        assert!(
            numbers.contains(&number),
            "{statement}: error {number} {message}"
        );
        assert!(
            message.to_lowercase().contains("denied"),
            "{statement}: {message}"
        );
        // Table and database errors name the refused user (1227 names only the missing privilege).
        if number != 1227 {
            assert!(message.contains(&user.name), "{statement}: {message}");
        }
    }
    let grant = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "GRANT SELECT ON `{}`.* TO 'intruder'@'%'",
        db.name
    )))
    .execute(&app)
    .await
    .expect_err("GRANT");
    assert!(
        matches!(mysql_error_number(&grant), Some(1044 | 1142 | 1227 | 1410)),
        "{grant}"
    );
    assert!(
        grant.to_string().to_lowercase().contains("denied")
            || grant.to_string().contains("not allowed"),
        "{grant}"
    );
    let still_there: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(still_there, 0);

    // The whole storefront runs as this user: catalog, cart, checkout.
    let settings = Settings {
        region: "us-east-1".into(),
        database_url: app_url,
        control: ControlSpec::Static {
            active_region: "us-east-1".into(),
            epoch: 1,
        },
        sessions: SessionsSpec::Mysql,
        images: ImagesSpec::Local,
        assets_dir: None,
        max_connections: 4,
        serve_metrics: true,
        health: Default::default(),
        credentials: Default::default(),
    };
    let state = storefront::app::build_with_control(
        &settings,
        Arc::new(StaticControl::new(active_state("us-east-1", 1))),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = storefront::router(Arc::clone(&state));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = storefront::Client::new(&base).unwrap();
    assert_eq!(client.products().await.unwrap().len(), 12);
    let cart = client.create_cart().await.unwrap().value;
    client.add_item(&cart.id, 1, 2).await.unwrap();
    let outcome = client.checkout(&cart.id, "key-app-user-1").await.unwrap();
    assert_eq!(outcome.order.lines.len(), 1);
    let orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(orders, 1);

    app.close().await;
    drop_user(&admin, &user.name).await;
}

fn app_url(user: &str, password: &str, database: &str) -> String {
    let server = server_url();
    let address = server
        .rsplit_once('@')
        .map(|(_, a)| a.trim_end_matches('/'))
        .unwrap();
    format!("mysql://{user}:{password}@{address}/{database}")
}

async fn serve_with(
    database_url: String,
    url_file: &std::path::Path,
) -> (String, storefront::api::SharedState) {
    let settings = Settings {
        region: "us-east-1".into(),
        database_url,
        control: ControlSpec::Static {
            active_region: "us-east-1".into(),
            epoch: 1,
        },
        sessions: SessionsSpec::Mysql,
        images: ImagesSpec::Local,
        assets_dir: None,
        max_connections: 8,
        serve_metrics: true,
        health: Default::default(),
        credentials: storefront::credentials::CredentialSource::UrlFile(url_file.to_path_buf()),
    };
    let state = storefront::app::build_with_control(
        &settings,
        Arc::new(StaticControl::new(active_state("us-east-1", 1))),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = storefront::router(Arc::clone(&state));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, state)
}

#[tokio::test]
async fn a_password_rotation_costs_no_failed_request() {
    let db = TestDb::create().await;
    let admin = MySqlPool::connect(&db.url).await.unwrap();
    storefront::db::prepare(&admin).await.unwrap();
    let name = format!("sfrot_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let rotate = |password: &str| AppUser {
        name: name.clone(),
        password: password.into(),
    };
    storefront::db::create_app_user(&admin, &db.name, "%", &rotate("first1"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("database-url");
    std::fs::write(&url_file, app_url(&name, "first1", &db.name)).unwrap();

    // An instance running before the rotation, and one started just before it (its pool has not connected).
    let (running, _) = serve_with(app_url(&name, "first1", &db.name), &url_file).await;
    let (cold, cold_state) = serve_with(app_url(&name, "first1", &db.name), &url_file).await;
    let client = storefront::Client::new(&running).unwrap();
    for _ in 0..3 {
        assert_eq!(client.products().await.unwrap().len(), 12);
    }

    // The rotation: a new password in the database and in the secret source, as Secrets Manager does it.
    storefront::db::create_app_user(&admin, &db.name, "%", &rotate("second2"))
        .await
        .unwrap();
    std::fs::write(&url_file, app_url(&name, "second2", &db.name)).unwrap();
    let refused = MySqlPool::connect(&app_url(&name, "first1", &db.name))
        .await
        .expect_err("the old password is refused now");
    assert_eq!(mysql_error_number(&refused), Some(1045), "{refused}");

    // The cold instance's first connection uses the old password: refused, re-read, retried, answered.
    let cold_client = storefront::Client::new(&cold).unwrap();
    assert_eq!(cold_client.products().await.unwrap().len(), 12);
    let cart = cold_client.create_cart().await.unwrap().value;
    cold_client.add_item(&cart.id, 2, 1).await.unwrap();
    cold_client.checkout(&cart.id, "rotation-1").await.unwrap();
    assert_eq!(cold_state.credentials.refreshes(), 1);

    // The running instance: many requests at once need new connections; none fails.
    let mut requests = Vec::new();
    for _ in 0..20 {
        let client = client.clone();
        requests.push(tokio::spawn(async move {
            client.products().await.map(|p| p.len())
        }));
    }
    for request in requests {
        assert_eq!(request.await.unwrap().unwrap(), 12);
    }
    drop_user(&admin, &name).await;
}
