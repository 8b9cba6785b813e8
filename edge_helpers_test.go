package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// raw sends a request to /graphql on host with the given method, body and
// headers (nothing is set implicitly).
func (ta *testApp) raw(t testing.TB, method, host, body string, headers map[string]string) gqlResponse {
	t.Helper()
	req, err := http.NewRequest(method, ta.srv.URL+"/graphql", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return ta.send(t, req)
}

// get sends GET /graphql?params to host, with Content-Type: application/json
// as Apollo Client does (so CSRF prevention lets it through), and headers.
func (ta *testApp) get(t testing.TB, host string, params url.Values, headers map[string]string) gqlResponse {
	t.Helper()
	req, _ := http.NewRequest("GET", ta.srv.URL+"/graphql?"+params.Encode(), nil)
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return ta.send(t, req)
}

// jsonBody encodes a GraphQL request body.
func jsonBody(query string, vars map[string]any) string {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return string(b)
}

// sqlWatch tells whether anything ran SQL on a tenant's database since it
// was started: PostgreSQL updates pg_stat_activity.state_change
// synchronously as a backend starts and finishes each statement, and a new
// connection has a later backend_start.
type sqlWatch struct {
	ta    *testApp
	db    string
	since time.Time
}

func (ta *testApp) watchSQL(t testing.TB, slug string) *sqlWatch {
	t.Helper()
	tn, err := ta.registry.Get(context.Background(), slug)
	if err != nil {
		t.Fatal(err)
	}
	w := &sqlWatch{ta: ta, db: tn.DBName}
	w.reset(t)
	return w
}

func (w *sqlWatch) reset(t testing.TB) {
	t.Helper()
	if err := w.ta.control.Get(&w.since, `SELECT clock_timestamp()`); err != nil {
		t.Fatal(err)
	}
}

// ran reports whether any statement ran on the database since the last reset.
func (w *sqlWatch) ran(t testing.TB) bool {
	t.Helper()
	var n int
	const q = `SELECT count(*) FROM pg_stat_activity
		WHERE datname = $1 AND (backend_start > $2 OR state_change > $2 OR state = 'active')`
	if err := w.ta.control.Get(&n, q, w.db, w.since); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// wantRefused fails unless r is a refusal with status and code whose
// message contains want.
func wantRefused(t testing.TB, what string, r gqlResponse, status int, code, want string) {
	t.Helper()
	if r.Status != status || r.Code() != code || len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Message, want) || r.Data != nil {
		t.Errorf("%s: got HTTP %d %s; want %d %s containing %q", what, r.Status, r.Raw, status, code, want)
	}
}

// createRoutedTenant creates a READY tenant and waits until this process
// routes its host (the router learns of it through LISTEN/NOTIFY). The
// wait spends one request of the tenant's rate limit.
func (ta *testApp) createRoutedTenant(t testing.TB, slug string) {
	t.Helper()
	ta.createTenant(t, slug, false)
	ta.waitRouted(t, slug+".example.test", 200)
}

// preflight sends a CORS preflight for a POST with Apollo's headers from
// origin to host's /graphql and returns the answer (body closed).
func (ta *testApp) preflight(t testing.TB, host, origin string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("OPTIONS", ta.srv.URL+"/graphql", nil)
	req.Host = host
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,apollo-require-preflight")
	resp, err := ta.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
