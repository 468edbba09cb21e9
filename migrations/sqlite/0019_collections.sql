-- Collections (issue #16): static BR Codes a receiver creates, immediate (COB) and due-date
-- (COBV) charges with their lifecycle (pix_core::collection), and the keys that sign the JWS
-- served at each charge's location. Same tables and names as the other backend's 0019.

CREATE TABLE static_brcodes (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    account_id   TEXT NOT NULL,
    receiver_key TEXT NOT NULL,
    -- Centavos; absent when the payer types the amount.
    amount       BIGINT CHECK (amount IS NULL OR amount > 0),
    description  TEXT,
    tx_id        TEXT,
    emv          TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX static_brcodes_account ON static_brcodes (tenant_id, account_id, created_at);

CREATE TABLE collections (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id),
    account_id         TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('IMMEDIATE', 'DUE_DATE')),
    status             TEXT NOT NULL CHECK (status IN ('ACTIVE', 'CONCLUDED', 'REMOVED_BY_RECEIVER', 'REMOVED_BY_PSP')),
    tx_id              TEXT NOT NULL,
    receiver_key       TEXT NOT NULL,
    -- Centavos: COB `amount`, COBV `amount.original`.
    amount             BIGINT NOT NULL CHECK (amount > 0),
    -- Everything else the receiver sent (debtor, due-date rules, texts, metadata, tags).
    details            TEXT NOT NULL,
    -- The last path segment of the location URL: unguessable, not the id.
    location_token     TEXT NOT NULL UNIQUE,
    -- Field 26.25 as written into the EMV (no scheme): it ends with the token.
    location           TEXT NOT NULL,
    emv                TEXT NOT NULL,
    -- API Pix `revisao`: +1 per PATCH.
    revision           BIGINT NOT NULL DEFAULT 0,
    -- When the expiry job removes it (COB: creation + expiration; COBV: end of the last payable day).
    expires_at         TEXT NOT NULL,
    -- The cash-in that concluded it.
    paid_end_to_end_id TEXT,
    version            BIGINT NOT NULL DEFAULT 0,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    deleted_at         TEXT,
    -- A txId identifies one charge across all of a tenant's collections, COB and COBV alike.
    UNIQUE (tenant_id, tx_id)
);
CREATE INDEX collections_list ON collections (tenant_id, account_id, kind, created_at);
CREATE INDEX collections_expiry ON collections (expires_at) WHERE status = 'ACTIVE';

-- ES256 keys signing the location JWS; the private key is sealed (security.secret_key). Every
-- key not retired is in the served key set, so a key can be added before the old one retires.
CREATE TABLE qr_signing_keys (
    kid         TEXT PRIMARY KEY,
    private_key TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    retired_at  TEXT
);
