//! `GET /openapi.json`: the API described as OpenAPI 3.1.

use axum::Json;
use serde_json::{Value, json};

use crate::model::{MAX_BODY_BYTES, MAX_CART_LINES, MAX_IDEMPOTENCY_KEY_LEN, MAX_LINE_QUANTITY};

pub async fn serve() -> Json<Value> {
    Json(document())
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn json_response(description: &str, schema: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn refused() -> Value {
    json!({
        "description": "Write refused: this region is passive (`region_passive`), the write fence is raised (`write_fenced`), the database is fenced at a newer epoch (`stale_epoch`) or this instance cannot confirm its role (`control_unreachable`); or this region is at its limit of writes in progress (`overloaded`, nothing was done). `active_region` names where writes go. Retry after `Retry-After` seconds.",
        "headers": {
            "Retry-After": { "schema": { "type": "integer" } },
            "X-Lifeboat-Region": { "$ref": "#/components/headers/X-Lifeboat-Region" }
        },
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn write_headers() -> Value {
    json!({
        "X-Lifeboat-Region": { "$ref": "#/components/headers/X-Lifeboat-Region" },
        "X-Lifeboat-Epoch": { "$ref": "#/components/headers/X-Lifeboat-Epoch" }
    })
}

fn id_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

/// What a client does next with a cart it was given: read it, add to it, check it out. Stateful API tests
/// follow these links from one answer to the next request.
fn cart_links() -> Value {
    json!({
        "GetCart": { "operationId": "getCart", "parameters": { "id": "$response.body#/id" } },
        "AddCartItem": { "operationId": "addCartItem", "parameters": { "id": "$response.body#/id" } },
        "Checkout": { "operationId": "checkout", "requestBody": { "cart_id": "$response.body#/id" } }
    })
}

/// An order answer leads to the order itself.
fn order_links() -> Value {
    json!({ "GetOrder": { "operationId": "getOrder", "parameters": { "id": "$response.body#/id" } } })
}

/// A UUID in its hyphenated form, the only form the API reads or writes. `format` alone is an annotation in
/// JSON Schema 2020-12 (it does not constrain), so the pattern states what the server checks.
fn uuid_schema() -> Value {
    json!({
        "type": "string", "format": "uuid", "minLength": 36, "maxLength": 36,
        "pattern": "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
    })
}

/// Product ids: positive integers up to 2^53 - 1, the largest every JSON client holds exactly.
fn product_id_schema() -> Value {
    json!({ "type": "integer", "minimum": 1, "maximum": MAX_JSON_SAFE_INTEGER })
}

const MAX_JSON_SAFE_INTEGER: u64 = (1 << 53) - 1;

pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "lifeboat storefront",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Catalog, carts, idempotent checkout and orders. Writes (cart changes, checkout) are accepted only in the active region while the write fence is down and the instance holds the current fencing epoch; reads work in both regions. Every error is JSON (`Error`)."
        },
        "paths": {
            "/products": { "get": {
                "summary": "The catalog",
                "operationId": "listProducts",
                "responses": { "200": json_response("All products, by id", "ProductList") }
            }},
            "/products/{id}": { "get": {
                "summary": "One product",
                "operationId": "getProduct",
                "parameters": [ id_param("id", "Product id", product_id_schema()) ],
                "responses": {
                    "200": json_response("The product", "Product"),
                    "400": error_response("`invalid_id`: not a positive integer"),
                    "404": error_response("`product_not_found`")
                }
            }},
            "/images/{name}": { "get": {
                "summary": "A product image (local server only; on AWS `image_url` is a presigned S3 URL)",
                "operationId": "getImage",
                "parameters": [ id_param("name", "Image file name", json!({ "type": "string" })) ],
                "responses": {
                    "200": { "description": "The image", "content": { "image/*": {} } },
                    "404": error_response("`image_not_found`")
                }
            }},
            "/carts": { "post": {
                "summary": "Create an empty cart (no request body)",
                "operationId": "createCart",
                "responses": {
                    "201": { "description": "The new cart", "headers": write_headers(),
                             "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Cart" } } },
                             "links": cart_links() },
                    "503": refused()
                }
            }},
            "/carts/{id}": { "get": {
                "summary": "A cart",
                "operationId": "getCart",
                "parameters": [ id_param("id", "Cart id", uuid_schema()) ],
                "responses": {
                    "200": json_response("The cart", "Cart"),
                    "400": error_response("`invalid_id`: not a UUID"),
                    "404": error_response("`cart_not_found`")
                }
            }},
            "/carts/{id}/items": { "post": {
                "summary": "Add a quantity of a product to a cart",
                "operationId": "addCartItem",
                "parameters": [ id_param("id", "Cart id", uuid_schema()) ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/AddItem" } } } },
                "responses": {
                    "200": { "description": "The cart after the change", "headers": write_headers(),
                             "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Cart" } } },
                             "links": cart_links() },
                    "400": error_response("`malformed_json`, `invalid_id`, or `invalid_body` (not of the documented shape: unknown field, wrong type, a number no integer)"),
                    "404": error_response("`cart_not_found`"),
                    "409": error_response("`cart_already_ordered`: the cart was checked out"),
                    "413": error_response("`body_too_large`"),
                    "415": error_response("`unsupported_media_type`: the body is not application/json"),
                    "422": error_response("`quantity_out_of_range` (below 1, or the line would hold more than the maximum), `unknown_product`, `cart_full`"),
                    "503": refused()
                }
            }},
            "/checkout": { "post": {
                "summary": "Turn a cart into an order, exactly once per Idempotency-Key",
                "description": "The order and its lines are written in one transaction that also checks the fencing row. The first request with a key answers 201; any later request with the same key and the same cart answers 200 with the same body and `Idempotent-Replayed: true`, never writing a second order, even when the requests run concurrently. The same key with another cart answers 409.",
                "operationId": "checkout",
                "parameters": [{
                    "name": "Idempotency-Key", "in": "header", "required": true,
                    "description": "Names this checkout attempt; reuse it on every retry.",
                    "schema": { "type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LEN, "pattern": "^[A-Za-z0-9._:-]+$" }
                }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Checkout" } } } },
                "responses": {
                    "201": { "description": "Order written", "headers": write_headers(),
                             "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Order" } } },
                             "links": order_links() },
                    "200": { "description": "The order written earlier under this Idempotency-Key (a replay)",
                             "headers": { "Idempotent-Replayed": { "schema": { "type": "string", "const": "true" } } },
                             "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Order" } } },
                             "links": order_links() },
                    "400": error_response("`missing_idempotency_key`, `invalid_idempotency_key`, `malformed_json`, `invalid_id`, `invalid_body`"),
                    "409": error_response("`idempotency_key_reused` (the key belongs to another cart) or `cart_already_ordered` (the cart was checked out under another key)"),
                    "413": error_response("`body_too_large`"),
                    "415": error_response("`unsupported_media_type`: the body is not application/json"),
                    "422": error_response("`unknown_cart`, `cart_empty`, `unknown_product` (a product of the cart left the catalog)"),
                    "503": refused()
                }
            }},
            "/orders/{id}": { "get": {
                "summary": "An order",
                "operationId": "getOrder",
                "parameters": [ id_param("id", "Order id", uuid_schema()) ],
                "responses": {
                    "200": json_response("The order", "Order"),
                    "400": error_response("`invalid_id`: not a UUID"),
                    "404": error_response("`order_not_found`")
                }
            }},
            "/health": { "get": {
                "summary": "Process is up (no dependencies checked)",
                "operationId": "health",
                "responses": { "200": { "description": "Up", "content": { "application/json": {} } } }
            }},
            "/health/deep": { "get": {
                "summary": "Fit for its role: region, role, epoch, control state age, database reachability and read-only flag, fencing row, replication, session store",
                "operationId": "healthDeep",
                "parameters": [{
                    "name": "expect", "in": "query", "required": false,
                    "description": "`active`: 200 only where writes would be accepted now. `standby`: 200 when passive with a reachable database. Absent: healthy for the role the control state gives (active: database writable and control fresh; standby: database reachable).",
                    "schema": { "type": "string", "enum": ["active", "standby"] }
                }],
                "responses": {
                    "200": { "description": "Healthy", "content": { "application/json": {} } },
                    "400": error_response("`invalid_expect`"),
                    "503": { "description": "Unhealthy for the role; the body says why", "content": { "application/json": {} } }
                }
            }},
            "/metrics": { "get": {
                "summary": "Prometheus metrics (local server only)",
                "operationId": "metrics",
                "responses": { "200": { "description": "Prometheus text format", "content": { "text/plain": {} } } }
            }},
            "/openapi.json": { "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": { "200": { "description": "OpenAPI 3.1", "content": { "application/json": {} } } }
            }}
        },
        "components": {
            "headers": {
                "X-Lifeboat-Region": { "description": "Region the write was accepted (or refused) in", "schema": { "type": "string" } },
                "X-Lifeboat-Epoch": { "description": "Fencing epoch the write was accepted under", "schema": { "type": "integer" } }
            },
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error", "message"],
                    "properties": {
                        "error": { "type": "string", "description": "Stable code, e.g. region_passive, malformed_json" },
                        "message": { "type": "string" },
                        "active_region": { "type": "string", "description": "On refused writes: where writes go" }
                    }
                },
                "Product": {
                    "type": "object", "additionalProperties": false,
                    "required": ["id", "sku", "name", "description", "price_cents", "currency", "image_url"],
                    "properties": {
                        "id": { "type": "integer" }, "sku": { "type": "string" }, "name": { "type": "string" },
                        "description": { "type": "string" }, "price_cents": { "type": "integer" },
                        "currency": { "type": "string" }, "image_url": { "type": "string" }
                    }
                },
                "ProductList": { "type": "object", "required": ["products"],
                    "properties": { "products": { "type": "array", "items": { "$ref": "#/components/schemas/Product" } } } },
                "CartItem": { "type": "object", "required": ["product_id", "quantity"],
                    "properties": { "product_id": { "type": "integer" }, "quantity": { "type": "integer", "minimum": 1, "maximum": MAX_LINE_QUANTITY } } },
                "Cart": { "type": "object", "required": ["id", "items", "version"],
                    "properties": { "id": uuid_schema(), "version": { "type": "integer" },
                        "items": { "type": "array", "maxItems": MAX_CART_LINES, "items": { "$ref": "#/components/schemas/CartItem" } } } },
                "AddItem": { "type": "object", "additionalProperties": false, "required": ["product_id", "quantity"],
                    "description": format!("Bodies are limited to {MAX_BODY_BYTES} bytes. The quantity adds to what the cart holds; a product line holds at most {MAX_LINE_QUANTITY}."),
                    "properties": { "product_id": product_id_schema(), "quantity": { "type": "integer", "minimum": 1, "maximum": MAX_LINE_QUANTITY } } },
                "Checkout": { "type": "object", "additionalProperties": false, "required": ["cart_id"],
                    "properties": { "cart_id": uuid_schema() } },
                "OrderLine": { "type": "object",
                    "required": ["product_id", "name", "quantity", "unit_price_cents", "line_total_cents"],
                    "properties": { "product_id": { "type": "integer" }, "name": { "type": "string" }, "quantity": { "type": "integer" },
                        "unit_price_cents": { "type": "integer" }, "line_total_cents": { "type": "integer" } } },
                "Order": { "type": "object",
                    "required": ["id", "cart_id", "status", "region", "epoch", "currency", "total_cents", "lines", "created_at"],
                    "properties": {
                        "id": uuid_schema(), "cart_id": uuid_schema(), "status": { "type": "string", "const": "confirmed" },
                        "region": { "type": "string", "description": "Region the order was accepted in" },
                        "epoch": { "type": "integer", "description": "Fencing epoch the order was accepted under" },
                        "currency": { "type": "string" }, "total_cents": { "type": "integer" },
                        "lines": { "type": "array", "items": { "$ref": "#/components/schemas/OrderLine" } },
                        "created_at": { "type": "string", "format": "date-time" }
                    } }
            }
        }
    })
}
