package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tenantql/tenantql/internal/pgtest"
	"github.com/tenantql/tenantql/tenancy"
)

// TestCLIServers drives the fleet from the command line: add (probed; the
// URL's password never printed), list, drain, activate, remove, and the
// refusals the API gives.
func TestCLIServers(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	b := pgtest.NewCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	password, _ := mustParse(t, b.ServerURL).User.Password()
	cli := func(args ...string) (string, error) {
		var out strings.Builder
		err := ta.app.serversCLI(ctx, &out, args)
		if strings.Contains(out.String(), password) {
			t.Fatalf("servers %v printed the URL's password: %q", args, out.String())
		}
		return out.String(), err
	}
	if out, err := cli("add", "b", b.ServerURL, "--capacity", "7"); err != nil || !strings.Contains(out, "b added") {
		t.Fatalf("add: %q %v", out, err)
	}
	out, err := cli("list")
	if err != nil || !strings.Contains(out, "default") || !regexp.MustCompile(`(?m)^b\s+127\.0\.0\.1:\d+\s+ACTIVE\s+0\s+7`).MatchString(out) {
		t.Fatalf("list: %q %v", out, err)
	}
	if out, err := cli("drain", "b"); err != nil || !strings.Contains(out, "b is DRAINING") {
		t.Fatalf("drain: %q %v", out, err)
	}
	if out, err := cli("activate", "b"); err != nil || !strings.Contains(out, "b is ACTIVE") {
		t.Fatalf("activate: %q %v", out, err)
	}
	if _, err := cli("add", "b", b.ServerURL); !errors.Is(err, tenancy.ErrServerTaken) {
		t.Fatalf("add twice: %v", err)
	}
	if _, err := cli("remove", "default"); !errors.Is(err, tenancy.ErrWrongState) {
		t.Fatalf("remove default: %v", err)
	}
	var exit exitCode
	if _, err := cli("drain"); !errors.As(err, &exit) || exit != 2 {
		t.Fatalf("drain without a name: %v", err)
	}
	if out, err := cli("remove", "b"); err != nil || !strings.Contains(out, "b removed") {
		t.Fatalf("remove: %q %v", out, err)
	}
	if out, _ := cli("list"); strings.Contains(out, "\nb ") {
		t.Fatalf("b still listed: %q", out)
	}
}

// `tenantql tenants move` moves a tenant with progress and returns once it
// is READY on the new server; a refused move returns the API's error.
func TestCLIMoveTenant(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	b := pgtest.NewCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	if err := ta.app.serversCLI(ctx, &out, []string{"add", "b", b.ServerURL}); err != nil {
		t.Fatal(err)
	}
	createOn(t, ta, "cli-mover", "default")
	out.Reset()
	if err := ta.app.moveTenant(ctx, &out, "cli-mover", "b"); err != nil {
		t.Fatalf("move: %v (output %q)", err, out.String())
	}
	// progress: the steps seen (a quick step may be passed over)
	if !regexp.MustCompile(`(?s)^moving cli-mover from default to b .*\n  move\.(start|after-\w+) .*cli-mover is READY on b \(moved in`).MatchString(out.String()) {
		t.Fatalf("output %q", out.String())
	}
	if got := tenantServer(t, ta, "cli-mover"); got != "b" {
		t.Fatalf("after the command the tenant is on %s", got)
	}
	if err := ta.app.moveTenant(ctx, &out, "cli-mover", "b"); !errors.Is(err, tenancy.ErrInvalidInput) {
		t.Fatalf("move to its own server: %v", err)
	}
	if err := ta.app.moveTenant(ctx, &out, "cli-mover", "nowhere"); !errors.Is(err, tenancy.ErrInvalidInput) {
		t.Fatalf("move to an unknown server: %v", err)
	}
	ta.owner(t, "cli-mover").must(t, `mutation { createProject(input: { key: "CLI", name: "Moved" }) { key } }`, nil)
}
