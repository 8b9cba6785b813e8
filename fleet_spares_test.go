package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/internal/pgtest"
)

// reserveObjectsOn lists this app's template and spare databases and
// roles on the cluster of db (as its superuser sees them).
func (ta *testApp) reserveObjectsOn(t testing.TB, db *sqlx.DB) []string {
	t.Helper()
	pattern := "^" + ta.prefix + "(tpl|spare)_"
	var names []string
	const q = `SELECT 'database ' || datname FROM pg_database WHERE datname ~ $1
		UNION ALL SELECT 'role ' || rolname FROM pg_roles WHERE rolname ~ $1 ORDER BY 1`
	if err := db.Select(&names, q, pattern); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestSparesPerServer: a database server added to the fleet gets its own
// template and spares (built there by the running reserve, with that
// server's non-superuser role); a tenant placed on it is made from its
// spare; it cannot be removed while a move targets it or tenants are on
// it; removing it then drops its template and spares, roles included, and
// their rows, and no later refill builds there again.
func TestSparesPerServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// every move fails after its first step, and is undone after 2 s
	ta := newReserveApp(t, map[string]string{
		"SPARE_TENANTS": "1", "TENANTQL_FAILPOINT": "move.after-role=error",
		"PROVISION_MAX_ATTEMPTS": "2", "PROVISION_BACKOFF_MS": "2000",
	})
	defaultSpares := ta.spareNames(t)
	b := pgtest.NewCluster(t)
	bSuper := openDB(t, b.SuperuserURL)
	added := time.Now()
	mustOK(t, ta.admin(t, addServerMutation, map[string]any{"in": map[string]any{"name": "b", "url": b.ServerURL}}))

	// prepared soon after being added (the add kicks the reserve, whose
	// next pass would otherwise come 30 s later): a template and a spare
	st := ta.waitServerReserve(t, "b", 1)
	if took := time.Since(added); took > 20*time.Second {
		t.Fatalf("b prepared %v after being added: the add did not kick the reserve", took)
	} else {
		t.Logf("b's template and spare ready %v after addDatabaseServer", took.Round(time.Millisecond))
	}
	var tpl struct {
		IsTemplate bool `db:"datistemplate"`
		AllowConn  bool `db:"datallowconn"`
	}
	if err := bSuper.Get(&tpl, `SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1`, st.Template); err != nil ||
		!tpl.IsTemplate || tpl.AllowConn {
		t.Fatalf("template %s on b: %+v (%v)", st.Template, tpl, err)
	}
	spareB := st.Spares[0]
	want := []string{"database " + spareB, "database " + st.Template, "role " + spareB, "role " + st.Template}
	if objs := ta.reserveObjectsOn(t, bSuper); strings.Join(objs, ",") != strings.Join(want, ",") {
		t.Fatalf("reserve objects on b: %v, want %v", objs, want)
	}
	var logins int
	if err := bSuper.Get(&logins, `SELECT count(*) FROM pg_roles WHERE rolcanlogin AND rolname IN ($1, $2)`, spareB, st.Template); err != nil || logins != 0 {
		t.Fatalf("%d of b's spare and template roles can log in (%v)", logins, err)
	}
	var server string
	if err := ta.control.Get(&server, `SELECT server FROM spares WHERE name = $1`, spareB); err != nil || server != "b" {
		t.Fatalf("spare %s recorded on %q (%v)", spareB, server, err)
	}
	var onDefault int
	if err := ta.super.Get(&onDefault, `SELECT count(*) FROM pg_database WHERE datname = $1`, spareB); err != nil || onDefault != 0 {
		t.Fatalf("b's spare %s is on the default server too (%d, %v)", spareB, onDefault, err)
	}

	// a tenant placed on b claims b's spare, not the default server's
	if source := ta.signUpSource(t, func() { createOn(t, ta, "spry-b", "b") }); source != "spare" {
		t.Fatalf("the sign-up on b made its database from %q", source)
	}
	var left int
	if err := bSuper.Get(&left, `SELECT count(*) FROM pg_database WHERE datname = $1`, spareB); err != nil || left != 0 {
		t.Fatalf("b's spare %s is still there after the sign-up (%d, %v)", spareB, left, err)
	}
	var stillDefault int
	if err := ta.control.Get(&stillDefault, `SELECT count(*) FROM spares WHERE name = ANY($1)`, defaultSpares); err != nil || stillDefault != len(defaultSpares) {
		t.Fatalf("a sign-up on b took a spare of the default server (%d of %v left, %v)", stillDefault, defaultSpares, err)
	}
	ta.checkTenantDatabaseOn(t, bSuper, "spry-b")
	ta.owner(t, "spry-b").must(t, `{ users { totalCount } }`, nil)

	// not removable while tenants are on it, nor while a tenant moves to it
	if r := ta.admin(t, `mutation { removeDatabaseServer(name: "b") }`, nil); r.Code() != "CONFLICT" || !strings.Contains(r.Raw, "tenant databases") {
		t.Fatalf("remove b while a tenant is on it: %s", r.Raw)
	}
	ta.waitServerReserve(t, "b", 1) // the refused removal dropped nothing; the claimed spare is replaced
	mustOK(t, ta.admin(t, `mutation { deleteTenant(slug: "spry-b") { tenant { status } } }`, nil))
	ta.waitStatus(t, "spry-b", "GONE")
	createOn(t, ta, "mover", "default")
	mustOK(t, ta.admin(t, moveMutation, map[string]any{"s": "mover", "to": "b"}))
	if r := ta.admin(t, `mutation { removeDatabaseServer(name: "b") }`, nil); r.Code() != "CONFLICT" || !strings.Contains(r.Raw, "moving") {
		t.Fatalf("remove b while a tenant moves there: %s", r.Raw)
	}
	mover := ta.waitStatus(t, "mover", "READY")
	if le, _ := mover["lastError"].(string); !strings.Contains(le, "move.after-role") || tenantServer(t, ta, "mover") != "default" {
		t.Fatalf("the move to b was not undone: %v", mover)
	}
	if r := mustOK(t, ta.admin(t, `mutation { removeDatabaseServer(name: "b") }`, nil)); field(r.Data, "removeDatabaseServer") != true {
		t.Fatalf("remove b once the move is undone and its tenant gone: %s", r.Raw)
	}

	// nothing of ours is left on b, nor in the control database
	if objs := ta.reserveObjectsOn(t, bSuper); len(objs) != 0 {
		t.Fatalf("left on b after its removal: %v", objs)
	}
	var rows int
	if err := ta.control.Get(&rows, `SELECT count(*) FROM spares WHERE server = 'b'`); err != nil || rows != 0 {
		t.Fatalf("%d spares rows of b left (%v)", rows, err)
	}
	// a refill after the removal builds nothing there
	if err := ta.reserve.Refill(ctx); err != nil {
		t.Fatal(err)
	}
	if objs := ta.reserveObjectsOn(t, bSuper); len(objs) != 0 {
		t.Fatalf("built on b after its removal: %v", objs)
	}
	ta.waitReserve(t, 1)
}

