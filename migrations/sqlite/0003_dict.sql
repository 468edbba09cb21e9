-- DICT (issue #6): entries, claims, VSync state, reconciliation jobs, MED records and the
-- anti-scan buckets. Same tables and names as migrations/postgres/0003_dict.sql.

-- One row per entry registration. A key has at most one entry that is not INACTIVE.
-- pending_op marks a BTG write in flight: the settle job finishes or compensates it.
CREATE TABLE dict_entries (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id),
    account_id         TEXT,
    key                TEXT,
    key_type           TEXT NOT NULL CHECK (key_type IN ('CPF', 'CNPJ', 'EMAIL', 'PHONE', 'EVP')),
    status             TEXT NOT NULL CHECK (status IN ('PENDING', 'ACTIVE', 'INACTIVE')),
    pending_op         TEXT CHECK (pending_op IN ('CREATE', 'UPDATE', 'DELETE')),
    pending_payload    TEXT,
    pending_since      TEXT,
    participant        TEXT NOT NULL,
    branch             TEXT NOT NULL,
    account_number     TEXT NOT NULL,
    account_type       TEXT NOT NULL,
    opening_date       TEXT,
    owner_type         TEXT NOT NULL,
    owner_tax_id       TEXT NOT NULL,
    owner_name         TEXT NOT NULL,
    owner_trade_name   TEXT,
    request_id         TEXT NOT NULL,
    cid                TEXT,
    reason             TEXT NOT NULL,
    metadata           TEXT NOT NULL,
    key_ownership_date TEXT,
    version            BIGINT NOT NULL DEFAULT 0,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    deleted_at         TEXT
);
CREATE UNIQUE INDEX dict_entries_live_key ON dict_entries (tenant_id, key) WHERE status <> 'INACTIVE';
CREATE INDEX dict_entries_account ON dict_entries (tenant_id, account_id, status);
CREATE INDEX dict_entries_type ON dict_entries (tenant_id, key_type, status);
CREATE INDEX dict_entries_pending ON dict_entries (pending_since) WHERE pending_op IS NOT NULL;

-- Claims in both roles: CLAIMER (we asked for a key) and DONOR (another participant claims ours).
CREATE TABLE dict_claims (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    btg_claim_id          TEXT NOT NULL,
    role                  TEXT NOT NULL CHECK (role IN ('CLAIMER', 'DONOR')),
    claim_type            TEXT NOT NULL CHECK (claim_type IN ('OWNERSHIP', 'PORTABILITY')),
    key                   TEXT NOT NULL,
    key_type              TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('OPEN', 'WAITING_RESOLUTION', 'CONFIRMED', 'CANCELLED', 'COMPLETED')),
    claimer_participant   TEXT NOT NULL,
    donor_participant     TEXT NOT NULL,
    account_id            TEXT,
    entry_id              TEXT,
    claimer_account       TEXT NOT NULL,
    claimer               TEXT NOT NULL,
    resolution_period_end TEXT NOT NULL,
    completion_period_end TEXT,
    confirm_reason        TEXT,
    cancel_reason         TEXT,
    cancelled_by          TEXT,
    completion_request_id TEXT,
    btg_last_modified     TEXT NOT NULL,
    version               BIGINT NOT NULL DEFAULT 0,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    UNIQUE (tenant_id, btg_claim_id)
);
CREATE INDEX dict_claims_key ON dict_claims (tenant_id, key, status);
CREATE INDEX dict_claims_due ON dict_claims (status, resolution_period_end);

-- Local VSync per key type, maintained incrementally with every CID change.
CREATE TABLE dict_vsync (
    id                       TEXT NOT NULL UNIQUE,
    tenant_id                TEXT NOT NULL REFERENCES tenants (id),
    key_type                 TEXT NOT NULL,
    local_vsync              TEXT NOT NULL,
    remote_vsync             TEXT,
    last_sync_status         TEXT NOT NULL CHECK (last_sync_status IN ('SYNCED', 'OUT_OF_SYNC', 'RECONCILING', 'ERROR')),
    last_sync_check          TEXT,
    last_sync_timestamp      TEXT,
    last_cid_created_at      TEXT,
    last_full_reconciliation TEXT,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key_type)
);

CREATE TABLE dict_reconciliation_jobs (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    job_type        TEXT NOT NULL CHECK (job_type IN ('EVENT_SYNC', 'FULL_RECONCILIATION')),
    key_type        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('WAITING_FILE', 'PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    file_id         TEXT,
    total_items     BIGINT NOT NULL DEFAULT 0,
    processed_items BIGINT NOT NULL DEFAULT 0,
    entries_added   BIGINT NOT NULL DEFAULT 0,
    entries_removed BIGINT NOT NULL DEFAULT 0,
    entries_repaired BIGINT NOT NULL DEFAULT 0,
    orphan_entries  BIGINT NOT NULL DEFAULT 0,
    sync_from       TEXT,
    reason          TEXT,
    error_message   TEXT,
    started_at      TEXT,
    completed_at    TEXT,
    expires_at      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX dict_reconciliation_jobs_tenant ON dict_reconciliation_jobs (tenant_id, created_at);
CREATE INDEX dict_reconciliation_jobs_file ON dict_reconciliation_jobs (tenant_id, file_id);

CREATE TABLE dict_infraction_reports (
    id                       TEXT PRIMARY KEY,
    tenant_id                TEXT NOT NULL REFERENCES tenants (id),
    btg_id                   TEXT NOT NULL,
    role                     TEXT NOT NULL CHECK (role IN ('REPORTER', 'COUNTERPARTY')),
    transaction_id           TEXT NOT NULL,
    reason                   TEXT NOT NULL,
    situation_type           TEXT,
    report_details           TEXT,
    status                   TEXT NOT NULL CHECK (status IN ('OPEN', 'ACKNOWLEDGED', 'CLOSED', 'CANCELLED')),
    reporter_participant     TEXT NOT NULL,
    counterparty_participant TEXT NOT NULL,
    analysis_result          TEXT,
    analysis_details         TEXT,
    fraud_marker_id          TEXT,
    fund_recovery_id         TEXT,
    btg_updated_at           TEXT NOT NULL,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL,
    UNIQUE (tenant_id, btg_id)
);
CREATE INDEX dict_infraction_reports_tenant ON dict_infraction_reports (tenant_id, updated_at);

CREATE TABLE dict_refund_requests (
    id                     TEXT PRIMARY KEY,
    tenant_id              TEXT NOT NULL REFERENCES tenants (id),
    btg_id                 TEXT NOT NULL,
    role                   TEXT NOT NULL CHECK (role IN ('REQUESTING', 'CONTESTED')),
    transaction_id         TEXT NOT NULL,
    amount                 BIGINT NOT NULL,
    reason                 TEXT NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('OPEN', 'CLOSED', 'CANCELLED')),
    infraction_id          TEXT,
    requesting_participant TEXT,
    contested_participant  TEXT,
    refund_details         TEXT,
    analysis_result        TEXT,
    analysis_details       TEXT,
    rejection_reason       TEXT,
    refund_transaction_id  TEXT,
    fund_recovery_id       TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    UNIQUE (tenant_id, btg_id)
);
CREATE INDEX dict_refund_requests_tenant ON dict_refund_requests (tenant_id, updated_at);

-- Anti-scan token buckets (milli-tokens), one per account.
CREATE TABLE dict_rate_buckets (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    scope       TEXT NOT NULL,
    tokens      BIGINT NOT NULL,
    refilled_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, scope)
);
