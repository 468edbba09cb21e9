-- MED cautionary blocks (issue #15 item 4): an infraction report against a Pix one of our
-- customers received holds the reported amount (up to the available balance) in Midaz until the
-- report and its refund request close (pix_core::med::BlockState). Same table and names as the
-- other backend's 0018.

CREATE TABLE cautionary_blocks (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants (id),
    -- The cash-in reported and the account it credited (its Midaz alias holds the block).
    transfer_id          TEXT NOT NULL REFERENCES transfers (id),
    end_to_end_id        TEXT NOT NULL,
    account_alias        TEXT NOT NULL,
    infraction_report_id TEXT NOT NULL REFERENCES dict_infraction_reports (id),
    -- Centavos: what the report asked to block, and what was fixed to hold (NULL until fixed).
    requested_amount     BIGINT NOT NULL CHECK (requested_amount > 0),
    amount               BIGINT CHECK (amount >= 0),
    status               TEXT NOT NULL CHECK (status IN ('REQUESTED', 'PLACING', 'HELD', 'RELEASING', 'RELEASED', 'RETURNED', 'UNFUNDED')),
    -- Numbers the place request's idempotency key (a new one only after a certain refusal).
    attempt              INTEGER NOT NULL DEFAULT 0,
    hold_tx_id           TEXT,
    refund_id            TEXT REFERENCES refunds (id),
    version              BIGINT NOT NULL DEFAULT 0,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    -- A redelivered report makes one block.
    UNIQUE (tenant_id, infraction_report_id)
);
CREATE INDEX cautionary_blocks_transfer ON cautionary_blocks (tenant_id, transfer_id);
CREATE INDEX cautionary_blocks_e2e ON cautionary_blocks (tenant_id, end_to_end_id);
