-- Policy registry: uploaded components (content-addressed), which component each tenant uses
-- per decision kind (an append-only log, so rollback walks it back), shadow candidates, and
-- the decision log. Same tables and names on SQLite and PostgreSQL.
CREATE TABLE policy_components (
    sha256      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kinds       TEXT NOT NULL,
    size_bytes  BIGINT NOT NULL,
    component   BLOB NOT NULL,
    uploaded_at TEXT NOT NULL
);

-- tenant_id '' is the default binding for tenants without their own.
CREATE TABLE policy_bindings (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    sha256       TEXT NOT NULL REFERENCES policy_components (sha256),
    params       TEXT NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('activate', 'rollback')),
    -- The binding this one replaced: rollback returns to it.
    previous_id  BIGINT,
    created_at   TEXT NOT NULL
);
CREATE INDEX policy_bindings_slot ON policy_bindings (tenant_id, kind, id);

CREATE TABLE policy_shadows (
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    sha256     TEXT NOT NULL REFERENCES policy_components (sha256),
    params     TEXT NOT NULL,
    started_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

CREATE TABLE policy_decisions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    input_sha256  TEXT NOT NULL,
    input         TEXT NOT NULL,
    output        TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    duration_us   BIGINT NOT NULL,
    shadow_sha256 TEXT,
    shadow_output TEXT,
    shadow_agrees BOOLEAN,
    decided_at    TEXT NOT NULL
);
CREATE INDEX policy_decisions_slot ON policy_decisions (tenant_id, kind, id);
CREATE INDEX policy_decisions_age ON policy_decisions (decided_at);
