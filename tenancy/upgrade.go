package tenancy

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/migrations"
)

// MigrationResult is the outcome of migrating one tenant database.
type MigrationResult struct {
	Tenant  *Tenant
	Server  string // the database server holding the tenant's database
	Applied int    // migrations run; 0 when the database was current already
	Err     error
	Started time.Time
	Took    time.Duration
}

// MigrateOptions tune MigrateTenants.
type MigrateOptions struct {
	// PerServer is how many tenant databases of one database server are
	// migrated at once. Each server has workers of its own, so a slow
	// server never holds up the others. Defaults to 1.
	PerServer int
	// Progress, when set, is called after each tenant, one call at a
	// time; done counts from 1 to total.
	Progress func(done, total int, res MigrationResult)
}

// MigrateTenants brings the database of every READY or SUSPENDED tenant to
// the latest tenant migration, as each tenant's own role, and records the
// new schema version: the tenants of every database server at once,
// o.PerServer at a time on each. Failures are reported to o.Progress and
// do not stop the run; each tenant's step is logged as an event line (step
// "upgrade.migrate", with the number of migrations applied). It returns
// how many tenants failed, and ctx's error when it ended before every
// tenant was tried.
func (r *Registry) MigrateTenants(ctx context.Context, pools *Pools, o MigrateOptions) (int, error) {
	if err := r.Load(ctx); err != nil {
		return 0, err
	}
	version, err := migrations.LatestID(migrations.Tenant())
	if err != nil {
		return 0, err
	}
	byServer, total := r.migratableByServer()
	var (
		mu           sync.Mutex
		done, failed int
	)
	report := func(res MigrationResult) {
		mu.Lock()
		defer mu.Unlock()
		done++
		if res.Err != nil {
			failed++
		}
		if o.Progress != nil {
			o.Progress(done, total, res)
		}
	}
	var wg sync.WaitGroup
	for server, tenants := range byServer {
		queue := make(chan *Tenant, len(tenants))
		for _, t := range tenants {
			queue <- t
		}
		close(queue)
		for range min(max(o.PerServer, 1), len(tenants)) {
			wg.Go(func() {
				for t := range queue {
					if ctx.Err() != nil {
						return
					}
					report(r.migrateTenant(ctx, pools, t, server, version))
				}
			})
		}
	}
	wg.Wait()
	return failed, ctx.Err()
}

// migratableByServer returns the READY and SUSPENDED tenants of the
// routing table by database server, each server's by slug, and how many
// there are.
func (r *Registry) migratableByServer() (map[string][]*Tenant, int) {
	r.routes.mu.RLock()
	defer r.routes.mu.RUnlock()
	byServer := map[string][]*Tenant{}
	total := 0
	for _, t := range r.routes.byID {
		if t.Status == StatusReady || t.Status == StatusSuspended {
			server := t.Server
			if server == "" {
				server = DefaultServer
			}
			byServer[server] = append(byServer[server], t)
			total++
		}
	}
	for _, tenants := range byServer {
		sort.Slice(tenants, func(i, j int) bool { return tenants[i].Slug < tenants[j].Slug })
	}
	return byServer, total
}

// migrateTenant migrates one tenant database and records the step.
func (r *Registry) migrateTenant(ctx context.Context, pools *Pools, t *Tenant, server, version string) MigrationResult {
	res := MigrationResult{Tenant: t, Server: server, Started: time.Now()}
	res.Applied, res.Err = r.migrateOne(ctx, pools, t, version)
	res.Took = time.Since(res.Started)
	r.stepEvent(ctx, r.log, t, "upgrade.migrate", res.Started, res.Err, slog.Int("applied", res.Applied))
	return res
}

// migrateOne runs the pending migrations of t's database (under the
// database's own migration lock: another migrator of the same database
// waits, then finds nothing to do) and records the schema version.
func (r *Registry) migrateOne(ctx context.Context, pools *Pools, t *Tenant, version string) (int, error) {
	dsn, err := pools.TenantURL(t)
	if err != nil {
		return 0, err
	}
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return 0, fmt.Errorf("open tenant database: %w", err)
	}
	defer db.Close()
	n, err := MigrateTenantDB(ctx, db.DB)
	if err != nil {
		return n, err
	}
	const q = `UPDATE tenants SET schema_version = $2, updated_at = now() WHERE id = $1 AND schema_version <> $2`
	if _, err := r.db.ExecContext(ctx, q, t.ID, version); err != nil {
		return n, dbError("record schema version", err)
	}
	return n, nil
}
