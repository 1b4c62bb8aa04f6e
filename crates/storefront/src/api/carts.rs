use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiJson, SharedState, write_headers};
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::model::{AddItemRequest, Cart, MAX_LINE_QUANTITY, parse_uuid_id};

pub(super) fn parse_cart_id(raw: &str) -> ApiResult<String> {
    parse_uuid_id(raw).ok_or_else(|| {
        ApiError::bad_request("invalid_id", format!("{raw:?} is not a cart id (a UUID)"))
    })
}

pub async fn create(State(app): State<SharedState>) -> ApiResult<Response> {
    let permit = app.gate.permit().await?;
    let id = uuid::Uuid::new_v4().to_string();
    let cart = app
        .sessions
        .create_cart(&permit, &id)
        .await
        .map_err(|e| e.with_write_context(&permit.region, Some(permit.epoch)))?;
    let mut response = (
        StatusCode::CREATED,
        write_headers(&permit.region, permit.epoch),
        Json(cart),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/carts/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn get_one(
    State(app): State<SharedState>,
    Path(raw): Path<String>,
) -> ApiResult<Json<Cart>> {
    let id = parse_cart_id(&raw)?;
    let cart =
        app.sessions.get_cart(&id).await?.ok_or_else(|| {
            ApiError::not_found("cart_not_found", format!("there is no cart {id}"))
        })?;
    Ok(Json(cart))
}

pub async fn add_item(
    State(app): State<SharedState>,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<AddItemRequest>,
) -> ApiResult<Response> {
    let id = parse_cart_id(&raw)?;
    if !(1..=MAX_LINE_QUANTITY).contains(&body.quantity) {
        return Err(ApiError::unprocessable(
            "quantity_out_of_range",
            format!(
                "quantity must be between 1 and {MAX_LINE_QUANTITY}, got {}",
                body.quantity
            ),
        ));
    }
    let quantity = body.quantity as u32;
    let (product_exists, order_id) =
        db::product_and_cart_order(&app.pool, body.product_id, &id).await?;
    if !product_exists {
        return Err(ApiError::unprocessable(
            "unknown_product",
            format!("there is no product {}", body.product_id),
        ));
    }
    let permit = app.gate.permit().await?;
    let context = |e: ApiError| e.with_write_context(&permit.region, Some(permit.epoch));
    if let Some(order_id) = order_id {
        return Err(context(ApiError::conflict(
            "cart_already_ordered",
            format!("cart {id} was checked out as order {order_id}; start a new cart"),
        )));
    }
    let cart = app
        .sessions
        .add_item(&permit, &id, body.product_id, quantity)
        .await
        .map_err(context)?;
    Ok((write_headers(&permit.region, permit.epoch), Json(cart)).into_response())
}
