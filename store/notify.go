package store

import (
	"context"

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
