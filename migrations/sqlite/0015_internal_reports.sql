-- trck.002 reporting of intra-PSP settlements (issue #14): one row per settlement the engine
-- completed, recorded in the transaction that completes it, and its report's lifecycle
-- (pix_store::internal_reports::ReportState): PENDING → SUBMITTED (BTG accepted the report) →
-- CONFIRMED | ERROR (camt.025). A report failure never touches money: nothing here is read by
-- the money engine.

CREATE TABLE internal_reports (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    end_to_end_id         TEXT NOT NULL,
    -- A refund's return id (`D…`); '' for a transfer, so that the unique key below also holds
    -- for transfers (NULLs would never collide).
    return_identification TEXT NOT NULL,
    kind                  TEXT NOT NULL CHECK (kind IN ('TRANSFER', 'REFUND')),
    amount                BIGINT NOT NULL CHECK (amount > 0),
    debtor_tax_id         TEXT NOT NULL,
    creditor_tax_id       TEXT NOT NULL,
    settled_at            TEXT        NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('PENDING', 'SUBMITTED', 'CONFIRMED', 'ERROR')),
    -- Our report id (BTG's idempotency key): set when the row joins a batch, kept across retries
    -- of that batch, replaced only when a rejected row is re-queued alone.
    report_id             TEXT,
    -- BTG's id of the report (`pactualId`) and the camt.025 receipt code.
    btg_report_id         TEXT,
    receipt_code          TEXT,
    attempts              BIGINT  NOT NULL DEFAULT 0,
    rejections            BIGINT  NOT NULL DEFAULT 0,
    -- PENDING: when the next submission is due (also the claim's lease); SUBMITTED: when to ask
    -- BTG for the status if no camt.025 arrived.
    next_attempt_at       TEXT        NOT NULL,
    last_error            TEXT,
    -- The settlement's completion (the SLA's start), BTG's acceptance of the report, camt.025.
    recorded_at           TEXT        NOT NULL,
    accepted_at           TEXT,
    answered_at           TEXT,
    updated_at            TEXT        NOT NULL,
    UNIQUE (tenant_id, end_to_end_id, return_identification)
);
CREATE INDEX internal_reports_due ON internal_reports (status, next_attempt_at);
CREATE INDEX internal_reports_report ON internal_reports (tenant_id, report_id);
CREATE INDEX internal_reports_listing ON internal_reports (tenant_id, status, recorded_at);
