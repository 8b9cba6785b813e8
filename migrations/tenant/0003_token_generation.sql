-- +migrate Up
-- A user's tokens carry the token generation they were issued in; a token
-- of an older generation is revoked. logout moves it on, and so does any
-- change of the user's email, role or password hash, through the API
-- (changePassword) or directly in SQL.
ALTER TABLE users ADD COLUMN token_generation bigint NOT NULL DEFAULT 0;
-- +migrate StatementBegin
CREATE FUNCTION users_revoke_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.email IS DISTINCT FROM OLD.email OR NEW.role IS DISTINCT FROM OLD.role
       OR NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN
        NEW.token_generation := greatest(NEW.token_generation, OLD.token_generation + 1);
    END IF;
    RETURN NEW;
END;
$$;
-- +migrate StatementEnd
CREATE TRIGGER users_revoke_tokens BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_revoke_tokens();

-- +migrate Down
DROP TRIGGER users_revoke_tokens ON users;
DROP FUNCTION users_revoke_tokens();
ALTER TABLE users DROP COLUMN token_generation;
