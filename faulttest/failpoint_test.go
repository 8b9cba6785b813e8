package faulttest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/internal/pgtest"
	"github.com/tenantql/tenantql/tenancy"
)

// TestCrashAtEveryBoundary kills the server (TENANTQL_FAILPOINT=<b>=exit)
// at every step boundary the lifecycle table lists, starts it again
// without the failpoint and checks that the tenant ends where the
// operation was heading, with no manual step, and that doctor is clean.
// A boundary added to tenancy's table gets its scenario here or fails.
// The lease is the default 60 s: the restarted server must take the dead
// process's job over at once (its presence lock is free), and the time
// from the restart to READY (or gone) is reported.
func TestCrashAtEveryBoundary(t *testing.T) {
	t.Parallel()
	boundaries := tenancy.Boundaries()
	if len(boundaries) < 13 {
		t.Fatalf("only %d boundaries: %v", len(boundaries), boundaries)
	}
	second := pgtest.NewCluster(t) // the target of moves: a second PostgreSQL server
	sem := make(chan struct{}, 5)  // servers at once
	var wg sync.WaitGroup
	var takeovers takeoverTimes
	for _, b := range boundaries {
		paths := []string{""}
		if strings.HasPrefix(b, "create.") {
			// a tenant database is a renamed spare, a clone of the
			// template, or made from template0 and migrated
			paths = []string{"spare", "template", "plain"}
		}
		for _, path := range paths {
			name := b
			if path != "" {
				name += "/" + path
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				t.Run(name, func(t *testing.T) { crashAt(t, b, path, &takeovers, second) })
			}()
		}
	}
	wg.Wait()
	takeovers.report(t)
}

// takeoverTimes collects how long restarted servers took to finish an
// interrupted create or delete.
type takeoverTimes struct {
	mu    sync.Mutex
	times []time.Duration
}

func (tt *takeoverTimes) add(d time.Duration) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tt.times = append(tt.times, d)
}

func (tt *takeoverTimes) report(t *testing.T) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if len(tt.times) == 0 {
		return
	}
	slices.Sort(tt.times)
	t.Logf("restart (server ready) -> job finished, %d interrupted jobs: median %v, max %v",
		len(tt.times), tt.times[len(tt.times)/2].Round(time.Millisecond), tt.times[len(tt.times)-1].Round(time.Millisecond))
}

// takeoverBound is how long a restarted server may take to finish an
// interrupted job: far below the 60 s lease, so a takeover that waited
// for the lease fails; above the 5 s target, for a loaded CI machine.
const takeoverBound = 20 * time.Second

// provisioningPaths are the environments that make createTenant take
// each way to a tenant database.
var provisioningPaths = map[string]map[string]string{
	"spare":    {"SPARE_TENANTS": "1", "TENANT_TEMPLATE": "true"},
	"template": {"SPARE_TENANTS": "0", "TENANT_TEMPLATE": "true"},
	"plain":    {"SPARE_TENANTS": "0", "TENANT_TEMPLATE": "false"},
}

const moveMutation = `mutation($s: String!, $to: String!) { moveTenant(slug: $s, toServer: $to) { status } }`

