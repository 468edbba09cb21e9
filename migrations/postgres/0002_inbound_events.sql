-- Raw inbound events (BTG webhooks), stored before they are processed so none is lost.
-- Same tables and names on SQLite and PostgreSQL.
CREATE TABLE inbound_events (
    id           BIGSERIAL PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    source       TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    payload      JSONB NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'processed', 'unhandled', 'failed')),
    deliveries   INTEGER NOT NULL DEFAULT 1,
    last_error   TEXT,
    received_at  TIMESTAMPTZ NOT NULL,
    processed_at TIMESTAMPTZ,
    UNIQUE (tenant_id, source, event_id)
);
CREATE INDEX inbound_events_status ON inbound_events (tenant_id, status, received_at);
