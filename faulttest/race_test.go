package faulttest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tenantql/tenantql/internal/pgtest"
	"github.com/tenantql/tenantql/migrations"
	"github.com/tenantql/tenantql/tenancy"
)

// TestFiftyConcurrentCreatesOneSlug: 50 createTenant calls for one slug
// give exactly one tenant and one database.
func TestFiftyConcurrentCreatesOneSlug(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, nil)
	s := d.start(t, nil)
	const n = 50
	codes := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := s.admin(context.Background(), createMutation, map[string]any{"in": map[string]any{
				"organization": fmt.Sprintf("Racer %d", i), "slug": "racer",
				"owner": map[string]any{"email": ownerEmail("racer"), "name": "O", "password": "password-racer"},
			}})
			codes[i], errs[i] = r.Code(), err
			if err == nil && r.Status != 200 {
				errs[i] = fmt.Errorf("HTTP %d %s", r.Status, r.Raw)
			}
		}()
	}
	close(start)
	wg.Wait()
	ok, conflict := 0, 0
	for i, c := range codes {
		switch {
		case errs[i] != nil:
			t.Errorf("request %d: %v", i, errs[i])
		case c == "":
			ok++
		case c == "CONFLICT":
			conflict++
		default:
			t.Errorf("request %d: code %s", i, c)
		}
	}
	if ok != 1 || conflict != n-1 {
		t.Fatalf("%d created, %d CONFLICT: want 1 and %d", ok, conflict, n-1)
	}
	s.waitStatus(t, "racer", "READY", 30*time.Second)
	if dbs, roles := d.objects(t); len(dbs) != 1 || len(roles) != 1 {
		t.Fatalf("databases %v, roles %v: want one of each", dbs, roles)
	}
	var rows int
	if err := d.control.Get(&rows, `SELECT count(*) FROM tenants`); err != nil || rows != 1 {
		t.Fatalf("tenant rows = %d (%v)", rows, err)
	}
	d.mustDoctorClean(t)
}

// TestCreateAndDeleteOfOneSlugRace fires createTenant and deleteTenant of
// the same slug together, the delete landing anywhere from before the
// create to the middle of provisioning, several rounds per slug. Every
// slug must settle (gone, or READY and then deletable) and doctor must
// find nothing.
func TestCreateAndDeleteOfOneSlugRace(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, nil)
	s := d.start(t, nil)
	ctx := context.Background()
	const slugs, rounds = 6, 3
	var wg sync.WaitGroup
	for i := range slugs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slug := fmt.Sprintf("race-%d", i)
			for round := range rounds {
				var cw sync.WaitGroup
				cw.Add(2)
				var cr, dr response
				var cerr, derr error
				go func() { defer cw.Done(); cr, cerr = s.createTenant(ctx, slug) }()
				go func() {
					defer cw.Done()
					time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
					dr, derr = s.platform(ctx, "deleteTenant", slug)
				}()
				cw.Wait()
				if cerr != nil || derr != nil {
					t.Errorf("%s round %d: create %v, delete %v", slug, round, cerr, derr)
					return
				}
				if c := cr.Code(); c != "" && c != "CONFLICT" {
					t.Errorf("%s round %d: create answered %s", slug, round, cr.Raw)
				}
				if c := dr.Code(); c != "" && c != "NOT_FOUND" {
					t.Errorf("%s round %d: delete answered %s", slug, round, dr.Raw)
				}
				// settle: gone, or READY (the delete came first) and then deleted
				deadline := time.Now().Add(30 * time.Second)
				for {
					st, _, err := s.status(ctx, slug)
					if err == nil && st == "READY" {
						s.mustPlatform(t, "deleteTenant", slug)
						continue
					}
					if err == nil && st == "GONE" {
						break
					}
					if err == nil && st == "FAILED" {
						t.Errorf("%s round %d: FAILED", slug, round)
						return
					}
					if time.Now().After(deadline) {
						t.Errorf("%s round %d: stuck in %s (%v)", slug, round, st, err)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if dbs, roles := d.objects(t); len(dbs)+len(roles) != 0 {
		t.Fatalf("left behind: %v %v", dbs, roles)
	}
	d.mustDoctorClean(t)
}

// TestConcurrentMigrationsSerialise: two processes' handles migrating
// one fresh tenant database at once take turns on the advisory lock:
// both succeed and every migration is applied exactly once.
func TestConcurrentMigrationsSerialise(t *testing.T) {
	t.Parallel()
	want, err := migrations.Tenant().FindMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		url := pgtest.NewDatabase(t)
		const migrators = 3
		applied := make([]int, migrators)
		errs := make([]error, migrators)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range migrators {
			db, err := sql.Open("postgres", url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				applied[i], errs[i] = tenancy.MigrateTenantDB(context.Background(), db)
			}()
		}
		close(start)
		wg.Wait()
		total := 0
		for i := range migrators {
			if errs[i] != nil {
				t.Fatalf("round %d: migrator %d: %v", round, i, errs[i])
			}
			total += applied[i]
		}
		if total != len(want) {
			t.Fatalf("round %d: %d migrations applied in all (%v), want %d", round, total, applied, len(want))
		}
		db, err := sql.Open("postgres", url)
		if err != nil {
			t.Fatal(err)
		}
		var rows, distinct int
		q := `SELECT count(*), count(DISTINCT id) FROM ` + migrations.TenantSet().TableName
		if err := db.QueryRow(q).Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if rows != len(want) || distinct != len(want) {
			t.Fatalf("round %d: %d rows, %d distinct in %s, want %d", round, rows, distinct, migrations.TenantSet().TableName, len(want))
		}
	}
}
