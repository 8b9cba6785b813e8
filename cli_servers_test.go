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
