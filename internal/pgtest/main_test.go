package pgtest_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tenantql/tenantql/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func openDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var exists bool
	const q = `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`
	if err := openDB(t, pgtest.AdminURL(t)).QueryRowContext(ctx, q, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

func TestNewDatabaseIsDroppedAfterTheTest(t *testing.T) {
	t.Parallel()
	var name string
	// t.Run returns once the subtest and its cleanups are done.
	t.Run("uses", func(t *testing.T) {
		db := openDB(t, pgtest.NewDatabase(t))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `CREATE TABLE t (x int); INSERT INTO t VALUES (7)`); err != nil {
			t.Fatal(err)
		}
		var x int
		if err := db.QueryRowContext(ctx, `SELECT current_database(), x FROM t`).Scan(&name, &x); err != nil {
			t.Fatal(err)
		}
		if x != 7 || len(name) < 5 || name[:5] != "test_" {
			t.Fatalf("database %q, x = %d", name, x)
		}
		if !databaseExists(t, name) {
			t.Fatalf("%s not in pg_database", name)
		}
		// db stays open: the drop must force it out.
	})
	if name == "" {
		t.Fatal("subtest did not run")
	}
	if databaseExists(t, name) {
		t.Fatalf("%s still exists after its test", name)
	}
}

func TestNewDatabaseGivesEachTestItsOwn(t *testing.T) {
	t.Parallel()
	names := make(chan string, 3)
	t.Run("group", func(t *testing.T) {
		for _, sub := range []string{"a", "b", "c"} {
			t.Run(sub, func(t *testing.T) {
				t.Parallel()
				var name string
				if err := openDB(t, pgtest.NewDatabase(t)).QueryRow(`SELECT current_database()`).Scan(&name); err != nil {
					t.Fatal(err)
				}
				names <- name
			})
		}
	})
	close(names)
	seen := map[string]bool{}
	for n := range names {
		if seen[n] {
			t.Fatalf("database %s handed out twice", n)
		}
		seen[n] = true
	}
	if len(seen) != 3 {
		t.Fatalf("got %d databases, want 3", len(seen))
	}
}

func TestClusterMatchesAdminURL(t *testing.T) {
	t.Parallel()
	c := pgtest.Cluster()
	if c == nil {
		t.Skip("TEST_DATABASE_URL given: no throwaway cluster")
	}
	if got := pgtest.AdminURL(t); got != c.URL("postgres") {
		t.Fatal("AdminURL is not the throwaway cluster's superuser URL")
	}
}

func TestWithURLDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, db, want string }{
		{"postgres://u:p@h:5432/postgres?sslmode=disable", "test_x", "postgres://u:p@h:5432/test_x?sslmode=disable"},
		{"postgresql://u@h", "d", "postgresql://u@h/d"},
		{"postgres://u:p%2Fw@h/a?dbname=a&sslmode=disable", "b", "postgres://u:p%2Fw@h/b?sslmode=disable"},
		{"postgres://h/a", "with space", "postgres://h/with%20space"},
	}
	for _, tt := range tests {
		if got := pgtest.WithURLDatabase(tt.in, tt.db); got != tt.want {
			t.Errorf("WithURLDatabase(%q, %q) = %q, want %q", tt.in, tt.db, got, tt.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("no panic for a key=value connection string")
		}
	}()
	pgtest.WithURLDatabase("host=h dbname=a", "b")
}

// TestReaperCleansUpAfterADeadProcess stands a sleep in for the test
// binary: once it dies, the watchdog removes the directory.
func TestReaperCleansUpAfterADeadProcess(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "pgtest-reaper-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	watched := exec.Command("sleep", "60")
	if err := watched.Start(); err != nil {
		t.Skip(err)
	}
	stop := pgtest.StartReaper(watched.Process.Pid, dir)
	defer stop()
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("removed while the process lives: %v", err)
	}
	watched.Process.Kill()
	watched.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("directory still there 10s after the process died")
		}
	}
}
