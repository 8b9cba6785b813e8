package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/tenancy"
)

var testHosts = tenancy.Hosts{BaseDomain: "example.test", AdminHost: "example.test"}

func acme() *tenancy.Target {
	return &tenancy.Target{
		Tenant: &tenancy.Tenant{ID: uuid.New(), Slug: "acme", Domains: []string{"issues.acme.org"}},
		Host:   "acme.example.test",
	}
}

func TestOriginAllowed(t *testing.T) {
	t.Parallel()
	g := NewGuard(Options{Hosts: testHosts, CORSOrigins: []string{"https://app.partner.test"}})
	tenant := acme()
	admin := &tenancy.Target{Admin: true, Host: "example.test"}
	cases := []struct {
		target *tenancy.Target
		origin string
		want   bool
	}{
		{tenant, "http://acme.example.test", true},
		{tenant, "https://acme.example.test", true},
		{tenant, "http://acme.example.test:8080", true},
		{tenant, "https://ACME.Example.Test:5173", true},
		{tenant, "https://issues.acme.org", true},
		{tenant, "http://issues.acme.org:3000", true},
		{tenant, "https://app.partner.test", true},
		{tenant, "https://app.partner.test/", true},
		{tenant, "https://other.example.test", false}, // another tenant
		{tenant, "https://example.test", false},       // the admin host is not the tenant's
		{tenant, "https://evil.test", false},
		{tenant, "https://acme.example.test.evil.test", false},
		{tenant, "https://evilacme.example.test", false},
		{tenant, "https://x.issues.acme.org", false},
		{tenant, "ftp://acme.example.test", false},
		{tenant, "null", false},
		{tenant, "*", false},
		{tenant, "https://user@acme.example.test", false},
		{tenant, "https://acme.example.test/path", false},
		{tenant, "http://app.partner.test", false}, // CORS_ORIGINS match exactly, scheme included
		{admin, "http://example.test:8080", true},
		{admin, "https://app.partner.test", true},
		{admin, "https://acme.example.test", false},
		{nil, "https://example.test", false},
	}
	for _, c := range cases {
		if got := g.OriginAllowed(c.target, c.origin); got != c.want {
			name := "admin"
			if c.target != nil && c.target.Tenant != nil {
				name = c.target.Tenant.Slug
			}
			t.Errorf("OriginAllowed(%s, %q) = %v, want %v", name, c.origin, got, c.want)
		}
	}
}

// serve runs one request through a Guard in front of a handler that
// answers 200 "ran" and reports whether it ran.
func serve(g *Guard, target *tenancy.Target, r *http.Request) (*httptest.ResponseRecorder, bool) {
	ran := false
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran = true
		w.WriteHeader(http.StatusOK)
	}))
	if target != nil {
		r = r.WithContext(tenancy.WithTarget(r.Context(), target))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w, ran
}

func code(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
		t.Fatalf("want one GraphQL error, got %q (%v)", w.Body.String(), err)
	}
	c, _ := body.Errors[0].Extensions["code"].(string)
	return c
}

