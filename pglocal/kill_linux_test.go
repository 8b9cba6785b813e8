package pglocal_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantql/tenantql/pglocal"
)

// kill9 kills pid with SIGKILL and waits until it is dead (gone or a
// zombie), as after a real crash.
func kill9(t *testing.T, pid int) {
	t.Helper()
	p, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			return
		}
	}
	t.Fatalf("process %d survived SIGKILL", pid)
}

func TestStartAfterKill9(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(reachableTempDir(t), "data")
	c := start(t, pglocal.Options{DataDir: dataDir})
	db := open(t, c)
	exec(t, db, "SELECT 1")

	pid := postmasterPID(t, dataDir)
	kill9(t, pid)
	db.Close()

	// The stale postmaster.pid (its process maybe a zombie, its children
	// maybe still exiting) must not prevent a new start.
	c2 := start(t, pglocal.Options{DataDir: dataDir})
	if again := postmasterPID(t, dataDir); again == pid {
		t.Fatalf("postmaster pid unchanged (%d)", pid)
	}
	if got := queryString(t, open(t, c2), "SELECT 1::text"); got != "1" {
		t.Fatalf("SELECT 1 = %s", got)
	}

	// Restart copes with a killed postmaster too, on the same port.
	port := c2.Port()
	kill9(t, postmasterPID(t, dataDir))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c2.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if c2.Port() != port {
		t.Errorf("port %d after restart, want %d", c2.Port(), port)
	}
	if got := queryString(t, open(t, c2), "SELECT 2::text"); got != "2" {
		t.Fatalf("SELECT 2 = %s", got)
	}
}

func TestStartIgnoresPIDFileOfAnotherProcess(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(reachableTempDir(t), "data")
	c := start(t, pglocal.Options{DataDir: dataDir})
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	// As after a crash and a reboot that gave the pid to another program:
	// postgres itself would refuse to start.
	if err := os.WriteFile(filepath.Join(dataDir, "postmaster.pid"), []byte("1\n"+dataDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c2 := start(t, pglocal.Options{DataDir: dataDir})
	if got := queryString(t, open(t, c2), "SELECT 1::text"); got != "1" {
		t.Fatalf("SELECT 1 = %s", got)
	}
}

// Watch restarts a postmaster that died, on the same port, so that the
// URLs handed out keep working.
func TestWatchRestartsAKilledPostmaster(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(reachableTempDir(t), "data")
	c := start(t, pglocal.Options{DataDir: dataDir})
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() { watched <- c.Watch(ctx, 50*time.Millisecond) }()

	port, pid := c.Port(), postmasterPID(t, dataDir)
	kill9(t, pid)
	db := open(t, c)
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var one int
		if db.QueryRow("SELECT 1").Scan(&one) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed postmaster was not restarted within 90 s")
		}
	}
	if again := postmasterPID(t, dataDir); again == pid || c.Port() != port {
		t.Fatalf("postmaster %d on port %d, want a new one on %d", again, c.Port(), port)
	}
	cancel()
	if err := <-watched; err != nil {
		t.Fatalf("Watch after its context ended: %v", err)
	}
}

// Watch gives up, with postgres's reason, when the cluster cannot be
// restarted, rather than try for ever.
func TestWatchGivesUpOnAClusterThatCannotStart(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(reachableTempDir(t), "data")
	c := start(t, pglocal.Options{DataDir: dataDir})
	conf, err := os.OpenFile(filepath.Join(dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conf.WriteString("\nthis line is not a setting\n"); err != nil {
		t.Fatal(err)
	}
	conf.Close()
	kill9(t, postmasterPID(t, dataDir))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err = c.Watch(ctx, 50*time.Millisecond)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Watch = %v (context: %v), want it to give up", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "could not be restarted") || !strings.Contains(err.Error(), "postgresql.conf") {
		t.Fatalf("error does not say why: %v", err)
	}
}
