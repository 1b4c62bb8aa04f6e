//! `POST /checkout`: one order per idempotency key, written with its lines in one transaction that also checks
//! the fencing row.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::{MySql, QueryBuilder, Transaction};

use super::carts::parse_cart_id;
use super::{ApiJson, SharedState, write_headers};
use crate::db;
use crate::error::{ApiError, ApiResult, mysql_error_number};
use crate::gate::WritePermit;
use crate::model::{
    CheckoutRequest, MAX_IDEMPOTENCY_KEY_LEN, Order, OrderLine, valid_idempotency_key,
};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on an answer that returns an order written by an earlier request with the same key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// MySQL errors after which the whole attempt is simply tried again.
const ER_DUP_ENTRY: u16 = 1062;
const ER_LOCK_DEADLOCK: u16 = 1213;
const ATTEMPTS: usize = 3;

fn idempotency_key(headers: &HeaderMap) -> ApiResult<String> {
    let raw = headers.get(IDEMPOTENCY_KEY).ok_or_else(|| {
        ApiError::bad_request(
            "missing_idempotency_key",
            "checkout needs an Idempotency-Key header naming this attempt",
        )
    })?;
    let key = raw.to_str().ok().filter(|k| valid_idempotency_key(k)).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_idempotency_key",
            format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters of A-Z a-z 0-9 - _ . :"),
        )
    })?;
    Ok(key.to_owned())
}

enum Attempt {
    Done(Response),
    /// A concurrent writer got in first (same key or same cart) or a deadlock: look again.
    Retry,
}

pub async fn checkout(
    State(app): State<SharedState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CheckoutRequest>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let cart_id = parse_cart_id(&body.cart_id)?;
    let permit = app.gate.permit().await?;
    let context = |e: ApiError| e.with_write_context(&permit.region, Some(permit.epoch));
    let cart = app.sessions.get_cart(&cart_id).await.map_err(context)?;
    for _ in 0..ATTEMPTS {
        let tx = permit.begin().await?;
        match attempt(&app, &permit, tx, &key, &cart_id, cart.as_ref())
            .await
            .map_err(context)?
        {
            Attempt::Done(response) => return Ok(response),
            Attempt::Retry => continue,
        }
    }
    Err(context(ApiError::unavailable(
        "checkout_contended",
        "concurrent checkouts kept colliding; retry with the same Idempotency-Key",
        Some(permit.active_region.clone()),
    )))
}

