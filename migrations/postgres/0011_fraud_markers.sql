-- Fraud markers a tenant registered at BTG, so only that tenant can see or cancel them
-- (all tenants may share one BTG identity; BTG cannot tell them apart).
CREATE TABLE dict_fraud_markers (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    btg_id     TEXT NOT NULL,
    document   TEXT NOT NULL,
    fraud_type TEXT NOT NULL,
    pix_key    TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (btg_id)
);
CREATE INDEX dict_fraud_markers_tenant ON dict_fraud_markers (tenant_id, document);
