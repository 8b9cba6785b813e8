//go:build unix

package pglocal_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tenantql/tenantql/pglocal"
)

// reachableTempDir returns a fresh directory under os.TempDir() that the
// postgres user can traverse (os.MkdirTemp makes it 0700), removed after
// the test.
func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pglocal-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func start(t *testing.T, opts pglocal.Options) *pglocal.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts.FsyncOff = true
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	c, err := pglocal.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func open(t *testing.T, c *pglocal.Cluster) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func queryString(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var s string
	if err := db.QueryRowContext(ctx, q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

func exec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestStartStopReuseRestart(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(reachableTempDir(t), "nested", "data")
	c := start(t, pglocal.Options{DataDir: dataDir})
	db := open(t, c)
	exec(t, db, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
	settings := map[string]string{
		"fsync":                   "off",
		"synchronous_commit":      "off",
		"full_page_writes":        "off",
		"max_connections":         "300",
		"listen_addresses":        "127.0.0.1",
		"password_encryption":     "scram-sha-256",
		"server_encoding":         "UTF8",
		"unix_socket_directories": "",
		"port":                    strconv.Itoa(c.Port()),
	}
	for name, want := range settings {
		if got := queryString(t, db, "SHOW "+name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := queryString(t, db, "SELECT current_user"); got != "postgres" {
		t.Errorf("current_user = %q", got)
	}

	pwPath := filepath.Join(dataDir, "superuser.password")
	fi, err := os.Stat(pwPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v, want 0600", fi.Mode().Perm())
	}
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{dataDir, filepath.Dir(dataDir)} {
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if uid := fi.Sys().(*syscall.Stat_t).Uid; strconv.Itoa(int(uid)) != pg.Uid {
				t.Errorf("%s owned by uid %d, want postgres (%s)", dir, uid, pg.Uid)
			}
		}
	}
	password, _ := os.ReadFile(pwPath)
	db.Close()

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("postmaster.pid after Stop: %v", err)
	}

	// Started again on the same data: the table is still there.
	c2 := start(t, pglocal.Options{DataDir: dataDir})
	if again, _ := os.ReadFile(pwPath); string(again) != string(password) {
		t.Error("password changed on reuse")
	}
	db2 := open(t, c2)
	if got := queryString(t, db2, "SELECT x::text FROM kept"); got != "42" {
		t.Errorf("kept.x = %s", got)
	}

	// Restart keeps the port; the pool reconnects.
	port := c2.Port()
	pid := queryString(t, db2, "SELECT pg_backend_pid()::text")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c2.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if c2.Port() != port {
		t.Errorf("port %d after restart, want %d", c2.Port(), port)
	}
	db2.SetMaxIdleConns(0) // drop the connection the restart broke
	if got := queryString(t, db2, "SELECT count(*)::text FROM kept"); got != "1" {
		t.Errorf("count after restart = %s", got)
	}
	if again := queryString(t, db2, "SELECT pg_backend_pid()::text"); again == pid {
		t.Error("same backend after restart")
	}
	if _, err := os.Stat(filepath.Join(dataDir, "postgres.log")); err != nil {
		t.Errorf("log file: %v", err)
	}
}

func TestFixedPortInUseReportsLog(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	dataDir := filepath.Join(reachableTempDir(t), "data")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pglocal.Start(ctx, pglocal.Options{
		DataDir: dataDir, Port: port, FsyncOff: true,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err == nil {
		c.Stop()
		t.Fatal("Start on a taken port succeeded")
	}
	if !strings.Contains(err.Error(), "could not bind") || !strings.Contains(err.Error(), "postgres.log") {
		t.Fatalf("error does not quote the log: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("postmaster left behind: %v", err)
	}

	// With the port free, the same fixed port works.
	l.Close()
	c = start(t, pglocal.Options{DataDir: dataDir, Port: port})
	if c.Port() != port {
		t.Fatalf("Port() = %d, want %d", c.Port(), port)
	}
	if u := c.URL("x"); !strings.HasPrefix(u, "postgres://postgres:") || !strings.HasSuffix(u, "@127.0.0.1:"+strconv.Itoa(port)+"/x?sslmode=disable") {
		t.Fatalf("URL = %s", u)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := pglocal.Start(ctx, pglocal.Options{}); err == nil {
		t.Error("no DataDir: no error")
	}
	if _, err := pglocal.Start(ctx, pglocal.Options{DataDir: t.TempDir(), Port: -1}); err == nil {
		t.Error("port -1: no error")
	}
	notEmpty := reachableTempDir(t)
	os.WriteFile(filepath.Join(notEmpty, "x"), nil, 0o600)
	if _, err := pglocal.Start(ctx, pglocal.Options{DataDir: notEmpty}); err == nil || !strings.Contains(err.Error(), "no cluster") {
		t.Errorf("non-empty dir without a cluster: %v", err)
	}
}

func TestUnreachableDataDirAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root switches to the postgres user")
	}
	t.Parallel()
	private, err := os.MkdirTemp("", "pglocal-private-") // mode 0700, root's
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(private)
	_, err = pglocal.Start(context.Background(), pglocal.Options{DataDir: filepath.Join(private, "data")})
	if !errors.Is(err, pglocal.ErrDataDirUnreachable) || !strings.Contains(err.Error(), private) {
		t.Fatalf("got %v, want ErrDataDirUnreachable naming %s", err, private)
	}
	if _, err := os.Stat(filepath.Join(private, "data")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("data dir created anyway: %v", err)
	}
}

func TestFindBinDir(t *testing.T) {
	t.Parallel()
	dir, err := pglocal.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func postmasterPID(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(first)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}
