-- Money engine (issue #11): every enum column checked, BTG contradictions kept on the transfer,
-- a lease for the stuck-transfer sweeper, and per-account admission of cash-outs.
-- Same tables and names as migrations/sqlite/0007_money_engine.sql.

ALTER TABLE transfers DROP CONSTRAINT transfers_status_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_status_check CHECK (status IN
    ('PENDING', 'IN_REVIEW', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED', 'RECONCILIATION_REQUIRED'));
ALTER TABLE transfers ADD CONSTRAINT transfers_step_check CHECK (step IN
    ('NEW', 'HELD', 'SENT', 'SETTLED', 'RELEASED', 'REFUSED', 'REFUSAL_FAILED', 'INCIDENT_OPEN', 'INCIDENT_CORRECTED'));
ALTER TABLE transfers ADD CONSTRAINT transfers_purpose_check CHECK (purpose IN ('TRANSFER', 'INSTANT_PAYMENT_REFUND'));
-- What BTG contradicted, and the Midaz transaction that corrected the ledger.
ALTER TABLE transfers ADD COLUMN incident TEXT CHECK (incident IN ('CONFIRMED_AFTER_FAILED', 'REJECTED_AFTER_COMPLETED'));
ALTER TABLE transfers ADD COLUMN correction_tx_id TEXT;
-- The sweeper leaves a transfer alone until then (several sweepers, and its own backoff).
ALTER TABLE transfers ADD COLUMN sweep_after TIMESTAMPTZ;
CREATE INDEX transfers_in_flight ON transfers (updated_at) WHERE step IN ('NEW', 'HELD', 'SENT', 'INCIDENT_OPEN');
CREATE INDEX transfers_incidents ON transfers (status) WHERE status = 'RECONCILIATION_REQUIRED';

-- One row per account that ever paid: a cash-out's admission writes it first in its transaction,
-- so concurrent admissions for one account take turns and velocity counts cannot be bypassed.
CREATE TABLE account_admissions (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    account_id  TEXT NOT NULL,
    admitted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, account_id)
);
