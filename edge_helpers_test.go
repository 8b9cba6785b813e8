package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantql/tenantql/internal/gqlclient"
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
func jsonBody(query string, vars map[string]any) string { return string(gqlclient.Body(query, vars)) }

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
