package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestTenantLifecycleThroughHTTP(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "acme", false)

	r := mustOK(t, ta.admin(t, `{ tenant(slug: "acme") { slug name status host schemaVersion domains lastError } }`, nil))
	tn := field(r.Data, "tenant").(map[string]any)
	if tn["status"] != "READY" || tn["name"] != "Org acme" || tn["schemaVersion"] == "" || tn["lastError"] != nil {
		t.Fatalf("tenant = %v", tn)
	}
	if h := tn["host"].(string); h != "acme.example.test" && !strings.HasPrefix(h, "acme.example.test:") {
		t.Fatalf("host = %q", h)
	}

	// the tenant host answers, public fields first
	r = mustOK(t, ta.do(t, "acme.example.test", "", `{ organization { slug name } }`, nil))
	if field(r.Data, "organization", "slug") != "acme" || field(r.Data, "organization", "name") != "Org acme" {
		t.Fatalf("organization = %s", r.Raw)
	}
	if r := ta.do(t, "acme.example.test", "", `{ viewer { email } }`, nil); r.Code() != "UNAUTHENTICATED" || r.Status != 200 {
		t.Fatalf("viewer without token: HTTP %d %s", r.Status, r.Raw)
	}
	bad := ta.do(t, "acme.example.test", "", `mutation { login(email: "owner@acme.test", password: "wrong-password") { token } }`, nil)
	if bad.Code() != "UNAUTHENTICATED" {
		t.Fatalf("wrong password: %s", bad.Raw)
	}
	tok := ta.login(t, "acme")
	r = mustOK(t, ta.do(t, "acme.example.test", tok, `{ viewer { email name role } }`, nil))
	if field(r.Data, "viewer", "email") != "owner@acme.test" || field(r.Data, "viewer", "role") != "OWNER" {
		t.Fatalf("viewer = %s", r.Raw)
	}

	// suspend: 403, data kept; resume: back
	mustOK(t, ta.admin(t, `mutation { suspendTenant(slug: "acme") { status } }`, nil))
	if r := ta.do(t, "acme.example.test", tok, `{ viewer { email } }`, nil); r.Status != 403 || r.Code() != "TENANT_SUSPENDED" {
		t.Fatalf("suspended: HTTP %d %s", r.Status, r.Raw)
	}
	mustOK(t, ta.admin(t, `mutation { resumeTenant(slug: "acme") { status } }`, nil))
	mustOK(t, ta.do(t, "acme.example.test", tok, `{ viewer { email } }`, nil))

	// delete: 404 at once, then gone with its database and role
	r = mustOK(t, ta.admin(t, `mutation { deleteTenant(slug: "acme") { tenant { status } } }`, nil))
	if s := field(r.Data, "deleteTenant", "tenant", "status"); s != "DELETING" {
		t.Fatalf("status after delete = %v", s)
	}
	if r := ta.do(t, "acme.example.test", tok, `{ viewer { email } }`, nil); r.Status != 404 || r.Code() != "TENANT_NOT_FOUND" {
		t.Fatalf("deleting tenant: HTTP %d %s", r.Status, r.Raw)
	}
	ta.waitStatus(t, "acme", "GONE")
	if n := ta.countTenantObjects(t); n != 0 {
		t.Fatalf("%d databases/roles left after delete", n)
	}

	// the slug is free again, and the old token means nothing to the new tenant
	ta.createTenant(t, "acme", false)
	if r := ta.do(t, "acme.example.test", tok, `{ viewer { email } }`, nil); r.Code() != "UNAUTHENTICATED" {
		t.Fatalf("old token on re-created tenant: %s", r.Raw)
	}
}

// tenantNames is the pattern of this app's tenant database and role names
// (the prefix and 32 hex digits, as tenancy names them); the template and
// the spares have other names.
func (ta *testApp) tenantNames() string { return "^" + ta.prefix + "[0-9a-f]{32}$" }

