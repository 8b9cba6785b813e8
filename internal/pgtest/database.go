package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
)

// NewDatabase creates an empty database with a unique name ("test_", the
// test's name made safe, a random suffix) and returns its URL: AdminURL's,
// with the database name swapped. A t.Cleanup drops it WITH (FORCE),
// disconnecting any pools still open. It calls t.Fatal when the database
// cannot be created, and t.Error when it cannot be dropped.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	name := databaseName(t.Name())
	dbURL, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := execAdmin(ctx, admin, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := execAdmin(ctx, admin, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return dbURL
}

// WithURLDatabase returns the postgres:// (or postgresql://) URL rawURL
// with its database name replaced by dbname, keeping credentials, host and
// parameters (a dbname parameter is dropped). It panics when rawURL is not
// such a URL (key=value connection strings are not supported): a mistake
// in a test's setup.
func WithURLDatabase(rawURL, dbname string) string {
	u, err := withDatabase(rawURL, dbname)
	if err != nil {
		panic("pgtest: WithURLDatabase: " + err.Error())
	}
	return u
}

func withDatabase(rawURL, dbname string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("not a postgres:// URL (scheme %q)", u.Scheme)
	}
	u.Path, u.RawPath = "/"+dbname, ""
	if q := u.Query(); q.Has("dbname") {
		q.Del("dbname")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// databaseName returns "test_", testName reduced to [a-z0-9_] and 40
// bytes, "_" and 8 random characters: at most 54 bytes, under PostgreSQL's
// 63-byte identifier limit, and safe in SQL once quoted.
func databaseName(testName string) string {
	var b strings.Builder
	b.WriteString("test_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= len("test_")+40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteByte('_')
	b.WriteString(strings.ToLower(rand.Text()[:8]))
	return b.String()
}

// execAdmin runs one statement on its own connection to adminURL.
func execAdmin(ctx context.Context, adminURL, stmt string) error {
	db, err := sql.Open("postgres", adminURL)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}
