package pglocal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Processes share a data directory's cluster: a development server and
// the CLI commands run beside it use the same one. They agree through two
// flock(2) locks, which the kernel releases when a process dies, however
// it dies:
//
//   - the data directory itself, held exclusively while a process decides
//     and acts: initdb, start, attach, restart or stop;
//   - DataDir/pglocal.users, held shared by every process that uses the
//     cluster, from Start to Stop.
//
// A process that, holding the first lock, can lock the users file
// exclusively has no live company: it starts the cluster (stopping a
// postmaster a crashed process left running) or, at Stop, stops it.
// Otherwise it attaches to the running cluster at Start and leaves it
// running at Stop. So a cluster is started only when nobody uses it and
// stopped only by its last user.

// usersFile, inside the data directory, is locked shared by every process
// using the cluster.
const usersFile = "pglocal.users"

// lockPoll is how often a process waiting for the data directory's lock
// tries again.
const lockPoll = 20 * time.Millisecond

// lockDataDir takes the data directory's exclusive lock, waiting while
// another process holds it, until ctx ends. The returned function
// releases it.
func (c *Cluster) lockDataDir(ctx context.Context) (unlock func(), err error) {
	f, err := os.Open(c.dataDir)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	for {
		ok, err := flock(f, lockExclusive)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock the data directory: %w", err)
		}
		if ok {
			return func() {
				_, _ = flock(f, lockRelease)
				f.Close()
			}, nil
		}
		if err := sleep(ctx, lockPoll); err != nil {
			f.Close()
			return nil, fmt.Errorf("wait for another process starting or stopping the cluster: %w", err)
		}
	}
}

// join makes this process a user of the cluster and reports whether it is
// the only one. The caller holds c.mu and the data directory's lock.
func (c *Cluster) join() (alone bool, err error) {
	if c.users != nil {
		return false, fmt.Errorf("join the cluster's users: already one of them")
	}
	f, err := os.OpenFile(filepath.Join(c.dataDir, usersFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false, fmt.Errorf("join the cluster's users: %w", err)
	}
	alone, err = flock(f, lockExclusive)
	if err == nil {
		// Only a process holding the data directory's lock, as we do,
		// ever locks the users file exclusively: this cannot wait.
		var ok bool
		if ok, err = flock(f, lockShared); err == nil && !ok {
			err = fmt.Errorf("%s is locked exclusively by another process", f.Name())
		}
	}
	if err != nil {
		f.Close()
		return false, fmt.Errorf("join the cluster's users: %w", err)
	}
	c.users = f
	return alone, nil
}

// leave ends this process's use of the cluster and reports whether it was
// the last user. The caller holds c.mu and the data directory's lock.
func (c *Cluster) leave() (last bool) {
	if c.users == nil {
		return false
	}
	// A failed conversion may drop the shared lock first: we are leaving
	// anyway.
	last, err := flock(c.users, lockExclusive)
	c.users.Close()
	c.users = nil
	return last && err == nil
}

// attach takes the running cluster of the other users, on its port. When
// its postmaster died under them (killed, or stopped behind their back),
// it starts it again, on its last port when postmaster.pid still tells it,
// so that they find it where they left it. The caller holds c.mu and the
// data directory's lock.
func (c *Cluster) attach(ctx context.Context) error {
	pid, port, up := c.postmaster()
	if up && port == 0 {
		return fmt.Errorf("pglocal: attach to the running cluster: its postmaster.pid (process %d) names no port", pid)
	}
	if up {
		c.port = port
		if err := c.ping(ctx); err != nil {
			return fmt.Errorf("pglocal: attach to the running cluster (postmaster %d, port %d): %w", pid, port, err)
		}
		return nil
	}
	c.log.Warn("pglocal: the cluster's users are alive but its postmaster is not: starting it")
	if port > 0 {
		c.port = port
		if err := c.restart(ctx); err != nil {
			return fmt.Errorf("pglocal: start: %w", err)
		}
		return nil
	}
	return c.start(ctx)
}