async fn attempt(
    app: &SharedState,
    permit: &WritePermit,
    mut tx: Transaction<'static, MySql>,
    key: &str,
    cart_id: &str,
    cart: Option<&crate::model::Cart>,
) -> ApiResult<Attempt> {
    let existing = db::find_orders_by_key_or_cart(&mut tx, key, cart_id).await?;
    if let Some((order_id, order_cart, _)) = existing.iter().find(|(_, _, k)| k == key) {
        let order = db::find_order(&mut tx, order_id).await?;
        tx.rollback().await?;
        if order_cart != cart_id {
            return Err(ApiError::conflict(
                "idempotency_key_reused",
                format!("Idempotency-Key {key:?} was used for cart {order_cart}, not {cart_id}"),
            ));
        }
        let order = order.ok_or_else(|| {
            ApiError::internal(format!("order {order_id} vanished while being read"))
        })?;
        app.metrics.checkout_replayed();
        return Ok(Attempt::Done(order_response(StatusCode::OK, order, true)));
    }
    if let Some((order_id, _, _)) = existing.first() {
        tx.rollback().await?;
        return Err(ApiError::conflict(
            "cart_already_ordered",
            format!(
                "cart {cart_id} was already checked out as order {order_id} under another Idempotency-Key"
            ),
        ));
    }
    let Some(cart) = cart else {
        tx.rollback().await?;
        return Err(ApiError::unprocessable(
            "unknown_cart",
            format!("there is no cart {cart_id}"),
        ));
    };
    if cart.items.is_empty() {
        tx.rollback().await?;
        return Err(ApiError::unprocessable(
            "cart_empty",
            format!("cart {cart_id} has no items"),
        ));
    }

    let mut prices = QueryBuilder::<MySql>::new(
        "SELECT id, name, price_cents, currency FROM products WHERE id IN (",
    );
    let mut ids = prices.separated(", ");
    for item in &cart.items {
        ids.push_bind(item.product_id);
    }
    prices.push(")");
    let products: Vec<(u64, String, u64, String)> =
        prices.build_query_as().fetch_all(&mut *tx).await?;

    let mut lines = Vec::with_capacity(cart.items.len());
    let mut currency: Option<&str> = None;
    let mut total: u64 = 0;
    for item in &cart.items {
        let Some((product_id, name, price, item_currency)) =
            products.iter().find(|p| p.0 == item.product_id)
        else {
            tx.rollback().await?;
            return Err(ApiError::unprocessable(
                "unknown_product",
                format!(
                    "cart {cart_id} holds product {} which is no longer sold",
                    item.product_id
                ),
            ));
        };
        if currency.is_some_and(|c| c != item_currency) {
            tx.rollback().await?;
            return Err(ApiError::unprocessable(
                "mixed_currencies",
                "a cart's products must share one currency",
            ));
        }
        currency = Some(item_currency);
        let line_total = price.checked_mul(u64::from(item.quantity));
        let Some(new_total) = line_total.and_then(|l| total.checked_add(l)) else {
            tx.rollback().await?;
            return Err(ApiError::unprocessable(
                "total_too_large",
                "the order total does not fit",
            ));
        };
        total = new_total;
        lines.push(OrderLine {
            product_id: *product_id,
            name: name.clone(),
            quantity: item.quantity,
            unit_price_cents: *price,
            line_total_cents: line_total.unwrap_or(0),
        });
    }

    let order_id = uuid::Uuid::new_v4().to_string();
    let created_at = db::now_micros();
    let order = Order {
        id: order_id.clone(),
        cart_id: cart_id.to_owned(),
        status: "confirmed".into(),
        region: permit.region.clone(),
        epoch: permit.epoch,
        currency: currency.unwrap_or("USD").to_owned(),
        total_cents: total,
        lines,
        created_at: db::format_timestamp(created_at),
    };
    let inserted = sqlx::query(
        "INSERT INTO orders (id, idempotency_key, cart_id, region, epoch, currency, total_cents, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&order.id)
    .bind(key)
    .bind(cart_id)
    .bind(&order.region)
    .bind(order.epoch)
    .bind(&order.currency)
    .bind(order.total_cents)
    .bind(created_at)
    .execute(&mut *tx)
    .await;
    if let Err(e) = inserted {
        tx.rollback().await?;
        // Another request with this key or for this cart committed first: the next attempt finds its order.
        if matches!(
            mysql_error_number(&e),
            Some(ER_DUP_ENTRY | ER_LOCK_DEADLOCK)
        ) {
            return Ok(Attempt::Retry);
        }
        return Err(e.into());
    }
    let mut insert_lines = QueryBuilder::<MySql>::new(
        "INSERT INTO order_lines (order_id, line_no, product_id, name, quantity, unit_price_cents) ",
    );
    insert_lines.push_values(order.lines.iter().enumerate(), |mut row, (i, line)| {
        row.push_bind(&order.id)
            .push_bind(i as u32)
            .push_bind(line.product_id)
            .push_bind(&line.name)
            .push_bind(line.quantity)
            .push_bind(line.unit_price_cents);
    });
    insert_lines.build().execute(&mut *tx).await?;
    match tx.commit().await {
        Ok(()) => {}
        Err(e) if mysql_error_number(&e) == Some(ER_LOCK_DEADLOCK) => return Ok(Attempt::Retry),
        Err(e) => return Err(e.into()),
    }
    permit.confirm_commit().await?;
    app.metrics.order_created();
    tracing::info!(order_id = %order.id, cart_id, epoch = order.epoch, total_cents = order.total_cents, "order written");
    Ok(Attempt::Done(order_response(
        StatusCode::CREATED,
        order,
        false,
    )))
}

fn order_response(status: StatusCode, order: Order, replayed: bool) -> Response {
    let mut headers = write_headers(&order.region, order.epoch);
    if let Ok(location) = HeaderValue::from_str(&format!("/orders/{}", order.id)) {
        headers.insert(header::LOCATION, location);
    }
    if replayed {
        headers.insert(
            HeaderName::from_static(IDEMPOTENT_REPLAYED),
            HeaderValue::from_static("true"),
        );
    }
    (status, headers, Json(order)).into_response()
}
