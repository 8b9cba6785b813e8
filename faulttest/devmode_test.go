package faulttest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Development mode, as the README has a newcomer use it: `tenantql` with
// no DATABASE_URL runs an embedded PostgreSQL under DATA_DIR, and the CLI
// commands, run beside it with the same environment, use the same one.

// devMode is a DATA_DIR and the environment of every process using it.
type devMode struct {
	dataDir string
	env     []string
	logDir  string
}

// newDevMode returns a fresh DATA_DIR that the postgres user can reach
// (when running as root) and the environment for it. No template or
// spare databases: fewer processes on a busy machine.
func newDevMode(t *testing.T) *devMode {
	t.Helper()
	root, err := os.MkdirTemp("", "tenantql-devmode-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	dm := &devMode{dataDir: filepath.Join(root, ".tenantql"), logDir: t.TempDir()}
	dm.env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		"DATA_DIR=" + dm.dataDir, "LOG_LEVEL=info", "SPARE_TENANTS=0", "TENANT_TEMPLATE=false",
	}
	t.Cleanup(func() { dm.stopLeftover(t) })
	return dm
}

// postmaster returns the process id in the embedded cluster's
// postmaster.pid, 0 when there is none.
func (dm *devMode) postmaster(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dm.dataDir, "postgres", "postmaster.pid"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	} else if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(first)
	if err != nil {
		t.Fatalf("postmaster.pid: %q", first)
	}
	return pid
}

// postmasterRunning reports whether the embedded cluster's postmaster is
// alive (not a zombie).
func (dm *devMode) postmasterRunning(t *testing.T) bool {
	t.Helper()
	pid := dm.postmaster(t)
	if pid == 0 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil // no /proc: a zombie counts as alive
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] != 'Z'
}

// stopLeftover kills a postmaster a failed test left running.
func (dm *devMode) stopLeftover(t *testing.T) {
	if dm.postmasterRunning(t) {
		_ = syscall.Kill(dm.postmaster(t), syscall.SIGQUIT)
	}
}

// adminToken is the admin token the first server generated.
func (dm *devMode) adminToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dm.dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// serve runs `tenantql` (serve) and waits until /readyz answers 200: the
// embedded cluster is up and the control database migrated.
func (dm *devMode) serve(t *testing.T) *server {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{
		name:    "dev server",
		base:    "http://127.0.0.1:" + strconv.Itoa(port),
		logPath: filepath.Join(dm.logDir, "server-"+strconv.Itoa(port)+".log"),
		done:    make(chan struct{}),
		client:  &http.Client{Timeout: 30 * time.Second},
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(binPath)
	s.cmd.Env = append(dm.env, "LISTEN_ADDR=127.0.0.1:"+strconv.Itoa(port))
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = childAttr()
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := s.cmd.Wait()
		logFile.Close()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			s.code = exit.ExitCode()
		} else if err != nil {
			s.code = -2
		}
		close(s.done)
	}()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("--- last lines of the %s's log:\n%s", s.name, tail(s.logPath, 60))
		}
	})
	if !s.waitReady(2 * time.Minute) { // initdb on a busy machine
		t.Fatalf("the development server did not get ready:\n%s", tail(s.logPath, 40))
	}
	return s
}

// waitReady waits until /readyz answers 200, and reports whether it did
// within timeout (false at once if the process ended).
func (s *server) waitReady(timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !s.alive() {
			return false
		}
		if resp, err := s.client.Get(s.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
	}
	return false
}

// cli runs a CLI command with the development environment and returns its
// standard output; it fails the test unless the command exits 0.
func (dm *devMode) cli(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = dm.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tenantql %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// readmeCommands returns the CLI commands of the README's walk-through
// (the lines "go run . <args>" of its sh blocks), split into arguments as
// a shell would split these simple lines.
func readmeCommands(t *testing.T) [][]string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(raw), "\n## A walk-through in Playground\n")
	section, _, _ = strings.Cut(section, "\n## ")
	var commands [][]string
	for _, line := range strings.Split(section, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "go run . ")
		if !ok {
			continue
		}
		var args []string
		for i, part := range strings.Split(rest, "'") {
			if i%2 == 1 { // quoted
				args = append(args, part)
			} else {
				args = append(args, strings.Fields(part)...)
			}
		}
		commands = append(commands, args)
	}
	return commands
}

