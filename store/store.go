// Package store holds the SQL of the tenant domain: the users, projects,
// issues and comments of one organization's issue tracker. A Store works on
// the database handle it is given; it never picks a tenant itself.
//
// Every method validates its input before touching the database and returns
// errors wrapping ErrNotFound, ErrConflict, ErrInvalidInput or
// ErrUnavailable where they apply; anything else is an internal error.
// Times are returned in UTC.
package store

import (
	"context"
	"database/sql"

	"github.com/jmoiron/sqlx"
)

// Store runs the issue tracker's queries on one tenant database.
// It is safe for concurrent use; it is cheap to create, one per request is fine.
type Store struct {
	db *sqlx.DB
}

// New returns a Store on the tenant database db, which must have the tenant
// migrations applied.
func New(db *sqlx.DB) *Store {
	return &Store{db: db}
}

// snapshot returns the options of multi-statement reads (a page and its
// total count): both statements see the same snapshot.
func snapshot() *sql.TxOptions {
	return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
}

// inTx runs fn in a transaction opened with opts (nil: read committed,
// read-write) and commits it if fn returns nil; otherwise it rolls back and
// returns fn's error unchanged. Driver errors of BEGIN and COMMIT are
// wrapped with dbError.
func (s *Store) inTx(ctx context.Context, op string, opts *sql.TxOptions, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, opts)
	if err != nil {
		return dbError(op+": begin", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return dbError(op+": commit", err)
	}
	return nil
}