// TestDrainedServerGetsNoSpares: the reserve builds nothing on a DRAINING
// server (it takes no new tenants) and leaves an UNREACHABLE one alone; an
// ACTIVE one gets its template and spares, which doctor checks there.
func TestDrainedServerGetsNoSpares(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ta := newReserveApp(t, map[string]string{"SPARE_TENANTS": "1"})
	ta.stopWorkers() // the reserve refills when this test says so
	b := pgtest.NewCluster(t)
	bSuper := openDB(t, b.SuperuserURL)
	mustOK(t, ta.admin(t, addServerMutation, map[string]any{"in": map[string]any{"name": "b", "url": b.ServerURL}}))
	mustOK(t, ta.admin(t, `mutation { drainDatabaseServer(name: "b") { status } }`, nil))
	if err := ta.reserve.Refill(ctx); err != nil {
		t.Fatal(err)
	}
	if objs := ta.reserveObjectsOn(t, bSuper); len(objs) != 0 {
		t.Fatalf("built on a DRAINING server: %v", objs)
	}

	mustOK(t, ta.admin(t, `mutation { activateDatabaseServer(name: "b") { status } }`, nil))
	if err := ta.reserve.Refill(ctx); err != nil {
		t.Fatal(err)
	}
	st, problems, err := ta.reserve.CheckServer(ctx, "b", false)
	if err != nil || !st.TemplateReady || len(st.Spares) != 1 || len(problems) != 0 {
		t.Fatalf("b once ACTIVE: %+v %v %v", st, problems, err)
	}

	// `tenantql doctor` shows b's reserve, and sees and repairs an orphan there
	orphan := ta.prefix + "spare_0123456789abcdef"
	if _, err := bSuper.Exec(`CREATE ROLE "` + orphan + `" NOLOGIN`); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := ta.doctor(ctx, &out, false); err == nil || !strings.Contains(out.String(), "reserve on b: template "+st.Template) ||
		!strings.Contains(out.String(), "orphan-spare "+orphan+": spare-named object with no spares row [server b]") {
		t.Fatalf("doctor with an orphan on b: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := ta.doctor(ctx, &out, true); err != nil {
		t.Fatalf("doctor --repair: %v\n%s", err, out.String())
	}
	if objs := ta.reserveObjectsOn(t, bSuper); slices.Contains(objs, "role "+orphan) || len(objs) != 4 {
		t.Fatalf("on b after the repair: %v (want the template and the spare, without %s)", objs, orphan)
	}

	b.Stop()
	ta.servers.ProbeAll(ctx)
	if err := ta.reserve.Refill(ctx); err != nil {
		t.Fatalf("a refill with b UNREACHABLE: %v", err)
	}
}

// TestForceRemoveServerGoneForGood: a server that does not answer cannot
// be removed (its template and spares cannot be dropped) unless force,
// which forgets it and its spares' rows without reaching it; its
// template and spare stay on it. A server holding a tenant is refused even
// with force.
func TestForceRemoveServerGoneForGood(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ta := newReserveApp(t, map[string]string{"SPARE_TENANTS": "1"})
	gone, held := pgtest.NewCluster(t), pgtest.NewCluster(t)
	for name, c := range map[string]*pgtest.OwnCluster{"gone": gone, "held": held} {
		mustOK(t, ta.admin(t, addServerMutation, map[string]any{"in": map[string]any{"name": name, "url": c.ServerURL}}))
	}
	st := ta.waitServerReserve(t, "gone", 1)
	createOn(t, ta, "on-held", "held")
	for _, c := range []*pgtest.OwnCluster{gone, held} {
		if err := c.Down(); err != nil {
			t.Fatal(err)
		}
	}
	ta.servers.ProbeAll(ctx)

	const remove = `mutation($n: String!, $f: Boolean) { removeDatabaseServer(name: $n, force: $f) }`
	if r := ta.admin(t, remove, map[string]any{"n": "gone"}); r.Code() != "SERVICE_UNAVAILABLE" || !strings.Contains(r.Raw, "force") {
		t.Fatalf("remove a silent server: %s", r.Raw)
	}
	if r := ta.admin(t, remove, map[string]any{"n": "held", "f": true}); r.Code() != "CONFLICT" {
		t.Fatalf("force-remove a silent server holding a tenant: %s", r.Raw)
	}
	var out bytes.Buffer
	if err := ta.serversCLI(ctx, &out, []string{"remove", "gone", "--force"}); err != nil || out.String() != "gone removed\n" {
		t.Fatalf("servers remove gone --force: %v %q", err, out.String())
	}
	if r := mustOK(t, ta.admin(t, serversQuery, nil)); strings.Contains(r.Raw, `"name":"gone"`) || !strings.Contains(r.Raw, `"name":"held"`) {
		t.Fatalf("databaseServers after forgetting gone: %s", r.Raw)
	}
	var rows int
	if err := ta.control.Get(&rows, `SELECT count(*) FROM spares WHERE server = 'gone'`); err != nil || rows != 0 {
		t.Fatalf("%d spare rows of the forgotten server (%v)", rows, err)
	}
	// back after all: what was ours there is still there, left to the
	// operator, as documented
	upCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := gone.Up(upCtx); err != nil {
		t.Fatal(err)
	}
	left := ta.reserveObjectsOn(t, openDB(t, gone.SuperuserURL))
	if !slices.Contains(left, "database "+st.Template) {
		t.Fatalf("on the forgotten server after it came back: %v, want its template left", left)
	}
}
