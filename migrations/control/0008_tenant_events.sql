-- +migrate Up
-- Each tenant's recent step events (tenancy/history.go): one row per step
-- of its provisioning, lifecycle changes, deletion and migrations, as the
-- "tenant step" log line has it, with the error masked as lastError is.
-- Bounded: recording a step keeps the newest 50 of its tenant. The rows go
-- with their tenant's row.
CREATE TABLE tenant_events (
    id          bigserial PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    step        text NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('ok', 'error')),
    duration_ms double precision NOT NULL,
    error       text
);
CREATE INDEX tenant_events_tenant_idx ON tenant_events (tenant_id, id DESC);

-- +migrate Down
DROP TABLE tenant_events;
