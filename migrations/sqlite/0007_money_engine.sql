-- Money engine (issue #11): every enum column checked, BTG contradictions kept on the transfer,
-- a lease for the stuck-transfer sweeper, and per-account admission of cash-outs.
-- Same tables and names as migrations/postgres/0007_money_engine.sql. SQLite cannot add a CHECK
-- to a table, so `transfers` is rebuilt.

CREATE TABLE transfers_v7 (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    account_id       TEXT NOT NULL,
    direction        TEXT NOT NULL CHECK (direction IN ('CASHOUT', 'CASHIN')),
    status           TEXT NOT NULL CHECK (status IN
        ('PENDING', 'IN_REVIEW', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED', 'RECONCILIATION_REQUIRED')),
    step             TEXT NOT NULL CHECK (step IN
        ('NEW', 'HELD', 'SENT', 'SETTLED', 'RELEASED', 'REFUSED', 'REFUSAL_FAILED', 'INCIDENT_OPEN', 'INCIDENT_CORRECTED')),
    end_to_end_id    TEXT NOT NULL,
    initiation_id    TEXT UNIQUE,
    amount           BIGINT NOT NULL,
    fee              BIGINT NOT NULL,
    purpose          TEXT NOT NULL CHECK (purpose IN ('TRANSFER', 'INSTANT_PAYMENT_REFUND')),
    is_intra_psp     BOOLEAN NOT NULL,
    counterparty     TEXT,
    ledger_tx_id     TEXT,
    failure_code     TEXT,
    failure_reason   TEXT,
    details          TEXT NOT NULL,
    version          BIGINT NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    completed_at     TEXT,
    -- What BTG contradicted, and the Midaz transaction that corrected the ledger.
    incident         TEXT CHECK (incident IN ('CONFIRMED_AFTER_FAILED', 'REJECTED_AFTER_COMPLETED')),
    correction_tx_id TEXT,
    -- The sweeper leaves a transfer alone until then (several sweepers, and its own backoff).
    sweep_after      TEXT,
    UNIQUE (tenant_id, direction, end_to_end_id)
);
INSERT INTO transfers_v7 (id, tenant_id, account_id, direction, status, step, end_to_end_id, initiation_id, amount,
                          fee, purpose, is_intra_psp, counterparty, ledger_tx_id, failure_code, failure_reason,
                          details, version, created_at, updated_at, completed_at)
SELECT id, tenant_id, account_id, direction, status, step, end_to_end_id, initiation_id, amount, fee, purpose,
       is_intra_psp, counterparty, ledger_tx_id, failure_code, failure_reason, details, version, created_at,
       updated_at, completed_at
FROM transfers;
DROP TABLE transfers;
ALTER TABLE transfers_v7 RENAME TO transfers;
CREATE INDEX transfers_account ON transfers (tenant_id, account_id, updated_at);
CREATE INDEX transfers_activity ON transfers (tenant_id, account_id, direction, created_at);
CREATE INDEX transfers_review ON transfers (status) WHERE status = 'IN_REVIEW';
CREATE INDEX transfers_in_flight ON transfers (updated_at) WHERE step IN ('NEW', 'HELD', 'SENT', 'INCIDENT_OPEN');
CREATE INDEX transfers_incidents ON transfers (status) WHERE status = 'RECONCILIATION_REQUIRED';

-- One row per account that ever paid: a cash-out's admission writes it first in its transaction,
-- so concurrent admissions for one account take turns and velocity counts cannot be bypassed.
CREATE TABLE account_admissions (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    account_id  TEXT NOT NULL,
    admitted_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, account_id)
);
