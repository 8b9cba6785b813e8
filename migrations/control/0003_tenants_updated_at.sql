-- +migrate Up
-- updated_at orders the versions of a tenant row: every process keeps the
-- newest copy it has read, so it must grow with each committed change even
-- when transactions that started earlier commit later (now() is the start
-- of the transaction). A BEFORE trigger runs once the row is locked and
-- OLD is the newest committed version.
-- +migrate StatementBegin
CREATE FUNCTION tenants_updated_at_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at + interval '1 microsecond');
    END IF;
    RETURN NEW;
END;
$$;
-- +migrate StatementEnd
CREATE TRIGGER tenants_updated_at_grows BEFORE UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenants_updated_at_grows();

-- +migrate Down
DROP TRIGGER tenants_updated_at_grows ON tenants;
DROP FUNCTION tenants_updated_at_grows();
