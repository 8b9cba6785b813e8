package pglocal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/lib/pq" // the "postgres" driver for the readiness check
)

const (
	// logFile, inside the data directory, receives the server's output.
	logFile = "postgres.log"
	// ctlTimeout is how long pg_ctl waits for a start or stop (-t).
	ctlTimeout = 60 * time.Second
	// startAttempts bounds retries of a start that failed for a passing
	// reason (a picked port taken meanwhile, a dead cluster's processes
	// still exiting).
	startAttempts = 5
	// logLines is how many lines of postgres.log an error quotes.
	logLines = 20
)

// start starts postgres (retrying passing failures) and checks that it
// answers. The caller holds c.mu.
func (c *Cluster) start(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		if err := c.clearStalePID(ctx, false); err != nil {
			return fmt.Errorf("pglocal: start: %w", err)
		}
		if !c.fixPort {
			port, err := freePort()
			if err != nil {
				return fmt.Errorf("pglocal: start: %w", err)
			}
			c.port = port
		}
		logTail, err := c.ctlWithLog(ctx, "start", "-o", c.serverOptions())
		if err == nil {
			break
		}
		c.abandon()
		passing := strings.Contains(logTail, "pre-existing shared memory block") ||
			!c.fixPort && strings.Contains(logTail, "could not bind")
		if !passing || attempt == startAttempts || ctx.Err() != nil {
			return fmt.Errorf("pglocal: start: %w", err)
		}
		c.log.Warn("pglocal: start failed, retrying", "attempt", attempt, "port", c.port)
		if err := sleep(ctx, time.Duration(attempt)*300*time.Millisecond); err != nil {
			return fmt.Errorf("pglocal: start: %w", err)
		}
	}
	if err := c.ping(ctx); err != nil {
		c.abandon()
		return fmt.Errorf("pglocal: start: %w", err)
	}
	return nil
}

// restart restarts (or starts) postgres on the same port and checks that
// it answers. The caller holds c.mu.
func (c *Cluster) restart(ctx context.Context) error {
	var err error
	// Twice: the postmaster may die (be killed) just as pg_ctl stops it.
	for range 2 {
		if err = c.clearStalePID(ctx, true); err != nil {
			break
		}
		args := []string{"restart", "-m", "fast"}
		if _, perr := readPostmasterPID(c.dataDir); errors.Is(perr, fs.ErrNotExist) {
			args = []string{"start"}
		}
		if _, err = c.ctlWithLog(ctx, args[0], append(args[1:], "-o", c.serverOptions())...); err == nil {
			break
		}
		if pid, perr := readPostmasterPID(c.dataDir); perr != nil || processState(pid, c.dataDir) != procGone {
			break // not a postmaster that died under pg_ctl
		}
	}
	if err == nil {
		err = c.ping(ctx)
	}
	if err != nil {
		c.abandon()
	}
	return err
}

// serverOptions returns the postgres command line pg_ctl -o passes (through
// a shell): settings given here override the configuration files.
func (c *Cluster) serverOptions() string {
	settings := []string{
		"listen_addresses=127.0.0.1",
		"port=" + strconv.Itoa(c.port),
		"max_connections=" + strconv.Itoa(c.maxConns),
		"unix_socket_directories=''", // TCP only: no socket path limits or clashes
		"password_encryption=scram-sha-256",
	}
	if c.fsyncOff {
		settings = append(settings, "fsync=off", "synchronous_commit=off", "full_page_writes=off")
	}
	return "-c " + strings.Join(settings, " -c ")
}

// ctlWithLog runs pg_ctl action, waiting, with the server's output going
// to postgres.log. On failure it returns the lines the server logged
// meanwhile too, and an error quoting pg_ctl's output and their last lines.
func (c *Cluster) ctlWithLog(ctx context.Context, action string, extra ...string) (logTail string, err error) {
	logPath := filepath.Join(c.dataDir, logFile)
	var offset int64
	if fi, err := os.Stat(logPath); err == nil {
		offset = fi.Size()
	}
	args := append([]string{action, "-D", c.dataDir, "-l", logPath, "-w", "-t", strconv.Itoa(int(ctlTimeout / time.Second))}, extra...)
	out, err := c.run(ctx, "pg_ctl", args...)
	if err == nil {
		return "", nil
	}
	logTail = readFrom(logPath, offset)
	return logTail, fmt.Errorf("%w\n%s\nlast lines of %s:\n%s", err, lastLines(string(out), 5), logPath, lastLines(logTail, logLines))
}

// stop runs pg_ctl stop -m mode unless no postmaster is running. Errors
// quote pg_ctl's output.
func (c *Cluster) stop(ctx context.Context, mode string) error {
	pid, err := readPostmasterPID(c.dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if processState(pid, c.dataDir) == procGone {
		c.log.Warn("pglocal: postmaster already gone", "pid", pid)
		return nil
	}
	out, err := c.run(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-m", mode, "-w", "-t", strconv.Itoa(int(ctlTimeout/time.Second)))
	if err != nil {
		return fmt.Errorf("%w\n%s", err, lastLines(string(out), 5))
	}
	return nil
}

// abandon shuts down, immediately, a postmaster a failed start may have
// left running. Errors are only logged: the start's error matters more.
func (c *Cluster) abandon() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.stop(ctx, "immediate"); err != nil {
		c.log.Warn("pglocal: cleaning up after a failed start", "error", err)
	}
}

// ping runs SELECT 1 as the superuser until it succeeds, for up to ten
// seconds or until ctx ends. The caller holds c.mu.
func (c *Cluster) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	db, err := sql.Open("postgres", c.urlFor("postgres", c.port))
	if err != nil {
		return fmt.Errorf("select 1: %w", err)
	}
	defer db.Close()
	for {
		var one int
		err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
		if err == nil {
			return nil
		}
		if serr := sleep(ctx, 100*time.Millisecond); serr != nil {
			return fmt.Errorf("select 1: %w", err)
		}
	}
}

// run runs a PostgreSQL program from c.binDir as c.acct, in the data
// directory's parent, and returns its combined output.
func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	cmd.Dir = filepath.Dir(c.dataDir)
	cmd.Env = c.acct.env()
	cmd.WaitDelay = 5 * time.Second
	c.acct.apply(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w", name, args[0], err)
	}
	return out, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// readFrom returns path's content from offset (at most its last 64 KiB),
// or "" when it cannot be read.
func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size()-offset > 64<<10 {
		offset = fi.Size() - 64<<10
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// lastLines returns the last n non-empty lines of s, indented.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// sleep waits for d or until ctx ends, returning ctx's error then.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
