package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// IssueChangedChannel is the PostgreSQL NOTIFY channel on which CreateIssue
// and UpdateIssue announce an issue, with the issue's id (text form) as the
// payload. The notification is sent in the writing transaction, so it is
// delivered on commit and only then, to every session of the tenant
// database that LISTENs on the channel (on any server process).
const IssueChangedChannel = "issue_changed"

// notifyIssueChanged queues the notification of issue id in tx.
func notifyIssueChanged(ctx context.Context, tx *sqlx.Tx, id uuid.UUID) error {
	const q = `SELECT pg_notify($1, $2)`
	if _, err := tx.ExecContext(ctx, q, IssueChangedChannel, id.String()); err != nil {
		return dbError("notify issue changed", err)
	}
	return nil
}

// ParseIssueChanged returns the issue id that a notification on
// IssueChangedChannel carries. Returns an error if payload is not one.
func ParseIssueChanged(payload string) (uuid.UUID, error) {
	id, err := uuid.Parse(payload)
	if err != nil {
		return uuid.Nil, fmt.Errorf("store: %s payload %q: %w", IssueChangedChannel, printable(payload), err)
	}
	return id, nil
}

// IssuesChangedSince returns the issues created or updated after since
// (by updated_at), oldest first, at most limit of them. A listener that
// lost its connection reads what it may have missed with it.
func (s *Store) IssuesChangedSince(ctx context.Context, since time.Time, limit int) ([]Issue, error) {
	const q = `SELECT ` + issueColumns + ` FROM issues i JOIN projects p ON p.id = i.project_id
		WHERE i.updated_at > $1 ORDER BY i.updated_at, i.id LIMIT $2`
	var out []Issue
	if err := s.db.SelectContext(ctx, &out, q, since, limit); err != nil {
		return nil, dbError("issues changed since", err)
	}
	for i := range out {
		out[i].normalize()
	}
	return out, nil
}

// Clock returns the database server's current time, the clock that
// updated_at is set from.
func (s *Store) Clock(ctx context.Context) (time.Time, error) {
	var now time.Time
	if err := s.db.GetContext(ctx, &now, `SELECT clock_timestamp()`); err != nil {
		return time.Time{}, dbError("clock", err)
	}
	return now, nil
}
