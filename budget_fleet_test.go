package main

import (
	"testing"

	"github.com/tenantql/tenantql/internal/pgtest"
)

// The connection budget is per database server: with every connection of
// the default server's budget in use, a tenant on another server is still
// answered at once, and the per-server gauge shows where the connections
// are.
func TestFullServerDoesNotStarveAnother(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"MAX_DB_CONNECTIONS": "2", "MAX_DB_CONNECTIONS_PER_TENANT": "2"})
	b := pgtest.NewCluster(t)
	mustOK(t, ta.admin(t, addServerMutation, map[string]any{"in": map[string]any{"name": "b", "url": b.ServerURL}}))
	for _, s := range []string{"full-one", "full-two", "full-three"} {
		createOn(t, ta, s, "default")
	}
	createOn(t, ta, "elsewhere", "b")
	tok := ta.login(t, "elsewhere")
	tok3 := ta.login(t, "full-three")

	// two tenants of the default server hold its whole budget, in use
	ta.holdConnections(t, "full-one", "full-two")
	if n := ta.metric(t, `tenantql_tenant_connections_open_by_server{server="default"}`); n != 2 {
		t.Fatalf("default's open connections: %v, want its whole budget, 2", n)
	}

	// (default's connections stay in use to the end: with one budget for
	// all, this request would wait AcquireTimeout and be refused)
	mustOK(t, ta.do(t, "elsewhere.example.test", tok, `{ issues(first: 5) { totalCount } }`, nil))
	if n := ta.metric(t, `tenantql_tenant_connections_open_by_server{server="b"}`); n < 1 || n > 2 {
		t.Fatalf("b's open connections: %v, want 1 or 2", n)
	}
	// and the default server's budget still holds: a third tenant there
	// waits and is refused, as before
	if r := ta.do(t, "full-three.example.test", tok3, `{ viewer { email } }`, nil); r.Code() != "SERVICE_UNAVAILABLE" {
		t.Fatalf("a third tenant of the full default server: HTTP %d %s, want SERVICE_UNAVAILABLE", r.Status, r.Raw)
	}
}
