package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/edge"
	"github.com/tenantql/tenantql/internal/gqlclient"
	"github.com/tenantql/tenantql/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testApp is a wired tenantql on its own control database, served by an
// httptest server, with the background workers serve runs.
type testApp struct {
	*app
	srv    *httptest.Server
	prefix string
	guard  *edge.Guard // the GraphQL edge of srv's handler
	// super is a superuser on the control database, for a test's own
	// look behind the server's back (the server itself connects as a
	// CREATEDB CREATEROLE role, as in production).
	super *sqlx.DB
	// stopWorkers stops the background workers (as when the process
	// exits) and waits for them; the HTTP server keeps serving.
	stopWorkers func()
}

const (
	testAdminToken = "test-admin-token-0123456789-abcdef" // ADMIN_TOKEN needs 32 characters
	testSecretKey  = "test-secret-key-0123456789-0123456789"
)

// newTestApp starts a tenantql on a fresh control database. Tenant
// databases get a prefix of their own, so tests never see each other's.
func newTestApp(t testing.TB, env map[string]string) *testApp {
	t.Helper()
	cfg, prefix := testConfig(t, env)
	return startTestApp(t, cfg, prefix, true)
}

// testConfig is the configuration of a tenantql on a fresh control
// database, with env over the tests' defaults, and the prefix of its
// tenant databases and roles.
func testConfig(t testing.TB, env map[string]string) (Config, string) {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	prefix := "t" + hex.EncodeToString(b) + "_"
	vars := map[string]string{
		"DATABASE_URL":       pgtest.NewControlDatabase(t),
		"ADMIN_TOKEN":        testAdminToken,
		"SECRET_KEY":         testSecretKey,
		"BASE_DOMAIN":        "example.test",
		"TENANT_NAME_PREFIX": prefix,
		"INTROSPECTION":      "true",
		// a deleted tenant is dropped at once unless a test asks for the
		// grace (deleted_test.go)
		"DELETE_GRACE_HOURS": "0",
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg, prefix
}

// testLogger is the log of an app under test: warnings and errors on
// stderr, everything with TEST_LOG set.
func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// startTestApp wires an app on cfg and runs its background workers (as
// serve does) and an httptest server until the test ends; then, with owner set, it drops
// the tenant databases and roles of prefix (the app that made them).
func startTestApp(t testing.TB, cfg Config, prefix string, owner bool) *testApp {
	t.Helper()
	return startLoggedTestApp(t, cfg, prefix, owner, testLogger())
}

// startLoggedTestApp is startTestApp with the app logging to log.
func startLoggedTestApp(t testing.TB, cfg Config, prefix string, owner bool, log *slog.Logger) *testApp {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	// The workers serve starts, with one difference: no periodic reload of
	// the routing table (production reloads it every 30 s as a safety net
	// for a lost notification). Every routing change a test waits for must
	// then arrive through LISTEN/NOTIFY, so a broken NOTIFY path fails the
	// tests instead of being hidden by the next reload.
	workers := a.startWorkers(ctx, time.Hour)
	super, err := sqlx.Open("postgres", pgtest.SuperuserURL(t, cfg.DatabaseURL))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h, guard := a.handler()
	srv := httptest.NewServer(h)
	ta := &testApp{app: a, srv: srv, prefix: prefix, guard: guard, super: super}
	var stopOnce sync.Once
	ta.stopWorkers = func() {
		stopOnce.Do(func() {
			cancel()
			workers.wait()
		})
	}
	t.Cleanup(func() {
		srv.Close()
		ta.stopWorkers()
		if owner {
			ta.dropTenantObjects(t)
		}
		a.Close()
		super.Close()
	})
	return ta
}

// dropTenantObjects removes the databases and roles this app created.
func (ta *testApp) dropTenantObjects(t testing.TB) {
	ctx := context.Background()
	var dbs, roles []string
	_ = ta.super.SelectContext(ctx, &dbs, `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, ta.prefix)
	_ = ta.super.SelectContext(ctx, &roles, `SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)`, ta.prefix)
	for _, d := range dbs {
		_, _ = ta.super.ExecContext(ctx, `ALTER DATABASE "`+d+`" WITH IS_TEMPLATE false`)
		if _, err := ta.super.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+d+`" WITH (FORCE)`); err != nil {
			t.Logf("cleanup: %v", err)
		}
	}
	for _, r := range roles {
		_, _ = ta.super.ExecContext(ctx, `DROP ROLE IF EXISTS "`+r+`"`)
	}
}