// countTenantObjects counts this app's tenant databases and roles.
func (ta *testApp) countTenantObjects(t testing.TB) int {
	t.Helper()
	var n int
	const q = `SELECT (SELECT count(*) FROM pg_database WHERE datname ~ $1)
		+ (SELECT count(*) FROM pg_roles WHERE rolname ~ $1)`
	if err := ta.control.Get(&n, q, ta.tenantNames()); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestProvisionedCatalog(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "alpha", false)
	ta.createTenant(t, "beta", false)
	ctx := context.Background()
	a, err := ta.registry.Get(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ta.registry.Get(ctx, "beta")
	if err != nil {
		t.Fatal(err)
	}
	var role struct {
		Login, Super, CreateDB, CreateRole, Replication, BypassRLS bool
		ConnLimit                                                  int
		Config                                                     string
	}
	const qr = `SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolconnlimit,
		array_to_string(rolconfig, ',') FROM pg_roles WHERE rolname = $1`
	if err := ta.control.QueryRowx(qr, a.RoleName).Scan(&role.Login, &role.Super, &role.CreateDB, &role.CreateRole,
		&role.Replication, &role.BypassRLS, &role.ConnLimit, &role.Config); err != nil {
		t.Fatal(err)
	}
	if !role.Login || role.Super || role.CreateDB || role.CreateRole || role.Replication || role.BypassRLS ||
		role.ConnLimit <= 0 || !strings.Contains(role.Config, "statement_timeout") {
		t.Fatalf("role attributes: %+v", role)
	}
	var owner string
	if err := ta.control.Get(&owner, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, a.DBName); err != nil || owner != a.RoleName {
		t.Fatalf("owner = %q, %v", owner, err)
	}
	var publicConnect, crossConnect, ownConnect bool
	if err := ta.control.Get(&publicConnect, `SELECT EXISTS (SELECT 1 FROM pg_database, aclexplode(datacl) acl
		WHERE datname = $1 AND acl.grantee = 0 AND acl.privilege_type = 'CONNECT')`, a.DBName); err != nil || publicConnect {
		t.Fatalf("PUBLIC may connect: %v %v", publicConnect, err)
	}
	if err := ta.control.Get(&crossConnect, `SELECT has_database_privilege($1, $2, 'CONNECT')`, a.RoleName, b.DBName); err != nil || crossConnect {
		t.Fatalf("alpha's role may connect to beta's database: %v %v", crossConnect, err)
	}
	if err := ta.control.Get(&ownConnect, `SELECT has_database_privilege($1, $2, 'CONNECT')`, a.RoleName, a.DBName); err != nil || !ownConnect {
		t.Fatalf("alpha's role may not connect to its own database: %v", err)
	}
	var verifier string
	if err := ta.super.Get(&verifier, `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, a.RoleName); err != nil || !strings.HasPrefix(verifier, "SCRAM-SHA-256$") {
		t.Fatalf("role password is not a SCRAM verifier: %q %v", verifier, err)
	}

	// the cleartext password appears nowhere in the control database
	dsn, err := ta.pools.TenantURL(a)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	if len(password) < 40 {
		t.Fatalf("role password too short: %d characters", len(password))
	}
	var leaks int
	if err := ta.control.Get(&leaks, `SELECT count(*) FROM tenants t WHERE position($1 in t::text) > 0`, password); err != nil || leaks != 0 {
		t.Fatalf("cleartext password found in %d tenant rows (%v)", leaks, err)
	}
	// and the tenant's own role really logs in with it, to its own database only
	if db, err := ta.pools.DB(a); err != nil || db.Ping() != nil {
		t.Fatalf("tenant role cannot log in: %v", err)
	}
}

func TestCreateTenantRejectsBadInput(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "taken", false)
	owner := map[string]any{"email": "o@x.test", "name": "O", "password": "long-enough"}
	in := func(mod func(m map[string]any)) map[string]any {
		o := map[string]any{}
		for k, v := range owner {
			o[k] = v
		}
		m := map[string]any{"organization": "Good Org", "slug": "good-org", "owner": o}
		mod(m)
		return m
	}
	cases := []struct {
		name string
		in   map[string]any
		code string
	}{
		{"reserved slug", in(func(m map[string]any) { m["slug"] = "admin" }), "BAD_USER_INPUT"},
		{"uppercase slug", in(func(m map[string]any) { m["slug"] = "Acme" }), "BAD_USER_INPUT"},
		{"injection slug", in(func(m map[string]any) { m["slug"] = `x"; DROP DATABASE postgres; --` }), "BAD_USER_INPUT"},
		{"NUL in slug", in(func(m map[string]any) { m["slug"] = "ac\x00me" }), "BAD_USER_INPUT"},
		{"too long slug", in(func(m map[string]any) { m["slug"] = strings.Repeat("a", 41) }), "BAD_USER_INPUT"},
		{"short slug", in(func(m map[string]any) { m["slug"] = "ab" }), "BAD_USER_INPUT"},
		{"empty org", in(func(m map[string]any) { m["organization"] = "  " }), "BAD_USER_INPUT"},
		{"NUL in org", in(func(m map[string]any) { m["organization"] = "Bad\x00Org" }), "BAD_USER_INPUT"},
		{"huge org", in(func(m map[string]any) { m["organization"] = strings.Repeat("é", 60) }), "BAD_USER_INPUT"},
		{"underivable slug", in(func(m map[string]any) { delete(m, "slug"); m["organization"] = "日本" }), "BAD_USER_INPUT"},
		{"bad email", in(func(m map[string]any) { m["owner"].(map[string]any)["email"] = "not-an-email" }), "BAD_USER_INPUT"},
		{"short password", in(func(m map[string]any) { m["owner"].(map[string]any)["password"] = "short" }), "BAD_USER_INPUT"},
		{"empty owner name", in(func(m map[string]any) { m["owner"].(map[string]any)["name"] = "" }), "BAD_USER_INPUT"},
		{"taken slug", in(func(m map[string]any) { m["slug"] = "taken" }), "CONFLICT"},
		{"taken derived slug", in(func(m map[string]any) { delete(m, "slug"); m["organization"] = "Taken" }), "CONFLICT"},
	}
	for _, c := range cases {
		r := ta.admin(t, createTenantMutation, map[string]any{"in": c.in})
		if r.Status != 200 || r.Code() != c.code {
			t.Errorf("%s: got HTTP %d %s, want %s", c.name, r.Status, r.Raw, c.code)
		}
		if strings.Contains(r.Raw, "pq:") || strings.Contains(r.Raw, "SQL") {
			t.Errorf("%s: error leaks internals: %s", c.name, r.Raw)
		}
	}
	var rows int
	if err := ta.control.Get(&rows, `SELECT count(*) FROM tenants`); err != nil || rows != 1 {
		t.Fatalf("tenant rows = %d (%v), want only the first", rows, err)
	}
	if n := ta.countTenantObjects(t); n != 2 {
		t.Fatalf("databases+roles = %d, want 2 (one tenant)", n)
	}
}

func TestConcurrentCreateWithOneSlug(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	const n = 10
	var wg sync.WaitGroup
	codes := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ta.admin(t, createTenantMutation, map[string]any{"in": map[string]any{
				"organization": fmt.Sprintf("Racer %d", i), "slug": "racer",
				"owner": map[string]any{"email": "o@racer.test", "name": "O", "password": "password-racer"},
			}})
			codes[i] = r.Code()
		}()
	}
	wg.Wait()
	ok, conflict := 0, 0
	for _, c := range codes {
		switch c {
		case "":
			ok++
		case "CONFLICT":
			conflict++
		}
	}
	if ok != 1 || conflict != n-1 {
		t.Fatalf("codes = %v: want one success and %d CONFLICT", codes, n-1)
	}
	ta.waitStatus(t, "racer", "READY")
	var dbs int
	if err := ta.control.Get(&dbs, `SELECT count(*) FROM pg_database WHERE datname ~ $1`, ta.tenantNames()); err != nil || dbs != 1 {
		t.Fatalf("databases = %d (%v), want 1", dbs, err)
	}
}