// The README's step 5, read from README.md, while the server serves:
// every command uses the server's cluster and leaves it running; the
// server keeps serving.
func TestDevCLIWhileServing(t *testing.T) {
	t.Parallel()
	dm := newDevMode(t)
	srv := dm.serve(t)
	pid := dm.postmaster(t)
	token := dm.adminToken(t)

	stillServing := func(after string) {
		t.Helper()
		if got := dm.postmaster(t); got != pid || !dm.postmasterRunning(t) {
			t.Fatalf("after %s: postmaster %d (running %t), want %d", after, got, dm.postmasterRunning(t), pid)
		}
		r := srv.mustGQL(t, "localhost", token, `{ tenants(first: 10) { edges { node { slug status } } } }`, nil)
		if !r.OK() {
			t.Fatalf("after %s the server answers HTTP %d: %s", after, r.Status, r.Raw)
		}
		if resp, err := srv.client.Get(srv.base + "/readyz"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("after %s: /readyz %v %v", after, resp, err)
		} else {
			resp.Body.Close()
		}
	}

	commands := readmeCommands(t)
	if len(commands) < 5 {
		t.Fatalf("read %d commands from the README's walk-through: did its layout change?", len(commands))
	}
	for _, args := range commands {
		what := strings.Join(args, " ")
		out := dm.cli(t, args...)
		if len(args) > 1 && args[0] == "tenants" && args[1] == "create" {
			// The server learns of the CLI's tenant and routes it.
			slug := strings.Fields(out)[1] // "creating <slug> ..."
			if !strings.Contains(out, slug+" is READY at http://"+slug+".localhost:8080/") {
				t.Fatalf("%s printed:\n%s", what, out)
			}
			// The CLI saw READY through the control database; the server's
			// routing table follows it a moment later (NOTIFY): until then
			// the host answers TENANT_NOT_READY, and nothing else.
			r := srv.mustGQL(t, slug+".localhost", "", `{ organization { slug } }`, nil)
			for deadline := time.Now().Add(5 * time.Second); r.Code() == "TENANT_NOT_READY" && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
				r = srv.mustGQL(t, slug+".localhost", "", `{ organization { slug } }`, nil)
			}
			if field(r.Data, "organization", "slug") != slug {
				t.Fatalf("%s through the server: %s", slug, r.Raw)
			}
		}
		stillServing(what)
	}
	if lines := logLines(srv.logPath, "stopping a postmaster", "postmaster is gone"); lines != "" {
		t.Fatalf("the server's cluster was disturbed:\n%s", lines)
	}

	// The server, the last user, stops the cluster when it stops.
	if code := srv.term(t); code != 0 {
		t.Fatalf("server exited %d after SIGTERM", code)
	}
	if dm.postmasterRunning(t) {
		t.Fatal("the cluster still runs after the server stopped")
	}
	// Alone, a command starts the cluster and stops it again.
	dm.cli(t, "tenants", "list")
	if dm.postmasterRunning(t) {
		t.Fatal("the cluster still runs after a command that started it")
	}
}

// The embedded cluster dies under a serving server: the server restarts
// it and serves again; when it cannot be restarted, the server exits with
// the reason instead of answering 503 for ever.
func TestDevServerWhenItsPostmasterDies(t *testing.T) {
	t.Parallel()
	dm := newDevMode(t)
	srv := dm.serve(t)
	token := dm.adminToken(t)
	old := dm.postmaster(t)
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r, err := srv.gql(context.Background(), "localhost", token, `{ tenants(first: 1) { edges { node { slug } } } }`, nil)
		if err == nil && r.OK() && dm.postmaster(t) != old {
			break
		}
		if !srv.alive() {
			t.Fatalf("the server exited (%d) instead of restarting its cluster", srv.code)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving 2 minutes after its postmaster was killed; last answer %v %v", r.Raw, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if lines := logLines(srv.logPath, "restarting the cluster"); lines == "" {
		t.Error("the server did not log the restart")
	}

	// Now a cluster that cannot start: the server gives up and says why.
	conf, err := os.OpenFile(filepath.Join(dm.dataDir, "postgres", "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conf.WriteString("\nthis line is not a setting\n"); err != nil {
		t.Fatal(err)
	}
	conf.Close()
	if err := syscall.Kill(dm.postmaster(t), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	code, ok := srv.waitExit(3 * time.Minute)
	if !ok {
		t.Fatal("the server still runs 3 minutes after its cluster became unstartable")
	}
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if lines := logLines(srv.logPath, "could not be restarted"); !strings.Contains(lines, "postgresql.conf") {
		t.Fatalf("the server did not say why it stopped:\n%s", tail(srv.logPath, 20))
	}
}
