-- +migrate Up
-- A deleted tenant is DELETED first: its database and role are kept,
-- unreachable (role NOLOGIN, database ALLOW_CONNECTIONS false), until
-- purge_after, so restoreTenant can bring it back; then it is DELETING and
-- dropped. The provisioner works on DELETED rows too: it makes them
-- unreachable, then waits for purge_after (next_attempt_at).
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('PROVISIONING', 'READY', 'SUSPENDED', 'FAILED', 'DELETING', 'DELETED'));
ALTER TABLE tenants ADD COLUMN deleted_at timestamptz, ADD COLUMN purge_after timestamptz;
DROP INDEX tenants_pending_idx;
CREATE INDEX tenants_pending_idx ON tenants (next_attempt_at)
    WHERE status IN ('PROVISIONING', 'DELETING', 'DELETED');

-- +migrate Down
DROP INDEX tenants_pending_idx;
CREATE INDEX tenants_pending_idx ON tenants (next_attempt_at)
    WHERE status IN ('PROVISIONING', 'DELETING');
ALTER TABLE tenants DROP COLUMN deleted_at, DROP COLUMN purge_after;
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('PROVISIONING', 'READY', 'SUSPENDED', 'FAILED', 'DELETING'));
