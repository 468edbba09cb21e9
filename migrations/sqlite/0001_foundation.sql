-- Foundation schema (SQLite). Same tables, names and meaning as migrations/postgres/0001_foundation.sql.
-- Ids are UUIDv7 text, amounts BIGINT centavos, timestamps RFC 3339 UTC text (sortable as text).

CREATE TABLE tenants (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    ispb                  TEXT NOT NULL,
    midaz_organization_id TEXT,
    midaz_ledger_id       TEXT,
    settings              TEXT NOT NULL DEFAULT '{}',
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);

-- API credentials: only the SHA-256 of the bearer token is stored. Admin credentials have no tenant.
CREATE TABLE api_credentials (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT REFERENCES tenants (id),
    role         TEXT NOT NULL CHECK (role IN ('tenant', 'admin')),
    token_sha256 TEXT NOT NULL UNIQUE,
    label        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT,
    CHECK ((role = 'admin') = (tenant_id IS NULL))
);

-- Durable jobs and outbox: written in the same transaction as the state change they belong to.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT,
    queue        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    dedupe_key   TEXT UNIQUE,
    ordering_key TEXT,
    run_at       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    status       TEXT NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'running', 'done', 'dead')),
    locked_by    TEXT,
    locked_until TEXT,
    last_error   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX jobs_claimable ON jobs (queue, run_at) WHERE status IN ('ready', 'running');
CREATE INDEX jobs_ordering ON jobs (ordering_key, id) WHERE status IN ('ready', 'running');

-- Client idempotency keys (X-Idempotency), scoped per tenant.
CREATE TABLE idempotency_keys (
    tenant_id        TEXT NOT NULL,
    key              TEXT NOT NULL,
    request_sha256   TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
    locked_until     TEXT NOT NULL,
    response_status  INTEGER,
    response_headers TEXT,
    response_body    BLOB,
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- Where a tenant wants its outbound webhooks delivered.
CREATE TABLE webhook_endpoints (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    url         TEXT NOT NULL,
    flow_type   TEXT,
    entity_type TEXT,
    enabled     BOOLEAN NOT NULL,
    secret      TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at);