func TestCSRFAndTransports(t *testing.T) {
	t.Parallel()
	g := NewGuard(Options{Hosts: testHosts})
	cases := []struct {
		name, method, contentType string
		headers                   map[string]string
		status                    int // 0: passes to the handler
		code                      string
	}{
		{name: "json POST", method: "POST", contentType: "application/json"},
		{name: "json POST with charset", method: "POST", contentType: "application/json; charset=utf-8"},
		{name: "text/plain POST", method: "POST", contentType: "text/plain", status: 400, code: apierr.ValidationFailed},
		{name: "text/plain with parameters", method: "POST", contentType: "text/plain; charset=utf-8; x=y", status: 400, code: apierr.ValidationFailed},
		{name: "TEXT/PLAIN upper case", method: "POST", contentType: " TEXT/PLAIN ", status: 400, code: apierr.ValidationFailed},
		{name: "form POST", method: "POST", contentType: "application/x-www-form-urlencoded", status: 400, code: apierr.ValidationFailed},
		{name: "multipart POST", method: "POST", contentType: "multipart/form-data; boundary=x", status: 400, code: apierr.ValidationFailed},
		{name: "POST without content type", method: "POST", status: 400, code: apierr.ValidationFailed},
		{name: "text/plain with apollo-require-preflight: passes CSRF, still not JSON", method: "POST", contentType: "text/plain",
			headers: map[string]string{"apollo-require-preflight": "true"}, status: 415, code: apierr.ValidationFailed},
		{name: "form with x-apollo-operation-name", method: "POST", contentType: "application/x-www-form-urlencoded",
			headers: map[string]string{"x-apollo-operation-name": "Q"}, status: 415, code: apierr.ValidationFailed},
		{name: "empty preflight header does not count", method: "POST", contentType: "text/plain",
			headers: map[string]string{"apollo-require-preflight": ""}, status: 400, code: apierr.ValidationFailed},
		{name: "application/graphql POST", method: "POST", contentType: "application/graphql", status: 415, code: apierr.ValidationFailed},
		{name: "plain GET", method: "GET", status: 400, code: apierr.ValidationFailed},
		{name: "GET with text/plain", method: "GET", contentType: "text/plain", status: 400, code: apierr.ValidationFailed},
		{name: "GET with application/json (Apollo Client)", method: "GET", contentType: "application/json"},
		{name: "GET with apollo-require-preflight", method: "GET", headers: map[string]string{"apollo-require-preflight": "true"}},
		{name: "GET with x-apollo-operation-name", method: "GET", headers: map[string]string{"x-apollo-operation-name": "Q"}},
		{name: "websocket upgrade needs no preflight header", method: "GET",
			headers: map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}},
		{name: "PUT", method: "PUT", contentType: "application/json", status: 405, code: apierr.ValidationFailed},
		{name: "DELETE", method: "DELETE", status: 405, code: apierr.ValidationFailed},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, "http://acme.example.test/graphql?query=%7B__typename%7D", strings.NewReader(`{"query":"{ __typename }"}`))
		if c.contentType != "" {
			r.Header.Set("Content-Type", c.contentType)
		}
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		w, ran := serve(g, acme(), r)
		switch {
		case c.status == 0 && !ran:
			t.Errorf("%s: refused with %d %s", c.name, w.Code, w.Body)
		case c.status != 0 && ran:
			t.Errorf("%s: reached the handler", c.name)
		case c.status != 0 && (w.Code != c.status || code(t, w) != c.code):
			t.Errorf("%s: got %d %s, want %d %s", c.name, w.Code, w.Body, c.status, c.code)
		}
		if c.status == 405 && w.Header().Get("Allow") != "GET, POST, OPTIONS" {
			t.Errorf("%s: Allow = %q", c.name, w.Header().Get("Allow"))
		}
	}
}

