package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/internal/pgtest"
)

// A tenant role may not connect to the control database (the server
// revokes PUBLIC's CONNECT and TEMPORARY there at start), nor to another
// tenant's database; doctor asks has_database_privilege for every tenant
// role, reports a privilege given back behind its back and --repair
// takes it away.
func TestTenantRolesReachOnlyTheirOwnDatabase(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "lp-a", false)
	ta.createTenant(t, "lp-b", false)
	a, _ := ta.superuserDB(t, "lp-a")
	b, _ := ta.superuserDB(t, "lp-b")
	dsn, err := ta.pools.TenantURL(a)
	if err != nil {
		t.Fatal(err)
	}
	cu, _ := url.Parse(ta.cfg.DatabaseURL)
	control := strings.TrimPrefix(cu.Path, "/")
	connect := func(db string) error {
		conn, err := sqlx.Open("postgres", pgtest.WithURLDatabase(dsn, db))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.Ping()
	}
	if err := connect(a.DBName); err != nil {
		t.Fatalf("the tenant role cannot reach its own database: %v", err)
	}
	for _, db := range []string{control, b.DBName} {
		err := connect(db)
		if pqErr, ok := err.(*pq.Error); !ok || pqErr.Code != "42501" {
			t.Fatalf("tenant role connecting to %s: %v, want insufficient_privilege", db, err)
		}
	}

	problems, err := ta.registry.Doctor(t.Context(), ta.pools, false)
	if err != nil || len(problems) != 0 {
		t.Fatalf("doctor before: %v %+v", err, problems)
	}
	if _, err := ta.super.Exec(`GRANT CONNECT, TEMPORARY ON DATABASE ` + pq.QuoteIdentifier(control) + ` TO PUBLIC`); err != nil {
		t.Fatal(err)
	}
	problems, err = ta.registry.Doctor(t.Context(), ta.pools, true)
	if err != nil {
		t.Fatal(err)
	}
	var stray int
	for _, p := range problems {
		if p.Kind == "stray-access" && strings.Contains(p.Detail, "CONNECT and TEMPORARY on database "+control) && p.Repaired {
			stray++
		}
	}
	if stray != 2 || len(problems) != 2 {
		t.Fatalf("doctor after a GRANT TO PUBLIC on the control database: %+v", problems)
	}
	if err := connect(control); err == nil {
		t.Fatal("the tenant role connects to the control database after doctor --repair")
	}
	if problems, err := ta.registry.Doctor(t.Context(), ta.pools, false); err != nil || len(problems) != 0 {
		t.Fatalf("doctor after repair: %v %+v", err, problems)
	}
}