func crashAt(t *testing.T, boundary, path string, takeovers *takeoverTimes, second *pgtest.OwnCluster) {
	op, _, _ := strings.Cut(boundary, ".")
	slug := "crash-" + strings.NewReplacer(".", "-", "after-", "").Replace(boundary)
	env := map[string]string{"PROVISION_LEASE_SECONDS": "60"} // the default: takeover must not wait for it
	maps.Copy(env, provisioningPaths[path])
	if op == "retire" || op == "lock" || op == "restore" {
		env["DELETE_GRACE_HOURS"] = "72" // deleteTenant keeps the tenant DELETED
	}
	fp := boundary + "=exit"
	if op == "unmove" {
		// the move fails once, which undoes it (one attempt allowed)
		env["PROVISION_MAX_ATTEMPTS"] = "1"
		fp = "move.after-copy=error," + fp
	}
	d := newDeployment(t, env)
	s1 := d.start(t, map[string]string{"TENANTQL_FAILPOINT": fp})
	ctx := context.Background()
	var token string
	var spares []string
	// Drive the operation into the failpoint. The request's own answer
	// may be lost with the process: the outcome is checked afterwards.
	switch op {
	case "create":
		spares = d.waitReserve(t, path)
		_, _ = s1.createTenant(ctx, slug)
	case "delete":
		s1.createReady(t, slug)
		token = s1.login(t, slug)
		_, _ = s1.platform(ctx, "deleteTenant", slug)
	case "suspend":
		s1.createReady(t, slug)
		token = s1.login(t, slug)
		_, _ = s1.platform(ctx, "suspendTenant", slug)
	case "resume":
		s1.createReady(t, slug)
		token = s1.login(t, slug)
		s1.mustPlatform(t, "suspendTenant", slug)
		_, _ = s1.platform(ctx, "resumeTenant", slug)
	case "retire", "lock":
		s1.createReady(t, slug)
		token = s1.login(t, slug)
		_, _ = s1.platform(ctx, "deleteTenant", slug)
	case "restore":
		s1.createReady(t, slug)
		token = s1.login(t, slug)
		s1.mustPlatform(t, "deleteTenant", slug)
		_, _ = s1.platform(ctx, "restoreTenant", slug)
	case "move", "unmove":
		s1.createReady(t, slug)
		token = s1.login(t, slug)
		s1.addServer(t, "b", second.ServerURL) // after the tenant: placement would choose the empty b
		_, _ = s1.admin(ctx, moveMutation, map[string]any{"s": slug, "to": "b"})
	default:
		t.Fatalf("boundary %q: no crash scenario for operation %q: add one", boundary, op)
	}
	code, ok := s1.waitExit(30 * time.Second)
	if !ok {
		t.Fatalf("failpoint %s never fired", boundary)
	}
	if code != 3 {
		t.Fatalf("server exited %d at %s, want 3", code, boundary)
	}

	s2 := d.start(t, nil)
	restarted := time.Now()
	committed := strings.HasSuffix(boundary, ".after-status")
	switch op {
	case "create":
		s2.waitStatus(t, slug, "READY", takeoverBound)
		takeovers.add(time.Since(restarted))
		d.checkPath(t, path, spares)
		token = s2.login(t, slug)
		s2.viewerOK(t, slug, token)
	case "delete":
		s2.waitStatus(t, slug, "GONE", takeoverBound)
		takeovers.add(time.Since(restarted))
		if dbs, roles := d.objects(t); len(dbs)+len(roles) != 0 {
			t.Fatalf("left after delete: %v %v", dbs, roles)
		}
		if r := s2.mustGQL(t, tenantHost(slug), token, markerQuery, nil); r.Status != 404 || r.Code() != "TENANT_NOT_FOUND" {
			t.Fatalf("deleted tenant answered HTTP %d %s", r.Status, r.Raw)
		}
	case "suspend":
		want := map[bool]string{false: "READY", true: "SUSPENDED"}[committed]
		s2.waitStatus(t, slug, want, 10*time.Second)
		s2.mustPlatform(t, "suspendTenant", slug) // the client's retry: converges either way
		s2.waitStatus(t, slug, "SUSPENDED", 10*time.Second)
		if r := s2.mustGQL(t, tenantHost(slug), token, markerQuery, nil); r.Status != 403 || r.Code() != "TENANT_SUSPENDED" {
			t.Fatalf("suspended tenant answered HTTP %d %s", r.Status, r.Raw)
		}
		s2.mustPlatform(t, "resumeTenant", slug)
		s2.viewerOK(t, slug, token)
	case "resume":
		want := map[bool]string{false: "SUSPENDED", true: "READY"}[committed]
		s2.waitStatus(t, slug, want, 10*time.Second)
		s2.mustPlatform(t, "resumeTenant", slug)
		s2.waitStatus(t, slug, "READY", 10*time.Second)
		s2.viewerOK(t, slug, token)
	case "retire", "lock":
		if op == "retire" && !committed {
			s2.waitStatus(t, slug, "READY", 10*time.Second)
			s2.mustPlatform(t, "deleteTenant", slug) // the client's retry
		}
		s2.waitStatus(t, slug, "DELETED", 10*time.Second)
		d.waitUnreachable(t, slug, takeoverBound)
		takeovers.add(time.Since(restarted))
		if r := s2.mustGQL(t, tenantHost(slug), token, markerQuery, nil); r.Status != 404 || r.Code() != "TENANT_NOT_FOUND" {
			t.Fatalf("DELETED tenant answered HTTP %d %s", r.Status, r.Raw)
		}
		s2.mustPlatform(t, "restoreTenant", slug)
		s2.waitStatus(t, slug, "READY", takeoverBound)
		s2.viewerOK(t, slug, s2.login(t, slug))
	case "restore":
		if !committed {
			s2.waitStatus(t, slug, "DELETED", 10*time.Second)
			s2.mustPlatform(t, "restoreTenant", slug) // the client's retry
		}
		s2.waitStatus(t, slug, "READY", takeoverBound)
		takeovers.add(time.Since(restarted))
		s2.viewerOK(t, slug, s2.login(t, slug))
	case "move", "unmove":
		// READY on exactly one server: b when moved, default when undone
		s2.waitStatus(t, slug, "READY", takeoverBound)
		takeovers.add(time.Since(restarted))
		want := map[string]string{"move": "b", "unmove": "default"}[op]
		r := mustOK(t, must(s2.admin(ctx, `query($s: String!) { tenant(slug: $s) { databaseServer } }`, map[string]any{"s": slug})))
		if got := field(r.Data, "tenant", "databaseServer"); got != want {
			t.Fatalf("after the %s: on %v, want %s", op, got, want)
		}
		dbs, roles := d.objects(t)
		bDBs, bRoles := d.objectsOn(t, second)
		got := fmt.Sprintf("default %d+%d, b %d+%d", len(dbs), len(roles), bDBs, bRoles)
		if wantObjects := map[string]string{"b": "default 0+0, b 1+1", "default": "default 1+1, b 0+0"}[want]; got != wantObjects {
			t.Fatalf("after the %s: databases+roles %s, want %s", op, got, wantObjects)
		}
		s2.viewerOK(t, slug, token) // tokens survive a move
		mustOK(t, s2.mustGQL(t, tenantHost(slug), token, `mutation { createProject(input: { key: "MOV", name: "Moved" }) { key } }`, nil))
	}
	d.mustDoctorClean(t)
}

