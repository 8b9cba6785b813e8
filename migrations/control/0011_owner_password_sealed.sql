-- +migrate Up
-- createTenant no longer hashes the owner's password before it answers
-- (the argon2id hash took most of a sign-up's time): it seals the password
-- (tenancy/secrets.go, like the role passwords) and the provisioner hashes
-- it while the database is being prepared, then keeps only the hash
-- (owner_password_hash) and clears this. A row holds it for the length of
-- one hash, or until READY if that write failed.
ALTER TABLE tenants ADD COLUMN owner_password_sealed bytea;

-- +migrate Down
-- the older code reads only the hash: a tenant still holding a sealed
-- password cannot get its owner from it
ALTER TABLE tenants DROP COLUMN owner_password_sealed;
