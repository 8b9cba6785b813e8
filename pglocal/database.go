package pglocal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"

	"github.com/lib/pq"
)

// databaseName is what EnsureDatabase accepts: a plain lower-case
// PostgreSQL identifier.
var databaseName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// EnsureDatabase creates database name, owned by the superuser, unless it
// exists (another process may be creating it at the same time), and
// returns its URL (see URL). name must be a lower-case identifier
// (letters, digits, underscores); errors quote PostgreSQL's.
func (c *Cluster) EnsureDatabase(ctx context.Context, name string) (string, error) {
	if !databaseName.MatchString(name) {
		return "", fmt.Errorf("pglocal: database name %q: want lower-case letters, digits and underscores", name)
	}
	db, err := sql.Open("postgres", c.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("pglocal: create database %s: %w", name, err)
	}
	defer db.Close()
	var exists bool
	const q = `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`
	if err := db.QueryRowContext(ctx, q, name).Scan(&exists); err != nil {
		return "", fmt.Errorf("pglocal: create database %s: %w", name, err)
	}
	if !exists {
		_, err := db.ExecContext(ctx, `CREATE DATABASE `+pq.QuoteIdentifier(name))
		var pqErr *pq.Error
		if err != nil && !(errors.As(err, &pqErr) && pqErr.Code == "42P04") { // duplicate_database: made meanwhile
			return "", fmt.Errorf("pglocal: create database %s: %w", name, err)
		}
	}
	return c.URL(name), nil
}
