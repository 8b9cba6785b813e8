package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/tenancy"
)

// newReserveApp is a test app with spares whose reserve is filled once;
// the template is unmarked at the end so that the harness can drop it.
func newReserveApp(t *testing.T, env map[string]string) *testApp {
	t.Helper()
	ta := newTestApp(t, env)
	t.Cleanup(func() {
		var tpls []string
		_ = ta.control.Select(&tpls, `SELECT datname FROM pg_database WHERE datistemplate AND starts_with(datname, $1)`, ta.prefix)
		for _, d := range tpls {
			_, _ = ta.control.Exec(`ALTER DATABASE ` + pq.QuoteIdentifier(d) + ` WITH IS_TEMPLATE false`)
		}
	})
	if err := ta.reserve.Refill(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ta
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
	if err := ta.control.Get(&c, q, tn.DBName, tn.RoleName); err != nil {
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
	tpl := ta.reserve.TemplateName()
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

	// two sign-ups take the two spares, the third clones the template
	for i, slug := range []string{"spry-one", "spry-two", "spry-three"} {
		ta.createTenant(t, slug, false)
		tok := ta.login(t, slug)
		mustOK(t, ta.do(t, slug+".example.test", tok, `{ viewer { email } }`, nil))
		ta.checkTenantDatabase(t, slug)
		if left := ta.spareNames(t); len(left) != max(0, 1-i) {
			t.Fatalf("after %s: spares %v", slug, left)
		}
	}
	var gone int
	if err := ta.control.Get(&gone, `SELECT count(*) FROM pg_database WHERE datname = ANY($1)`, spares); err != nil || gone != 0 {
		t.Fatalf("%d claimed spare databases still under their spare names (%v)", gone, err)
	}
	problems, err := ta.registry.Doctor(ctx, ta.pools, false)
	if err != nil || len(problems) != 0 {
		t.Fatalf("doctor after sign-ups: %v %v", problems, err)
	}

	// the pool refills; a tenant made from a spare deletes cleanly
	if err := ta.reserve.Refill(ctx); err != nil {
		t.Fatal(err)
	}
	ta.checkDoctor(t, 2)
	mustOK(t, ta.admin(t, `mutation { deleteTenant(slug: "spry-one") { tenant { status } } }`, nil))
	ta.waitStatus(t, "spry-one", "GONE")
	ta.checkDoctor(t, 2)
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
	var n int
	if err := ta.control.Get(&n, `SELECT (SELECT count(*) FROM pg_database WHERE datname = $1) + (SELECT count(*) FROM pg_roles WHERE rolname = $1)
		+ (SELECT count(*) FROM spares)`, tn.DBName); err != nil || n != 2 {
		t.Fatalf("after the cut claim: %d of the tenant's database, role and no spare row (%v)", n, err)
	}
	if left := ta.spareNames(t); len(left) != 0 {
		t.Fatalf("spares left: %v", left)
	}
	// deleting the FAILED tenant drops the claimed spare under its new names
	mustOK(t, ta.admin(t, `mutation { deleteTenant(slug: "cut") { tenant { status } } }`, nil))
	ta.waitStatus(t, "cut", "GONE")
	var left int
	if err := ta.control.Get(&left, `SELECT count(*) FROM pg_database WHERE starts_with(datname, $1) AND NOT datistemplate`, ta.prefix); err != nil || left != 0 {
		t.Fatalf("%d databases left (%v)", left, err)
	}
}

func TestDoctorSeesSpareOrphans(t *testing.T) {
	t.Parallel()
	ta := newReserveApp(t, map[string]string{"SPARE_TENANTS": "1"})
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
	ta.checkDoctor(t, 1)
	if !strings.HasPrefix(orphan, ta.prefix) {
		t.Fatal("bad prefix")
	}
}

func TestLoweringSparesDropsTheSurplus(t *testing.T) {
	t.Parallel()
	ta := newReserveApp(t, map[string]string{"SPARE_TENANTS": "2"})
	if n := len(ta.spareNames(t)); n != 2 {
		t.Fatalf("%d spares", n)
	}
	// the same deployment restarted with SPARE_TENANTS=1
	fewer, err := tenancy.NewReserve(ta.control, tenancy.ReserveOptions{
		ServerURL: ta.controlURL, NamePrefix: ta.prefix, Template: true, Spares: 1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := fewer.Refill(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(ta.spareNames(t)); n != 1 {
		t.Fatalf("%d spares after lowering to 1", n)
	}
	ta.checkDoctor(t, 1)
}
