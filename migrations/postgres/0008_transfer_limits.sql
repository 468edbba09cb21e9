-- Per-tenant transfer limits (PostgreSQL). Same table as migrations/sqlite/0008_transfer_limits.sql.
-- A tenant without a row has the defaults: no maximum amount, no fee cap, no extra fee accounts.
CREATE TABLE tenant_transfer_limits (
    tenant_id           TEXT PRIMARY KEY REFERENCES tenants (id),
    -- Centavos; NULL = no tenant maximum.
    max_transfer_amount BIGINT CHECK (max_transfer_amount > 0),
    -- Centavos; NULL = no cap on the fee a policy may return.
    max_fee             BIGINT CHECK (max_fee >= 0),
    -- JSON array of Midaz aliases a fee policy may name besides the tenant's default fee account.
    fee_accounts        JSONB NOT NULL DEFAULT '[]',
    updated_at          TIMESTAMPTZ NOT NULL
);