func TestRoutingByHost(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "route", false)
	ta.createTenant(t, "other", false)
	q := `{ organization { slug } }`
	cases := []struct {
		host, xfh string
		status    int
		code      string
		slug      string
	}{
		{host: "route.example.test", status: 200, slug: "route"},
		{host: "ROUTE.Example.Test.", status: 200, slug: "route"},
		{host: "route.example.test:8443", status: 200, slug: "route"},
		{host: "nope.example.test", status: 404, code: "TENANT_NOT_FOUND"},
		{host: "a.route.example.test", status: 404, code: "TENANT_NOT_FOUND"},
		{host: "evil.test", status: 404, code: "TENANT_NOT_FOUND"},
		{host: "example.test", status: 200, code: "TENANT_REQUIRED"},
		// X-Forwarded-Host is ignored without TRUST_PROXY
		{host: "route.example.test", xfh: "other.example.test", status: 200, slug: "route"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("POST", ta.srv.URL+"/graphql", strings.NewReader(`{"query":"`+q+`"}`))
		req.Host = c.host
		req.Header.Set("Content-Type", "application/json")
		if c.xfh != "" {
			req.Header.Set("X-Forwarded-Host", c.xfh)
		}
		r := ta.send(t, req)
		if r.Status != c.status || r.Code() != c.code || (c.slug != "" && field(r.Data, "organization", "slug") != c.slug) {
			t.Errorf("host %q (xfh %q): HTTP %d %s", c.host, c.xfh, r.Status, r.Raw)
		}
	}

	// custom domains route like the subdomain; a taken domain is CONFLICT
	mustOK(t, ta.admin(t, `mutation { addTenantDomain(slug: "route", domain: "Issues.Route.ORG") { domains } }`, nil))
	r := mustOK(t, ta.do(t, "issues.route.org:8080", "", q, nil))
	if field(r.Data, "organization", "slug") != "route" {
		t.Fatalf("custom domain: %s", r.Raw)
	}
	if r := ta.admin(t, `mutation { addTenantDomain(slug: "other", domain: "issues.route.org") { domains } }`, nil); r.Code() != "CONFLICT" {
		t.Fatalf("taken domain: %s", r.Raw)
	}
	if r := ta.admin(t, `mutation { addTenantDomain(slug: "other", domain: "x.example.test") { domains } }`, nil); r.Code() != "BAD_USER_INPUT" {
		t.Fatalf("domain under base domain: %s", r.Raw)
	}
	mustOK(t, ta.admin(t, `mutation { removeTenantDomain(slug: "route", domain: "issues.route.org") { domains } }`, nil))
	if r := ta.do(t, "issues.route.org", "", q, nil); r.Status != 404 {
		t.Fatalf("removed domain still routes: %s", r.Raw)
	}

	// a tenant still provisioning answers 503 with Retry-After
	if _, err := ta.control.Exec(`UPDATE tenants SET status = 'PROVISIONING', updated_at = now(), next_attempt_at = now() + interval '1 hour' WHERE slug = 'other'`); err != nil {
		t.Fatal(err)
	}
	ta.waitRouted(t, "other.example.test", 503)
	r = ta.do(t, "other.example.test", "", q, nil)
	if r.Code() != "TENANT_NOT_READY" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("provisioning tenant: HTTP %d %s", r.Status, r.Raw)
	}
}

