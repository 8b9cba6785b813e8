-- +migrate Up
-- Spare tenant databases, built ahead of sign-up (tenancy/spares.go). Each
-- row is written before its database and role (both named name) exist, so
-- that they are never taken for orphans; a tenant claims one by naming
-- itself in claimed_by, renames its database and role, then deletes the row.
CREATE TABLE spares (
    name       text PRIMARY KEY,
    version    text NOT NULL,              -- newest tenant migration it carries
    state      text NOT NULL CHECK (state IN ('BUILDING', 'READY')),
    claimed_by uuid UNIQUE REFERENCES tenants (id) ON DELETE CASCADE,
    claimed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX spares_ready_idx ON spares (version, created_at, name)
    WHERE state = 'READY' AND claimed_by IS NULL;

-- +migrate Down
DROP TABLE spares;
