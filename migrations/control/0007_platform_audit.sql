-- +migrate Up
-- One row per platform mutation (createTenant, deleteTenant, …): what,
-- which tenant, when, the request id, the client's address and a
-- fingerprint of the bearer token (never the token). Rows are only ever
-- added; `tenantql audit` lists them. tenant_id has no foreign key: the
-- record outlives a purged tenant.
CREATE TABLE platform_audit (
    id                bigserial PRIMARY KEY,
    at                timestamptz NOT NULL DEFAULT clock_timestamp(),
    action            text NOT NULL,
    tenant_slug       text NOT NULL DEFAULT '',
    tenant_id         uuid,
    request_id        text NOT NULL DEFAULT '',
    client_addr       text NOT NULL DEFAULT '',
    token_fingerprint text NOT NULL DEFAULT '',
    outcome           text NOT NULL
);
CREATE INDEX platform_audit_at_idx ON platform_audit (at DESC, id DESC);

-- +migrate Down
DROP TABLE platform_audit;
