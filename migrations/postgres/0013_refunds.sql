-- Refunds (issue #13): returns we send (kind CASHOUT: pacs.004 of a received Pix) and returns
-- we receive (kind CASHIN: another participant returns one of our cash-outs), one typed state
-- machine each (pix_core::refund). Same tables and names as the other backend's 0013.

CREATE TABLE refunds (
    id                     TEXT PRIMARY KEY,
    tenant_id              TEXT NOT NULL REFERENCES tenants (id),
    -- The account debited (CASHOUT) or credited (CASHIN): the original transfer's account.
    account_id             TEXT NOT NULL,
    kind                   TEXT NOT NULL CHECK (kind IN ('CASHOUT', 'CASHIN')),
    transfer_id            TEXT NOT NULL REFERENCES transfers (id),
    status                 TEXT NOT NULL CHECK (status IN ('CREATED', 'PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    step                   TEXT NOT NULL CHECK (step IN ('NEW', 'HELD', 'SENT', 'SETTLED', 'RELEASED')),
    original_end_to_end_id TEXT NOT NULL,
    return_end_to_end_id   TEXT,
    amount                 BIGINT NOT NULL CHECK (amount > 0),
    reason                 TEXT NOT NULL CHECK (reason IN ('BE08', 'FR01', 'MD06', 'SL02')),
    description            TEXT,
    metadata               JSONB NOT NULL,
    -- The accounts debited and how they were chosen (request, refund-split policy, single).
    operations             JSONB NOT NULL,
    split                  JSONB NOT NULL,
    ledger_tx_id           TEXT,
    failure_code           TEXT,
    failure_reason         TEXT,
    version                BIGINT NOT NULL DEFAULT 0,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    completed_at           TIMESTAMPTZ,
    -- The sweeper leaves a refund alone until then.
    sweep_after            TIMESTAMPTZ,
    -- One return of each kind per id: an intra-PSP refund and its internal credit share theirs.
    UNIQUE (tenant_id, kind, return_end_to_end_id)
);
CREATE INDEX refunds_account ON refunds (tenant_id, account_id, updated_at);
CREATE INDEX refunds_transfer ON refunds (tenant_id, transfer_id);
CREATE INDEX refunds_in_flight ON refunds (updated_at) WHERE step IN ('NEW', 'HELD', 'SENT');

-- Centavos of the transfer that refunds in flight or completed have taken: a refund reserves its
-- amount here with a conditional update, so concurrent refunds can never together exceed it.
ALTER TABLE transfers ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0;

-- Returns BTG reported for an original this tenant has no completed cash-out of (unknown,
-- another institution's, or more than was sent): never credited to a guess, kept for operators.
CREATE TABLE unmatched_returns (
    id                     TEXT PRIMARY KEY,
    tenant_id              TEXT NOT NULL REFERENCES tenants (id),
    return_end_to_end_id   TEXT NOT NULL,
    original_end_to_end_id TEXT NOT NULL,
    amount                 BIGINT NOT NULL,
    reason                 TEXT NOT NULL,
    why                    TEXT NOT NULL,
    received_at            TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, return_end_to_end_id)
);