// metric returns the value of a series as Prometheus scrapes it from
// /metrics on the admin host: an unlabelled metric's name, or a name with
// its labels as exposed (`tenantql_x_total{source="spare"}`). An
// unlabelled metric that is not there fails the test; a labelled series
// is 0 until its first count.
func (ta *testApp) metric(t testing.TB, series string) float64 {
	t.Helper()
	v, ok := ta.scrapeSeries(t, series)
	if !ok && !strings.Contains(series, "{") {
		t.Fatalf("/metrics has no %s", series)
	}
	return v
}

// scrapeSeries scrapes /metrics for series: its value, and whether it is
// there at all.
func (ta *testApp) scrapeSeries(t testing.TB, series string) (float64, bool) {
	t.Helper()
	req, _ := http.NewRequest("GET", ta.srv.URL+"/metrics", nil)
	req.Host = "example.test"
	resp, err := ta.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: HTTP %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("/metrics: %s %q: %v", series, v, err)
			}
			return f, true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	return 0, false
}

// gqlResponse is a decoded GraphQL answer.
type gqlResponse = gqlclient.Response

// client is the GraphQL client of ta's HTTP server.
func (ta *testApp) client() *gqlclient.Client {
	return &gqlclient.Client{URL: ta.srv.URL, HTTP: ta.srv.Client()}
}

// do posts a GraphQL operation to host with an optional bearer token.
func (ta *testApp) do(t testing.TB, host, token, query string, vars map[string]any) gqlResponse {
	t.Helper()
	r, err := ta.client().Post(context.Background(), host, token, query, vars)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	return r
}

// send sends a prepared request to ta's server and decodes the answer.
func (ta *testApp) send(t testing.TB, req *http.Request) gqlResponse {
	t.Helper()
	r, err := ta.client().Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	return r
}

// admin posts a platform operation with the admin token.
func (ta *testApp) admin(t testing.TB, query string, vars map[string]any) gqlResponse {
	t.Helper()
	return ta.do(t, "example.test", testAdminToken, query, vars)
}

// mustOK fails the test unless r has data and no errors.
func mustOK(t testing.TB, r gqlResponse) gqlResponse {
	t.Helper()
	if r.Status != 200 || len(r.Errors) > 0 || r.Data == nil {
		t.Fatalf("want data, got HTTP %d: %s", r.Status, r.Raw)
	}
	return r
}

// field walks a path of keys in decoded JSON.
func field(v any, path ...string) any { return gqlclient.Field(v, path...) }

const createTenantMutation = `mutation($in: CreateTenantInput!) {
  createTenant(input: $in) { tenant { id slug name status host domains schemaVersion lastError createdAt updatedAt } }
}`

// createTenant creates a tenant and waits until it is READY.
func (ta *testApp) createTenant(t testing.TB, slug string, demo bool) {
	t.Helper()
	r := mustOK(t, ta.admin(t, createTenantMutation, map[string]any{"in": map[string]any{
		"organization": "Org " + slug, "slug": slug, "seedDemoData": demo,
		"owner": map[string]any{"email": "owner@" + slug + ".test", "name": "Owner of " + slug, "password": "password-" + slug},
	}}))
	if s := field(r.Data, "createTenant", "tenant", "status"); s != "PROVISIONING" && s != "READY" {
		t.Fatalf("status after create = %v", s)
	}
	ta.waitStatus(t, slug, "READY")
	// READY is in the control database a moment before this process's
	// routing table has it (the provisioner refreshes it right after)
	for i := 0; ; i++ {
		if _, err := ta.registry.Route(ta.hosts, slug+".example.test"); err == nil {
			break
		} else if i == 1000 {
			t.Fatalf("tenant %s is READY but not routed: %v", slug, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStatus polls tenant(slug) until it has status ("GONE" for null).
func (ta *testApp) waitStatus(t testing.TB, slug, status string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := mustOK(t, ta.admin(t, `query($s: String!) { tenant(slug: $s) { slug status lastError schemaVersion } }`, map[string]any{"s": slug}))
		tn, _ := field(r.Data, "tenant").(map[string]any)
		switch {
		case tn == nil && status == "GONE":
			return nil
		case tn != nil && tn["status"] == status:
			return tn
		case tn != nil && tn["status"] == "FAILED" && status != "FAILED":
			t.Fatalf("tenant %s FAILED: %v", slug, tn["lastError"])
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenant %s never reached %s; last %v", slug, status, tn)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// login signs in as the owner created by createTenant.
func (ta *testApp) login(t testing.TB, slug string) string {
	t.Helper()
	r := mustOK(t, ta.do(t, slug+".example.test", "", `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token user { email role } } }`,
		map[string]any{"e": "owner@" + slug + ".test", "p": "password-" + slug}))
	tok, _ := field(r.Data, "login", "token").(string)
	if tok == "" {
		t.Fatalf("no token: %s", r.Raw)
	}
	return tok
}
