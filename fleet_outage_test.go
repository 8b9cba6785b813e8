package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tenantql/tenantql/internal/pgtest"
)

// A database server that goes down is UNREACHABLE: its tenants are refused
// at once with SERVICE_UNAVAILABLE while the default server's are served;
// when it comes back it is ACTIVE again and its tenants are served, with
// their data, without a restart of tenantql.
func TestServerOutageAndReturn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ta := newTestApp(t, nil)
	b := pgtest.NewCluster(t)
	mustOK(t, ta.admin(t, addServerMutation, map[string]any{"in": map[string]any{"name": "b", "url": b.ServerURL}}))
	createOn(t, ta, "out-b", "b")
	createOn(t, ta, "out-home", "default")
	owner := ta.owner(t, "out-b")
	owner.createProject(t, "OUT", "Outage")
	owner.createIssue(t, map[string]any{"projectKey": "OUT", "title": "kept through the outage"})
	homeTok := ta.login(t, "out-home")

	if err := b.Down(); err != nil {
		t.Fatal(err)
	}
	ta.servers.ProbeAll(ctx)
	r := mustOK(t, ta.admin(t, serversQuery, nil))
	if !strings.Contains(r.Raw, `"status":"UNREACHABLE"`) {
		t.Fatalf("databaseServers with b down: %s", r.Raw)
	}
	for range 3 {
		start := time.Now()
		r := owner.do(t, `{ issues(first: 5) { totalCount } }`, nil)
		took := time.Since(start)
		if r.Code() != "SERVICE_UNAVAILABLE" || took > 2*time.Second {
			t.Fatalf("a tenant of the server that is down, after %v: %s", took, r.Raw)
		}
		t.Logf("a request for a tenant of the server that is down: refused in %v", took)
		mustOK(t, ta.do(t, "out-home.example.test", homeTok, `{ viewer { email } }`, nil))
	}

	upCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := b.Up(upCtx); err != nil {
		t.Fatal(err)
	}
	// ACTIVE again at the first probe once it answers, though the probe's
	// handle still holds connections that died with the server
	ta.servers.ProbeAll(ctx)
	r = mustOK(t, ta.admin(t, serversQuery, nil))
	if strings.Contains(r.Raw, `"status":"UNREACHABLE"`) {
		t.Fatalf("databaseServers with b back: %s", r.Raw)
	}
	// its pool's connections died with the server: the first request may
	// find one broken, then the tenant is served again
	deadline := time.Now().Add(30 * time.Second)
	for failed := 0; ; failed++ {
		r := owner.do(t, `{ issues(first: 5) { totalCount } }`, nil)
		if r.Status == 200 && len(r.Errors) == 0 {
			if field(r.Data, "issues", "totalCount") != 1.0 {
				t.Fatalf("after the outage: %s", r.Raw)
			}
			t.Logf("%d requests failed after b came back", failed)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tenant of b is not served 30 s after b came back: %s", r.Raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	owner.createIssue(t, map[string]any{"projectKey": "OUT", "title": "after the outage"})
}
