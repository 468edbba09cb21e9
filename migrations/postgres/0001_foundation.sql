-- Foundation schema (PostgreSQL). Same tables, names and meaning as migrations/sqlite/0001_foundation.sql.
-- Ids are UUIDv7 text, amounts BIGINT centavos, timestamps timestamptz (UTC).

CREATE TABLE tenants (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    ispb                  TEXT NOT NULL,
    midaz_organization_id TEXT,
    midaz_ledger_id       TEXT,
    settings              JSONB NOT NULL DEFAULT '{}',
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);

-- API credentials: only the SHA-256 of the bearer token is stored. Admin credentials have no tenant.
CREATE TABLE api_credentials (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT REFERENCES tenants (id),
    role         TEXT NOT NULL CHECK (role IN ('tenant', 'admin')),
    token_sha256 TEXT NOT NULL UNIQUE,
    label        TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ,
    CHECK ((role = 'admin') = (tenant_id IS NULL))
);

-- Durable jobs and outbox: written in the same transaction as the state change they belong to.
CREATE TABLE jobs (
    id           BIGSERIAL PRIMARY KEY,
    tenant_id    TEXT,
    queue        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      JSONB NOT NULL,
    dedupe_key   TEXT UNIQUE,
    ordering_key TEXT,
    run_at       TIMESTAMPTZ NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    status       TEXT NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'running', 'done', 'dead')),
    locked_by    TEXT,
    locked_until TIMESTAMPTZ,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX jobs_claimable ON jobs (queue, run_at) WHERE status IN ('ready', 'running');
CREATE INDEX jobs_ordering ON jobs (ordering_key, id) WHERE status IN ('ready', 'running');

-- Client idempotency keys (X-Idempotency), scoped per tenant.
CREATE TABLE idempotency_keys (
    tenant_id        TEXT NOT NULL,
    key              TEXT NOT NULL,
    request_sha256   TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
    locked_until     TIMESTAMPTZ NOT NULL,
    response_status  INTEGER,
    response_headers JSONB,
    response_body    BYTEA,
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
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
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at);
