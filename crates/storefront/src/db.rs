//! The relational database: pool, migrations, demo catalog, and the catalog and order queries.
//!
//! Aurora MySQL on AWS, MariaDB locally. Plain queries only (no compile-time checked macros, which would need a
//! database at build time).

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{MySqlConnection, MySqlPool, Row};

use crate::model::{Order, OrderLine};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A pool that connects on first use, so the service starts (and reports itself unhealthy) while the database
/// is still down.
pub fn connect_lazy(url: &str, max_connections: u32) -> Result<MySqlPool, sqlx::Error> {
    let options = MySqlConnectOptions::from_str(url)?;
    Ok(MySqlPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(2))
        // A ping per checkout would double the round trips of a catalog read; a dead connection fails its
        // query instead and is dropped.
        .test_before_acquire(false)
        .idle_timeout(Duration::from_secs(60))
        .connect_lazy_with(options))
}

pub async fn is_read_only<'c>(db: impl sqlx::MySqlExecutor<'c>) -> Result<bool, sqlx::Error> {
    let v: i64 = sqlx::query_scalar("SELECT CAST(@@read_only AS SIGNED)")
        .fetch_one(db)
        .await?;
    Ok(v != 0)
}

/// The epoch in the fencing row (`None` before migrations created it).
pub async fn fence_epoch<'c>(db: impl sqlx::MySqlExecutor<'c>) -> Result<Option<u64>, sqlx::Error> {
    sqlx::query_scalar("SELECT epoch FROM lifeboat_fence WHERE id = 1")
        .fetch_optional(db)
        .await
}

/// A connection of its own for the health probes, outside the pool: when every pooled connection is busy
/// with writes waiting for the replica's acknowledgement, `/health/deep` must still answer within its bound
/// and say the truth (the database is reachable and in its role), not time out in the pool's queue and have
/// the front door take a busy but healthy region out of service.
pub async fn probe_connection(pool: &MySqlPool) -> Result<MySqlConnection, sqlx::Error> {
    use sqlx::ConnectOptions;
    pool.connect_options().connect().await
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preparation {
    /// Migrations applied; `seeded` demo products inserted into an empty catalog.
    Prepared { seeded: usize },
    /// A read-only database (a replica): schema and catalog arrive by replication.
    SkippedReadOnly,
}

/// Whether every migration of [`MIGRATOR`] is recorded as applied. Needs only `SELECT`, so the storefront's
/// own user (no DDL) can tell it has nothing to migrate.
pub async fn migrations_applied(pool: &MySqlPool) -> Result<bool, sqlx::Error> {
    let applied: Vec<i64> =
        match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
            .fetch_all(pool)
            .await
        {
            Ok(v) => v,
            // ER_NO_SUCH_TABLE: nothing was ever migrated.
            Err(e) if crate::error::mysql_error_number(&e) == Some(1146) => return Ok(false),
            Err(e) => return Err(e),
        };
    Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
}

/// On a writable database apply migrations (when any is pending: the storefront's own user has no DDL
/// privilege, and needs none once `storefront migrate` ran) and seed the demo catalog when the catalog is
/// empty; on a read-only one do nothing.
pub async fn prepare(pool: &MySqlPool) -> anyhow::Result<Preparation> {
    if is_read_only(pool).await? {
        return Ok(Preparation::SkippedReadOnly);
    }
    if !migrations_applied(pool).await? {
        MIGRATOR
            .run(pool)
            .await
            .map_err(|e| anyhow::anyhow!("applying migrations: {e}"))?;
    }
    let seeded = seed_demo_catalog(pool).await?;
    Ok(Preparation::Prepared { seeded })
}

/// The storefront's own database user: a name and a password (from its secret on AWS).
#[derive(Clone, PartialEq, Eq)]
pub struct AppUser {
    pub name: String,
    pub password: String,
}

impl std::fmt::Debug for AppUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppUser")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What the storefront's queries need and nothing more: reading and writing rows of the shop's tables. No
/// DDL (`CREATE`, `ALTER`, `DROP`, ...), no `GRANT`, nothing outside the shop's database.
pub const APP_PRIVILEGES: &str = "SELECT, INSERT, UPDATE, DELETE";

/// A quoted SQL string literal: `'` and `\` doubled/escaped (account names and passwords cannot be bound as
/// parameters in `CREATE USER`).
fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Creates (or updates the password of) the storefront's own user `name`@`host` and grants it
/// [`APP_PRIVILEGES`] on `database`, plus the read-only replication monitor privilege `/health/deep` uses
/// when it may (`SLAVE MONITOR` on MariaDB, `REPLICATION CLIENT` on MySQL). Runs as the admin user.
pub async fn create_app_user(
    admin: &MySqlPool,
    database: &str,
    host: &str,
    user: &AppUser,
) -> anyhow::Result<()> {
    let name_ok = !user.name.is_empty()
        && user.name.len() <= 32
        && user
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !name_ok {
        anyhow::bail!(
            "the database user name {:?} is not allowed: 1 to 32 letters, digits and '_'",
            user.name
        );
    }
    if database.contains('`') {
        anyhow::bail!("the database name {database:?} contains a backtick");
    }
    let account = format!("{}@{}", sql_string(&user.name), sql_string(host));
    let password = sql_string(&user.password);
    for statement in [
        format!("CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {password}"),
        format!("ALTER USER {account} IDENTIFIED BY {password}"),
        format!("GRANT {APP_PRIVILEGES} ON `{database}`.* TO {account}"),
    ] {
        // Never echo the statement: it holds the password.
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(admin)
            .await
            .map_err(|e| anyhow::anyhow!("creating the database user {}: {e}", user.name))?;
    }
    let monitor = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "GRANT SLAVE MONITOR ON *.* TO {account}"
    )))
    .execute(admin)
    .await;
    if monitor.is_err() {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "GRANT REPLICATION CLIENT ON *.* TO {account}"
        )))
        .execute(admin)
        .await;
    }
    Ok(())
}

