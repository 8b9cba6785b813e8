package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
	migrate "github.com/rubenv/sql-migrate"

	"github.com/tenantql/tenantql/internal/pgtest"
	"github.com/tenantql/tenantql/migrations"
)

// TestDoctorAcrossTheFleet breaks a fleet of two servers behind
// tenantql's back: on the second server an orphan database and role (made
// by that cluster's superuser, with this deployment's prefix), a tenant
// whose database was dropped, a tenant whose database lost its latest
// migration; on the default server a copy of a second-server tenant's
// database. doctor reports each on its server (and nothing for the
// healthy fleet), --repair fixes the orphans and the version there and
// leaves the rest to a person, and with the second server stopped doctor
// reports it unreachable and still checks the default server.
func TestDoctorAcrossTheFleet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ta := newTestApp(t, nil)
	b := pgtest.NewCluster(t)
	bSuper := openDB(t, b.SuperuserURL)
	mustOK(t, ta.admin(t, addServerMutation, map[string]any{"in": map[string]any{"name": "b", "url": b.ServerURL}}))
	createOn(t, ta, "home", "default")
	for _, slug := range []string{"away", "gone", "old"} {
		createOn(t, ta, slug, "b")
	}
	doctorFinds(t, ta, false, nil)

	orphanDB, orphanRole := ta.prefix+randomHex(t), ta.prefix+randomHex(t)
	goneDB, oldDB, awayDB := tenantDBName(t, ta, "gone"), tenantDBName(t, ta, "old"), tenantDBName(t, ta, "away")
	// what a crashed provisioner leaves: owned by the server's role, so
	// that it may drop them
	serverRole := pq.QuoteIdentifier(mustParse(t, b.ServerURL).User.Username())
	for _, stmt := range []string{
		`CREATE DATABASE ` + pq.QuoteIdentifier(orphanDB) + ` OWNER ` + serverRole,
		`CREATE ROLE ` + pq.QuoteIdentifier(orphanRole) + ` LOGIN`,
		`DROP DATABASE ` + pq.QuoteIdentifier(goneDB) + ` WITH (FORCE)`,
	} {
		if _, err := bSuper.Exec(stmt); err != nil {
			t.Fatalf("on b: %s: %v", stmt, err)
		}
	}
	oldConn := openDB(t, pgtest.WithURLDatabase(b.SuperuserURL, oldDB))
	if n, err := migrations.TenantSet().ExecMax(oldConn.DB, "postgres", migrations.Tenant(), migrate.Down, 1); err != nil || n != 1 {
		t.Fatalf("roll back old's latest migration: %d %v", n, err)
	}
	oldConn.Close() // a superuser session must not outlive the change
	// a copy as a move leaves it: closed to PUBLIC
	for _, stmt := range []string{
		`CREATE DATABASE ` + pq.QuoteIdentifier(awayDB),
		`REVOKE ALL ON DATABASE ` + pq.QuoteIdentifier(awayDB) + ` FROM PUBLIC`,
	} {
		if _, err := ta.super.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}

	// the orphan database is open to PUBLIC (as after a crash right after
	// CREATE DATABASE): every tenant role of b may connect to it
	doctorFinds(t, ta, false, []string{
		"b orphan-database " + orphanDB,
		"b orphan-role " + orphanRole,
		"b missing-database gone",
		"b schema-version old",
		"b stray-access away",
		"b stray-access gone",
		"b stray-access old",
		"b stray-access " + orphanRole,
		"default wrong-server away",
	})
	var out bytes.Buffer
	var exit exitCode
	if err := ta.app.doctor(ctx, &out, false); !errors.As(err, &exit) || exit != 1 {
		t.Fatalf("tenantql doctor: %v, want exit 1", err)
	}
	for _, line := range []string{
		"orphan-database " + orphanDB + ": no tenant row owns it [server b]",
		"missing-database gone: " + goneDB + " does not exist [server b]",
		"wrong-server away: database " + awayDB + " is on default; the tenant's is on b [server default]",
		"9 problem(s)",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("tenantql doctor's output lacks %q:\n%s", line, out.String())
		}
	}

	// repaired on b: the orphans dropped (before the privileges are
	// checked: no stray access left), old migrated; a missing database and
	// a copy on the wrong server are a person's call
	doctorFinds(t, ta, true, []string{
		"b orphan-database " + orphanDB + " (repaired)",
		"b orphan-role " + orphanRole + " (repaired)",
		"b missing-database gone",
		"b schema-version old (repaired)",
		"default wrong-server away",
	})
	var left int
	if err := bSuper.Get(&left, `SELECT (SELECT count(*) FROM pg_database WHERE datname = $1) + (SELECT count(*) FROM pg_roles WHERE rolname = $2)`,
		orphanDB, orphanRole); err != nil || left != 0 {
		t.Fatalf("orphans left on b after --repair: %d %v", left, err)
	}
	if err := ta.super.Get(&left, `SELECT count(*) FROM pg_database WHERE datname = $1`, awayDB); err != nil || left != 1 {
		t.Fatalf("--repair touched the copy on the wrong server: %d %v", left, err)
	}
	doctorFinds(t, ta, false, []string{"b missing-database gone", "default wrong-server away"})
	mustOK(t, ta.owner(t, "old").do(t, `{ issues(first: 1) { totalCount } }`, nil))

	// b stopped: one problem for it, default still checked
	b.Stop()
	strayRole := ta.prefix + randomHex(t)
	if _, err := ta.super.Exec(`CREATE ROLE ` + pq.QuoteIdentifier(strayRole)); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	doctorFinds(t, ta, false, []string{"b unreachable b", "default orphan-role " + strayRole, "default wrong-server away"})
	t.Logf("doctor with b stopped: %v", time.Since(began))
}