// waitRouted waits until host answers status. Routing changes arrive
// through LISTEN/NOTIFY only: the test apps run without the periodic
// reload that would otherwise hide a lost notification.
func (ta *testApp) waitRouted(t testing.TB, host string, status int) {
	t.Helper()
	for range 200 {
		if r := ta.do(t, host, "", `{ organization { slug } }`, nil); r.Status == status {
			return
		}
		sleepBriefly()
	}
	t.Fatalf("%s never answered %d", host, status)
}

func TestFieldsNeedTheRightHostAndToken(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"TRUST_PROXY": "true"})
	ta.createTenant(t, "one", false)
	ta.createTenant(t, "two", false)
	tokOne := ta.login(t, "one")
	cases := []struct {
		name, host, token, query, code string
	}{
		{"platform field on tenant host", "one.example.test", testAdminToken, `{ tenants { totalCount } }`, "FORBIDDEN"},
		{"platform field without token", "example.test", "", `{ tenants { totalCount } }`, "UNAUTHENTICATED"},
		{"platform field with wrong token", "example.test", "nope", `{ tenants { totalCount } }`, "UNAUTHENTICATED"},
		{"tenant field on admin host", "example.test", testAdminToken, `{ organization { slug } }`, "TENANT_REQUIRED"},
		{"other tenant's token", "two.example.test", tokOne, `{ viewer { email } }`, "UNAUTHENTICATED"},
		{"admin token is no user token", "one.example.test", testAdminToken, `{ viewer { email } }`, "UNAUTHENTICATED"},
		{"garbage token", "one.example.test", "a.b.c", `{ viewer { email } }`, "UNAUTHENTICATED"},
		{"first out of range", "example.test", testAdminToken, `{ tenants(first: 0) { totalCount } }`, "BAD_USER_INPUT"},
		{"first too large", "example.test", testAdminToken, `{ tenants(first: 101) { totalCount } }`, "BAD_USER_INPUT"},
		{"bad cursor", "example.test", testAdminToken, `{ tenants(after: "!!") { totalCount } }`, "BAD_USER_INPUT"},
		{"suspend an unknown tenant", "example.test", testAdminToken, `mutation { suspendTenant(slug: "ghost") { status } }`, "NOT_FOUND"},
		{"retry a READY tenant", "example.test", testAdminToken, `mutation { retryTenant(slug: "one") { status } }`, "CONFLICT"},
		{"remove an unknown domain", "example.test", testAdminToken, `mutation { removeTenantDomain(slug: "one", domain: "nope.org") { slug } }`, "NOT_FOUND"},
		{"parse error", "example.test", testAdminToken, `{ tenants {`, "GRAPHQL_PARSE_FAILED"},
		{"unknown field", "example.test", testAdminToken, `{ nope }`, "GRAPHQL_VALIDATION_FAILED"},
	}
	for _, c := range cases {
		r := ta.do(t, c.host, c.token, c.query, nil)
		if r.Code() != c.code {
			t.Errorf("%s: got HTTP %d %s, want %s", c.name, r.Status, r.Raw, c.code)
		}
	}
	// with TRUST_PROXY the forwarded host decides
	req, _ := http.NewRequest("POST", ta.srv.URL+"/graphql", strings.NewReader(`{"query":"{ organization { slug } }"}`))
	req.Host = "example.test"
	req.Header.Set("X-Forwarded-Host", "two.example.test")
	req.Header.Set("Content-Type", "application/json")
	if r := ta.send(t, req); field(r.Data, "organization", "slug") != "two" {
		t.Fatalf("forwarded host with TRUST_PROXY: %s", r.Raw)
	}
}

