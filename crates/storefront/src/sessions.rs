//! Carts live in a session store: a MySQL table locally, DynamoDB on AWS (feature `aws`), behind one trait.
//!
//! Writes take a [`WritePermit`]: the MySQL store checks the fencing row in the same transaction as the cart
//! write; the DynamoDB store checks it just before its conditional write.

use futures::future::BoxFuture;
use sqlx::MySqlPool;

use crate::error::ApiError;
use crate::gate::WritePermit;
use crate::model::{Cart, CartItem, MAX_CART_LINES, MAX_LINE_QUANTITY};

pub trait SessionStore: Send + Sync {
    /// Store a new, empty cart with this id.
    fn create_cart<'a>(
        &'a self,
        permit: &'a WritePermit,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Cart, ApiError>>;
    fn get_cart<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Cart>, ApiError>>;
    /// Add `quantity` of a product (already known to exist) to a cart; 404 when there is no such cart.
    fn add_item<'a>(
        &'a self,
        permit: &'a WritePermit,
        id: &'a str,
        product_id: u64,
        quantity: u32,
    ) -> BoxFuture<'a, Result<Cart, ApiError>>;
    /// Whether the store answers, for `/health/deep`.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
    fn describe(&self) -> &'static str;
}

/// The cart rule every store applies: quantities add up, each line and the number of lines are bounded.
pub fn add_to_cart(cart: &mut Cart, product_id: u64, quantity: u32) -> Result<(), ApiError> {
    match cart.items.iter_mut().find(|i| i.product_id == product_id) {
        Some(item) => {
            let total = i64::from(item.quantity) + i64::from(quantity);
            if total > MAX_LINE_QUANTITY {
                return Err(ApiError::unprocessable(
                    "quantity_out_of_range",
                    format!(
                        "the cart would hold {total} of product {product_id}; at most {MAX_LINE_QUANTITY} per product"
                    ),
                ));
            }
            item.quantity = total as u32;
        }
        None => {
            if cart.items.len() >= MAX_CART_LINES {
                return Err(ApiError::unprocessable(
                    "cart_full",
                    format!("a cart holds at most {MAX_CART_LINES} different products"),
                ));
            }
            cart.items.push(CartItem {
                product_id,
                quantity,
            });
        }
    }
    cart.version += 1;
    Ok(())
}

fn cart_not_found(id: &str) -> ApiError {
    ApiError::not_found("cart_not_found", format!("there is no cart {id}"))
}

fn decode_items(id: &str, json: &str) -> Result<Vec<CartItem>, ApiError> {
    serde_json::from_str(json)
        .map_err(|e| ApiError::internal(format!("cart {id} holds unreadable items: {e}")))
}

fn encode_items(items: &[CartItem]) -> Result<String, ApiError> {
    serde_json::to_string(items).map_err(ApiError::internal)
}

/// Carts in the `carts` table of the shop database (replicated with it to the standby region).
pub struct MysqlSessions {
    pool: MySqlPool,
}

impl MysqlSessions {
    pub fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }
}

impl SessionStore for MysqlSessions {
    fn create_cart<'a>(
        &'a self,
        permit: &'a WritePermit,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Cart, ApiError>> {
        Box::pin(async move {
            let mut tx = permit.begin().await?;
            let now = crate::db::now_micros();
            sqlx::query("INSERT INTO carts (id, items, version, created_at, updated_at) VALUES (?, '[]', 0, ?, ?)")
                .bind(id)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Cart {
                id: id.to_owned(),
                items: Vec::new(),
                version: 0,
            })
        })
    }

    fn get_cart<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Cart>, ApiError>> {
        Box::pin(async move {
            let row: Option<(String, u64)> =
                sqlx::query_as("SELECT items, version FROM carts WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            match row {
                None => Ok(None),
                Some((items, version)) => Ok(Some(Cart {
                    id: id.to_owned(),
                    items: decode_items(id, &items)?,
                    version,
                })),
            }
        })
    }

    fn add_item<'a>(
        &'a self,
        permit: &'a WritePermit,
        id: &'a str,
        product_id: u64,
        quantity: u32,
    ) -> BoxFuture<'a, Result<Cart, ApiError>> {
        Box::pin(async move {
            let mut tx = permit.begin().await?;
            let row: Option<(String, u64)> =
                sqlx::query_as("SELECT items, version FROM carts WHERE id = ? FOR UPDATE")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((items, version)) = row else {
                tx.rollback().await?;
                return Err(cart_not_found(id));
            };
            let mut cart = Cart {
                id: id.to_owned(),
                items: decode_items(id, &items)?,
                version,
            };
            if let Err(e) = add_to_cart(&mut cart, product_id, quantity) {
                tx.rollback().await?;
                return Err(e);
            }
            sqlx::query("UPDATE carts SET items = ?, version = ?, updated_at = ? WHERE id = ?")
                .bind(encode_items(&cart.items)?)
                .bind(cart.version)
                .bind(crate::db::now_micros())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(cart)
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        // Over a connection of its own, like the rest of `/health/deep`: a pool busy with writes must not
        // make the carts table look unreachable.
        Box::pin(async move {
            let mut conn = crate::db::probe_connection(&self.pool)
                .await
                .map_err(|e| format!("carts table: {e}"))?;
            let result = sqlx::query("SELECT 1 FROM carts LIMIT 1")
                .fetch_optional(&mut conn)
                .await
                .map(|_| ())
                .map_err(|e| format!("carts table: {e}"));
            let _ = sqlx::Connection::close(conn).await;
            result
        })
    }

    fn describe(&self) -> &'static str {
        "mysql"
    }
}

