package main

import (
	"context"
	"testing"
)

const usageQuery = `query($s: String!) { tenant(slug: $s) { usage {
  requestsLastHour requestsLastDay errorsLastDay p95LatencyMs databaseBytes users lastRequestAt requestsByHour } } }`

// TestTenantUsageAddsUpAcrossReplicas: requests to a tenant host through
// two processes, some failing (a GraphQL error in a 200 answer, an HTTP
// 400), show in Tenant.usage once both flushed: every request once, the
// failures as errors, requests to the admin host not at all; the
// database's size and users are there.
func TestTenantUsageAddsUpAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ta := newTestApp(t, nil)
	second := ta.secondProcess(t)
	ta.createTenant(t, "metered", false)
	host := "metered.example.test"
	token := ta.login(t, "metered") // one request
	flush := func() {
		t.Helper()
		for _, a := range []*testApp{ta, second} {
			if err := a.usage.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	flush()
	before := mustOK(t, ta.admin(t, usageQuery, map[string]any{"s": "metered"}))
	if n := field(before.Data, "tenant", "usage", "requestsLastHour"); n != float64(1) {
		t.Fatalf("after the login: requestsLastHour = %v, want 1: %s", n, before.Raw)
	}

	for _, a := range []*testApp{ta, second, second} {
		mustOK(t, a.do(t, host, token, `{ viewer { email } }`, nil))
	}
	if r := second.do(t, host, "", `{ viewer { email } }`, nil); r.Code() != "UNAUTHENTICATED" {
		t.Fatalf("want UNAUTHENTICATED, got %s", r.Raw)
	}
	if r := ta.raw(t, "POST", host, `{"query": `, nil); r.Status != 400 {
		t.Fatalf("want 400 for a broken body, got %d", r.Status)
	}
	mustOK(t, ta.admin(t, `{ tenants(first: 5) { totalCount } }`, nil)) // the admin host: not the tenant's
	flush()

	r := mustOK(t, second.admin(t, usageQuery, map[string]any{"s": "metered"}))
	u, _ := field(r.Data, "tenant", "usage").(map[string]any)
	if u["requestsLastHour"] != float64(6) || u["requestsLastDay"] != float64(6) || u["errorsLastDay"] != float64(2) {
		t.Fatalf("usage %v, want 6 requests in the hour and day, 2 errors", u)
	}
	if byHour, _ := u["requestsByHour"].([]any); len(byHour) != 24 || byHour[23] != float64(6) {
		t.Fatalf("requestsByHour %v, want 24 hours, the last with the 6 requests", u["requestsByHour"])
	}
	if u["p95LatencyMs"] == nil || u["lastRequestAt"] == nil {
		t.Fatalf("usage %v: no p95 or last request", u)
	}
	if u["users"] != float64(1) || u["databaseBytes"].(float64) < 1<<20 {
		t.Fatalf("usage %v: want 1 user and a database of some MB", u)
	}
}
