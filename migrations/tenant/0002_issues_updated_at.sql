-- +migrate Up
-- issueChanged reads the issues changed since a moment (polling, and
-- catching up after a lost LISTEN connection).
CREATE INDEX issues_updated_at_idx ON issues (updated_at, id);

-- +migrate Down
DROP INDEX issues_updated_at_idx;