/// Inserts the demo catalog when there are no products; returns how many were inserted.
pub async fn seed_demo_catalog(pool: &MySqlPool) -> Result<usize, sqlx::Error> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(pool)
        .await?;
    if count > 0 {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    for p in DEMO_CATALOG {
        sqlx::query(
            "INSERT IGNORE INTO products (id, sku, name, description, price_cents, currency, image_key) \
             VALUES (?, ?, ?, ?, ?, 'USD', ?)",
        )
        .bind(p.id)
        .bind(p.sku)
        .bind(p.name)
        .bind(p.description)
        .bind(p.price_cents)
        .bind(format!("{}.svg", p.sku))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(DEMO_CATALOG.len())
}

pub struct DemoProduct {
    pub id: u64,
    pub sku: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub price_cents: u64,
}

pub const DEMO_CATALOG: &[DemoProduct] = &[
    DemoProduct {
        id: 1,
        sku: "lifejacket-adult",
        name: "Life jacket, adult",
        description: "Foam life jacket, 150 N buoyancy.",
        price_cents: 6_900,
    },
    DemoProduct {
        id: 2,
        sku: "lifejacket-child",
        name: "Life jacket, child",
        description: "Foam life jacket with crotch strap, 100 N.",
        price_cents: 4_900,
    },
    DemoProduct {
        id: 3,
        sku: "throw-ring",
        name: "Throw ring",
        description: "Ring buoy with 30 m floating line.",
        price_cents: 5_400,
    },
    DemoProduct {
        id: 4,
        sku: "bilge-pump",
        name: "Hand bilge pump",
        description: "Manual pump, 40 l/min.",
        price_cents: 3_200,
    },
    DemoProduct {
        id: 5,
        sku: "flare-kit",
        name: "Flare kit",
        description: "Three hand flares and two smoke signals.",
        price_cents: 8_900,
    },
    DemoProduct {
        id: 6,
        sku: "vhf-radio",
        name: "Handheld VHF radio",
        description: "Floating radio with DSC distress button.",
        price_cents: 17_900,
    },
    DemoProduct {
        id: 7,
        sku: "epirb",
        name: "EPIRB beacon",
        description: "406 MHz emergency beacon with GPS.",
        price_cents: 42_900,
    },
    DemoProduct {
        id: 8,
        sku: "first-aid",
        name: "Marine first-aid kit",
        description: "Waterproof case, 120 pieces.",
        price_cents: 3_900,
    },
    DemoProduct {
        id: 9,
        sku: "paddle",
        name: "Aluminium paddle",
        description: "Telescopic paddle, 1.2 to 2 m.",
        price_cents: 2_900,
    },
    DemoProduct {
        id: 10,
        sku: "whistle",
        name: "Safety whistle",
        description: "Pea-less whistle, 115 dB.",
        price_cents: 400,
    },
    DemoProduct {
        id: 11,
        sku: "dry-bag",
        name: "Dry bag, 20 l",
        description: "Roll-top bag that floats.",
        price_cents: 2_400,
    },
    DemoProduct {
        id: 12,
        sku: "life-raft",
        name: "Four-person life raft",
        description: "Canister raft, SOLAS B pack.",
        price_cents: 189_900,
    },
];

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductRow {
    pub id: u64,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price_cents: u64,
    pub currency: String,
    pub image_key: String,
}

pub async fn list_products(pool: &MySqlPool) -> Result<Vec<ProductRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, sku, name, description, price_cents, currency, image_key FROM products ORDER BY id")
        .fetch_all(pool)
        .await
}

