use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::SharedState;
use crate::db::{self, ProductRow};
use crate::error::{ApiError, ApiResult};
use crate::model::{Product, ProductList, parse_product_id};

async fn to_product(app: &SharedState, row: ProductRow) -> Product {
    let image_url = app.images.url_for(&row.image_key).await;
    Product {
        id: row.id,
        sku: row.sku,
        name: row.name,
        description: row.description,
        price_cents: row.price_cents,
        currency: row.currency,
        image_url,
    }
}

pub async fn list(State(app): State<SharedState>) -> ApiResult<Json<ProductList>> {
    let rows = db::list_products(&app.pool).await?;
    let mut products = Vec::with_capacity(rows.len());
    for row in rows {
        products.push(to_product(&app, row).await);
    }
    Ok(Json(ProductList { products }))
}

pub async fn get_one(
    State(app): State<SharedState>,
    Path(raw): Path<String>,
) -> ApiResult<Json<Product>> {
    let id = parse_product_id(&raw).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_id",
            format!("{raw:?} is not a product id (a positive integer)"),
        )
    })?;
    let row = db::get_product(&app.pool, id).await?.ok_or_else(|| {
        ApiError::not_found("product_not_found", format!("there is no product {id}"))
    })?;
    Ok(Json(to_product(&app, row).await))
}

pub async fn image(
    State(app): State<SharedState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let (content_type, bytes) = app.images.load_local(&name).await.ok_or_else(|| {
        ApiError::not_found("image_not_found", format!("there is no image {name:?}"))
    })?;
    let mut response = bytes.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}
