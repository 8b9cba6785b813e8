-- +migrate Up
-- One row per tenant: it is both the registry entry and the provisioning job.
CREATE TABLE tenants (
    id                  uuid PRIMARY KEY,
    slug                text NOT NULL,
    name                text NOT NULL,
    status              text NOT NULL
        CHECK (status IN ('PROVISIONING', 'READY', 'SUSPENDED', 'FAILED', 'DELETING')),
    db_name             text NOT NULL,
    role_name           text NOT NULL,
    role_password       bytea NOT NULL,          -- AES-GCM sealed with SECRET_KEY
    schema_version      text NOT NULL DEFAULT '',
    last_error          text,
    -- the owner user waits here until provisioning creates it, then is cleared
    owner_email         text,
    owner_name          text,
    owner_password_hash text,
    seed_demo           boolean NOT NULL DEFAULT false,
    -- reconciler bookkeeping
    step                text NOT NULL DEFAULT '',
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    lease_owner         text,
    lease_expires_at    timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tenants_slug_key ON tenants (slug);
CREATE UNIQUE INDEX tenants_db_name_key ON tenants (db_name);
CREATE UNIQUE INDEX tenants_role_name_key ON tenants (role_name);
CREATE INDEX tenants_created_at_idx ON tenants (created_at, id);
CREATE INDEX tenants_pending_idx ON tenants (next_attempt_at)
    WHERE status IN ('PROVISIONING', 'DELETING');

CREATE TABLE tenant_domains (
    domain     text PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_domains_tenant_idx ON tenant_domains (tenant_id);

-- Every change to a tenant or its domains tells every server process, which
-- keeps its routing table in memory (LISTEN tenantql_tenants).
-- +migrate StatementBegin
CREATE FUNCTION notify_tenant_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- lease and retry bookkeeping does not change routing: stay quiet
    IF TG_TABLE_NAME = 'tenants' THEN
        IF TG_OP = 'UPDATE' THEN
            IF OLD.updated_at = NEW.updated_at AND OLD.status = NEW.status THEN
                RETURN NULL;
            END IF;
        END IF;
        PERFORM pg_notify('tenantql_tenants', COALESCE(NEW.id, OLD.id)::text);
    ELSE
        PERFORM pg_notify('tenantql_tenants', COALESCE(NEW.tenant_id, OLD.tenant_id)::text);
    END IF;
    RETURN NULL;
END;
$$;
-- +migrate StatementEnd
CREATE TRIGGER tenants_notify AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION notify_tenant_change();
CREATE TRIGGER tenant_domains_notify AFTER INSERT OR UPDATE OR DELETE ON tenant_domains
    FOR EACH ROW EXECUTE FUNCTION notify_tenant_change();

-- +migrate Down
DROP TABLE tenant_domains;
DROP TABLE tenants;
DROP FUNCTION notify_tenant_change();
