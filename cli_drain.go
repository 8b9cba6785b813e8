package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tenantql/tenantql/tenancy"
)

// settleWait bounds how long moving a tenant off a server waits for it to
// finish provisioning or another move first.
const settleWait = 5 * time.Minute

// moveAllOff moves every tenant off the (drained) server name, parallel
// at a time, each to the ACTIVE server placement chooses, with progress
// and a summary. A tenant that cannot move is reported and the others go
// on; it fails when any tenant is left on the server.
func (a *app) moveAllOff(ctx context.Context, out io.Writer, name string, parallel int) error {
	tenants, err := a.registry.OnServer(ctx, name)
	if err != nil {
		return err
	}
	stop := a.runProvisioner()
	defer stop()
	stopWatch := a.watchTenants()
	defer stopWatch()
	fmt.Fprintf(out, "moving %d tenant(s) off %s, %d at a time (each: queries served, mutations refused while it moves)\n",
		len(tenants), name, parallel)
	began := time.Now()
	bar := newProgress(out, len(tenants))
	var (
		mu       sync.Mutex
		moved    int
		failures []string
	)
	queue := make(chan string, len(tenants))
	for _, t := range tenants {
		queue <- t.Slug
	}
	close(queue)
	var wg sync.WaitGroup
	for range min(parallel, len(tenants)) {
		wg.Go(func() {
			for slug := range queue {
				if ctx.Err() != nil {
					return
				}
				start := time.Now()
				to, err := a.moveOff(ctx, slug, name)
				mu.Lock()
				if err != nil {
					failures = append(failures, fmt.Sprintf("%s: %v", slug, err))
					bar.step(fmt.Sprintf("%s: FAILED: %v", slug, err), true)
				} else {
					moved++
					bar.step(fmt.Sprintf("%s: on %s (%.1fs)", slug, to, time.Since(start).Seconds()), false)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	bar.finish()
	fmt.Fprintf(out, "%d of %d tenant(s) moved off %s, %d failed, in %.1fs\n", moved, len(tenants), name, len(failures), time.Since(began).Seconds())
	for _, f := range failures {
		fmt.Fprintln(out, "FAILED", f)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(failures) > 0 {
		return fmt.Errorf("%d tenant(s) could not be moved off %s", len(failures), name)
	}
	fmt.Fprintf(out, "%s holds no tenant: 'tenantql servers remove %s' removes it\n", name, name)
	return nil
}

// moveOff moves the tenant slug off the server from and returns where it
// is now. A tenant being provisioned or moved is waited for first (up to
// settleWait); one that is then elsewhere is done; one still on from is
// moved to the ACTIVE server placement chooses, which refuses any status
// but READY (SUSPENDED, DELETED, FAILED: the error says so).
func (a *app) moveOff(ctx context.Context, slug, from string) (string, error) {
	t, err := a.settled(ctx, slug)
	if err != nil {
		return "", err
	}
	if t.Server != from {
		return t.Server, nil
	}
	to, err := a.servers.Place(ctx, "")
	if err != nil {
		return "", err
	}
	return to, a.moveAndWait(ctx, slug, to, func(*tenancy.Tenant) {})
}

// settled waits until the tenant slug is neither PROVISIONING nor MOVING,
// at most settleWait, and returns it.
func (a *app) settled(ctx context.Context, slug string) (*tenancy.Tenant, error) {
	ctx, cancel := context.WithTimeout(ctx, settleWait)
	defer cancel()
	updates, unsubscribe := a.registry.SubscribeStatus(slug)
	defer unsubscribe()
	t, err := a.registry.Get(ctx, slug)
	if err != nil {
		return nil, err
	}
	err = a.follow(ctx, slug, updates, t, func(cur *tenancy.Tenant) (bool, error) {
		t = cur
		return cur.Status != tenancy.StatusProvisioning && cur.Status != tenancy.StatusMoving, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for %s, %s: %w", slug, t.Status, err)
	}
	return t, nil
}
