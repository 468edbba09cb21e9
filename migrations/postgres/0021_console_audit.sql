-- Operator console (issue #19): who changed a policy binding, and the BTG calls made for each
-- payment. Same tables and names on SQLite and PostgreSQL.

-- A non-secret label of the credential that activated or rolled back a binding, e.g.
-- `admin:<credential id>` or `admin:<credential id> via console`. Earlier rows predate it.
ALTER TABLE policy_bindings ADD COLUMN actor TEXT NOT NULL DEFAULT 'unrecorded';

-- Every BTG SPI call made for a payment (cash-out, read-back, refusal, reversal, DICT lookup
-- for a payment), by the payment's EndToEndId: what the console's transfer timeline shows.
-- Written after the call returns; never holds request or response bodies.
CREATE TABLE upstream_calls (
    id            BIGSERIAL PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    end_to_end_id TEXT NOT NULL,
    upstream      TEXT NOT NULL CHECK (upstream IN ('btg')),
    operation     TEXT NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('ok', 'rejected', 'failed')),
    detail        TEXT,
    duration_ms   BIGINT NOT NULL,
    called_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX upstream_calls_payment ON upstream_calls (tenant_id, end_to_end_id, id);
CREATE INDEX upstream_calls_age ON upstream_calls (called_at);
