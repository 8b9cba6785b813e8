// Package pglocal starts and stops a private PostgreSQL cluster on
// 127.0.0.1, for the server's development mode and for tests. Processes
// that Start on the same data directory share one cluster (see Start).
//
// It drives the installed initdb and pg_ctl (see FindBinDir). When the
// process runs as root, those programs (and so postgres) run as the
// "postgres" system user, which must exist and must be able to reach the
// data directory.
package pglocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Superuser is the name of the cluster's superuser role.
const Superuser = "postgres"

// defaultMaxConnections is used when Options.MaxConnections is 0.
const defaultMaxConnections = 300

// Options configure a local cluster.
type Options struct {
	// DataDir is the cluster's data directory. Required. It is created
	// (mode 0700, parents 0755) when missing and initialised with initdb
	// when it holds no cluster yet. When running as root, the postgres
	// user must be able to traverse every existing parent directory, so
	// paths under /root do not work.
	DataDir string
	// Port is the TCP port on 127.0.0.1. 0 picks a free one at every Start
	// (Restart keeps it). A cluster another process runs keeps its port.
	Port int
	// FsyncOff sets fsync=off, synchronous_commit=off and
	// full_page_writes=off, and runs initdb with --no-sync: fast, but a
	// machine crash may corrupt the cluster. For tests.
	FsyncOff bool
	// Logger receives start/stop events. nil: slog.Default(). The
	// superuser password and connection URLs are never logged.
	Logger *slog.Logger
	// MaxConnections is PostgreSQL's max_connections. 0: 300.
	MaxConnections int
}

// The options that shape a running postgres (Port, FsyncOff,
// MaxConnections) are those of the process that started it: a process
// that attaches to it gets the cluster as it runs.

// Cluster is a running (or stopped) local PostgreSQL cluster. Its methods
// are safe for concurrent use.
type Cluster struct {
	binDir   string
	dataDir  string
	password string
	fsyncOff bool
	maxConns int
	fixPort  bool // Options.Port was given: never pick another one
	acct     account
	log      *slog.Logger

	mu      sync.Mutex
	port    int
	running bool     // started or attached, and not stopped since
	users   *os.File // the users file, locked shared while running (share.go)
}

// Start initialises opts.DataDir with initdb when it holds no cluster yet
// (reusing it otherwise), then starts postgres with pg_ctl and waits until
// it accepts connections (pg_ctl start -w, then a SELECT 1 through
// lib/pq).
//
// Processes share a data directory's cluster: when another live process
// uses it (it called Start and not yet Stop), Start attaches to the
// running postgres instead, on its port, and the last process to Stop
// stops it. Only a postmaster no live process uses (left running by a
// crashed one) is stopped with pg_ctl stop -m fast and started afresh. A
// postmaster.pid left by a crashed postmaster (kill -9) does not prevent
// the start: Start waits for the dead cluster's remaining processes to go
// and removes the file; the same holds when the users are alive but their
// postmaster died, and then Start restarts it on its last port.
//
// The superuser is "postgres" with a random password generated at initdb
// and kept in DataDir/superuser.password (mode 0600); later Starts read it
// from there. The server log is DataDir/postgres.log.
//
// Start returns an error wrapping ErrNotInstalled when initdb/pg_ctl cannot
// be found, ErrDataDirUnreachable when running as root and the postgres
// user cannot reach DataDir, and otherwise errors that quote initdb's
// output or the last lines of postgres.log. Starting takes about 1.5 s when
// initdb runs (FsyncOff; more on a busy machine) and about 0.2 s on an
// existing cluster; attaching, a few milliseconds.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.DataDir == "" {
		return nil, errors.New("pglocal: start: Options.DataDir is required")
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("pglocal: start: invalid port %d", opts.Port)
	}
	if opts.MaxConnections < 0 {
		return nil, fmt.Errorf("pglocal: start: invalid MaxConnections %d", opts.MaxConnections)
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pglocal: start: data directory: %w", err)
	}
	binDir, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	acct, err := currentAccount()
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		binDir:   binDir,
		dataDir:  dataDir,
		fsyncOff: opts.FsyncOff,
		maxConns: opts.MaxConnections,
		fixPort:  opts.Port != 0,
		port:     opts.Port,
		acct:     acct,
		log:      opts.Logger,
	}
	if c.maxConns == 0 {
		c.maxConns = defaultMaxConnections
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("data_dir", dataDir)

	began := time.Now()
	if err := c.acct.checkReachable(c.dataDir); err != nil {
		return nil, err
	}
	if err := c.makeDataDir(); err != nil {
		return nil, err
	}
	unlock, err := c.lockDataDir(ctx)
	if err != nil {
		return nil, fmt.Errorf("pglocal: start: %w", err)
	}
	defer unlock()
	if err := c.prepareDataDir(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	alone, err := c.join()
	if err != nil {
		return nil, fmt.Errorf("pglocal: start: %w", err)
	}
	if alone {
		err = c.start(ctx)
	} else {
		err = c.attach(ctx)
	}
	if err != nil {
		c.leave()
		return nil, err
	}
	c.running = true
	if alone {
		c.log.Info("pglocal: cluster started", "port", c.port, "took", time.Since(began).Round(time.Millisecond))
	} else {
		c.log.Info("pglocal: using the cluster another process runs", "port", c.port)
	}
	return c, nil
}

// URL returns a superuser connection URL (lib/pq format, sslmode=disable)
// for database dbname on 127.0.0.1. It holds the password: do not log it.
func (c *Cluster) URL(dbname string) string {
	return c.urlFor(dbname, c.Port())
}

func (c *Cluster) urlFor(dbname string, port int) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(Superuser, c.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the cluster listens on (or last listened on).
func (c *Cluster) Port() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.port
}

// DataDir returns the absolute path of the cluster's data directory.
func (c *Cluster) DataDir() string { return c.dataDir }

// Stop stops the cluster with pg_ctl stop -m fast (disconnecting clients)
// and waits for it to exit, unless other processes still use it (see
// Start): then it leaves it running for them. It returns nil when this
// Cluster is not running, so it is safe to call twice, and also after the
// postmaster was killed.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running && c.users == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout+10*time.Second)
	defer cancel()
	unlock, err := c.lockDataDir(ctx)
	if err != nil {
		return fmt.Errorf("pglocal: stop: %w", err)
	}
	defer unlock()
	wasRunning := c.running
	c.running = false
	if !c.leave() {
		if wasRunning {
			c.log.Info("pglocal: leaving the cluster running: another process uses it")
		}
		return nil
	}
	if err := c.stop(ctx, "fast"); err != nil {
		return fmt.Errorf("pglocal: stop: %w", err)
	}
	c.log.Info("pglocal: cluster stopped")
	return nil
}

// Restart runs pg_ctl restart -m fast on the same port (used by fault
// tests: open connections break, and those of other processes using the
// cluster too), then waits until the cluster accepts connections again.
// When the postmaster is not running (stopped, or killed) it starts it
// instead. Errors quote the last lines of postgres.log.
func (c *Cluster) Restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	unlock, err := c.lockDataDir(ctx)
	if err != nil {
		return fmt.Errorf("pglocal: restart: %w", err)
	}
	defer unlock()
	if c.users == nil { // stopped: a user again
		if _, err := c.join(); err != nil {
			return fmt.Errorf("pglocal: restart: %w", err)
		}
	}
	if err := c.restart(ctx); err != nil {
		return fmt.Errorf("pglocal: restart: %w", err)
	}
	c.running = true
	c.log.Info("pglocal: cluster restarted", "port", c.port)
	return nil
}
