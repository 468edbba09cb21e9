-- Limits per policy component (issue #18): what a component declared at upload (NULL: the
-- engine default), and each tenant's maxima for the components bound to it (NULL or no row: the
-- host maximum). Same columns on SQLite and PostgreSQL. Existing components keep the defaults.
ALTER TABLE policy_components ADD COLUMN memory_mib BIGINT CHECK (memory_mib > 0);
ALTER TABLE policy_components ADD COLUMN fuel BIGINT CHECK (fuel > 0);
ALTER TABLE policy_components ADD COLUMN deadline_ms BIGINT CHECK (deadline_ms > 0);

CREATE TABLE tenant_policy_limits (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants (id),
    memory_mib  BIGINT CHECK (memory_mib > 0),
    fuel        BIGINT CHECK (fuel > 0),
    deadline_ms BIGINT CHECK (deadline_ms > 0),
    updated_at  TIMESTAMPTZ NOT NULL
);
