package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tenantql/tenantql/internal/pgtest"
)

// Two replicas on one control database see the same fleet: a server added
// through one is listed and used by the other, a tenant placed there is
// routed by both, a move made through one switches both (mutations
// refused on both while MOVING, the new copy served by both after), a
// drain through one holds on the other, and a silent server is
// UNREACHABLE to both while the default server's tenants are served.
func TestTwoReplicasSeeTheSameFleet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	one := newTestApp(t, nil)
	two := one.secondProcess(t)
	b := pgtest.NewCluster(t)

	mustOK(t, one.admin(t, addServerMutation, map[string]any{"in": map[string]any{"name": "b", "url": b.ServerURL}}))
	if r := mustOK(t, two.admin(t, serversQuery, nil)); !strings.Contains(r.Raw, `"name":"b"`) {
		t.Fatalf("the second replica's databaseServers: %s", r.Raw)
	}
	// placed on b through the second replica, served by both
	mustOK(t, two.admin(t, createTenantMutation, map[string]any{"in": newTenantInput("shared", "b")}))
	two.waitStatus(t, "shared", "READY")
	owner := one.owner(t, "shared")
	owner.createProject(t, "SHR", "Shared")
	owner.createIssue(t, map[string]any{"projectKey": "SHR", "title": "made through one"})
	onTwo := two.as("shared", owner.token)
	if r := onTwo.must(t, `{ issues(first: 5) { totalCount } }`, nil); field(r.Data, "issues", "totalCount") != 1.0 {
		t.Fatalf("the second replica sees: %s", r.Raw)
	}
	createOn(t, one, "stay-home", "default")
	homeTok := one.login(t, "stay-home")

	// moved through the first replica: the second refuses mutations too,
	// and both serve the new copy after
	mustOK(t, one.admin(t, moveMutation, map[string]any{"s": "shared", "to": "default"}))
	// (the second replica learns of MOVING by NOTIFY, a few milliseconds
	// after the mutation returned: a write it admits before that lands on
	// the old copy before the freeze, and is copied)
	made, refusedOnTwo := 1, false
	deadline := time.Now().Add(time.Minute)
	for {
		if time.Now().After(deadline) {
			t.Fatal("still MOVING after a minute")
		}
		r := onTwo.do(t, `mutation { createIssue(input: { projectKey: "SHR", title: "made through two" }) { number } }`, nil)
		if r.Code() == "TENANT_MOVING" {
			refusedOnTwo = true
			time.Sleep(20 * time.Millisecond)
			continue
		}
		mustOK(t, r)
		made++
		if refusedOnTwo {
			break
		}
	}
	one.waitStatus(t, "shared", "READY")
	for name, app := range map[string]*testApp{"one": one, "two": two} {
		tn, err := app.registry.Get(ctx, "shared")
		if err != nil || tn.Server != "default" {
			t.Fatalf("replica %s routes shared to %v (%v)", name, tn, err)
		}
		r := app.as("shared", owner.token).must(t, `{ issues(first: 5) { totalCount } }`, nil)
		if field(r.Data, "issues", "totalCount") != float64(made) {
			t.Fatalf("replica %s after the move: %s", name, r.Raw)
		}
	}

	// drained through the second replica: the first places nothing there
	mustOK(t, two.admin(t, `mutation { drainDatabaseServer(name: "b") { status } }`, nil))
	if r := one.admin(t, createTenantMutation, map[string]any{"in": newTenantInput("nope", "b")}); r.Code() != "BAD_USER_INPUT" {
		t.Fatalf("create on b through the first replica after a drain through the second: %s", r.Raw)
	}
	mustOK(t, one.admin(t, `mutation { activateDatabaseServer(name: "b") { status } }`, nil))

	// b goes silent: both replicas refuse its tenant at once, serve the rest
	createOn(t, two, "on-b-too", "b")
	tokB := two.login(t, "on-b-too")
	b.Stop()
	for name, app := range map[string]*testApp{"one": one, "two": two} {
		app.servers.ProbeAll(ctx)
		if r := mustOK(t, app.admin(t, serversQuery, nil)); !strings.Contains(r.Raw, `"status":"UNREACHABLE"`) {
			t.Fatalf("replica %s's databaseServers with b stopped: %s", name, r.Raw)
		}
		start := time.Now()
		r := app.do(t, "on-b-too.example.test", tokB, `{ issues(first: 5) { totalCount } }`, nil)
		if r.Code() != "SERVICE_UNAVAILABLE" || time.Since(start) > 2*time.Second {
			t.Fatalf("replica %s, a tenant of the stopped server after %v: %s", name, time.Since(start), r.Raw)
		}
		mustOK(t, app.do(t, "stay-home.example.test", homeTok, `{ viewer { email } }`, nil))
	}
}
