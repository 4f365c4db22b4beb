-- Orders, their idempotency keys and the transactional outbox.

CREATE TABLE orders (
    id          uuid PRIMARY KEY,
    customer_id text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('pending', 'confirmed', 'cancelled')),
    currency    char(3)     NOT NULL,
    total_minor bigint      NOT NULL CHECK (total_minor >= 0),
    -- Line items never change after creation and are always read with their order,
    -- so they live in the row: a read by id is one index lookup, no join.
    items       jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Serves ListOrders and ExportOrders: keyset pagination per customer.
CREATE INDEX orders_customer_created_idx ON orders (customer_id, created_at DESC, id DESC);

CREATE TABLE idempotency_keys (
    customer_id     text        NOT NULL,
    idempotency_key text        NOT NULL,
    request_hash    bytea       NOT NULL,
    -- Deferred: the key row is written first, so that a concurrent duplicate waits on
    -- it, and the order row it points to follows in the same transaction.
    order_id        uuid        NOT NULL REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (customer_id, idempotency_key)
);

CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    event_type   text        NOT NULL,
    aggregate_id uuid        NOT NULL,
    payload      jsonb       NOT NULL,
    -- Message headers to publish with the event (trace context, for one).
    headers      jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at timestamptz
);

-- The relay only ever looks for what is still unpublished.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
