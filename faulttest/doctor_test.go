package faulttest

import (
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	migrate "github.com/rubenv/sql-migrate"

	"github.com/tenantql/tenantql/internal/pgtest"
	"github.com/tenantql/tenantql/migrations"
)

// TestDoctorFindsAndRepairs breaks a deployment by hand: an orphan
// database and role (this deployment's prefix), PUBLIC and another
// tenant's role allowed to connect, a tenant database missing its latest
// migration. doctor lists each and exits 1, --repair fixes them, and a
// second doctor exits 0. Objects of another prefix are left alone.
func TestDoctorFindsAndRepairs(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, nil)
	s := d.start(t, nil)
	s.createReady(t, "alpha")
	s.createReady(t, "beta")
	d.mustDoctorClean(t)

	alphaDB, alphaRole := d.tenantNames(t, "alpha")
	betaDB, betaRole := d.tenantNames(t, "beta")
	orphanDB := d.prefix + randomHex(16)
	orphanRole := d.prefix + randomHex(16)
	otherPrefix := "g" + randomHex(4) + "_"
	foreignDB, foreignRole := otherPrefix+randomHex(16), otherPrefix+randomHex(16)
	t.Cleanup(func() {
		_, _ = d.admin.Exec(`DROP DATABASE IF EXISTS ` + pq.QuoteIdentifier(foreignDB) + ` WITH (FORCE)`)
		_, _ = d.admin.Exec(`DROP ROLE IF EXISTS ` + pq.QuoteIdentifier(foreignRole))
	})
	// the orphans are what a crashed provisioner leaves: made by the
	// server's own (non-superuser) role, which may then drop them
	server, err := sqlx.Open("postgres", pgtest.WithURLDatabase(d.url, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	for _, stmt := range []string{
		`CREATE DATABASE ` + pq.QuoteIdentifier(orphanDB),
		`CREATE ROLE ` + pq.QuoteIdentifier(orphanRole) + ` LOGIN`,
	} {
		if _, err := server.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	for _, stmt := range []string{
		`CREATE DATABASE ` + pq.QuoteIdentifier(foreignDB),
		`CREATE ROLE ` + pq.QuoteIdentifier(foreignRole),
		`GRANT CONNECT ON DATABASE ` + pq.QuoteIdentifier(alphaDB) + ` TO PUBLIC`,
		`GRANT CONNECT ON DATABASE ` + pq.QuoteIdentifier(alphaDB) + ` TO ` + pq.QuoteIdentifier(betaRole),
	} {
		if _, err := d.admin.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	// beta's database loses its latest migration (rolled back by hand)
	betaConn, err := sqlx.Open("postgres", pgtest.WithURLDatabase(pgtest.AdminURL(t), betaDB))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := migrations.TenantSet().ExecMax(betaConn.DB, "postgres", migrations.Tenant(), migrate.Down, 1); err != nil || n != 1 {
		t.Fatalf("roll back beta's latest migration: %d %v", n, err)
	}
	betaConn.Close()

	code, out := d.doctor(t)
	if code != 1 {
		t.Fatalf("doctor exited %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{
		"orphan-database " + orphanDB,
		"orphan-role " + orphanRole,
		"public-connect alpha",
		"foreign-connect alpha: " + betaRole,
		"schema-version beta",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	for _, notWant := range []string{foreignDB, foreignRole} {
		if strings.Contains(out, notWant) {
			t.Errorf("doctor output mentions %q:\n%s", notWant, out)
		}
	}

	code, out = d.doctor(t, "--repair")
	if code != 0 || strings.Count(out, "(repaired)") != 5 {
		t.Fatalf("doctor --repair exited %d, want 0 with 5 repairs:\n%s", code, out)
	}
	d.mustDoctorClean(t)

	// the repairs did what they say, and nothing else
	dbs, roles := d.objects(t)
	if contains(dbs, orphanDB) || contains(roles, orphanRole) {
		t.Fatalf("orphans left: %v %v", dbs, roles)
	}
	var n int
	if err := d.admin.Get(&n, `SELECT count(*) FROM pg_database WHERE datname = $1`, foreignDB); err != nil || n != 1 {
		t.Fatalf("another deployment's database was touched: %d %v", n, err)
	}
	var may bool
	if err := d.admin.Get(&may, `SELECT has_database_privilege($1, $2, 'CONNECT')`, betaRole, alphaDB); err != nil || may {
		t.Fatalf("beta's role may still connect to alpha's database: %v %v", may, err)
	}
	if err := d.admin.Get(&may, `SELECT has_database_privilege($1, $2, 'CONNECT')`, alphaRole, alphaDB); err != nil || !may {
		t.Fatalf("alpha's role may not connect to its own database: %v %v", may, err)
	}
	s.viewerOK(t, "alpha", s.login(t, "alpha"))
	mustOK(t, s.mustGQL(t, tenantHost("beta"), "", `{ organization { slug } }`, nil))
}
