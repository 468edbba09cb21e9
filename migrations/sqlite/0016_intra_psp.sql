-- Intra-PSP settlement (issue #14): a cash-out between two accounts of the institution is
-- debited, delivered to the internal cash-in, then settled or reverted, without BTG; refunds of
-- intra-PSP cash-ins are marked as such. Same tables and names as migrations/postgres/0016.
-- SQLite cannot change a CHECK, so `transfers` is rebuilt under its own name (refunds refer to
-- it); foreign keys are checked at commit, once every row is back.

PRAGMA defer_foreign_keys = ON;
CREATE TABLE transfers_v15 AS SELECT * FROM transfers;
DROP TABLE transfers;
CREATE TABLE transfers (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    account_id       TEXT NOT NULL,
    direction        TEXT NOT NULL CHECK (direction IN ('CASHOUT', 'CASHIN')),
    status           TEXT NOT NULL CHECK (status IN
        ('PENDING', 'IN_REVIEW', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED', 'RECONCILIATION_REQUIRED')),
    step             TEXT NOT NULL CHECK (step IN
        ('NEW', 'HELD', 'SENT', 'SETTLED', 'RELEASED', 'REFUSED', 'REFUSAL_FAILED', 'INCIDENT_OPEN', 'INCIDENT_CORRECTED',
         'DEBITED', 'DELIVERING', 'REVERTED')),
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
    incident         TEXT CHECK (incident IN ('CONFIRMED_AFTER_FAILED', 'REJECTED_AFTER_COMPLETED', 'DEBIT_REVERT_FAILED')),
    correction_tx_id TEXT,
    -- The sweeper leaves a transfer alone until then (several sweepers, and its own backoff).
    sweep_after      TEXT,
    -- Centavos that refunds in flight or completed have taken (0013).
    refunded         BIGINT NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, direction, end_to_end_id)
);
INSERT INTO transfers (id, tenant_id, account_id, direction, status, step, end_to_end_id, initiation_id, amount, fee, purpose, is_intra_psp, counterparty, ledger_tx_id, failure_code, failure_reason, details, version, created_at, updated_at, completed_at, incident, correction_tx_id, sweep_after, refunded)
SELECT id, tenant_id, account_id, direction, status, step, end_to_end_id, initiation_id, amount, fee, purpose, is_intra_psp, counterparty, ledger_tx_id, failure_code, failure_reason, details, version, created_at, updated_at, completed_at, incident, correction_tx_id, sweep_after, refunded FROM transfers_v15;
DROP TABLE transfers_v15;
CREATE INDEX transfers_account ON transfers (tenant_id, account_id, updated_at);
CREATE INDEX transfers_activity ON transfers (tenant_id, account_id, direction, created_at);
CREATE INDEX transfers_review ON transfers (status) WHERE status = 'IN_REVIEW';
CREATE INDEX transfers_in_flight ON transfers (updated_at)
    WHERE step IN ('NEW', 'HELD', 'SENT', 'INCIDENT_OPEN', 'DEBITED', 'DELIVERING');
CREATE INDEX transfers_incidents ON transfers (status) WHERE status = 'RECONCILIATION_REQUIRED';

ALTER TABLE refunds ADD COLUMN is_intra_psp BOOLEAN NOT NULL DEFAULT 0;