// TestFailingStepRetriesThenFails injects an error (not a crash) at a
// create boundary: the provisioner retries with backoff, marks the tenant
// FAILED with lastError after PROVISION_MAX_ATTEMPTS, retryTenant starts
// it again, and deleting a FAILED tenant removes what it had.
func TestFailingStepRetriesThenFails(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, map[string]string{"PROVISION_MAX_ATTEMPTS": "3", "PROVISION_BACKOFF_MS": "100"})
	s1 := d.start(t, map[string]string{"TENANTQL_FAILPOINT": "create.after-privileges=error"})
	ctx := context.Background()

	began := time.Now()
	mustOK(t, must(s1.createTenant(ctx, "flaky")))
	lastError := s1.waitStatus(t, "flaky", "FAILED", 30*time.Second)
	// two backoffs (100ms, 200ms) lie between the three attempts
	if took := time.Since(began); took < 300*time.Millisecond {
		t.Fatalf("three attempts took %s: no backoff", took)
	}
	if !strings.Contains(lastError, "create.after-privileges failed: injected fault") || !strings.Contains(lastError, "attempt 3 of 3") {
		t.Fatalf("lastError = %q", lastError)
	}
	// a FAILED tenant is not served
	if r := s1.mustGQL(t, tenantHost("flaky"), "", markerQuery, nil); r.Status != 503 || r.Code() != "TENANT_NOT_READY" {
		t.Fatalf("FAILED tenant answered HTTP %d %s", r.Status, r.Raw)
	}

	// retryTenant starts over, with a fresh count of attempts: three more
	// attempts (two backoffs), ending FAILED again with a newer lastError
	// (the old one already says "attempt 3 of 3": a retry that did
	// nothing would look the same without the times)
	failedAt := s1.updatedAt(t, "flaky")
	began = time.Now()
	r := mustOK(t, must(s1.platform(ctx, "retryTenant", "flaky")))
	if st := field(r.Data, "retryTenant", "status"); st != "PROVISIONING" {
		t.Fatalf("status after retry = %v, want PROVISIONING", st)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, le, err := s1.status(ctx, "flaky")
		if err == nil && st == "FAILED" && s1.updatedAt(t, "flaky").After(failedAt) {
			if !strings.Contains(le, "attempt 3 of 3") {
				t.Fatalf("lastError after retry = %q", le)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not FAILED again within 30s of retryTenant: %s %q %v", st, le, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if took := time.Since(began); took < 300*time.Millisecond {
		t.Fatalf("three attempts after the retry took %s: no backoff, or no fresh count", took)
	}

	// deleting a FAILED tenant cleans what it had (its role and database)
	mustOK(t, must(s1.createTenant(ctx, "doomed")))
	s1.waitStatus(t, "doomed", "FAILED", 30*time.Second)
	doomedDB, doomedRole := d.tenantNames(t, "doomed")
	if dbs, roles := d.objects(t); !contains(dbs, doomedDB) || !contains(roles, doomedRole) {
		t.Fatalf("FAILED tenant should have its database and role: %v %v", dbs, roles)
	}
	s1.mustPlatform(t, "deleteTenant", "doomed")
	s1.waitStatus(t, "doomed", "GONE", 30*time.Second)
	if dbs, roles := d.objects(t); contains(dbs, doomedDB) || contains(roles, doomedRole) {
		t.Fatalf("deleted FAILED tenant left %v %v", dbs, roles)
	}

	// once the fault is gone, retryTenant brings it to READY
	if code := s1.term(t); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	s2 := d.start(t, nil)
	s2.mustPlatform(t, "retryTenant", "flaky")
	s2.waitStatus(t, "flaky", "READY", 30*time.Second)
	s2.viewerOK(t, "flaky", s2.login(t, "flaky"))
	d.mustDoctorClean(t)
}

// TestCrashLoopEndsFailed: a step that kills its process every time (a
// poison pill) must not be retried for ever: every take-over of a dead
// worker's lease counts as an attempt.
func TestCrashLoopEndsFailed(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, map[string]string{"PROVISION_MAX_ATTEMPTS": "2"})
	fp := map[string]string{"TENANTQL_FAILPOINT": "create.after-role=exit"}
	s := d.start(t, fp)
	_, _ = s.createTenant(context.Background(), "poison")
	for i := range 2 {
		if code, ok := s.waitExit(30 * time.Second); !ok || code != 3 {
			t.Fatalf("run %d: exit %d (exited %v), want 3", i+1, code, ok)
		}
		// the next run may take the job over (and crash) before it serves
		var err error
		if s, err = d.startErr(fp); err != nil && !errors.Is(err, errExitedEarly) {
			t.Fatalf("start run %d: %v", i+2, err)
		}
	}
	if code, exited := s.waitExit(0); exited {
		t.Fatalf("run 3 exited with %d; want it to serve and give up on the tenant", code)
	}
	le := s.waitStatus(t, "poison", "FAILED", 30*time.Second)
	if !strings.Contains(le, "interrupted") {
		t.Fatalf("lastError = %q", le)
	}
	if code, exited := s.waitExit(0); exited { // and it did not take the job once more
		t.Fatalf("run 3 exited with %d after the tenant FAILED", code)
	}
	s.mustPlatform(t, "deleteTenant", "poison")
	s.waitStatus(t, "poison", "GONE", 30*time.Second)
	d.mustDoctorClean(t)
}

