package main

import (
	"context"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/internal/pgtest"
)

const addServerMutation = `mutation($in: AddDatabaseServerInput!) {
  addDatabaseServer(input: $in) { name host status capacity tenantCount lastError } }`

const serversQuery = `{ databaseServers { name host status capacity tenantCount lastError } }`

// TestFleetOfTwoServers runs a tenantql on two PostgreSQL servers, each
// giving it a CREATEDB CREATEROLE role only: a server is probed before it
// is added (and its URL never comes back), tenants are placed on either,
// routed and isolated across both, drained servers take no new tenant, a
// server with tenants cannot be removed, a tenant on the second server is
// deleted there, and a silent server's tenants are refused at once while
// the others are served.
func TestFleetOfTwoServers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ta := newTestApp(t, nil)
	b := pgtest.NewCluster(t)
	bSuper, err := sqlx.Open("postgres", b.SuperuserURL)
	if err != nil {
		t.Fatal(err)
	}
	defer bSuper.Close()

	// refused before anything is stored, never echoing the URL's password
	weak := "weak_" + randomSuffix()
	if _, err := bSuper.Exec(`CREATE ROLE ` + weak + ` LOGIN PASSWORD 'weak-secret-pw'`); err != nil {
		t.Fatal(err)
	}
	weakURL := withUser(t, b.ServerURL, weak, "weak-secret-pw")
	for _, c := range []struct{ name, url, want string }{
		{"b", "postgres://someone:dead-secret-pw@127.0.0.1:1/postgres", "does not answer"},
		{"b", weakURL, "CREATEDB and CREATEROLE"},
		{"B!", b.ServerURL, "server name"},
		{"b", "mysql://x@y/z", "postgres://"},
	} {
		r := ta.admin(t, addServerMutation, map[string]any{"in": map[string]any{"name": c.name, "url": c.url}})
		if r.Code() != "BAD_USER_INPUT" || !strings.Contains(r.Raw, c.want) {
			t.Fatalf("add %s: want BAD_USER_INPUT saying %q, got %s", c.name, c.want, r.Raw)
		}
		if strings.Contains(r.Raw, "secret-pw") {
			t.Fatalf("the answer shows the URL's password: %s", r.Raw)
		}
	}
	r := mustOK(t, ta.admin(t, addServerMutation, map[string]any{"in": map[string]any{"name": "b", "url": b.ServerURL}}))
	added, _ := field(r.Data, "addDatabaseServer").(map[string]any)
	if added["status"] != "ACTIVE" || added["tenantCount"] != float64(0) || !strings.HasPrefix(added["host"].(string), "127.0.0.1:") {
		t.Fatalf("added: %s", r.Raw)
	}
	password, _ := mustParse(t, b.ServerURL).User.Password()
	for _, again := range []map[string]any{{"name": "b", "url": b.ServerURL}, {"name": "c", "url": ta.cfg.DatabaseURL}} {
		if r := ta.admin(t, addServerMutation, map[string]any{"in": again}); r.Code() != "CONFLICT" {
			t.Fatalf("add %v again: want CONFLICT, got %s", again["name"], r.Raw)
		}
	}
	r = mustOK(t, ta.admin(t, serversQuery, nil))
	if strings.Contains(r.Raw, password) || !strings.Contains(r.Raw, `"name":"default"`) || !strings.Contains(r.Raw, `"name":"b"`) {
		t.Fatalf("databaseServers: %s", r.Raw)
	}

	// a tenant pinned to b lives there, and works end to end
	createOn(t, ta, "on-b", "b")
	var onB, onDefault int
	dbName := tenantDBName(t, ta, "on-b")
	_ = bSuper.Get(&onB, `SELECT count(*) FROM pg_database WHERE datname = $1`, dbName)
	_ = ta.super.Get(&onDefault, `SELECT count(*) FROM pg_database WHERE datname = $1`, dbName)
	if onB != 1 || onDefault != 0 {
		t.Fatalf("on-b's database: %d on b, %d on default", onB, onDefault)
	}
	tokB := ta.login(t, "on-b")
	mustOK(t, ta.do(t, "on-b.example.test", tokB, `mutation { createProject(input: { key: "FLT", name: "Fleet" }) { key } }`, nil))
	mustOK(t, ta.do(t, "on-b.example.test", tokB, `mutation { createIssue(input: { projectKey: "FLT", title: "On b" }) { key } }`, nil))

	// unpinned, the tenant goes where there is most room: both are
	// unlimited, default has fewer tenants
	createOn(t, ta, "placed", "")
	if got := tenantServer(t, ta, "placed"); got != "default" {
		t.Fatalf("placed on %s, want default", got)
	}
	tokDefault := ta.login(t, "placed")
	if r := ta.do(t, "placed.example.test", tokB, `{ viewer { email } }`, nil); r.Code() != "UNAUTHENTICATED" {
		t.Fatalf("on-b's token on placed: %s", r.Raw)
	}
	if r := mustOK(t, ta.do(t, "placed.example.test", tokDefault, `{ issues(first: 5) { totalCount } }`, nil)); field(r.Data, "issues", "totalCount") != float64(0) {
		t.Fatalf("placed sees issues: %s", r.Raw)
	}

	// drained: no new tenant, pinned or placed; active again
	mustOK(t, ta.admin(t, `mutation { drainDatabaseServer(name: "b") { status } }`, nil))
	r = ta.admin(t, createTenantMutation, map[string]any{"in": newTenantInput("nope", "b")})
	if r.Code() != "BAD_USER_INPUT" || !strings.Contains(r.Raw, "DRAINING") {
		t.Fatalf("create on a draining server: %s", r.Raw)
	}
	mustOK(t, ta.admin(t, `mutation { activateDatabaseServer(name: "b") { status } }`, nil))
	if r := ta.admin(t, `mutation { removeDatabaseServer(name: "b") }`, nil); r.Code() != "CONFLICT" {
		t.Fatalf("remove a server holding a tenant: %s", r.Raw)
	}
	if r := ta.admin(t, `mutation { drainDatabaseServer(name: "zzz") { status } }`, nil); r.Code() != "NOT_FOUND" {
		t.Fatalf("drain an unknown server: %s", r.Raw)
	}

	// deleted on its own server
	mustOK(t, ta.admin(t, `mutation { deleteTenant(slug: "on-b") { tenant { status } } }`, nil))
	ta.waitStatus(t, "on-b", "GONE")
	var left int
	_ = bSuper.Get(&left, `SELECT (SELECT count(*) FROM pg_database WHERE datname = $1) + (SELECT count(*) FROM pg_roles WHERE rolname = $1)`, dbName)
	if left != 0 {
		t.Fatalf("on-b's database or role left on b: %d", left)
	}

	// a silent server: its tenants are refused at once, the others served
	createOn(t, ta, "late", "b")
	tokLate := ta.login(t, "late")
	b.Stop()
	ta.servers.ProbeAll(ctx)
	r = mustOK(t, ta.admin(t, serversQuery, nil))
	if !strings.Contains(r.Raw, `"status":"UNREACHABLE"`) {
		t.Fatalf("a stopped server: %s", r.Raw)
	}
	start := time.Now()
	r = ta.do(t, "late.example.test", tokLate, `{ issues(first: 5) { totalCount } }`, nil)
	if r.Code() != "SERVICE_UNAVAILABLE" || time.Since(start) > 2*time.Second {
		t.Fatalf("a tenant of a stopped server after %v: %s", time.Since(start), r.Raw)
	}
	mustOK(t, ta.do(t, "placed.example.test", tokDefault, `{ issues(first: 5) { totalCount } }`, nil))
}

