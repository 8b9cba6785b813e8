package main

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/internal/pgtest"
)

const moveMutation = `mutation($s: String!, $to: String!) { moveTenant(slug: $s, toServer: $to) { status databaseServer movingTo } }`

// tenantTables are the tables of a tenant database, compared row by row
// before and after a move, without what the test writes after it.
var tenantTables = map[string]string{
	"users": "true", "comments": "true",
	"projects": "key <> 'MOV'", "issues": "title <> 'after the move'",
}

// tableDigests returns, per tenant table, its row count and a digest of
// every row's text (as the superuser, behind the server's back).
func tableDigests(t *testing.T, db *sqlx.DB) map[string]string {
	t.Helper()
	if _, err := db.Exec(`SET TimeZone = 'UTC'`); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for tb, where := range tenantTables {
		var d string
		q := `SELECT count(*) || ':' || md5(COALESCE(string_agg(x::text, '|' ORDER BY x::text), '')) FROM ` + tb + ` x WHERE ` + where
		if err := db.Get(&d, q); err != nil {
			t.Fatalf("digest %s: %v", tb, err)
		}
		out[tb] = d
	}
	return out
}

// TestMoveTenant moves a tenant with demo data from the default server to
// a second PostgreSQL server and back, while a client keeps reading: every
// query is answered, mutations during the move get 503 TENANT_MOVING with
// Retry-After, every row arrives (compared row by row), the old database
// and role are gone, and the tenant works on its new server. Bad moves
// get clear errors.
func TestMoveTenant(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	b := pgtest.NewCluster(t)
	bSuper := openDB(t, b.SuperuserURL)
	mustOK(t, ta.admin(t, addServerMutation, map[string]any{"in": map[string]any{"name": "b", "url": b.ServerURL}}))
	in := newTenantInput("mover", "default")
	in["seedDemoData"] = true
	mustOK(t, ta.admin(t, createTenantMutation, map[string]any{"in": in}))
	ta.waitStatus(t, "mover", "READY")
	createOn(t, ta, "stays", "default")
	owner := ta.owner(t, "mover")
	owner.must(t, `mutation { createProject(input: { key: "MOV", name: "Moving" }) { key } }`, nil)
	owner.createIssue(t, map[string]any{"projectKey": "MOV", "title": "before the move"})

	for _, c := range []struct{ slug, to, code string }{
		{"mover", "nowhere", "BAD_USER_INPUT"},
		{"mover", "default", "BAD_USER_INPUT"},
		{"nobody", "b", "NOT_FOUND"},
	} {
		if r := ta.admin(t, moveMutation, map[string]any{"s": c.slug, "to": c.to}); r.Code() != c.code {
			t.Fatalf("move %s to %s: want %s, got %s", c.slug, c.to, c.code, r.Raw)
		}
	}

	oldDB, super := ta.superuserDB(t, "mover")
	before := tableDigests(t, super)
	super.Close() // a superuser's session would keep the old copy from being dropped

	// a reader keeps asking during the move: every answer must be data
	var reads, readFailures atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			time.Sleep(20 * time.Millisecond) // under the tenant's rate limit, with the writer below
			r := owner.do(t, `{ issues(first: 20) { totalCount edges { node { id title assignee { name } } } } }`, nil)
			reads.Add(1)
			if r.Status != 200 || len(r.Errors) > 0 {
				readFailures.Add(1)
				firstFailure.CompareAndSwap(nil, r.Raw)
			}
		}
	}()

	began := time.Now()
	r := mustOK(t, ta.admin(t, moveMutation, map[string]any{"s": "mover", "to": "b"}))
	if field(r.Data, "moveTenant", "status") != "MOVING" || field(r.Data, "moveTenant", "movingTo") != "b" {
		t.Fatalf("moveTenant: %s", r.Raw)
	}
	if r := ta.admin(t, moveMutation, map[string]any{"s": "mover", "to": "default"}); r.Code() != "CONFLICT" {
		t.Fatalf("a second move while moving: %s", r.Raw)
	}
	// mutations are refused while MOVING, with a time to retry
	refused := owner.do(t, `mutation { createProject(input: { key: "NOPE", name: "Refused" }) { key } }`, nil)
	if refused.Status != 503 || refused.Code() != "TENANT_MOVING" || refused.Header.Get("Retry-After") == "" {
		t.Fatalf("a mutation while MOVING: HTTP %d %s (Retry-After %q)", refused.Status, refused.Raw, refused.Header.Get("Retry-After"))
	}
	// until the move ends, every mutation is refused; the first accepted
	// one comes after READY
	for {
		r := owner.do(t, `mutation { createIssue(input: { projectKey: "MOV", title: "after the move" }) { number } }`, nil)
		if r.Code() == "TENANT_MOVING" {
			if time.Since(began) > time.Minute {
				t.Fatal("still MOVING after a minute")
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		mustOK(t, r)
		if n := field(r.Data, "createIssue", "number"); n != float64(2) {
			t.Fatalf("the first issue after the move is number %v, want 2: %s", n, r.Raw)
		}
		break
	}
	refusedFor := time.Since(began)
	close(stop)
	wg.Wait()
	st := ta.waitStatus(t, "mover", "READY")
	t.Logf("moved a demo tenant in %v (mutations refused meanwhile); %d reads during the move", refusedFor.Round(time.Millisecond), reads.Load())
	if readFailures.Load() != 0 {
		t.Fatalf("%d of %d reads failed during the move; first: %v", readFailures.Load(), reads.Load(), firstFailure.Load())
	}
	if st["lastError"] != nil || tenantServer(t, ta, "mover") != "b" {
		t.Fatalf("after the move: %v on %s", st, tenantServer(t, ta, "mover"))
	}

	// every row arrived, and the old copy is gone
	moved, err := ta.registry.Get(t.Context(), "mover")
	if err != nil {
		t.Fatal(err)
	}
	if moved.DBName == oldDB.DBName {
		t.Fatalf("the new copy reuses the old name %s", moved.DBName)
	}
	bDB := openDB(t, pgtest.WithURLDatabase(b.SuperuserURL, moved.DBName))
	after := tableDigests(t, bDB)
	for tb := range tenantTables {
		if before[tb] != after[tb] {
			t.Errorf("%s differs after the move: %s vs %s", tb, before[tb], after[tb])
		}
	}
	var lastNumber int
	if err := bDB.Get(&lastNumber, `SELECT last_number FROM projects WHERE key = 'MOV'`); err != nil || lastNumber != 2 {
		t.Errorf("MOV's last issue number on the new copy: %d (%v)", lastNumber, err)
	}
	var left int
	_ = ta.super.Get(&left, `SELECT (SELECT count(*) FROM pg_database WHERE datname = $1) + (SELECT count(*) FROM pg_roles WHERE rolname = $1)`, oldDB.DBName)
	if left != 0 {
		t.Fatalf("the old database or role is left on default: %d", left)
	}
	var owned, publicConnect, readOnly bool
	_ = bSuper.Get(&owned, `SELECT pg_get_userbyid(datdba) = $1 FROM pg_database WHERE datname = $1`, moved.DBName)
	_ = bSuper.Get(&publicConnect, `SELECT has_database_privilege('public', $1, 'CONNECT')`, moved.DBName)
	_ = bDB.Get(&readOnly, `SELECT current_setting('default_transaction_read_only') = 'on'`)
	if !owned || publicConnect || readOnly {
		t.Fatalf("the new database: owned by its role %v, PUBLIC may connect %v, read-only %v", owned, publicConnect, readOnly)
	}
	mustOK(t, ta.as("stays", ta.login(t, "stays")).do(t, `{ viewer { email } }`, nil))
	bDB.Close() // a superuser's session would keep this copy from being dropped

	// and back to the default server (a clone of its template), after
	// which b holds nothing and can be removed
	mustOK(t, ta.admin(t, moveMutation, map[string]any{"s": "mover", "to": "default"}))
	ta.waitStatus(t, "mover", "READY")
	if got := tenantServer(t, ta, "mover"); got != "default" {
		t.Fatalf("moved back to %s", got)
	}
	r = owner.must(t, `{ issues(first: 100) { totalCount } }`, nil)
	if want := strings.Split(before["issues"], ":")[0]; field(r.Data, "issues", "totalCount") != float64(mustAtoi(t, want)+1) {
		t.Fatalf("after moving back: %s, want %s+1 issues", r.Raw, want)
	}
	_ = bSuper.Get(&left, `SELECT count(*) FROM pg_database WHERE datname = $1`, moved.DBName)
	if left != 0 {
		t.Fatalf("the copy on b is left after moving back")
	}
	mustOK(t, ta.admin(t, `mutation { removeDatabaseServer(name: "b") }`, nil))
}

// TestMoveUndoneWhenItKeepsFailing: a move whose copy fails every attempt
// is undone after PROVISION_MAX_ATTEMPTS: the tenant is READY on its old
// server, writable again, lastError says what failed, and nothing of the
// new copy is left on the target.
func TestMoveUndoneWhenItKeepsFailing(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{
		"TENANTQL_FAILPOINT": "move.after-copy=error", "PROVISION_MAX_ATTEMPTS": "2", "PROVISION_BACKOFF_MS": "10",
	})
	b := pgtest.NewCluster(t)
	bSuper := openDB(t, b.SuperuserURL)
	mustOK(t, ta.admin(t, addServerMutation, map[string]any{"in": map[string]any{"name": "b", "url": b.ServerURL}}))
	createOn(t, ta, "stuck", "default")
	owner := ta.owner(t, "stuck")
	owner.createProject(t, "STK", "Stuck")

	mustOK(t, ta.admin(t, moveMutation, map[string]any{"s": "stuck", "to": "b"}))
	deadline := time.Now().Add(time.Minute)
	var st map[string]any
	for {
		st = ta.waitStatus(t, "stuck", "READY")
		if le, _ := st["lastError"].(string); le != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if le, _ := st["lastError"].(string); !strings.Contains(le, "move.after-copy failed: injected fault") {
		t.Fatalf("after the undone move: %v", st)
	}
	if got := tenantServer(t, ta, "stuck"); got != "default" {
		t.Fatalf("the undone move left the tenant on %s", got)
	}
	var onB int
	// tenant-named: b's own template and spares stay
	_ = bSuper.Get(&onB, `SELECT (SELECT count(*) FROM pg_database WHERE datname ~ $1) + (SELECT count(*) FROM pg_roles WHERE rolname ~ $1)`, ta.tenantNames())
	if onB != 0 {
		t.Fatalf("%d databases and roles of the new copy left on b", onB)
	}
	// writable again, on fresh sessions and old ones alike
	for range 3 {
		owner.createIssue(t, map[string]any{"projectKey": "STK", "title": "after the undone move"})
	}
}

// openDB opens url, closed when the test ends.
func openDB(t testing.TB, url string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// seedThousandIssues fills the tenant slug, behind the API's back, with a
// project BIG of 1,000 issues (half of them assigned) with a comment each.
func (ta *testApp) seedThousandIssues(t testing.TB, slug string) {
	t.Helper()
	_, super := ta.superuserDB(t, slug)
	defer super.Close() // a superuser's session would keep the database from being dropped
	for _, q := range []string{
		`INSERT INTO projects (id, key, name, last_number) VALUES (gen_random_uuid(), 'BIG', 'Big', 1000)`,
		`INSERT INTO issues (id, project_id, number, title, description, status, reporter_id, assignee_id)
			SELECT gen_random_uuid(), p.id, g, 'Issue ' || g, repeat('words ', 20), 'TODO', u.id, CASE WHEN g % 2 = 0 THEN u.id END
			FROM generate_series(1, 1000) g, projects p, users u WHERE p.key = 'BIG'`,
		`INSERT INTO comments (id, issue_id, author_id, body) SELECT gen_random_uuid(), id, reporter_id, 'On ' || title FROM issues`,
		`ANALYZE`,
	} {
		if _, err := super.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkMoveTenant moves a tenant of 1,000 issues, each with a
// comment, between two PostgreSQL servers, back and forth: one op is one
// move, from moveTenant to READY on the other server (the whole time its
// mutations are refused).
func BenchmarkMoveTenant(b *testing.B) {
	ta := newTestApp(b, nil)
	second := pgtest.NewCluster(b)
	mustOK(b, ta.admin(b, addServerMutation, map[string]any{"in": map[string]any{"name": "b", "url": second.ServerURL}}))
	createOn(b, ta, "big", "default")
	ta.seedThousandIssues(b, "big")
	owner := ta.owner(b, "big")
	servers := []string{"b", "default"}
	for i := 0; b.Loop(); i++ {
		mustOK(b, ta.admin(b, moveMutation, map[string]any{"s": "big", "to": servers[i%2]}))
		for tenantServer(b, ta, "big") != servers[i%2] {
			time.Sleep(10 * time.Millisecond) // under the admin rate limit
		}
		ta.waitStatus(b, "big", "READY")
	}
	b.StopTimer()
	if r := owner.must(b, `{ issues(first: 1) { totalCount } }`, nil); field(r.Data, "issues", "totalCount") != float64(1000) {
		b.Fatalf("after the moves: %s", r.Raw)
	}
}
