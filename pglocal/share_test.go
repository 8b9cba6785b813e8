//go:build unix

package pglocal_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tenantql/tenantql/pglocal"
)

// helperDataDir, set in the environment, turns this test binary into a
// second process using a cluster: see TestHelperProcess.
const helperDataDir = "PGLOCAL_TEST_HELPER_DATA_DIR"

// TestHelperProcess is not a test: run by startHelper in a child process,
// it Starts the cluster of $PGLOCAL_TEST_HELPER_DATA_DIR, prints
// "up <port>", and Stops it when its standard input closes, then prints
// "down".
func TestHelperProcess(t *testing.T) {
	dataDir := os.Getenv(helperDataDir)
	if dataDir == "" {
		t.Skip("a helper process for other tests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pglocal.Start(ctx, pglocal.Options{
		DataDir: dataDir, FsyncOff: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	fmt.Printf("up %d\n", c.Port())
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	fmt.Println("down")
	os.Exit(0)
}

// helper is another process using a cluster.
type helper struct {
	cmd   *osexec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	port  int
}

// startHelper runs a process that Starts the cluster of dataDir, and
// waits until it has.
func startHelper(t *testing.T, dataDir string) *helper {
	t.Helper()
	cmd := osexec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperDataDir+"="+dataDir)
	cmd.Stderr = t.Output()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := h.line(t)
	port, err := strconv.Atoi(strings.TrimPrefix(line, "up "))
	if err != nil {
		t.Fatalf("helper: %q", line)
	}
	h.port = port
	return h
}

func (h *helper) line(t *testing.T) string {
	t.Helper()
	if !h.out.Scan() {
		t.Fatalf("helper ended: %v", h.out.Err())
	}
	return h.out.Text()
}

// stop makes the helper Stop its Cluster and exit.
func (h *helper) stop(t *testing.T) {
	t.Helper()
	h.stdin.Close()
	if line := h.line(t); line != "down" {
		t.Fatalf("helper: %q", line)
	}
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
}

// running reports whether a postmaster runs on dataDir.
func running(t *testing.T, dataDir string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if errors.Is(err, fs.ErrNotExist) {
		return false
	} else if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(first)
	if err != nil {
		t.Fatal(err)
	}
	return syscall.Kill(pid, 0) == nil
}

// A second process (a CLI command beside the development server) uses
// the running cluster and leaves it running; the last one out stops it.
func TestProcessesShareACluster(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(reachableTempDir(t), "data")

	// Another process runs the cluster; this one attaches and leaves.
	server := startHelper(t, dataDir)
	pid := postmasterPID(t, dataDir)
	c := start(t, pglocal.Options{DataDir: dataDir})
	if c.Port() != server.port {
		t.Fatalf("attached on port %d, the cluster runs on %d", c.Port(), server.port)
	}
	if postmasterPID(t, dataDir) != pid {
		t.Fatal("Start replaced the postmaster of another process")
	}
	db := open(t, c)
	exec(t, db, "CREATE TABLE shared (x int)")
	db.Close()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if !running(t, dataDir) || postmasterPID(t, dataDir) != pid {
		t.Fatal("Stop stopped the cluster another process uses")
	}
	db = open(t, c) // the other process's cluster still answers
	if got := queryString(t, db, "SELECT count(*)::text FROM shared"); got != "0" {
		t.Fatalf("count = %s", got)
	}
	db.Close()
	server.stop(t) // the last user: it stops the cluster
	if running(t, dataDir) {
		t.Fatal("the last user's Stop left the cluster running")
	}

	// This process runs it; another one comes and goes, then comes back
	// and stays: this one's Stop leaves the cluster to it.
	c = start(t, pglocal.Options{DataDir: dataDir})
	pid = postmasterPID(t, dataDir)
	startHelper(t, dataDir).stop(t)
	if !running(t, dataDir) || postmasterPID(t, dataDir) != pid {
		t.Fatal("another process's Stop stopped this process's cluster")
	}
	exec(t, open(t, c), "SELECT 1")
	cli := startHelper(t, dataDir)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if !running(t, dataDir) {
		t.Fatal("Stop stopped the cluster another process uses")
	}
	cli.stop(t)
	if running(t, dataDir) {
		t.Fatal("the last user's Stop left the cluster running")
	}
}

// A postmaster left running by a process that died is no one's: the next
// Start stops it and starts the cluster afresh.
func TestStartTakesOverOrphanedPostmaster(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(reachableTempDir(t), "data")
	crashed := startHelper(t, dataDir)
	old := postmasterPID(t, dataDir)
	if err := crashed.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = crashed.cmd.Wait()
	if !running(t, dataDir) {
		t.Fatal("the postmaster died with the process that started it")
	}
	c := start(t, pglocal.Options{DataDir: dataDir})
	if postmasterPID(t, dataDir) == old {
		t.Fatal("the orphaned postmaster is still in charge")
	}
	if got := queryString(t, open(t, c), "SELECT 1::text"); got != "1" {
		t.Fatalf("SELECT 1 = %s", got)
	}
}

func TestEnsureDatabase(t *testing.T) {
	t.Parallel()
	c := start(t, pglocal.Options{DataDir: filepath.Join(reachableTempDir(t), "data")})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 2 { // the second time it exists
		url, err := c.EnsureDatabase(ctx, "app_1")
		if err != nil {
			t.Fatal(err)
		}
		if url != c.URL("app_1") {
			t.Fatalf("URL %q, want c.URL(app_1)", url)
		}
	}
	db := open(t, c)
	if got := queryString(t, db, "SELECT count(*)::text FROM pg_database WHERE datname = 'app_1'"); got != "1" {
		t.Fatalf("app_1 databases: %s", got)
	}
	for _, bad := range []string{"", "App", "a-b", `x"; DROP DATABASE postgres; --`} {
		if _, err := c.EnsureDatabase(ctx, bad); err == nil {
			t.Errorf("EnsureDatabase(%q): no error", bad)
		}
	}
}