func newTenantInput(slug, server string) map[string]any {
	in := map[string]any{
		"organization": "Org " + slug, "slug": slug,
		"owner": map[string]any{"email": "owner@" + slug + ".test", "name": "Owner of " + slug, "password": "password-" + slug},
	}
	if server != "" {
		in["databaseServer"] = server
	}
	return in
}

// createOn creates slug on server ("" lets placement choose) and waits
// until it is READY and routed.
func createOn(t testing.TB, ta *testApp, slug, server string) {
	t.Helper()
	mustOK(t, ta.admin(t, createTenantMutation, map[string]any{"in": newTenantInput(slug, server)}))
	ta.waitStatus(t, slug, "READY")
	if server != "" {
		if got := tenantServer(t, ta, slug); got != server {
			t.Fatalf("%s is on %q, want %q", slug, got, server)
		}
	}
	for i := 0; ; i++ {
		if _, err := ta.registry.Route(ta.hosts, slug+".example.test"); err == nil {
			return
		} else if i == 1000 {
			t.Fatalf("%s READY but not routed: %v", slug, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func tenantServer(t testing.TB, ta *testApp, slug string) string {
	t.Helper()
	r := mustOK(t, ta.admin(t, `query($s: String!) { tenant(slug: $s) { databaseServer } }`, map[string]any{"s": slug}))
	s, _ := field(r.Data, "tenant", "databaseServer").(string)
	return s
}

func tenantDBName(t testing.TB, ta *testApp, slug string) string {
	t.Helper()
	tn, err := ta.registry.Get(context.Background(), slug)
	if err != nil {
		t.Fatal(err)
	}
	return tn.DBName
}

func withUser(t *testing.T, raw, user, password string) string {
	t.Helper()
	u := mustParse(t, raw)
	u.User = url.UserPassword(user, password)
	return u.String()
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func randomSuffix() string { return strings.ToLower(rand.Text()[:10]) }
