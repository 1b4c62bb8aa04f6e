use axum::Json;
use axum::extract::{Path, State};

use super::SharedState;
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::model::{Order, parse_uuid_id};

pub async fn get_one(
    State(app): State<SharedState>,
    Path(raw): Path<String>,
) -> ApiResult<Json<Order>> {
    let id = parse_uuid_id(&raw).ok_or_else(|| {
        ApiError::bad_request("invalid_id", format!("{raw:?} is not an order id (a UUID)"))
    })?;
    let mut conn = app.pool.acquire().await?;
    let order = db::find_order(&mut conn, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("order_not_found", format!("there is no order {id}")))?;
    Ok(Json(order))
}
