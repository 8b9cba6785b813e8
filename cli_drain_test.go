package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tenantql/tenantql/internal/pgtest"
	"github.com/tenantql/tenantql/tenancy"
)

// TestCLIDrainMove: `tenantql servers drain b --move` drains b and moves
// every READY tenant on it, with its data, to the ACTIVE server; a
// SUSPENDED tenant is reported (b cannot be removed yet) and the others
// still move; once it is resumed, running the command again moves it too,
// and b can be removed. A tenant of the default server is not touched.
func TestCLIDrainMove(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	b := pgtest.NewCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli := func(args ...string) (string, error) {
		var out strings.Builder
		err := ta.app.serversCLI(ctx, &out, args)
		return out.String(), err
	}
	if out, err := cli("add", "b", b.ServerURL); err != nil {
		t.Fatalf("add: %q %v", out, err)
	}
	createOn(t, ta, "drain-stay", "default")
	keys := map[string]string{"drain-one": "ONE", "drain-two": "TWO", "drain-three": "THREE"}
	for slug, key := range keys {
		createOn(t, ta, slug, "b")
		ta.owner(t, slug).createProject(t, key, "Project of "+slug)
	}
	mustOK(t, ta.admin(t, `mutation { suspendTenant(slug: "drain-three") { status } }`, nil))

	out, err := cli("drain", "b", "--move", "-p", "2")
	if err == nil || !strings.Contains(err.Error(), "1 tenant(s) could not be moved off b") {
		t.Fatalf("drain --move with a SUSPENDED tenant: %v\n%s", err, out)
	}
	for _, want := range []string{"b is DRAINING\n", "moving 3 tenant(s) off b, 2 at a time",
		"2 of 3 tenant(s) moved off b, 1 failed", "FAILED drain-three: ", "SUSPENDED"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, slug := range []string{"drain-one", "drain-two", "drain-stay"} {
		assertReadyWithData(t, ta, slug, keys[slug])
	}
	if got := tenantServer(t, ta, "drain-three"); got != "b" {
		t.Fatalf("the SUSPENDED tenant is on %q", got)
	}
	if _, err := cli("remove", "b"); !errors.Is(err, tenancy.ErrServerInUse) {
		t.Fatalf("remove b while it holds a tenant: %v", err)
	}

	mustOK(t, ta.admin(t, `mutation { resumeTenant(slug: "drain-three") { status } }`, nil))
	ta.waitStatus(t, "drain-three", "READY")
	out, err = cli("drain", "b", "--move")
	if err != nil || !strings.Contains(out, "1 of 1 tenant(s) moved off b, 0 failed") || !strings.Contains(out, "[1/1] drain-three: on default") {
		t.Fatalf("drain --move again: %v\n%s", err, out)
	}
	assertReadyWithData(t, ta, "drain-three", "THREE")
	if out, err := cli("remove", "b"); err != nil {
		t.Fatalf("remove the drained server: %q %v", out, err)
	}
}

// assertReadyWithData checks that slug is READY on the default server and
// (when key is not "") still has its project key.
func assertReadyWithData(t *testing.T, ta *testApp, slug, key string) {
	t.Helper()
	ta.waitStatus(t, slug, "READY")
	if got := tenantServer(t, ta, slug); got != tenancy.DefaultServer {
		t.Fatalf("%s is on %q", slug, got)
	}
	if key == "" {
		return
	}
	r := ta.owner(t, slug).must(t, `{ projects { edges { node { key } } } }`, nil)
	if !strings.Contains(r.Raw, `"key":"`+key+`"`) {
		t.Fatalf("%s's project after the move: %s", slug, r.Raw)
	}
}
