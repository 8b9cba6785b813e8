package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	migrate "github.com/rubenv/sql-migrate"

	"github.com/tenantql/tenantql/internal/pgtest"
	"github.com/tenantql/tenantql/migrations"
	"github.com/tenantql/tenantql/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is one test's tenant database.
type env struct {
	s   *store.Store
	db  *sqlx.DB
	url string
}

// newEnv returns a Store on a fresh, migrated tenant database.
func newEnv(t *testing.T) env {
	t.Helper()
	url := pgtest.NewDatabase(t)
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(10)
	t.Cleanup(func() { _ = db.Close() })
	if _, err := migrations.TenantSet().Exec(db.DB, "postgres", migrations.Tenant(), migrate.Up); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return env{s: store.New(db), db: db, url: url}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// user creates a MEMBER user named n.
func (e env) user(t *testing.T, n string) store.User {
	t.Helper()
	u, err := e.s.CreateUser(context.Background(), store.NewUser{
		Email: n + "@example.com", Name: n, Role: store.RoleMember, PasswordHash: "hash-" + n})
	if err != nil {
		t.Fatalf("create user %s: %v", n, err)
	}
	return u
}

// project creates a project with key and name "Project <key>".
func (e env) project(t *testing.T, key string) store.Project {
	t.Helper()
	p, err := e.s.CreateProject(context.Background(), key, "Project "+key)
	if err != nil {
		t.Fatalf("create project %s: %v", key, err)
	}
	return p
}

// issue creates a TODO issue in project, reported by reporter.
func (e env) issue(t *testing.T, project string, reporter uuid.UUID, title string) store.Issue {
	t.Helper()
	is, err := e.s.CreateIssue(context.Background(), store.NewIssue{
		ProjectKey: project, Title: title, ReporterID: reporter})
	if err != nil {
		t.Fatalf("create issue %q: %v", title, err)
	}
	return is
}

// comment adds a comment to the issue with key.
func (e env) comment(t *testing.T, key string, author uuid.UUID, body string) store.Comment {
	t.Helper()
	c, err := e.s.AddComment(context.Background(), key, author, body)
	if err != nil {
		t.Fatalf("add comment to %s: %v", key, err)
	}
	return c
}

// count returns the number of rows of table (a constant of the test).
func (e env) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := e.db.Get(&n, "SELECT count(*) FROM "+table); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func ptr[T any](v T) *T { return &v }

func isUTC(t *testing.T, what string, ts ...time.Time) {
	t.Helper()
	for _, x := range ts {
		if x.Location() != time.UTC || x.IsZero() {
			t.Errorf("%s: time %v is not a set UTC time", what, x)
		}
	}
}

func name(i int) string { return fmt.Sprintf("u%03d", i) }