// doctorFinds runs Doctor and compares its problems, as "server kind
// object" (and " (repaired)"), with want.
func doctorFinds(t *testing.T, ta *testApp, repair bool, want []string) {
	t.Helper()
	problems, err := ta.registry.Doctor(t.Context(), ta.pools, repair)
	if err != nil {
		t.Fatalf("doctor: %v", err)
	}
	got := make([]string, 0, len(problems))
	for _, p := range problems {
		s := p.Server + " " + p.Kind + " " + p.Object
		if p.Repaired {
			s += " (repaired)"
		}
		got = append(got, s)
	}
	sort.Strings(got)
	want = append([]string(nil), want...)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("doctor (repair %t) found\n%s\nwant\n%s\n%v", repair, strings.Join(got, "\n"), strings.Join(want, "\n"), problems)
	}
}

// randomHex is 32 random hex digits: a tenant-shaped name after a prefix.
func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestServerMetrics scrapes the per-server series: tenants placed on each
// database server, and a stopped server's failed probes and reachability.
func TestServerMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ta := newTestApp(t, nil)
	b := pgtest.NewCluster(t)
	mustOK(t, ta.admin(t, addServerMutation, map[string]any{"in": map[string]any{"name": "b", "url": b.ServerURL}}))
	createOn(t, ta, "one", "default")
	createOn(t, ta, "two", "b")
	createOn(t, ta, "three", "b")
	ta.servers.ProbeAll(ctx)
	wantSeries(t, ta, map[string]float64{
		`tenantql_database_server_tenants{server="default"}`:        1,
		`tenantql_database_server_tenants{server="b"}`:              2,
		`tenantql_database_server_reachable{server="default"}`:      1,
		`tenantql_database_server_reachable{server="b"}`:            1,
		`tenantql_database_server_probe_failures_total{server="b"}`: 0,
	})

	b.Stop()
	ta.servers.ProbeAll(ctx)
	failures := ta.metric(t, `tenantql_database_server_probe_failures_total{server="b"}`)
	if failures < 1 {
		t.Fatalf("probe failures of a stopped server: %v", failures)
	}
	ta.servers.ProbeAll(ctx)
	if got := ta.metric(t, `tenantql_database_server_probe_failures_total{server="b"}`); got < failures+1 {
		t.Fatalf("probe failures after one more probe: %v, was %v", got, failures)
	}
	wantSeries(t, ta, map[string]float64{
		`tenantql_database_server_tenants{server="b"}`:         2,
		`tenantql_database_server_reachable{server="b"}`:       0,
		`tenantql_database_server_reachable{server="default"}`: 1,
	})
}

// wantSeries scrapes each series, which must be there with its value.
func wantSeries(t *testing.T, ta *testApp, want map[string]float64) {
	t.Helper()
	for series, w := range want {
		if got, ok := ta.scrapeSeries(t, series); !ok || got != w {
			t.Errorf("/metrics: %s = %v (there: %t), want %v", series, got, ok, w)
		}
	}
}
