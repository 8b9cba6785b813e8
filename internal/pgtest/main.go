// Package pgtest runs a package's tests against PostgreSQL: a server given
// in TEST_DATABASE_URL, or a throwaway cluster it starts with pglocal, and
// a fresh database per test.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		db, err := sql.Open("postgres", pgtest.NewDatabase(t))
//		…
//	}
package pgtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/tenantql/tenantql/pglocal"
)

// EnvURL names the environment variable holding the admin connection URL.
const EnvURL = "TEST_DATABASE_URL"

// startTimeout bounds starting the throwaway cluster (initdb included).
const startTimeout = 2 * time.Minute

// cluster is the throwaway cluster Main started, nil when TEST_DATABASE_URL
// was given. A package-level variable because testing.M offers no place
// for per-run state that every test can reach; Main writes it once, before
// any test runs, and only test binaries import this package.
var cluster *pglocal.Cluster

// Main runs a package's tests against PostgreSQL and exits with their
// status. When TEST_DATABASE_URL is unset it starts a throwaway cluster
// (pglocal, FsyncOff, in a fresh os.MkdirTemp directory under
// os.TempDir()), sets TEST_DATABASE_URL to its superuser URL for the run,
// and stops and removes the cluster afterwards; a watchdog process does so
// too if the test binary dies (a timeout, a signal). The start takes about
// two seconds. If it fails, Main prints why and exits with status 1.
func Main(m *testing.M) {
	os.Exit(run(m, false))
}

// MainOwnCluster is Main, except that it always starts a throwaway cluster
// of its own, even when TEST_DATABASE_URL is set (it is replaced for the
// run), so Cluster is never nil. For packages whose tests restart or
// otherwise disturb PostgreSQL, which must not do so to a cluster that
// other packages' tests share.
func MainOwnCluster(m *testing.M) {
	os.Exit(RunOwnCluster(m))
}

// RunOwnCluster is MainOwnCluster without the exit: it returns the tests'
// exit status, for a TestMain that has more to clean up afterwards.
func RunOwnCluster(m *testing.M) int {
	return run(m, true)
}

func run(m *testing.M, own bool) int {
	if os.Getenv(EnvURL) != "" && !own {
		return m.Run()
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: throwaway cluster: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	c, err := pglocal.Start(ctx, pglocal.Options{DataDir: dir, FsyncOff: true, Logger: logger})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: throwaway cluster: %v\n", err)
		return 1
	}
	stopReaper := startReaper(os.Getpid(), dir, logger)
	defer stopReaper()
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: throwaway cluster: %v\n", err)
		}
	}()
	cluster = c
	if err := os.Setenv(EnvURL, c.URL("postgres")); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}
	return m.Run()
}

// Cluster returns the throwaway cluster started by Main, or nil when
// TEST_DATABASE_URL was given (or Main was not used): fault tests that
// restart PostgreSQL skip then.
func Cluster() *pglocal.Cluster {
	return cluster
}

// AdminURL returns TEST_DATABASE_URL: a role with CREATEDB and CREATEROLE
// (the superuser, in the throwaway cluster). It calls t.Fatal when it is
// unset. The URL holds a password: do not log it.
func AdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		t.Fatalf("pgtest: %s is unset: call pgtest.Main(m) from the package's TestMain", EnvURL)
	}
	return u
}
