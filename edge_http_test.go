package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantql/tenantql/edge"
	"github.com/tenantql/tenantql/resolvers"
)

// TestGETAndCSRF: queries run over GET, mutations over GET are refused
// and not run, and a cross-site simple request (form, text/plain, or a
// GET without a preflight-forcing header) never runs.
func TestGETAndCSRF(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	const admin = "example.test"
	bearer := map[string]string{"Authorization": "Bearer " + testAdminToken}
	create := func(slug string) string {
		return `mutation { createTenant(input: {organization: "Org ` + slug + `", slug: "` + slug + `", owner: {email: "o@x.test", name: "O", password: "password-long"}}) { tenant { slug } } }`
	}
	notCreated := func(what, slug string) {
		t.Helper()
		var n int
		if err := ta.control.Get(&n, `SELECT count(*) FROM tenants WHERE slug = $1`, slug); err != nil || n != 0 {
			t.Errorf("%s: the mutation ran (%d rows, %v)", what, n, err)
		}
	}

	// a query over GET, as Apollo Client sends it (Content-Type: application/json)
	r := mustOK(t, ta.get(t, admin, url.Values{"query": {`query Q($f: Int) { tenants(first: $f) { totalCount } }`},
		"variables": {`{"f": 5}`}, "operationName": {"Q"}}, bearer))
	if field(r.Data, "tenants", "totalCount") != float64(0) {
		t.Fatalf("GET query: %s", r.Raw)
	}
	// or with apollo-require-preflight and no content type
	req, _ := http.NewRequest("GET", ta.srv.URL+"/graphql?query="+url.QueryEscape("{ __typename }"), nil)
	req.Host = admin
	req.Header.Set("apollo-require-preflight", "true")
	mustOK(t, ta.send(t, req))
	// a plain GET (an <img> or a link) is refused
	req, _ = http.NewRequest("GET", ta.srv.URL+"/graphql?query="+url.QueryEscape("{ __typename }"), nil)
	req.Host = admin
	wantRefused(t, "plain GET", ta.send(t, req), 400, "GRAPHQL_VALIDATION_FAILED", "Cross-Site Request Forgery")

	// a mutation over GET is 405 and does not run
	r = ta.get(t, admin, url.Values{"query": {create("via-get")}}, bearer)
	wantRefused(t, "mutation over GET", r, 405, "GRAPHQL_VALIDATION_FAILED", "not allowed over GET")
	if r.Header.Get("Allow") != "POST" {
		t.Errorf("Allow = %q", r.Header.Get("Allow"))
	}
	notCreated("mutation over GET", "via-get")
	// also when it is picked by operationName out of a document with a query
	r = ta.get(t, admin, url.Values{"query": {"query Q { __typename } mutation M " + strings.TrimPrefix(create("via-get"), "mutation")},
		"operationName": {"M"}}, bearer)
	wantRefused(t, "named mutation over GET", r, 405, "GRAPHQL_VALIDATION_FAILED", "not allowed over GET")
	notCreated("named mutation over GET", "via-get")

	// cross-site simple POSTs do not run
	for _, c := range []struct {
		name, contentType, body string
		status                  int
		msg                     string
	}{
		{"text/plain", "text/plain;charset=UTF-8", jsonBody(create("via-text"), nil), 400, "Cross-Site Request Forgery"},
		{"form", "application/x-www-form-urlencoded", "query=" + url.QueryEscape(create("via-text")), 400, "Cross-Site Request Forgery"},
		{"multipart", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\n" + create("via-text") + "\r\n--b--\r\n", 400, "Cross-Site Request Forgery"},
		{"no content type", "", jsonBody(create("via-text"), nil), 400, "Cross-Site Request Forgery"},
		{"application/graphql", "application/graphql", create("via-text"), 415, "application/json"},
	} {
		h := map[string]string{"Authorization": "Bearer " + testAdminToken}
		if c.contentType != "" {
			h["Content-Type"] = c.contentType
		}
		wantRefused(t, c.name, ta.raw(t, "POST", admin, c.body, h), c.status, "GRAPHQL_VALIDATION_FAILED", c.msg)
	}
	// with a preflight-forcing header a text/plain body passes CSRF, and is still not JSON
	wantRefused(t, "text/plain with apollo-require-preflight", ta.raw(t, "POST", admin, jsonBody(create("via-text"), nil),
		map[string]string{"Content-Type": "text/plain", "apollo-require-preflight": "true", "Authorization": "Bearer " + testAdminToken}),
		415, "GRAPHQL_VALIDATION_FAILED", "application/json")
	notCreated("cross-site posts", "via-text")

	// other methods
	wantRefused(t, "PUT", ta.raw(t, "PUT", admin, jsonBody("{ __typename }", nil), map[string]string{"Content-Type": "application/json"}),
		405, "GRAPHQL_VALIDATION_FAILED", "method PUT")
}

// TestCORSAcrossTenants: each tenant host allows its own origins (and
// CORS_ORIGINS), never another tenant's, and never "*".
func TestCORSAcrossTenants(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"CORS_ORIGINS": "https://app.partner.test"})
	ta.createRoutedTenant(t, "corsa")
	ta.createRoutedTenant(t, "corsb")
	mustOK(t, ta.admin(t, `mutation { addTenantDomain(slug: "corsa", domain: "issues.corsa.org") { slug } }`, nil))
	q := jsonBody("{ organization { slug } }", nil)
	call := func(host, origin string) gqlResponse {
		h := map[string]string{"Content-Type": "application/json"}
		if origin != "" {
			h["Origin"] = origin
		}
		return ta.raw(t, "POST", host, q, h)
	}
	for _, c := range []struct {
		host, origin string
		allowed      bool
	}{
		{"corsa.example.test", "http://corsa.example.test:8080", true},
		{"corsa.example.test", "https://corsa.example.test", true},
		{"corsa.example.test", "https://issues.corsa.org", true},
		{"issues.corsa.org", "https://corsa.example.test", true},
		{"corsa.example.test", "https://app.partner.test", true},
		{"corsb.example.test", "https://app.partner.test", true},
		{"example.test", "http://example.test:8080", true},
		{"corsb.example.test", "https://corsa.example.test", false},
		{"corsb.example.test", "https://issues.corsa.org", false},
		{"corsa.example.test", "https://corsb.example.test", false},
		{"corsa.example.test", "https://example.test", false},
		{"example.test", "https://corsa.example.test", false},
		{"corsa.example.test", "https://evil.test", false},
	} {
		r := call(c.host, c.origin)
		acao := r.Header.Get("Access-Control-Allow-Origin")
		vary := strings.Join(r.Header.Values("Vary"), ",")
		switch {
		case !strings.Contains(vary, "Origin"):
			t.Errorf("%s from %s: no Vary: Origin (%v)", c.host, c.origin, r.Header)
		case c.allowed && (acao != c.origin || r.Status != 200):
			t.Errorf("%s from %s: want allowed, got HTTP %d ACAO %q %s", c.host, c.origin, r.Status, acao, r.Raw)
		case !c.allowed && (acao != "" || r.Status != 403 || r.Code() != "FORBIDDEN" || r.Data != nil):
			t.Errorf("%s from %s: want refused, got HTTP %d ACAO %q %s", c.host, c.origin, r.Status, acao, r.Raw)
		}
	}
	// without Origin (curl, a server) nothing changes
	if r := call("corsa.example.test", ""); r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no origin: HTTP %d %v", r.Status, r.Header)
	}

	// preflights through the whole stack
	preflight := func(host, origin string) *http.Response { return ta.preflight(t, host, origin) }
	resp := preflight("corsa.example.test", "http://corsa.example.test:5173")
	h := resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "http://corsa.example.test:5173" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "authorization") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "apollo-require-preflight") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "X-Request-Id") ||
		h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("own preflight: %d %v", resp.StatusCode, h)
	}
	if resp := preflight("corsb.example.test", "http://corsa.example.test"); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestCORSOnHostLevelRefusals: an unknown or suspended tenant's refusal
