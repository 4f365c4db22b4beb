-- The inbox: one row per order event, whatever number of times the broker delivers it.

CREATE TABLE notifications (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The deduplication key: a redelivered or republished event finds its row here.
    event_id     uuid        NOT NULL UNIQUE,
    event_type   text        NOT NULL,
    order_id     uuid        NOT NULL,
    customer_id  text        NOT NULL,
    -- The sender that delivers it (log, webhook).
    channel      text        NOT NULL,
    status       text        NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'sent', 'failed')),
    payload      jsonb       NOT NULL,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at timestamptz,
    -- Why the last attempt failed (status failed, or pending between retries).
    last_error   text,
    -- Arrivals of the same event after the first (redeliveries, republished events).
    duplicates   integer     NOT NULL DEFAULT 0
);

-- Serves GET /v1/notifications?order_id=...: keyset pagination on id per order.
CREATE INDEX notifications_order_id_idx ON notifications (order_id, id);