func TestBodyLimitAndBatching(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	g := NewGuard(Options{Hosts: testHosts})
	query := `{"query":"{ __typename }"}`
	pad := func(n int) string { return query + strings.Repeat(" ", n-len(query)) }
	cases := []struct {
		name   string
		body   string
		chunk  bool // hide the length: read through MaxBytesReader
		status int
		code   string
	}{
		{name: "exactly the limit", body: pad(limit)},
		{name: "exactly the limit, chunked", body: pad(limit), chunk: true},
		{name: "one byte over", body: pad(limit + 1), status: 413, code: apierr.QueryTooComplex},
		{name: "one byte over, chunked", body: pad(limit + 1), chunk: true, status: 413, code: apierr.QueryTooComplex},
		{name: "batch", body: `[{"query":"{ __typename }"},{"query":"{ __typename }"}]`, status: 400, code: apierr.ValidationFailed},
		{name: "batch after whitespace", body: " \n\t[{\"query\":\"{ __typename }\"}]", status: 400, code: apierr.ValidationFailed},
		{name: "not JSON", body: `query { __typename }`, status: 400, code: apierr.ValidationFailed},
		{name: "broken JSON", body: `{"query":`, status: 400, code: apierr.ValidationFailed},
		{name: "two objects", body: query + query, status: 400, code: apierr.ValidationFailed},
		{name: "empty", body: "", status: 400, code: apierr.ValidationFailed},
	}
	for _, c := range cases {
		var body = bytes.NewReader([]byte(c.body))
		r := httptest.NewRequest("POST", "http://acme.example.test/graphql", body)
		if c.chunk {
			r.ContentLength = -1
		}
		r.Header.Set("Content-Type", "application/json")
		var got []byte
		h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			buf := new(bytes.Buffer)
			_, _ = buf.ReadFrom(r.Body)
			got = buf.Bytes()
		}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r.WithContext(tenancy.WithTarget(r.Context(), acme())))
		switch {
		case c.status == 0 && string(got) != c.body:
			t.Errorf("%s: handler got %d bytes (status %d %s), want the body back", c.name, len(got), w.Code, w.Body)
		case c.status != 0 && (w.Code != c.status || code(t, w) != c.code || got != nil):
			t.Errorf("%s: got %d %s (handler ran: %v), want %d %s", c.name, w.Code, w.Body, got != nil, c.status, c.code)
		}
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	g := NewGuard(Options{Hosts: testHosts, CORSOrigins: []string{"https://app.partner.test"}})

	// preflight from the tenant's own origin
	r := httptest.NewRequest("OPTIONS", "http://acme.example.test/graphql", nil)
	r.Header.Set("Origin", "http://acme.example.test:5173")
	r.Header.Set("Access-Control-Request-Method", "POST")
	r.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	w, ran := serve(g, acme(), r)
	h := w.Header()
	if ran || w.Code != 204 || h.Get("Access-Control-Allow-Origin") != "http://acme.example.test:5173" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "apollo-require-preflight") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
		h.Get("Access-Control-Allow-Credentials") != "" || !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
		t.Fatalf("preflight: ran %v, %d %v", ran, w.Code, h)
	}

	// preflight from another tenant's origin: 403, nothing allowed
	r = httptest.NewRequest("OPTIONS", "http://acme.example.test/graphql", nil)
	r.Header.Set("Origin", "https://other.example.test")
	r.Header.Set("Access-Control-Request-Method", "POST")
	w, ran = serve(g, acme(), r)
	if ran || w.Code != 403 || w.Header().Get("Access-Control-Allow-Origin") != "" || code(t, w) != apierr.Forbidden {
		t.Fatalf("foreign preflight: %d %v %s", w.Code, w.Header(), w.Body)
	}

	// a request from an allowed origin carries the origin, never "*"
	for _, origin := range []string{"https://issues.acme.org", "https://app.partner.test"} {
		r = httptest.NewRequest("POST", "http://acme.example.test/graphql", strings.NewReader(`{"query":"{ __typename }"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Origin", origin)
		w, ran = serve(g, acme(), r)
		if !ran || w.Header().Get("Access-Control-Allow-Origin") != origin || w.Header().Get("Vary") != "Origin" ||
			!strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "X-Request-Id") {
			t.Fatalf("origin %s: ran %v %d %v", origin, ran, w.Code, w.Header())
		}
	}

	// a request from a foreign origin is refused before it runs; without
	// Origin (curl, servers) it passes with no CORS header
	r = httptest.NewRequest("POST", "http://acme.example.test/graphql", strings.NewReader(`{"query":"{ __typename }"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Origin", "https://evil.test")
	if w, ran := serve(g, acme(), r); ran || w.Code != 403 || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin: ran %v %d %v", ran, w.Code, w.Header())
	}
	r = httptest.NewRequest("POST", "http://acme.example.test/graphql", strings.NewReader(`{"query":"{ __typename }"}`))
	r.Header.Set("Content-Type", "application/json")
	if w, ran := serve(g, acme(), r); !ran || w.Header().Get("Access-Control-Allow-Origin") != "" || w.Header().Get("Vary") != "Origin" {
		t.Fatalf("no origin: ran %v %d %v", ran, w.Code, w.Header())
	}

	// a websocket upgrade from a foreign origin is refused before the upgrade
	r = httptest.NewRequest("GET", "http://acme.example.test/graphql", nil)
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Origin", "https://other.example.test")
	if w, ran := serve(g, acme(), r); ran || w.Code != 403 {
		t.Fatalf("foreign websocket: ran %v %d", ran, w.Code)
	}
	r.Header.Set("Origin", "https://acme.example.test")
	if _, ran := serve(g, acme(), r); !ran {
		t.Fatal("own-origin websocket refused")
	}
}

func TestRateLimitPerTenant(t *testing.T) {
	t.Parallel()
	// (the client's own buckets larger: this is the tenant's ceiling)
	g := NewGuard(Options{Hosts: testHosts, RateLimit: 0.001, RateBurst: 3,
		AddressRateLimit: 0.001, AddressRateBurst: 100, AnonymousRateLimit: 0.001, AnonymousRateBurst: 100})
	a, b := acme(), acme() // two tenants (different ids)
	post := func(target *tenancy.Target) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "http://acme.example.test/graphql", strings.NewReader(`{"query":"{ __typename }"}`))
		r.Header.Set("Content-Type", "application/json")
		w, _ := serve(g, target, r)
		return w
	}
	for i := range 3 {
		if w := post(a); w.Code != 200 {
			t.Fatalf("request %d within the burst: %d %s", i, w.Code, w.Body)
		}
	}
	w := post(a)
	if w.Code != 429 || code(t, w) != apierr.RateLimited {
		t.Fatalf("over the burst: %d %s", w.Code, w.Body)
	}
	if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After = %q", ra)
	}
	// another tenant is not affected
	if w := post(b); w.Code != 200 {
		t.Fatalf("other tenant: %d", w.Code)
	}
	// the admin host has its own bucket too
	admin := &tenancy.Target{Admin: true}
	for range 3 {
		post(admin)
	}
	if w := post(admin); w.Code != 429 {
		t.Fatalf("admin over the burst: %d", w.Code)
	}
}