func TestTenantsPagination(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	for _, s := range []string{"page-a", "page-b", "page-c", "page-d", "page-e"} {
		ta.createTenant(t, s, false)
	}
	var seen []string
	after := any(nil)
	for range 10 {
		r := mustOK(t, ta.admin(t, `query($a: String) { tenants(first: 2, after: $a) { totalCount edges { cursor node { slug } } pageInfo { hasNextPage endCursor } } }`, map[string]any{"a": after}))
		conn := field(r.Data, "tenants").(map[string]any)
		if conn["totalCount"].(float64) != 5 {
			t.Fatalf("totalCount = %v", conn["totalCount"])
		}
		for _, e := range conn["edges"].([]any) {
			seen = append(seen, field(e, "node", "slug").(string))
		}
		if field(conn, "pageInfo", "hasNextPage") != true {
			break
		}
		after = field(conn, "pageInfo", "endCursor")
	}
	if strings.Join(seen, ",") != "page-a,page-b,page-c,page-d,page-e" {
		t.Fatalf("pages gave %v", seen)
	}
	r := mustOK(t, ta.admin(t, `{ tenants(status: SUSPENDED) { totalCount } }`, nil))
	if field(r.Data, "tenants", "totalCount").(float64) != 0 {
		t.Fatalf("status filter: %s", r.Raw)
	}
}