pub async fn get_product(pool: &MySqlPool, id: u64) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, sku, name, description, price_cents, currency, image_key FROM products WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// For a cart change, in one round trip: whether the product exists, and the order the cart became, if any.
pub async fn product_and_cart_order(
    pool: &MySqlPool,
    product_id: u64,
    cart_id: &str,
) -> Result<(bool, Option<String>), sqlx::Error> {
    let (exists, order_id): (i64, Option<String>) = sqlx::query_as(
        "SELECT CAST(EXISTS(SELECT 1 FROM products WHERE id = ?) AS SIGNED), \
         (SELECT id FROM orders WHERE cart_id = ?)",
    )
    .bind(product_id)
    .bind(cart_id)
    .fetch_one(pool)
    .await?;
    Ok((exists != 0, order_id))
}

/// Timestamps are stored with microsecond precision; the order answered at creation must equal the one read back.
pub fn now_micros() -> time::PrimitiveDateTime {
    let now = time::OffsetDateTime::now_utc();
    let micros = now.microsecond();
    let now = now.replace_nanosecond(micros * 1000).unwrap_or(now);
    time::PrimitiveDateTime::new(now.date(), now.time())
}

pub fn format_timestamp(t: time::PrimitiveDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.format(&format).unwrap_or_else(|_| t.to_string())
}

/// An order and its lines, or None.
pub async fn find_order(
    conn: &mut MySqlConnection,
    id: &str,
) -> Result<Option<Order>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT id, cart_id, region, epoch, currency, total_cents, created_at FROM orders WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let lines = sqlx::query(
        "SELECT product_id, name, quantity, unit_price_cents FROM order_lines WHERE order_id = ? ORDER BY line_no",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|l| -> Result<OrderLine, sqlx::Error> {
        let quantity: u32 = l.try_get("quantity")?;
        let unit_price_cents: u64 = l.try_get("unit_price_cents")?;
        Ok(OrderLine {
            product_id: l.try_get("product_id")?,
            name: l.try_get("name")?,
            quantity,
            unit_price_cents,
            line_total_cents: unit_price_cents * u64::from(quantity),
        })
    })
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Order {
        id: row.try_get("id")?,
        cart_id: row.try_get("cart_id")?,
        status: "confirmed".into(),
        region: row.try_get("region")?,
        epoch: row.try_get("epoch")?,
        currency: row.try_get("currency")?,
        total_cents: row.try_get("total_cents")?,
        lines,
        created_at: format_timestamp(row.try_get("created_at")?),
    }))
}

/// Orders (id, cart id, idempotency key) written under this key or for this cart: at most two, thanks to the
/// unique keys. One round trip for both checks of a checkout.
pub async fn find_orders_by_key_or_cart(
    conn: &mut MySqlConnection,
    key: &str,
    cart_id: &str,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, cart_id, idempotency_key FROM orders WHERE idempotency_key = ? OR cart_id = ?",
    )
    .bind(key)
    .bind(cart_id)
    .fetch_all(conn)
    .await
}

/// What `SHOW SLAVE STATUS` says, when this database is a replica and we may read it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplicationStatus {
    pub io_running: String,
    pub sql_running: String,
    pub seconds_behind: Option<u64>,
    pub last_error: String,
}

pub async fn replication_status<'c>(
    db: impl sqlx::MySqlExecutor<'c>,
) -> Result<Option<ReplicationStatus>, sqlx::Error> {
    // The text protocol: SHOW statements are not all preparable, and every column arrives as text.
    let Some(row) = sqlx::raw_sql("SHOW SLAVE STATUS")
        .fetch_optional(db)
        .await?
    else {
        return Ok(None);
    };
    let text = |name: &str| -> String {
        row.try_get_unchecked::<Option<String>, _>(name)
            .ok()
            .flatten()
            .unwrap_or_default()
    };
    Ok(Some(ReplicationStatus {
        io_running: text("Slave_IO_Running"),
        sql_running: text("Slave_SQL_Running"),
        seconds_behind: text("Seconds_Behind_Master").parse().ok(),
        last_error: text("Last_Error"),
    }))
}
