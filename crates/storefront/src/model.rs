//! The JSON shapes of the API, shared by the server and the typed client.

use serde::{Deserialize, Serialize};

/// Most of one product a single request may add to a cart, and most of one product a cart may hold.
pub const MAX_LINE_QUANTITY: i64 = 100;
/// Most distinct products in one cart.
pub const MAX_CART_LINES: usize = 50;
/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 64;
/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub id: u64,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price_cents: u64,
    pub currency: String,
    /// Where to fetch the picture: a path on this service locally, a presigned S3 URL on AWS.
    pub image_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductList {
    pub products: Vec<Product>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartItem {
    pub product_id: u64,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cart {
    pub id: String,
    pub items: Vec<CartItem>,
    /// Bumped by every change; lets a store detect a concurrent writer.
    pub version: u64,
}

/// Body of `POST /carts/{id}/items`. The quantity is signed so that a negative one gets a clear message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddItemRequest {
    #[serde(deserialize_with = "json_integer::unsigned")]
    pub product_id: u64,
    #[serde(deserialize_with = "json_integer::signed")]
    pub quantity: i64,
}

/// Integers as JSON Schema counts them: a number whose fractional part is zero is an integer, so `18.0` is
/// 18 (https://json-schema.org/understanding-json-schema/reference/numeric#integer). The OpenAPI document
/// types these fields `integer`, and a client (or a JavaScript one, which has only floats) may send `18.0`.
mod json_integer {
    use serde::Deserialize;
    use serde::de::{Deserializer, Error};

    fn integral(number: &serde_json::Number) -> Option<f64> {
        number
            .as_f64()
            .filter(|f| f.is_finite() && f.fract() == 0.0)
    }

    /// Largest magnitude an `f64` holds exactly: beyond it a float cannot say which integer it meant.
    const EXACT: f64 = 9_007_199_254_740_992.0;

    pub fn unsigned<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let number = serde_json::Number::deserialize(d)?;
        if let Some(n) = number.as_u64() {
            return Ok(n);
        }
        match integral(&number) {
            Some(f) if (0.0..EXACT).contains(&f) => Ok(f as u64),
            _ => Err(D::Error::custom(format!(
                "{number} is not a non-negative integer"
            ))),
        }
    }

    pub fn signed<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let number = serde_json::Number::deserialize(d)?;
        if let Some(n) = number.as_i64() {
            return Ok(n);
        }
        match integral(&number) {
            Some(f) if f.abs() < EXACT => Ok(f as i64),
            _ => Err(D::Error::custom(format!(
                "{number} is not an integer in the accepted range"
            ))),
        }
    }
}

/// Body of `POST /checkout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub cart_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    pub product_id: u64,
    pub name: String,
    pub quantity: u32,
    pub unit_price_cents: u64,
    pub line_total_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    pub id: String,
    pub cart_id: String,
    pub status: String,
    /// The region and fencing epoch the order was accepted under.
    pub region: String,
    pub epoch: u64,
    pub currency: String,
    pub total_cents: u64,
    pub lines: Vec<OrderLine>,
    /// RFC 3339, UTC, microseconds.
    pub created_at: String,
}

/// Every error the API answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `region_passive`, `malformed_json`.
    pub error: String,
    pub message: String,
    /// On refused writes: the region that accepts writes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_region: Option<String>,
}

/// A cart or order id: a UUID in its hyphenated lower-case form.
pub fn parse_uuid_id(raw: &str) -> Option<String> {
    if raw.len() != 36 {
        return None;
    }
    uuid::Uuid::try_parse(raw)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// A product id: a positive decimal integer without sign or leading zeros.
pub fn parse_product_id(raw: &str) -> Option<u64> {
    if raw.is_empty()
        || raw.len() > 20
        || !raw.bytes().all(|b| b.is_ascii_digit())
        || raw.starts_with('0')
    {
        return None;
    }
    raw.parse().ok()
}

/// Idempotency keys are opaque to us but end up in a unique index and in logs: keep them short and plain.
pub fn valid_idempotency_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_parsed_strictly() {
        assert_eq!(parse_product_id("12"), Some(12));
        for bad in [
            "",
            "0",
            "012",
            "-1",
            "1.5",
            "abc",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_product_id(bad), None, "{bad}");
        }
        let id = uuid::Uuid::new_v4().to_string();
        assert_eq!(parse_uuid_id(&id), Some(id.clone()));
        assert_eq!(parse_uuid_id(&id.to_uppercase()), Some(id));
        assert_eq!(parse_uuid_id("not-a-uuid"), None);
        assert_eq!(
            parse_uuid_id("{00000000-0000-0000-0000-000000000000}"),
            None
        );
    }

    #[test]
    fn idempotency_keys_are_limited_in_length_and_charset() {
        assert!(valid_idempotency_key("order-2026-11-25:abc_1.2"));
        assert!(!valid_idempotency_key(""));
        assert!(!valid_idempotency_key("has space"));
        assert!(!valid_idempotency_key("semi;colon"));
        assert!(!valid_idempotency_key(
            &"k".repeat(MAX_IDEMPOTENCY_KEY_LEN + 1)
        ));
        assert!(valid_idempotency_key(&"k".repeat(MAX_IDEMPOTENCY_KEY_LEN)));
    }
}
