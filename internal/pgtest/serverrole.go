package pgtest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/tenantql/tenantql/pglocal"
)

// ServerRole is the role the server under test connects as: LOGIN
// CREATEDB CREATEROLE, a member of pg_signal_backend, and no superuser,
// which is the most a managed PostgreSQL service (RDS, Cloud SQL, Azure)
// hands out. It is created once per cluster by the first test that needs
// it.
const ServerRole = "tenantql_server"

// EnvServerAsSuperuser names a variable that, set to 1, makes
// NewControlDatabase hand out the superuser instead of ServerRole (to
// compare the two; production never has a superuser).
const EnvServerAsSuperuser = "TEST_SERVER_AS_SUPERUSER"

// NewControlDatabase creates an empty database owned by ServerRole, like
// NewDatabase (dropped when the test ends), and returns its URL with
// ServerRole's credentials: the DATABASE_URL of a server under test. When
// TEST_DATABASE_URL is itself not a superuser it is taken to be such a
// role already, and its credentials are kept. It calls t.Fatal when the
// role or the database cannot be made.
func NewControlDatabase(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	serverURL, owner, err := serverCredentials(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: server role: %v", err)
	}
	name := databaseName(t.Name())
	if err := execAdmin(ctx, admin, "CREATE DATABASE "+pq.QuoteIdentifier(name)+" OWNER "+pq.QuoteIdentifier(owner)); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := execAdmin(ctx, admin, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	dbURL, err := withDatabase(serverURL, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dbURL
}

// serverCredentials returns the URL (on adminURL's database) and name of
// the role a server under test connects as, creating ServerRole when
// adminURL is a superuser.
func serverCredentials(ctx context.Context, adminURL string) (serverURL, role string, err error) {
	db, err := sql.Open("postgres", adminURL)
	if err != nil {
		return "", "", err
	}
	defer db.Close()
	var super bool
	if err := db.QueryRowContext(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return "", "", err
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", "", err
	}
	if !super || os.Getenv(EnvServerAsSuperuser) == "1" {
		return adminURL, u.User.Username(), nil
	}
	password := serverPassword(adminURL)
	create := "CREATE ROLE " + ServerRole + " LOGIN CREATEDB CREATEROLE NOSUPERUSER PASSWORD " + pq.QuoteLiteral(password)
	if _, err := db.ExecContext(ctx, create); err != nil && !isDuplicate(err) {
		return "", "", fmt.Errorf("create role %s: %w", ServerRole, err)
	}
	// on a managed service the operator's role may end other sessions of
	// the roles it manages; deleted tenants' sessions need it
	// (parallel tests on a fresh cluster grant it at once: the loser's
	// insert into pg_auth_members is a duplicate, and the grant is there)
	if _, err := db.ExecContext(ctx, "GRANT pg_signal_backend TO "+ServerRole); err != nil && !isDuplicate(err) {
		return "", "", fmt.Errorf("grant pg_signal_backend: %w", err)
	}
	u.User = url.UserPassword(ServerRole, password)
	return u.String(), ServerRole, nil
}

// serverPassword derives ServerRole's password from the admin URL, so
// that every test binary sharing a cluster knows it without storing it.
func serverPassword(adminURL string) string {
	sum := sha256.Sum256([]byte("tenantql-test-server-role\x00" + adminURL))
	return hex.EncodeToString(sum[:16])
}

// isDuplicate reports a role created meanwhile by another test binary:
// duplicate_object, or unique_violation when both inserted at once.
func isDuplicate(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && (pqErr.Code == "42710" || pqErr.Code == "23505")
}

// SuperuserURL returns TEST_DATABASE_URL's credentials on the database of
// dbURL (a URL from NewControlDatabase, say): for a test's own look
// behind the server's back. It calls t.Fatal when dbURL is not a URL.
func SuperuserURL(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return WithURLDatabase(AdminURL(t), strings.TrimPrefix(u.Path, "/"))
}

// OwnCluster is a throwaway PostgreSQL server of a test's own, such as a
// second database server of the fleet.
type OwnCluster struct {
	// ServerURL reaches its "postgres" database as ServerRole (a
	// CREATEDB CREATEROLE role, as a managed service would give).
	ServerURL string
	// SuperuserURL reaches its "postgres" database as the superuser, for
	// the test's own looks.
	SuperuserURL string
	// Stop stops the cluster (also done when the test ends); stopping twice
	// is harmless.
	Stop func()
	// Down stops the cluster but keeps its data, for Up to start it again
	// on the same port: an outage of the server.
	Down func() error
	// Up starts a cluster that Down stopped, and returns once it answers.
	Up func(ctx context.Context) error
}

// NewCluster starts a throwaway cluster (fsync off) that the test's
// cleanup stops and removes, with ServerRole on it. It takes about two
// seconds. It calls t.Fatal when the cluster cannot start.
func NewCluster(t testing.TB) *OwnCluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgtest-cluster-")
	if err != nil {
		t.Fatalf("pgtest: cluster: %v", err)
	}
	_ = os.Chmod(dir, 0o755) // the postgres user must reach it when we are root
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := pglocal.Start(ctx, pglocal.Options{DataDir: filepath.Join(dir, "data"), FsyncOff: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("pgtest: cluster: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := c.Stop(); err != nil {
				t.Logf("pgtest: stop cluster: %v", err)
			}
			os.RemoveAll(dir)
		})
	}
	t.Cleanup(stop)
	super := c.URL("postgres")
	serverURL, _, err := serverCredentials(ctx, super)
	if err != nil {
		t.Fatalf("pgtest: cluster: server role: %v", err)
	}
	return &OwnCluster{ServerURL: serverURL, SuperuserURL: super, Stop: stop, Down: c.Stop, Up: c.Restart}
}