/// How long an untouched cart lives in DynamoDB: every change pushes its `expires_at` this far ahead.
pub const CART_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Partition key of the DynamoDB sessions table (string); the platform's table declares the same.
pub const DYNAMO_KEY: &str = "id";
/// The table's TTL attribute (epoch seconds); the platform's table enables TTL on it.
pub const DYNAMO_TTL_ATTRIBUTE: &str = "expires_at";
/// A fresh value written with every cart change. The SDK retries a write whose answer was lost, and if the first
/// attempt landed, the retry fails its condition on the item the write itself produced; finding its own token
/// in the item tells the writer that its change is in, so it neither reports a failure nor applies it twice.
#[cfg(feature = "aws")]
const DYNAMO_WRITE_TOKEN: &str = "write_token";
/// A key no cart can have (cart ids are UUIDs): `/health/deep` reads it to learn whether the table answers,
/// with GetItem, which the storefront's IAM policy grants (DescribeTable it does not).
#[cfg(feature = "aws")]
const HEALTH_PROBE_KEY: &str = "lifeboat-health-probe";

/// Carts in a DynamoDB table (a global table on AWS): partition key `id` (S), attributes `items` (S, JSON),
/// `version` (N) for optimistic concurrency and `expires_at` (N, epoch seconds) for the table's TTL.
#[cfg(feature = "aws")]
pub struct DynamoSessions {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

#[cfg(feature = "aws")]
impl DynamoSessions {
    pub fn new(client: aws_sdk_dynamodb::Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_owned(),
        }
    }

    async fn load(&self, id: &str) -> Result<Option<Cart>, ApiError> {
        Ok(self.load_with_token(id).await?.map(|(cart, _)| cart))
    }

    /// The cart and the token of the write that produced it.
    async fn load_with_token(&self, id: &str) -> Result<Option<(Cart, Option<String>)>, ApiError> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(DYNAMO_KEY, AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error(&self.table, e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        // DynamoDB deletes expired items only eventually (often days later): an expired cart is gone already.
        let expires_at = item
            .get(DYNAMO_TTL_ATTRIBUTE)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok());
        if expires_at.is_some_and(|t| t <= unix_now()) {
            return Ok(None);
        }
        let items = item
            .get("items")
            .and_then(|v| v.as_s().ok())
            .map_or("[]", String::as_str);
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let token = item
            .get(DYNAMO_WRITE_TOKEN)
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(Some((
            Cart {
                id: id.to_owned(),
                items: decode_items(id, items)?,
                version,
            },
            token,
        )))
    }

    /// Whether the write that carried `token` is the one the item holds now.
    async fn holds_write(&self, id: &str, token: &str) -> Result<bool, ApiError> {
        Ok(self
            .load_with_token(id)
            .await?
            .is_some_and(|(_, stored)| stored.as_deref() == Some(token)))
    }
}

#[cfg(feature = "aws")]
fn is_condition_failure<R>(
    e: &aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError, R>,
) -> bool {
    e.as_service_error()
        .is_some_and(|s| s.is_conditional_check_failed_exception())
}

#[cfg(feature = "aws")]
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `expires_at` of a cart changed now.
#[cfg(feature = "aws")]
fn cart_expiry() -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::N((unix_now() + CART_TTL.as_secs()).to_string())
}

#[cfg(feature = "aws")]
fn dynamo_error(table: &str, e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
    tracing::warn!(table, error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "session store call failed");
    ApiError::unavailable(
        "session_store_unavailable",
        "the session store is not reachable right now",
        None,
    )
}

