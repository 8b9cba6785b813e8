package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	migrate "github.com/rubenv/sql-migrate"

	"github.com/tenantql/tenantql/internal/pgtest"
	"github.com/tenantql/tenantql/migrations"
)

// superuserOn returns a superuser connection to the database of slug on
// the cluster of superURL (for changes made behind the server's back),
// closed when the test ends.
func superuserOn(t testing.TB, ta *testApp, slug, superURL string) *sqlx.DB {
	t.Helper()
	tn, err := ta.registry.Get(context.Background(), slug)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlx.Open("postgres", pgtest.WithURLDatabase(superURL, tn.DBName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// migrateDownOne undoes the newest tenant migration of a tenant database
// and records the older version in the control database, as after an
// upgrade of tenantql whose new migration has not run yet.
func migrateDownOne(t testing.TB, ta *testApp, slug string, db *sqlx.DB) {
	t.Helper()
	if err := undoNewestMigration(ta, slug, db); err != nil {
		t.Fatal(err)
	}
}

// undoNewestMigration is migrateDownOne returning its error (for use off
// the test's goroutine).
func undoNewestMigration(ta *testApp, slug string, db *sqlx.DB) error {
	if _, err := migrations.TenantSet().ExecMax(db.DB, "postgres", migrations.Tenant(), migrate.Down, 1); err != nil {
		return fmt.Errorf("%s: one migration down: %w", slug, err)
	}
	var older string
	if err := db.Get(&older, `SELECT max(id) FROM `+migrations.TenantSet().TableName); err != nil {
		return fmt.Errorf("%s: %w", slug, err)
	}
	if _, err := ta.super.Exec(`UPDATE tenants SET schema_version = $1 WHERE slug = $2`, older, slug); err != nil {
		return fmt.Errorf("%s: %w", slug, err)
	}
	return nil
}

// schemaVersion is the tenant's schema version as the control database
// records it.
func schemaVersion(t testing.TB, ta *testApp, slug string) string {
	t.Helper()
	var v string
	if err := ta.super.Get(&v, `SELECT schema_version FROM tenants WHERE slug = $1`, slug); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCLIMigrateFleet: `tenantql migrate -p 2` migrates the tenant
// databases of two database servers at once. A tenant whose migration
// waits (its database's migration lock held) holds up neither the other
// server nor the other tenants of its own; a tenant whose migration
// fails is reported and the others are migrated; every other tenant ends
// at the newest migration (its database and the control database agree);
// the table counts each server's tenants.
func TestCLIMigrateFleet(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	b := pgtest.NewCluster(t)
	mustOK(t, ta.admin(t, addServerMutation, map[string]any{"in": map[string]any{"name": "b", "url": b.ServerURL}}))
	servers := map[string]string{"default": pgtest.AdminURL(t), "b": b.SuperuserURL}
	placed := map[string]string{"mig-a1": "default", "mig-a2": "default", "mig-a3": "default",
		"mig-b1": "b", "mig-b2": "b", "mig-b3": "b"}
	dbs := map[string]*sqlx.DB{}
	for slug, server := range placed {
		createOn(t, ta, slug, server)
		dbs[slug] = superuserOn(t, ta, slug, servers[server])
	}
	latest, err := migrations.LatestID(migrations.Tenant())
	if err != nil {
		t.Fatal(err)
	}
	// mig-a3 stays current; mig-b2's database forgets what it ran, so its
	// migration fails; every other one is one migration behind
	for slug, db := range dbs {
		switch slug {
		case "mig-a3":
		case "mig-b2":
			if _, err := db.Exec(`DELETE FROM tenant_migrations`); err != nil {
				t.Fatal(err)
			}
		default:
			migrateDownOne(t, ta, slug, db)
		}
	}
	// mig-b1's migration waits for its database's migration lock
	lock, err := dbs["mig-b1"].Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(context.Background(), `SELECT pg_advisory_lock(7305019001)`); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	var migrateErr error
	var wg sync.WaitGroup
	wg.Go(func() { migrateErr = ta.migrateAll(ctx, &out, 2) })
	// the others are migrated while mig-b1 waits, mig-b3 too (behind it on b)
	deadline := time.Now().Add(time.Minute)
	for _, slug := range []string{"mig-a1", "mig-a2", "mig-b3"} {
		for schemaVersion(t, ta, slug) != latest {
			if time.Now().After(deadline) {
				t.Fatalf("%s not migrated while mig-b1 waits for its lock", slug)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if v := schemaVersion(t, ta, "mig-b1"); v == latest {
		t.Fatal("mig-b1 migrated while its migration lock was held")
	}
	if _, err := lock.ExecContext(context.Background(), `SELECT pg_advisory_unlock(7305019001)`); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	if migrateErr == nil || !strings.Contains(migrateErr.Error(), "1 tenant database(s) failed") {
		t.Fatalf("migrate with a failing tenant: %v\n%s", migrateErr, out.String())
	}
	for _, want := range []string{
		`(?m)^SERVER\s+TENANTS\s+MIGRATED\s+CURRENT\s+FAILED\s+TIME$`,
		`(?m)^default\s+3\s+2\s+1\s+0\s+\d+\.\ds$`,
		`(?m)^b\s+3\s+2\s+0\s+1\s+\d+\.\ds$`,
		`(?m)^total\s+6\s+4\s+1\s+1\s+\d+\.\ds$`,
		`(?m)^FAILED mig-b2 \(b\): migrate: `,
		`(?m)^\[6/6\] `,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("output lacks %s:\n%s", want, out.String())
		}
	}
	for slug, db := range dbs {
		if slug == "mig-b2" {
			continue
		}
		var applied string
		if err := db.Get(&applied, `SELECT max(id) FROM tenant_migrations`); err != nil || applied != latest {
			t.Errorf("%s's database is at %q (%v), want %s", slug, applied, err, latest)
		}
		if v := schemaVersion(t, ta, slug); v != latest {
			t.Errorf("%s recorded at %q, want %s", slug, v, latest)
		}
	}
}

// BenchmarkMigrateFleet times `tenantql migrate -p N` (migrateAll) over
// 200 tenant databases, 100 on each of two PostgreSQL servers, each one
// migration behind: before each op (not timed) the newest tenant migration
// is undone in every database, as after an upgrade of tenantql that
// brings a new one; one op then migrates all 200. N is 1, 4 and 8; and
// "current" times a run with nothing to migrate (each database checked). It
// also reports the CPU time both PostgreSQL clusters (their backends, once
// ended) and this process spent per tenant.
func BenchmarkMigrateFleet(b *testing.B) {
	const tenants = 200
	ta := newTestApp(b, map[string]string{"RATE_LIMIT_RPS": "0"})
	second := pgtest.NewCluster(b)
	mustOK(b, ta.admin(b, addServerMutation, map[string]any{"in": map[string]any{"name": "b", "url": second.ServerURL}}))
	superURLs := map[string]string{"default": pgtest.AdminURL(b), "b": second.SuperuserURL}
	placed := map[string]string{}
	for i := range tenants {
		slug, server := fmt.Sprintf("fleet-%03d", i), []string{"default", "b"}[i%2]
		mustOK(b, ta.admin(b, createTenantMutation, map[string]any{"in": newTenantInput(slug, server)}))
		placed[slug] = server
	}
	for slug := range placed {
		ta.waitStatus(b, slug, "READY")
	}
	latest, err := migrations.LatestID(migrations.Tenant())
	if err != nil {
		b.Fatal(err)
	}
	for _, run := range []struct {
		name      string
		perServer int
		pending   bool // a migration to run in every database, or none
	}{{"p=1", 1, true}, {"p=4", 4, true}, {"p=8", 8, true}, {"current/p=4", 4, false}} {
		perServer := run.perServer
		b.Run(run.name, func(b *testing.B) {
			var pgCPU, selfCPU time.Duration
			for range b.N {
				b.StopTimer()
				if run.pending {
					if err := undoEverywhere(ta, placed, superURLs); err != nil {
						b.Fatal(err)
					}
				}
				pgBefore, selfBefore := clustersCPU(b, superURLs), processCPU(b)
				b.StartTimer()
				if err := ta.migrateAll(context.Background(), io.Discard, perServer); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				pgCPU += clustersCPU(b, superURLs) - pgBefore
				selfCPU += processCPU(b) - selfBefore
			}
			var behind int
			if err := ta.super.Get(&behind, `SELECT count(*) FROM tenants WHERE schema_version <> $1`, latest); err != nil || behind != 0 {
				b.Fatalf("after migrate: %d tenants behind (%v)", behind, err)
			}
			b.ReportMetric(float64(tenants)*float64(b.N)/b.Elapsed().Seconds(), "tenants/s")
			b.ReportMetric(float64(pgCPU.Milliseconds())/float64(tenants*b.N), "pg-cpu-ms/tenant")
			b.ReportMetric(float64(selfCPU.Milliseconds())/float64(tenants*b.N), "migrator-cpu-ms/tenant")
		})
	}
}

// undoEverywhere undoes the newest tenant migration of every tenant in
// placed (slug to server), eight at a time, as superURLs' superusers.
func undoEverywhere(ta *testApp, placed, superURLs map[string]string) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	slots := make(chan struct{}, 8)
	for slug, server := range placed {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			err := undoOn(ta, slug, superURLs[server])
			mu.Lock()
			first = cmp.Or(first, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	return first
}

// undoOn undoes the newest tenant migration of slug's database on the
// cluster of superURL.
func undoOn(ta *testApp, slug, superURL string) error {
	tn, err := ta.registry.Get(context.Background(), slug)
	if err != nil {
		return err
	}
	db, err := sqlx.Open("postgres", pgtest.WithURLDatabase(superURL, tn.DBName))
	if err != nil {
		return err
	}
	defer db.Close()
	return undoNewestMigration(ta, slug, db)
}

// clustersCPU returns the CPU time the postmasters of superURLs' clusters
// and their ended children (the backends) have used, from /proc (Linux;
// the clusters are local).
func clustersCPU(t testing.TB, superURLs map[string]string) time.Duration {
	t.Helper()
	var total time.Duration
	for _, u := range superURLs {
		db := openDB(t, u)
		var pidFile string
		err := db.Get(&pidFile, `SELECT pg_read_file('postmaster.pid')`)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		pid, _, _ := strings.Cut(pidFile, "\n")
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		// after the command's name: state is field 3, utime..cstime 14..17
		_, fields, _ := strings.Cut(string(stat), ") ")
		f := strings.Fields(fields)
		for _, ticks := range f[11:15] {
			n, err := strconv.ParseInt(ticks, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			total += time.Duration(n) * time.Second / 100 // USER_HZ
		}
	}
	return total
}

// processCPU returns the CPU time this process has used.
func processCPU(t testing.TB) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
