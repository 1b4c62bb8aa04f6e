-- The fencing row: one row, id = 1. Every write checks it in its own transaction; the orchestrator raises it on
-- a demoted primary so writers that still hold the old epoch are cut off there.
CREATE TABLE IF NOT EXISTS lifeboat_fence (
    id TINYINT PRIMARY KEY,
    epoch BIGINT UNSIGNED NOT NULL
) ENGINE = InnoDB;
INSERT IGNORE INTO lifeboat_fence (id, epoch) VALUES (1, 0);

CREATE TABLE IF NOT EXISTS products (
    id BIGINT UNSIGNED PRIMARY KEY,
    sku VARCHAR(64) NOT NULL UNIQUE,
    name VARCHAR(200) NOT NULL,
    description TEXT NOT NULL,
    price_cents BIGINT UNSIGNED NOT NULL,
    currency CHAR(3) NOT NULL,
    image_key VARCHAR(200) NOT NULL
) ENGINE = InnoDB;

-- Carts of the MySQL session store: one row per cart, its lines as a JSON document, the same shape the DynamoDB
-- store keeps in one item.
CREATE TABLE IF NOT EXISTS carts (
    id CHAR(36) PRIMARY KEY,
    items TEXT NOT NULL,
    version BIGINT UNSIGNED NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL
) ENGINE = InnoDB;

-- One order per idempotency key and at most one per cart: the unique keys make a concurrent retry fail instead of
-- writing a second order.
CREATE TABLE IF NOT EXISTS orders (
    id CHAR(36) PRIMARY KEY,
    idempotency_key VARCHAR(64) NOT NULL,
    cart_id CHAR(36) NOT NULL,
    region VARCHAR(64) NOT NULL,
    epoch BIGINT UNSIGNED NOT NULL,
    currency CHAR(3) NOT NULL,
    total_cents BIGINT UNSIGNED NOT NULL,
    created_at DATETIME(6) NOT NULL,
    UNIQUE KEY orders_idempotency_key (idempotency_key),
    UNIQUE KEY orders_cart_id (cart_id)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS order_lines (
    order_id CHAR(36) NOT NULL,
    line_no INT UNSIGNED NOT NULL,
    product_id BIGINT UNSIGNED NOT NULL,
    name VARCHAR(200) NOT NULL,
    quantity INT UNSIGNED NOT NULL,
    unit_price_cents BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (order_id, line_no),
    CONSTRAINT order_lines_order FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE = InnoDB;
