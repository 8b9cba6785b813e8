package pglocal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// procState is what a postmaster.pid's process id refers to now.
type procState int

const (
	procUnknown procState = iota // cannot tell: leave it to postgres
	procGone                     // no such process, a zombie, or another program
	procRunning                  // a live postgres working in this data directory
)

// orphanWait bounds how long clearStalePID waits for a dead postmaster's
// children to exit.
const orphanWait = 30 * time.Second

// readPostmasterPID returns the process id on the first line of
// dataDir/postmaster.pid. The error wraps fs.ErrNotExist when there is no
// such file.
func readPostmasterPID(dataDir string) (int, error) {
	pid, _, err := readPostmasterFile(dataDir)
	return pid, err
}

// readPostmasterFile returns the process id (first line) and the port
// (fourth line; 0 while the postmaster has not written it yet) of
// dataDir/postmaster.pid. The error wraps fs.ErrNotExist when there is no
// such file.
func readPostmasterFile(dataDir string) (pid, port int, err error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, 0, err
	}
	lines := strings.Split(string(b), "\n")
	pid, err = strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return 0, 0, fmt.Errorf("postmaster.pid: bad process id %q", lines[0])
	}
	if len(lines) > 3 {
		port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	return pid, port, nil
}

// postmaster returns the postmaster of the data directory and its port,
// and whether it is up: postmaster.pid names a process that is not gone.
// Outside Linux a postmaster.pid is taken at its word.
func (c *Cluster) postmaster() (pid, port int, up bool) {
	pid, port, err := readPostmasterFile(c.dataDir)
	if err != nil {
		return 0, 0, false
	}
	return pid, port, processState(pid, c.dataDir) != procGone
}

// clearStalePID prepares the data directory for a start. A postmaster
// running there is stopped, unless keepLive (a restart: pg_ctl restarts
// it); the caller has made sure that no live process uses it (see join). The postmaster.pid of one that died (kill -9) is removed once the
// dead cluster's processes have exited: postgres would otherwise refuse to
// start when that pid is now a zombie (its new parent has not reaped it
// yet) or another program's. The caller holds c.mu.
func (c *Cluster) clearStalePID(ctx context.Context, keepLive bool) error {
	// Twice: a postmaster can die while being stopped.
	for range 2 {
		pid, err := readPostmasterPID(c.dataDir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		switch processState(pid, c.dataDir) {
		case procUnknown:
			return nil
		case procRunning:
			if keepLive {
				return nil
			}
			c.log.Warn("pglocal: stopping a postmaster that no live process uses (left running by a crashed one)", "pid", pid)
			err := c.stop(ctx, "fast")
			if err == nil {
				return nil
			}
			if processState(pid, c.dataDir) == procRunning {
				return fmt.Errorf("stop the postmaster left running (pid %d): %w", pid, err)
			}
		case procGone:
			return c.removeStalePID(ctx, pid)
		}
	}
	return nil
}

// removeStalePID removes the postmaster.pid of dead postmaster pid once
// the processes it left in the data directory have exited.
func (c *Cluster) removeStalePID(ctx context.Context, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, orphanWait)
	defer cancel()
	for {
		left := processesIn(c.dataDir)
		if len(left) == 0 {
			break
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("processes %v of a dead postmaster (pid %d) still run in %s: %w", left, pid, c.dataDir, err)
		}
	}
	if err := os.Remove(filepath.Join(c.dataDir, "postmaster.pid")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale postmaster.pid: %w", err)
	}
	c.log.Warn("pglocal: removed the postmaster.pid of a dead postmaster", "pid", pid)
	return nil
}