#[cfg(feature = "aws")]
impl SessionStore for DynamoSessions {
    fn create_cart<'a>(
        &'a self,
        permit: &'a WritePermit,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Cart, ApiError>> {
        use aws_sdk_dynamodb::types::AttributeValue;
        Box::pin(async move {
            permit.check_fence().await?;
            let token = uuid::Uuid::new_v4().to_string();
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(DYNAMO_KEY, AttributeValue::S(id.to_owned()))
                .item("items", AttributeValue::S("[]".into()))
                .item("version", AttributeValue::N("0".into()))
                .item(DYNAMO_TTL_ATTRIBUTE, cart_expiry())
                .item(DYNAMO_WRITE_TOKEN, AttributeValue::S(token.clone()))
                .condition_expression("attribute_not_exists(id)")
                .send()
                .await;
            match result {
                Ok(_) => {}
                // A retried create whose first attempt landed.
                Err(e) if is_condition_failure(&e) && self.holds_write(id, &token).await? => {}
                Err(e) => return Err(dynamo_error(&self.table, e)),
            }
            Ok(Cart {
                id: id.to_owned(),
                items: Vec::new(),
                version: 0,
            })
        })
    }

    fn get_cart<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Cart>, ApiError>> {
        Box::pin(self.load(id))
    }

    fn add_item<'a>(
        &'a self,
        permit: &'a WritePermit,
        id: &'a str,
        product_id: u64,
        quantity: u32,
    ) -> BoxFuture<'a, Result<Cart, ApiError>> {
        use aws_sdk_dynamodb::types::AttributeValue;
        Box::pin(async move {
            // Optimistic concurrency: a concurrent change makes the condition fail; read again and retry.
            // `pending` is the token and result of an attempt whose condition failed: if the item holds that
            // token, the attempt landed after all (the SDK retried it after losing the answer).
            let mut pending: Option<(String, Cart)> = None;
            for attempt in 0..=5 {
                let (mut cart, stored) = self
                    .load_with_token(id)
                    .await?
                    .ok_or_else(|| cart_not_found(id))?;
                if let Some((token, written)) = pending.take()
                    && stored.as_deref() == Some(token.as_str())
                {
                    return Ok(written);
                }
                if attempt == 5 {
                    break;
                }
                let expected = cart.version;
                add_to_cart(&mut cart, product_id, quantity)?;
                permit.check_fence().await?;
                let token = uuid::Uuid::new_v4().to_string();
                let result = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .item(DYNAMO_KEY, AttributeValue::S(id.to_owned()))
                    .item("items", AttributeValue::S(encode_items(&cart.items)?))
                    .item("version", AttributeValue::N(cart.version.to_string()))
                    .item(DYNAMO_TTL_ATTRIBUTE, cart_expiry())
                    .item(DYNAMO_WRITE_TOKEN, AttributeValue::S(token.clone()))
                    .condition_expression("version = :expected")
                    .expression_attribute_values(
                        ":expected",
                        AttributeValue::N(expected.to_string()),
                    )
                    .send()
                    .await;
                match result {
                    Ok(_) => return Ok(cart),
                    Err(e) if is_condition_failure(&e) => pending = Some((token, cart)),
                    Err(e) => return Err(dynamo_error(&self.table, e)),
                }
            }
            Err(ApiError::conflict(
                "cart_busy",
                format!("cart {id} kept changing under concurrent writers; retry"),
            ))
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        use aws_sdk_dynamodb::types::AttributeValue;
        Box::pin(async move {
            self.client
                .get_item()
                .table_name(&self.table)
                .key(DYNAMO_KEY, AttributeValue::S(HEALTH_PROBE_KEY.into()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "DynamoDB table {}: {}",
                        self.table,
                        aws_sdk_dynamodb::error::DisplayErrorContext(e)
                    )
                })
        })
    }

    fn describe(&self) -> &'static str {
        "dynamodb"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_add_up_within_bounds() {
        let mut cart = Cart {
            id: "c".into(),
            items: vec![],
            version: 0,
        };
        add_to_cart(&mut cart, 1, 60).unwrap();
        add_to_cart(&mut cart, 1, 40).unwrap();
        assert_eq!(
            cart.items,
            vec![CartItem {
                product_id: 1,
                quantity: 100
            }]
        );
        assert_eq!(cart.version, 2);
        let err = add_to_cart(&mut cart, 1, 1).unwrap_err();
        assert_eq!(err.code, "quantity_out_of_range");
        assert_eq!(
            cart.items[0].quantity, 100,
            "a refused add leaves the line alone"
        );
    }

    #[test]
    fn a_cart_holds_a_bounded_number_of_lines() {
        let mut cart = Cart {
            id: "c".into(),
            items: vec![],
            version: 0,
        };
        for p in 1..=MAX_CART_LINES as u64 {
            add_to_cart(&mut cart, p, 1).unwrap();
        }
        assert_eq!(
            add_to_cart(&mut cart, 999, 1).unwrap_err().code,
            "cart_full"
        );
    }
}
