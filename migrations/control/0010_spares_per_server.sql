-- +migrate Up
-- Spares are per database server (tenancy/reserve.go): each ACTIVE server
-- keeps its own template database and spares, and a sign-up claims a spare
-- of the server its tenant is placed on. The spares built before lived on
-- the default server. The reference keeps a server with spare rows from
-- being removed before its spares are dropped.
ALTER TABLE spares ADD COLUMN server text NOT NULL DEFAULT 'default'
    REFERENCES database_servers (name);
DROP INDEX spares_ready_idx;
CREATE INDEX spares_ready_idx ON spares (server, version, created_at, name)
    WHERE state = 'READY' AND claimed_by IS NULL;

-- +migrate Down
DROP INDEX spares_ready_idx;
-- the older code knows spares on the default server only
DELETE FROM spares WHERE server <> 'default';
ALTER TABLE spares DROP COLUMN server;
CREATE INDEX spares_ready_idx ON spares (version, created_at, name)
    WHERE state = 'READY' AND claimed_by IS NULL;
