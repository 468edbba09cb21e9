-- Transfers (issue #7): cash-out initiations and transfers in both directions.
-- Same tables and names as migrations/sqlite/0006_transfers.sql.

-- A validated destination and amount, waiting to be processed before it expires. No money moves.
CREATE TABLE cashout_initiations (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    account_id      TEXT NOT NULL,
    initiation_type TEXT NOT NULL CHECK (initiation_type IN ('KEY', 'QR_CODE', 'MANUAL')),
    amount          BIGINT NOT NULL CHECK (amount > 0),
    end_to_end_id   TEXT NOT NULL UNIQUE,
    is_intra_psp    BOOLEAN NOT NULL,
    details         JSONB NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX cashout_initiations_account ON cashout_initiations (tenant_id, account_id);

-- One row per transfer. `status` is what clients see; `step` is how far the money has moved
-- (NEW → HELD → SENT → SETTLED for a cash-out; RELEASED or REFUSED when it was undone), so a
-- retried worker or webhook resumes instead of repeating. `version` guards concurrent writers.
CREATE TABLE transfers (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    account_id     TEXT NOT NULL,
    direction      TEXT NOT NULL CHECK (direction IN ('CASHOUT', 'CASHIN')),
    status         TEXT NOT NULL CHECK (status IN ('PENDING', 'IN_REVIEW', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    step           TEXT NOT NULL,
    end_to_end_id  TEXT NOT NULL,
    initiation_id  TEXT UNIQUE,
    amount         BIGINT NOT NULL,
    fee            BIGINT NOT NULL,
    purpose        TEXT NOT NULL,
    is_intra_psp   BOOLEAN NOT NULL,
    counterparty   TEXT,
    ledger_tx_id   TEXT,
    failure_code   TEXT,
    failure_reason TEXT,
    details        JSONB NOT NULL,
    version        BIGINT NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    completed_at   TIMESTAMPTZ,
    UNIQUE (tenant_id, direction, end_to_end_id)
);
CREATE INDEX transfers_account ON transfers (tenant_id, account_id, updated_at);
CREATE INDEX transfers_activity ON transfers (tenant_id, account_id, direction, created_at);
CREATE INDEX transfers_review ON transfers (status) WHERE status = 'IN_REVIEW';
