-- Outbound webhooks as routed (SQLite). Same tables, names and meaning as
-- migrations/postgres/0004_webhook_deliveries.sql.

-- One row per recorded event once the engine has routed it; kept whether or not any endpoint
-- matched (`not_routed`) or the matching endpoints are switched off (`disabled`).
CREATE TABLE webhook_events (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    flow_type   TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    -- The exact JSON sent, so every attempt signs and sends the same bytes.
    body        TEXT NOT NULL,
    routing     TEXT NOT NULL CHECK (routing IN ('routed', 'not_routed', 'disabled')),
    occurred_at TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX webhook_events_routing ON webhook_events (tenant_id, routing, created_at);

-- One row per (event, endpoint), each with its own retry state. No foreign key to the endpoint:
-- a deleted endpoint's delivery history stays.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id         TEXT NOT NULL REFERENCES webhook_events (id),
    tenant_id        TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL,
    -- flow:entity:entity_id; with endpoint_id, the scope within which deliveries stay in order.
    ordering_key     TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    redeliveries     INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    locked_by        TEXT,
    locked_until     TEXT,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    delivered_at     TEXT,
    failed_at        TEXT,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, ordering_key, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status, tenant_id, endpoint_id, id);

-- Every HTTP attempt, for operators: status code or transport error, and latency.
CREATE TABLE webhook_delivery_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  INTEGER NOT NULL REFERENCES webhook_deliveries (id),
    attempted_at TEXT NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  BIGINT NOT NULL
);
CREATE INDEX webhook_delivery_attempts_delivery ON webhook_delivery_attempts (delivery_id, id);
