-- MED 2.0 funds recoveries (issue #15): the ones this tenant opened as the payer's participant of
-- the root transaction, kept current from BTG's FUNDS_RECOVERY events (pix_core::med).
-- Same tables and names as the other backend's 0017.

CREATE TABLE dict_funds_recoveries (
    id                      TEXT PRIMARY KEY,
    tenant_id               TEXT NOT NULL REFERENCES tenants (id),
    -- The account that paid the root transaction (X-Account-Id of the create).
    account_id              TEXT NOT NULL,
    btg_id                  TEXT NOT NULL,
    status                  TEXT NOT NULL CHECK (status IN ('CREATED', 'TRACKED', 'AWAITING_ANALYSIS', 'ANALYSED',
                                                            'REFUNDING', 'COMPLETED', 'CANCELLED')),
    root_transaction_id     TEXT NOT NULL,
    situation_type          TEXT NOT NULL CHECK (situation_type IN ('SCAM', 'ACCOUNT_TAKEOVER', 'COERCION',
                                                                    'FRAUDULENT_ACCESS', 'OTHER', 'UNKNOWN')),
    reporter_participant    TEXT NOT NULL,
    contact_email           TEXT,
    contact_phone           TEXT,
    report_details          TEXT,
    -- trackingGraphParameters as sent (centavos; canonical ISO 8601 duration).
    min_transaction_amount  BIGINT,
    max_transactions        BIGINT,
    hop_window              TEXT,
    max_hops                BIGINT,
    -- BTG's last change, so that a stale event does not overwrite newer information.
    btg_updated_at          TIMESTAMPTZ NOT NULL,
    version                 BIGINT NOT NULL DEFAULT 0,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    CHECK (contact_email IS NOT NULL OR contact_phone IS NOT NULL),
    UNIQUE (tenant_id, btg_id)
);
CREATE INDEX dict_funds_recoveries_tenant ON dict_funds_recoveries (tenant_id, account_id, created_at);
CREATE INDEX dict_funds_recoveries_root ON dict_funds_recoveries (tenant_id, root_transaction_id);

-- The reports and refund requests of a recovery are listed by it.
CREATE INDEX dict_infraction_reports_recovery ON dict_infraction_reports (tenant_id, fund_recovery_id);
CREATE INDEX dict_refund_requests_recovery ON dict_refund_requests (tenant_id, fund_recovery_id);
