-- +migrate Up
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER')),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_created_at_idx ON users (created_at, id);

CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    key         text NOT NULL UNIQUE CHECK (key ~ '^[A-Z][A-Z0-9]{1,9}$'),
    name        text NOT NULL,
    last_number integer NOT NULL DEFAULT 0, -- issue numbers are handed out from here
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_created_at_idx ON projects (created_at, id);

CREATE TABLE issues (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    number      integer NOT NULL,
    title       text NOT NULL,
    description text NOT NULL DEFAULT '',
    status      text NOT NULL CHECK (status IN ('TODO', 'IN_PROGRESS', 'DONE')),
    assignee_id uuid REFERENCES users (id),
    reporter_id uuid NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, number)
);
-- newest first, with id as the tie-breaker, across projects and per project
CREATE INDEX issues_created_idx ON issues (created_at DESC, id DESC);
CREATE INDEX issues_project_created_idx ON issues (project_id, created_at DESC, id DESC);
CREATE INDEX issues_assignee_idx ON issues (assignee_id) WHERE assignee_id IS NOT NULL;

CREATE TABLE comments (
    id         uuid PRIMARY KEY,
    issue_id   uuid NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    author_id  uuid NOT NULL REFERENCES users (id),
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comments_issue_created_idx ON comments (issue_id, created_at, id);

-- +migrate Down
DROP TABLE comments;
DROP TABLE issues;
DROP TABLE projects;
DROP TABLE users;