func TestBucketsAreBounded(t *testing.T) {
	t.Parallel()
	b := newBuckets(1, 1, 100)
	now := time.Now()
	for i := range 10000 {
		b.take(fmt.Sprintf("tenant-%d", i), now)
	}
	if n := b.len(); n != 100 {
		t.Fatalf("kept %d buckets, want 100", n)
	}
	// a refill: a bucket that waited long enough has a token again
	if _, _, ok := b.take("t", now); !ok {
		t.Fatal("first token refused")
	}
	if _, wait, ok := b.take("t", now); ok || wait <= 0 || wait > time.Second {
		t.Fatalf("second token: ok %v wait %v", ok, wait)
	}
	if _, _, ok := b.take("t", now.Add(time.Second)); !ok {
		t.Fatal("token after the refill refused")
	}
}

func TestWebsocketCap(t *testing.T) {
	t.Parallel()
	c := newConnCounts(2)
	if !c.acquire("a") || !c.acquire("a") || c.acquire("a") {
		t.Fatal("cap of 2 not kept")
	}
	if !c.acquire("b") {
		t.Fatal("another tenant refused")
	}
	c.release("a")
	if !c.acquire("a") {
		t.Fatal("released slot not reusable")
	}
	c.release("a")
	c.release("a")
	c.release("b")
	if len(c.open) != 0 {
		t.Fatalf("counts left behind: %v", c.open)
	}

	// through the guard: the third concurrent upgrade of a tenant is 429
	g := NewGuard(Options{Hosts: testHosts, MaxWebsockets: 2})
	target := acme()
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release // a connection held open
	}))
	upgrade := func() *http.Request {
		r := httptest.NewRequest("GET", "http://acme.example.test/graphql", nil)
		r.Header.Set("Upgrade", "websocket")
		return r.WithContext(tenancy.WithTarget(context.Background(), target))
	}
	done := make(chan struct{})
	for range 2 {
		go func() {
			h.ServeHTTP(httptest.NewRecorder(), upgrade())
			done <- struct{}{}
		}()
	}
	<-started
	<-started
	w := httptest.NewRecorder()
	h.ServeHTTP(w, upgrade())
	if w.Code != 429 || code(t, w) != apierr.RateLimited || w.Header().Get("Retry-After") == "" {
		t.Fatalf("third websocket: %d %s", w.Code, w.Body)
	}
	close(release)
	<-done
	<-done
	if n := g.websockets.count(target.Tenant.ID.String()); n != 0 {
		t.Fatalf("%d slots still taken after the connections closed", n)
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	g := NewGuard(Options{Hosts: testHosts})
	h := RequestID(AccessLog(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(tenancy.WithTarget(r.Context(), acme()))
		g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTeapot)
		})).ServeHTTP(w, r)
	})))
	r := httptest.NewRequest("POST", "http://acme.example.test/graphql?variables=secret-password", strings.NewReader(`{"query":"{ __typename }"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer secret-token")
	r.Header.Set("X-Request-Id", "req-12345678")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Header().Get("X-Request-Id") != "req-12345678" {
		t.Fatalf("X-Request-Id not echoed: %v", w.Header())
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	want := map[string]any{"msg": "request", "method": "POST", "path": "/graphql", "host": "acme.example.test",
		"status": float64(418), "tenant": "acme", "request_id": "req-12345678"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log %s = %v, want %v (%s)", k, line[k], v, buf.String())
		}
	}
	if _, ok := line["duration"]; !ok {
		t.Errorf("no duration: %s", buf.String())
	}
	if strings.Contains(buf.String(), "secret") {
		t.Errorf("log leaks a secret: %s", buf.String())
	}
}

// FuzzOriginAllowed: whatever the Origin header says, it is allowed only
// when it is in CORSOrigins or its host is one of the tenant's own names.
func FuzzOriginAllowed(f *testing.F) {
	for _, s := range []string{"http://acme.example.test", "https://issues.acme.org:8443", "https://app.partner.test",
		"http://acme.example.test@evil.test", "http://evil.test#acme.example.test", "http://[::1]", "http://acme.example.test.",
		"HTTPS://ACME.EXAMPLE.TEST", "http://acme.example.test%2eevil.test", "//acme.example.test", "null"} {
		f.Add(s)
	}
	g := NewGuard(Options{Hosts: testHosts, CORSOrigins: []string{"https://app.partner.test"}})
	target := acme()
	f.Fuzz(func(t *testing.T, origin string) {
		if !g.OriginAllowed(target, origin) {
			return
		}
		o := strings.TrimSuffix(strings.ToLower(origin), "/")
		if o == "https://app.partner.test" {
			return
		}
		u, err := url.Parse(o)
		if err != nil {
			t.Fatalf("allowed an unparsable origin %q", origin)
		}
		host := strings.TrimSuffix(u.Hostname(), ".")
		if (u.Scheme != "http" && u.Scheme != "https") || (host != "acme.example.test" && host != "issues.acme.org") {
			t.Fatalf("allowed %q (scheme %q, host %q)", origin, u.Scheme, host)
		}
	})
}

// TestClientBuckets: under the tenant's ceiling, an address without a
// token has a bucket of its own, and the tenant's calls without a token
// together have a share, so that an anonymous flood, from one address or
// many, leaves requests to the signed-in users; each user has a bucket
// too; an IPv6 client counts by its /64; a refused request spends nothing.
func TestClientBuckets(t *testing.T) {
	t.Parallel()
	g := NewGuard(Options{Hosts: testHosts, RateLimit: 0.001, RateBurst: 100, UserRateBurst: 30})
	tenant := acme()
	anon := func(addr string) Client { return Client{Addr: addr} }
	spend := func(c Client, n int) (ok int) {
		for range n {
			if g.Take(tenant, c) == nil {
				ok++
			}
		}
		return ok
	}
	// a quarter of the tenant's burst per address, half for them all
	if n := spend(anon("203.0.113.1"), 100); n != 25 {
		t.Fatalf("one address got %d requests, want 25", n)
	}
	if ref := g.Take(tenant, anon("203.0.113.1")); ref == nil || !strings.Contains(ref.Message, "each client address without a token") || ref.RetryAfterSeconds() < 1 {
		t.Fatalf("over the address's bucket: %+v", ref)
	}
	if n := spend(anon("203.0.113.2"), 100) + spend(anon("203.0.113.3"), 100); n != 25 {
		t.Fatalf("two more addresses got %d requests, want the 25 left of the anonymous share", n)
	}
	// the signed-in users still have the other half of the tenant's bucket
	if n := spend(Client{User: "u1", Addr: "203.0.113.1"}, 40); n != 30 {
		t.Fatalf("a user got %d requests, want its burst of 30", n)
	}
	if n := spend(Client{User: "u2"}, 40); n != 20 {
		t.Fatalf("another user got %d requests, want the 20 left of the tenant's", n)
	}
	if ref := g.Take(tenant, Client{User: "u3"}); ref == nil || !strings.Contains(ref.Message, "this organization") {
		t.Fatalf("over the tenant's bucket: %+v", ref)
	}
	// IPv6: one /64 is one client
	g = NewGuard(Options{Hosts: testHosts, RateLimit: 0.001, RateBurst: 8})
	if n := spend(anon("2001:db8:1:2::1"), 1) + spend(anon("2001:db8:1:2:ffff::9"), 5); n != 2 {
		t.Fatalf("one /64 got %d requests, want 2", n)
	}
	if n := spend(anon("2001:db8:1:3::1"), 5); n != 2 {
		t.Fatalf("another /64 got %d requests, want 2", n)
	}
}

// TestIdleBucketsAreForgotten: a bucket unused for as long as it takes to
// refill is dropped, so client buckets do not pile up.
func TestIdleBucketsAreForgotten(t *testing.T) {
	t.Parallel()
	b := newBuckets(10, 20, 1000) // full again after 2 s
	now := time.Now()
	for i := range 500 {
		b.take(fmt.Sprintf("client-%d", i), now)
	}
	b.take("late", now.Add(1500*time.Millisecond))
	if n := b.len(); n != 501 {
		t.Fatalf("kept %d buckets before any was idle 2 s, want 501", n)
	}
	b.take("later", now.Add(2100*time.Millisecond))
	if n := b.len(); n != 2 {
		t.Fatalf("kept %d buckets, want the 2 used within 2 s", n)
	}
}
