-- Each tenant's own upstream identity and inbound authentication (issue #12). Same tables in
-- migrations/postgres/0012_tenant_identity.sql.

-- BTG: the tenant's OAuth2 client and, for mTLS, its certificate and key files. The secret is a
-- reference (env:NAME or file:/path), never the value.
ALTER TABLE tenants ADD COLUMN btg_client_id TEXT;
ALTER TABLE tenants ADD COLUMN btg_client_secret_ref TEXT;
ALTER TABLE tenants ADD COLUMN btg_certificate_file TEXT;
ALTER TABLE tenants ADD COLUMN btg_private_key_file TEXT;
-- The subject CN or a DNS SAN the client certificate must carry on the mTLS webhook listener.
ALTER TABLE tenants ADD COLUMN inbound_client_subject TEXT;

-- One tenant per ledger and per BTG client: otherwise they could move each other's money.
CREATE UNIQUE INDEX tenants_midaz_ledger_unique ON tenants (midaz_organization_id, midaz_ledger_id);
CREATE UNIQUE INDEX tenants_btg_client_unique ON tenants (btg_client_id);

-- HMAC secrets (references) that authenticate BTG webhooks for a tenant. The current one has no
-- retires_at; a rotated-out one stays valid until its retires_at, so both work during the overlap.
CREATE TABLE tenant_inbound_secrets (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    secret_ref TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retires_at TEXT,
    PRIMARY KEY (tenant_id, secret_ref)
);

-- Midaz accounts proven to belong to a tenant's ledger, first come first served: an account id
-- recorded for one tenant is never accepted from another.
CREATE TABLE tenant_accounts (
    account_id  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    ledger_id   TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