// updatedAt returns the tenant's updatedAt as the platform API reports it.
func (s *server) updatedAt(t testing.TB, slug string) time.Time {
	t.Helper()
	r := mustOK(t, s.mustGQL(t, baseDomain, adminToken, `query($s: String!) { tenant(slug: $s) { updatedAt } }`, map[string]any{"s": slug}))
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(field(r.Data, "tenant", "updatedAt")))
	if err != nil {
		t.Fatalf("tenant %s updatedAt: %v (%s)", slug, err, r.Raw)
	}
	return at
}

func must(r response, err error) response {
	if err != nil {
		return response{Raw: "request failed: " + err.Error()}
	}
	return r
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// waitReserve waits until the deployment's reserve can serve path: a
// spare ready to claim (their names are returned), or the template built.
func (d *deployment) waitReserve(t testing.TB, path string) []string {
	t.Helper()
	if path != "spare" && path != "template" {
		return nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var names []string
		var err error
		if path == "template" {
			err = d.admin.Select(&names, `SELECT datname FROM pg_database WHERE datname ~ $1 AND datistemplate`, "^"+d.prefix+"tpl_")
		} else {
			err = d.control.Select(&names, `SELECT name FROM spares WHERE state = 'READY' AND claimed_by IS NULL`)
		}
		if err == nil && len(names) > 0 {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("reserve not ready for the %s path within 60s (%v)", path, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkPath checks that a tenant created on the spare path took one of
// the spares (so that the test does not quietly test another path).
func (d *deployment) checkPath(t testing.TB, path string, spares []string) {
	t.Helper()
	if path != "spare" {
		return
	}
	var still int
	if err := d.admin.Get(&still, `SELECT count(*) FROM pg_database WHERE datname = ANY($1)`, pq.StringArray(spares)); err != nil {
		t.Fatal(err)
	}
	if still == len(spares) {
		t.Fatalf("the tenant took none of the spares %v", spares)
	}
}

// waitUnreachable waits until the DELETED tenant slug's role may not log
// in and its database refuses connections, both still there.
func (d *deployment) waitUnreachable(t testing.TB, slug string, timeout time.Duration) {
	t.Helper()
	dbName, roleName := d.tenantNames(t, slug)
	deadline := time.Now().Add(timeout)
	for {
		var canLogin, allowConn bool
		const q = `SELECT r.rolcanlogin, d.datallowconn FROM pg_roles r, pg_database d WHERE r.rolname = $1 AND d.datname = $2`
		if err := d.control.QueryRow(q, roleName, dbName).Scan(&canLogin, &allowConn); err != nil {
			t.Fatalf("the DELETED tenant's role and database: %v", err)
		}
		if !canLogin && !allowConn {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the DELETED tenant's database is still reachable (login %v, connections %v)", canLogin, allowConn)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// addServer adds the database server name at url, failing the test
// unless it is added.
func (s *server) addServer(t testing.TB, name, url string) {
	t.Helper()
	mustOK(t, must(s.admin(context.Background(), `mutation($in: AddDatabaseServerInput!) { addDatabaseServer(input: $in) { name } }`,
		map[string]any{"in": map[string]any{"name": name, "url": url}})))
}

// objectsOn counts the deployment's tenant databases and roles on another
// PostgreSQL server (as its superuser).
func (d *deployment) objectsOn(t testing.TB, c *pgtest.OwnCluster) (dbs, roles int) {
	t.Helper()
	db, err := sqlx.Open("postgres", c.SuperuserURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pattern := "^" + d.prefix + "[0-9a-f]{32}$"
	if err := db.Get(&dbs, `SELECT count(*) FROM pg_database WHERE datname ~ $1`, pattern); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&roles, `SELECT count(*) FROM pg_roles WHERE rolname ~ $1`, pattern); err != nil {
		t.Fatal(err)
	}
	return dbs, roles
}
