package tenancy

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/migrations"
)

// MigrationResult is the outcome of migrating one tenant database.
type MigrationResult struct {
	Tenant  *Tenant
	Applied int
	Err     error
}

// MigrateTenants brings the database of every READY or SUSPENDED tenant to
// the latest tenant migration, one after another, as each tenant's own
// role, and records the new schema version. progress is called after each
// tenant (i counts from 1); failures are reported there and do not stop the
// run; each tenant's step is logged as an event line (step
// "upgrade.migrate", with the number of migrations applied). It returns
// how many tenants failed.
func (r *Registry) MigrateTenants(ctx context.Context, pools *Pools, progress func(i, n int, res MigrationResult)) (int, error) {
	if err := r.Load(ctx); err != nil {
		return 0, err
	}
	version, err := migrations.LatestID(migrations.Tenant())
	if err != nil {
		return 0, err
	}
	r.routes.mu.RLock()
	var todo []*Tenant
	for _, t := range r.routes.byID {
		if t.Status == StatusReady || t.Status == StatusSuspended {
			todo = append(todo, t)
		}
	}
	r.routes.mu.RUnlock()
	failed := 0
	for i, t := range todo {
		res := MigrationResult{Tenant: t}
		start := time.Now()
		res.Applied, res.Err = r.migrateOne(ctx, pools, t, version)
		r.stepEvent(ctx, r.log, t, "upgrade.migrate", start, res.Err, slog.Int("applied", res.Applied))
		if res.Err != nil {
			failed++
		}
		progress(i+1, len(todo), res)
	}
	return failed, nil
}

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