// carries CORS headers for the origins that may call that host (its own
// host name, CORS_ORIGINS), so the page can read the code; preflights to
// it from those origins pass; other origins get nothing.
func TestCORSOnHostLevelRefusals(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"CORS_ORIGINS": "https://app.partner.test"})
	ta.createRoutedTenant(t, "nap")
	mustOK(t, ta.admin(t, `mutation { suspendTenant(slug: "nap") { status } }`, nil))
	ta.waitRouted(t, "nap.example.test", 403)
	q := jsonBody("{ organization { slug } }", nil)
	for _, c := range []struct {
		host, origin, code string
		status             int
		allowed            bool
	}{
		{"nap.example.test", "https://app.partner.test", "TENANT_SUSPENDED", 403, true},
		{"nap.example.test", "http://nap.example.test:5173", "TENANT_SUSPENDED", 403, true},
		{"nap.example.test", "https://evil.test", "TENANT_SUSPENDED", 403, false},
		{"ghost.example.test", "https://app.partner.test", "TENANT_NOT_FOUND", 404, true},
		{"ghost.example.test", "https://ghost.example.test", "TENANT_NOT_FOUND", 404, true},
		{"ghost.example.test", "https://nap.example.test", "TENANT_NOT_FOUND", 404, false},
	} {
		r := ta.raw(t, "POST", c.host, q, map[string]string{"Content-Type": "application/json", "Origin": c.origin})
		acao := r.Header.Get("Access-Control-Allow-Origin")
		if r.Status != c.status || r.Code() != c.code {
			t.Errorf("%s from %s: HTTP %d %s", c.host, c.origin, r.Status, r.Raw)
		}
		if want := map[bool]string{true: c.origin, false: ""}[c.allowed]; acao != want {
			t.Errorf("%s from %s: Access-Control-Allow-Origin %q, want %q", c.host, c.origin, acao, want)
		}
		if c.allowed && !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
			t.Errorf("%s from %s: exposes %q", c.host, c.origin, r.Header.Get("Access-Control-Expose-Headers"))
		}
	}
	preflight := func(host, origin string) *http.Response { return ta.preflight(t, host, origin) }
	if resp := preflight("nap.example.test", "https://app.partner.test"); resp.StatusCode != 204 ||
		resp.Header.Get("Access-Control-Allow-Origin") != "https://app.partner.test" {
		t.Errorf("allowed preflight to a suspended tenant: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight("nap.example.test", "https://evil.test"); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign preflight to a suspended tenant: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestRateLimitPerTenant: a tenant over its bucket gets 429 RATE_LIMITED
// with Retry-After; other tenants and the admin host go on.
func TestRateLimitPerTenant(t *testing.T) {
	t.Parallel()
	const burst = 400
	// (the client's own buckets as large: this is the tenant's ceiling)
	ta := newTestApp(t, map[string]string{"RATE_LIMIT_RPS": "0.01", "RATE_LIMIT_BURST": "400",
		"RATE_LIMIT_ADDRESS_BURST": "400", "RATE_LIMIT_ANONYMOUS_BURST": "400"})
	ta.createRoutedTenant(t, "rla")
	ta.createRoutedTenant(t, "rlb")
	for i := range burst - 1 { // createRoutedTenant spent one
		if r := ta.do(t, "rla.example.test", "", `{ __typename }`, nil); r.Status != 200 {
			t.Fatalf("request %d within the burst: HTTP %d %s", i, r.Status, r.Raw)
		}
	}
	r := ta.do(t, "rla.example.test", "", `{ __typename }`, nil)
	wantRefused(t, "over the burst", r, 429, "RATE_LIMITED", "rate limit exceeded")
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q", ra)
	}
	mustOK(t, ta.do(t, "rlb.example.test", "", `{ __typename }`, nil))
	mustOK(t, ta.admin(t, `{ tenants { totalCount } }`, nil))
}

// TestRequestIDs: every answer carries X-Request-Id (the caller's when it
// is sane), and an internal error's message names it.
func TestRequestIDs(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	r := ta.raw(t, "POST", "example.test", jsonBody("{ __typename }", nil),
		map[string]string{"Content-Type": "application/json", "X-Request-Id": "client-chosen-1234"})
	if r.Header.Get("X-Request-Id") != "client-chosen-1234" {
		t.Errorf("caller's id not echoed: %v", r.Header)
	}
	for _, bad := range []string{"short", strings.Repeat("x", 65), "has spaces in it"} {
		req, _ := http.NewRequest("POST", ta.srv.URL+"/graphql", strings.NewReader(jsonBody("{ __typename }", nil)))
		req.Host = "example.test"
		req.Header.Set("Content-Type", "application/json")
		req.Header["X-Request-Id"] = []string{bad}
		r := ta.send(t, req)
		if id := r.Header.Get("X-Request-Id"); id == bad || len(id) < 8 {
			t.Errorf("id %q: answered %q", bad, id)
		}
	}
	// refusals carry one too
	for _, r := range []gqlResponse{
		ta.raw(t, "POST", "nope.example.test", jsonBody("{ __typename }", nil), map[string]string{"Content-Type": "application/json"}),
		ta.raw(t, "POST", "example.test", "[]", map[string]string{"Content-Type": "application/json"}),
	} {
		if r.Header.Get("X-Request-Id") == "" {
			t.Errorf("HTTP %d without X-Request-Id", r.Status)
		}
	}

	// an internal error: masked, with the request id, details in the log only
	var logs bytes.Buffer
	present := resolvers.Presenter(slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := edge.WithRequestID(context.Background(), "req-abcdef123")
	out := present(ctx, errors.New(`pq: relation "secret_table" does not exist`))
	if out.Message != "internal server error (request id req-abcdef123)" || out.Extensions["code"] != "INTERNAL_SERVER_ERROR" {
		t.Errorf("internal error presented as %q %v", out.Message, out.Extensions)
	}
	if !strings.Contains(logs.String(), "req-abcdef123") || !strings.Contains(logs.String(), "secret_table") {
		t.Errorf("log lacks the id or the detail: %s", logs.String())
	}
}

// TestIntrospectionAndSuggestions: off by default when DATABASE_URL is set
// (as in every test), each switchable.
func TestIntrospectionAndSuggestions(t *testing.T) {
	t.Parallel()
	prod := newTestApp(t, map[string]string{"INTROSPECTION": ""}) // the harness turns it on; back to the default
	r := prod.do(t, "example.test", "", `{ __schema { queryType { name } } }`, nil)
	if r.Code() != "GRAPHQL_VALIDATION_FAILED" || field(r.Data, "__schema") != nil || !strings.Contains(r.Raw, "introspection is disabled") {
		t.Errorf("introspection on by default with DATABASE_URL: %s", r.Raw)
	}
	r = prod.do(t, "example.test", "", `{ tenantz { totalCount } }`, nil)
	if r.Code() != "GRAPHQL_VALIDATION_FAILED" || strings.Contains(r.Raw, "Did you mean") {
		t.Errorf("suggestions on by default with DATABASE_URL: %s", r.Raw)
	}
	for _, q := range []string{`{ tenants(firstt: 1) { totalCount } }`, `{ tenants(status: READDY) { totalCount } }`,
		`query($s: TenantStatuss) { tenants(status: $s) { totalCount } }`, `{ tenants { totalCount edges } }`} {
		if r := prod.do(t, "example.test", "", q, nil); r.Code() != "GRAPHQL_VALIDATION_FAILED" || strings.Contains(r.Raw, "Did you mean") {
			t.Errorf("%s: %s", q, r.Raw)
		}
	}

	dev := newTestApp(t, map[string]string{"INTROSPECTION": "true", "FIELD_SUGGESTIONS": "true"})
	mustOK(t, dev.do(t, "example.test", "", `{ __schema { queryType { name } } }`, nil))
	if r := dev.do(t, "example.test", "", `{ tenantz { totalCount } }`, nil); !strings.Contains(r.Raw, `Did you mean \"tenants\"`) {
		t.Errorf("suggestions on: %s", r.Raw)
	}
	// the standard introspection query of GraphiQL fits the limits
	mustOK(t, dev.do(t, "example.test", "", introspectionQuery, nil))
}

// TestEdgeConfig: the defaults, and that bad values stop the server.
func TestEdgeConfig(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	dev, err := LoadConfig(env())
	if err != nil {
		t.Fatal(err)
	}
	prod, err := LoadConfig(env("DATABASE_URL", "postgres://x/y", "ADMIN_TOKEN", strings.Repeat("t", 32), "SECRET_KEY", strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	if !dev.Introspection || !dev.FieldSuggestions || prod.Introspection || prod.FieldSuggestions {
		t.Errorf("introspection/suggestions: dev %v/%v, prod %v/%v", dev.Introspection, dev.FieldSuggestions, prod.Introspection, prod.FieldSuggestions)
	}
	l := prod.Limits
	if l.MaxTokens != 5000 || l.MaxDepth != 15 || l.MaxAliases != 30 || l.MaxDirectivesPerField != 5 || l.MaxComplexity != 10000 ||
		prod.MaxBodyBytes != 1<<20 || prod.RateLimitRPS != 100 || prod.RateLimitBurst != 200 || prod.WSMaxPerTenant != 500 ||
		prod.WSInitTimeout.Seconds() != 10 || prod.WSKeepAlive.Seconds() != 15 || prod.ReadHeaderTimeout.Seconds() != 10 ||
		prod.ReadTimeout.Seconds() != 30 || prod.WriteTimeout.Seconds() != 60 || prod.IdleTimeout.Seconds() != 120 ||
		prod.UserCacheTTL.Seconds() != 5 || prod.DBIdleTimeout.Seconds() != 30 || prod.MaxListenConns != 16 {
		t.Errorf("defaults: %+v", prod)
	}
	off, err := LoadConfig(env("RATE_LIMIT_RPS", "0"))
	if err != nil || off.RateLimitRPS != 0 {
		t.Errorf("RATE_LIMIT_RPS=0: %v %v", off.RateLimitRPS, err)
	}
	for _, bad := range [][]string{
		{"MAX_DEPTH", "0"}, {"MAX_TOKENS", "-1"}, {"MAX_ALIASES", "x"}, {"MAX_COMPLEXITY", "2000000000"},
		{"MAX_BODY_BYTES", "0"}, {"RATE_LIMIT_RPS", "-1"}, {"RATE_LIMIT_RPS", "NaN"}, {"RATE_LIMIT_BURST", "0"},
		{"WS_MAX_CONNECTIONS_PER_TENANT", "0"}, {"HTTP_WRITE_TIMEOUT_SECONDS", "0"}, {"FIELD_SUGGESTIONS", "maybe"},
		{"USER_CACHE_SECONDS", "-1"}, {"USER_CACHE_SECONDS", "soon"}, {"DB_IDLE_TIMEOUT_SECONDS", "0"},
		{"MAX_LISTEN_CONNECTIONS", "0"}, {"MAX_LISTEN_CONNECTIONS", "64"}, {"MAX_DB_CONNECTIONS_PER_TENANT", "20"},
	} {
		if _, err := LoadConfig(env(bad...)); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%s=%s: err = %v", bad[0], bad[1], err)
		}
	}
}

// introspectionQuery is graphql-js's getIntrospectionQuery() as GraphiQL
// sends it.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}`
