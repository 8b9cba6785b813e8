-- +migrate Up
-- moveTenant: a MOVING tenant is copied to a new database and role on
-- move_server while its queries are served from the old copy. Before the
-- switch (move_switched false) the tenants row names the old copy and
-- move_server/move_db_name the new one; the switch swaps them in one
-- update, so every replica routes to the new copy at once, and the old
-- one (now named by move_*) is dropped afterwards. move_abort: the move
-- failed before its switch; the provisioner drops the new copy and puts
-- the tenant back READY where it was.
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('PROVISIONING', 'READY', 'SUSPENDED', 'FAILED', 'DELETING', 'DELETED', 'MOVING'));
ALTER TABLE tenants
    ADD COLUMN move_server   text REFERENCES database_servers (name),
    ADD COLUMN move_db_name  text,
    ADD COLUMN move_switched boolean NOT NULL DEFAULT false,
    ADD COLUMN move_abort    boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT tenants_move_check
        CHECK ((status = 'MOVING') = (move_server IS NOT NULL AND move_db_name IS NOT NULL));
CREATE INDEX tenants_move_server ON tenants (move_server) WHERE move_server IS NOT NULL;
DROP INDEX tenants_pending_idx;
CREATE INDEX tenants_pending_idx ON tenants (next_attempt_at)
    WHERE status IN ('PROVISIONING', 'DELETING', 'DELETED', 'MOVING');

-- +migrate Down
DROP INDEX tenants_pending_idx;
CREATE INDEX tenants_pending_idx ON tenants (next_attempt_at)
    WHERE status IN ('PROVISIONING', 'DELETING', 'DELETED');
DROP INDEX tenants_move_server;
ALTER TABLE tenants DROP CONSTRAINT tenants_move_check,
    DROP COLUMN move_server, DROP COLUMN move_db_name, DROP COLUMN move_switched, DROP COLUMN move_abort;
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('PROVISIONING', 'READY', 'SUSPENDED', 'FAILED', 'DELETING', 'DELETED'));
