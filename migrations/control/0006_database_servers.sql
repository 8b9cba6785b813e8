-- +migrate Up
-- The PostgreSQL servers tenant databases live on. "default" is the server
-- of DATABASE_URL (its URL stays in the environment, never here); others
-- are added through the platform API with their URL sealed like tenant
-- passwords (AES-GCM under SECRET_KEY, bound to the server's name).
CREATE TABLE database_servers (
    name       text        PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9-]{0,38}$'),
    host       text        NOT NULL DEFAULT '',
    url_sealed bytea,
    capacity   integer     NOT NULL DEFAULT 0 CHECK (capacity >= 0),
    draining   boolean     NOT NULL DEFAULT false,
    reachable  boolean     NOT NULL DEFAULT true,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((name = 'default') = (url_sealed IS NULL))
);
INSERT INTO database_servers (name) VALUES ('default');
ALTER TABLE tenants ADD COLUMN database_server text NOT NULL DEFAULT 'default'
    REFERENCES database_servers (name);
CREATE INDEX tenants_database_server ON tenants (database_server);

-- +migrate Down
DROP INDEX tenants_database_server;
ALTER TABLE tenants DROP COLUMN database_server;
DROP TABLE database_servers;
