package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/tenancy"
)

// newReserveApp is a test app whose reserve (run by its workers, as in
// production) has built the template and SPARE_TENANTS spares.
func newReserveApp(t *testing.T, env map[string]string) *testApp {
	t.Helper()
	ta := newTestApp(t, env)
	ta.waitReserve(t, ta.cfg.SpareTenants)
	return ta
}

// waitReserve waits until the reserve of the default server has its
// template and spares ready spares, and nothing in between (the refill
// runs in the background, kicked after each claim; a surplus spare being
// dropped is seen as an orphan for a moment).
func (ta *testApp) waitReserve(t testing.TB, spares int) tenancy.ReserveStatus {
	t.Helper()
	return ta.waitServerReserve(t, tenancy.DefaultServer, spares)
}

// waitServerReserve is waitReserve on the database server named server.
func (ta *testApp) waitServerReserve(t testing.TB, server string, spares int) tenancy.ReserveStatus {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, problems, err := ta.reserve.CheckServer(context.Background(), server, false)
		if err == nil && st.TemplateReady && len(st.Spares) == spares && st.Pending == 0 && len(problems) == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("reserve of %s not ready with %d spares within 60s: %+v %v %v", server, spares, st, problems, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spareNames lists the spares ready to be claimed.
func (ta *testApp) spareNames(t testing.TB) []string {
	t.Helper()
	var names []string
	if err := ta.control.Select(&names, `SELECT name FROM spares WHERE state = 'READY' AND claimed_by IS NULL ORDER BY name`); err != nil {
		t.Fatal(err)
	}
	return names
}

// checkTenantDatabase asserts that the tenant's database belongs, objects
// included, to the tenant's own LOGIN role, and that PUBLIC cannot connect.
func (ta *testApp) checkTenantDatabase(t testing.TB, slug string) {
	t.Helper()
	ta.checkTenantDatabaseOn(t, ta.control, slug)
}

// checkTenantDatabaseOn is checkTenantDatabase on the tenant's database
// server, seen through db (a handle on that server).
func (ta *testApp) checkTenantDatabaseOn(t testing.TB, db *sqlx.DB, slug string) {
	t.Helper()
	tn, err := ta.registry.Get(context.Background(), slug)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Owner   string `db:"owner"`
		Login   bool   `db:"login"`
		Public  bool   `db:"public"`
		Foreign int    `db:"foreign"`
		Tables  int    `db:"tables"`
	}
	const q = `SELECT pg_get_userbyid(d.datdba) AS owner,
		(SELECT rolcanlogin FROM pg_roles WHERE rolname = $2) AS login,
		EXISTS (SELECT 1 FROM aclexplode(d.datacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') AS public,
		(SELECT count(*) FROM pg_shdepend s JOIN pg_roles r ON r.oid = s.refobjid
			WHERE s.dbid = d.oid AND s.deptype = 'o' AND r.rolname <> $2) AS foreign,
		(SELECT count(*) FROM pg_shdepend s WHERE s.dbid = d.oid AND s.deptype = 'o') AS tables
		FROM pg_database d WHERE d.datname = $1`
	if err := db.Get(&c, q, tn.DBName, tn.RoleName); err != nil {
		t.Fatal(err)
	}
	if c.Owner != tn.RoleName || !c.Login || c.Public || c.Foreign != 0 || c.Tables == 0 {
		t.Fatalf("tenant %s database: %+v (role %s)", slug, c, tn.RoleName)
	}
}

func TestSignUpClaimsSparesThenClonesTheTemplate(t *testing.T) {
	t.Parallel()
	ta := newReserveApp(t, map[string]string{"SPARE_TENANTS": "2"})
	ctx := context.Background()

	spares := ta.spareNames(t)
	if len(spares) != 2 {
		t.Fatalf("spares after refill: %v", spares)
	}
	st, _, err := ta.reserve.Check(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	tpl := st.Template
	var tplState struct {
		IsTemplate bool `db:"datistemplate"`
		AllowConn  bool `db:"datallowconn"`
		Owner      string
	}
	if err := ta.control.QueryRowx(`SELECT datistemplate, datallowconn, pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, tpl).
		Scan(&tplState.IsTemplate, &tplState.AllowConn, &tplState.Owner); err != nil {
		t.Fatal(err)
	}
	var controlRole string
	_ = ta.control.Get(&controlRole, `SELECT current_user`)
	if !tplState.IsTemplate || tplState.AllowConn || tplState.Owner != controlRole {
		t.Fatalf("template %s: %+v", tpl, tplState)
	}
	// `tenantql doctor` shows the template and the spares, and is content
	var out bytes.Buffer
	if err := ta.doctor(ctx, &out, false); err != nil || !strings.Contains(out.String(), tpl) ||
		!strings.Contains(out.String(), "2 spare database(s) ready") || !strings.Contains(out.String(), "ok:") {
		t.Fatalf("doctor: %v\n%s", err, out.String())
	}
	var logins int
	if err := ta.control.Get(&logins, `SELECT count(*) FROM pg_roles WHERE rolcanlogin AND (rolname = ANY($1) OR rolname = $2)`, spares, tpl); err != nil || logins != 0 {
		t.Fatalf("%d spare or template roles can log in (%v)", logins, err)
	}
	ta.checkDoctor(t, 2)

	// Spares are never routable: no tenant row names them, and a pool
	// refuses to open on a name that is not a tenant's.
	for _, s := range spares {
		if r := ta.do(t, s+".example.test", "", `{ __typename }`, nil); r.Status != 404 {
			t.Fatalf("spare %s host: HTTP %d", s, r.Status)
		}
		if _, err := ta.pools.DB(&tenancy.Tenant{ID: uuid.New(), DBName: s, RoleName: s}); err == nil {
			t.Fatalf("a pool opened on spare %s", s)
		}
	}

	// Two sign-ups take the two spares; the third takes a spare the
	// refill (kicked by each claim) has built meanwhile, or clones the
	// template: never template0 and the migrations.
	for i, slug := range []string{"spry-one", "spry-two", "spry-three"} {
		source := ta.signUpSource(t, func() { ta.createTenant(t, slug, false) })
		if i < 2 && source != "spare" || source != "spare" && source != "template" {
			t.Fatalf("sign-up %s made its database from %q", slug, source)
		}
		tok := ta.login(t, slug)
		mustOK(t, ta.do(t, slug+".example.test", tok, `{ viewer { email } }`, nil))
		ta.checkTenantDatabase(t, slug)
	}
	var gone int
	if err := ta.control.Get(&gone, `SELECT count(*) FROM pg_database WHERE datname = ANY($1)`, spares); err != nil || gone != 0 {
		t.Fatalf("%d claimed spare databases still under their spare names (%v)", gone, err)
	}
	problems, err := ta.registry.Doctor(ctx, ta.pools, false)
	if err != nil || len(problems) != 0 {
		t.Fatalf("doctor after sign-ups: %v %v", problems, err)
	}

	// the reserve refills by itself; a tenant made from a spare deletes cleanly
	ta.waitReserve(t, 2)
	ta.checkDoctor(t, 2)
	mustOK(t, ta.admin(t, `mutation { deleteTenant(slug: "spry-one") { tenant { status } } }`, nil))
	ta.waitStatus(t, "spry-one", "GONE")
	ta.checkDoctor(t, 2)
}

// signUpSource runs signUp, which must make one tenant database, and
// returns where that database came from ("spare", "template" or
// "template0"), as the server's metrics count it.
func (ta *testApp) signUpSource(t testing.TB, signUp func()) string {
	t.Helper()
	sources := []string{"spare", "template", "template0"}
	count := func() map[string]float64 {
		m := map[string]float64{}
		for _, s := range sources {
			m[s] = ta.metric(t, `tenantql_tenant_databases_created_total{source="`+s+`"}`)
		}
		return m
	}
	before := count()
	signUp()
	after := count()
	made := ""
	for _, s := range sources {
		switch after[s] - before[s] {
		case 0:
		case 1:
			if made != "" {
				t.Fatalf("one sign-up made databases from %s and %s", made, s)
			}
			made = s
		default:
			t.Fatalf("one sign-up made %v databases from %s", after[s]-before[s], s)
		}
	}
	if made == "" {
		t.Fatal("the sign-up made no database")
	}
	return made
}

// With no spare to claim (SPARE_TENANTS=0), a sign-up clones the template.
func TestSignUpWithoutSparesClonesTheTemplate(t *testing.T) {
	t.Parallel()
	ta := newReserveApp(t, map[string]string{"SPARE_TENANTS": "0"})
	if source := ta.signUpSource(t, func() { ta.createTenant(t, "tpl-only", false) }); source != "template" {
		t.Fatalf("the sign-up made its database from %q, want a clone of the template", source)
	}
	ta.checkTenantDatabase(t, "tpl-only")
	ta.owner(t, "tpl-only").must(t, `{ users { totalCount } }`, nil)
	ta.checkDoctor(t, 0)
}

// checkDoctor asserts that doctor and the reserve check find nothing and
// see the template and spares ready spares.
func (ta *testApp) checkDoctor(t testing.TB, spares int) {
	t.Helper()
	ctx := context.Background()
	problems, err := ta.registry.Doctor(ctx, ta.pools, false)
	if err != nil || len(problems) != 0 {
		t.Fatalf("doctor: %v %v", problems, err)
	}
	st, more, err := ta.reserve.Check(ctx, false)
	if err != nil || len(more) != 0 || !st.TemplateReady || len(st.Spares) != spares {
		t.Fatalf("reserve check: %+v %v %v", st, more, err)
	}
}

func TestSpareClaimIsFinishedAfterAFailure(t *testing.T) {
	t.Parallel()
	ta := newReserveApp(t, map[string]string{
		"SPARE_TENANTS": "1", "TENANTQL_FAILPOINT": "create.after-spare=error", "PROVISION_BACKOFF_MS": "10",
	})
	spares := ta.spareNames(t)
	if len(spares) != 1 {
		t.Fatalf("spares: %v", spares)
	}
	// every pass fails right after the claim: the first one claims and
	// renames, the following ones find the work done; FAILED in the end
	r := mustOK(t, ta.admin(t, createTenantMutation, map[string]any{"in": map[string]any{
		"organization": "Org cut", "slug": "cut",
		"owner": map[string]any{"email": "owner@cut.test", "name": "Owner", "password": "password-cut"},
	}}))
	_ = r
	ta.waitStatus(t, "cut", "FAILED")
	tn, err := ta.registry.Get(context.Background(), "cut")
	if err != nil {
		t.Fatal(err)
	}
	// the spare is the tenant's now: its database and role under the
	// tenant's names, nothing under the spare's name, no row for it
	var n int
	const q = `SELECT (SELECT count(*) FROM pg_database WHERE datname = $1) + (SELECT count(*) FROM pg_roles WHERE rolname = $1)
		+ 10 * ((SELECT count(*) FROM pg_database WHERE datname = $2) + (SELECT count(*) FROM pg_roles WHERE rolname = $2)
			+ (SELECT count(*) FROM spares WHERE name = $2))`
	if err := ta.control.Get(&n, q, tn.DBName, spares[0]); err != nil || n != 2 {
		t.Fatalf("after the cut claim: %d (want the tenant's database and role, and nothing of spare %s) (%v)", n, spares[0], err)
	}
	// deleting the FAILED tenant drops the claimed spare under its new names
	mustOK(t, ta.admin(t, `mutation { deleteTenant(slug: "cut") { tenant { status } } }`, nil))
	ta.waitStatus(t, "cut", "GONE")
	if err := ta.control.Get(&n, q, tn.DBName, spares[0]); err != nil || n != 0 {
		t.Fatalf("after deleting the tenant: %d of its database and role, or of spare %s, left (%v)", n, spares[0], err)
	}
}

func TestDoctorSeesSpareOrphans(t *testing.T) {
	t.Parallel()
	ta := newReserveApp(t, map[string]string{"SPARE_TENANTS": "1"})
	// no refill from here on: its collection drops orphans too, and this
	// test is about what doctor sees and repairs
	ta.stopWorkers()
	orphan := ta.prefix + "spare_0123456789abcdef"
	if _, err := ta.control.Exec(`CREATE ROLE "` + orphan + `" NOLOGIN`); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, problems, err := ta.reserve.Check(ctx, false)
	if err != nil || len(problems) != 1 || problems[0].Kind != "orphan-spare" || problems[0].Object != orphan {
		t.Fatalf("check: %v %v", problems, err)
	}
	if p, _ := ta.registry.Doctor(ctx, ta.pools, false); len(p) != 0 {
		t.Fatalf("tenant doctor counts reserve objects: %v", p)
	}
	_, problems, err = ta.reserve.Check(ctx, true)
	if err != nil || len(problems) != 1 || !problems[0].Repaired {
		t.Fatalf("repair: %v %v", problems, err)
	}
	// the repair dropped the orphan, and only it: the spare is still ready
	var left int
	if err := ta.control.Get(&left, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, orphan); err != nil || left != 0 {
		t.Fatalf("the repaired orphan role is still there (%d, %v)", left, err)
	}
	ta.checkDoctor(t, 1)
}

func TestLoweringSparesDropsTheSurplus(t *testing.T) {
	t.Parallel()
	ta := newReserveApp(t, map[string]string{"SPARE_TENANTS": "2"})
	// the same deployment restarted with SPARE_TENANTS=1: the first
	// process stops its workers, a second one starts on the control database
	ta.stopWorkers()
	cfg := ta.cfg
	cfg.SpareTenants = 1
	fewer := startTestApp(t, cfg, ta.prefix, false)
	fewer.waitReserve(t, 1)
	fewer.checkDoctor(t, 1)
}
