package pglocal

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// watchAttempts is how many restarts in a row Watch tries before it gives
// up.
const watchAttempts = 3

// errStopped ends Watch: this Cluster was stopped.
var errStopped = errors.New("pglocal: the cluster was stopped")

// Watch keeps the cluster running for a long-lived process (the
// development server): every interval it checks that the postmaster still
// runs and, when it died (killed, crashed) or was stopped behind this
// Cluster's back, restarts it on the same port, so that connection URLs
// taken from URL keep working.
//
// It returns nil when ctx ends or this Cluster is stopped, and an error
// when watchAttempts restarts in a row failed, or the cluster now listens
// on another port (started afresh by another process): the caller should
// then stop, as its connections no longer lead anywhere. Errors quote the
// last lines of postgres.log.
func (c *Cluster) Watch(ctx context.Context, interval time.Duration) error {
	failures := 0
	for {
		if sleep(ctx, interval) != nil {
			return nil
		}
		err := c.keepRunning(ctx)
		switch {
		case err == nil:
			failures = 0
			continue
		case ctx.Err() != nil, errors.Is(err, errStopped):
			return nil
		case errors.Is(err, errMoved):
			return err
		}
		failures++
		c.log.Warn("pglocal: restarting the cluster failed", "attempt", failures, "err", err)
		if failures == watchAttempts {
			return fmt.Errorf("pglocal: the cluster in %s stopped and could not be restarted (%d attempts): %w", c.dataDir, failures, err)
		}
	}
}

// errMoved is returned by keepRunning when the postmaster listens on
// another port than this Cluster's.
var errMoved = errors.New("pglocal: the cluster was restarted on another port")

// keepRunning restarts the postmaster, on c.port, when it is not running.
func (c *Cluster) keepRunning(ctx context.Context) error {
	port := c.Port()
	if _, now, up := c.postmaster(); up && now == port {
		return nil // the common case, without taking locks
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return errStopped
	}
	unlock, err := c.lockDataDir(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	// Again under the lock: another user may have restarted it meanwhile.
	pid, now, up := c.postmaster()
	if up {
		if now != c.port {
			return fmt.Errorf("%w: it listens on %d, not %d", errMoved, now, c.port)
		}
		return nil
	}
	c.log.Warn("pglocal: the postmaster is gone: restarting the cluster", "pid", pid, "port", c.port)
	began := time.Now()
	if err := c.restart(ctx); err != nil {
		return err
	}
	c.log.Info("pglocal: cluster restarted", "port", c.port, "took", time.Since(began).Round(time.Millisecond))
	return nil
}
