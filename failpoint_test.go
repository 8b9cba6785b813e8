package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/tenantql/tenantql/tenancy"
)

// TENANTQL_FAILPOINT names a boundary of tenancy.Boundaries and an action;
// anything else stops the process at start (a typo used to leave the
// failpoint armed on a name that never fires).
func TestFailpointMustNameABoundary(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	for _, spec := range []string{
		"create.after-nothing=exit", "create.after-databases=error", "create.after-database",
		"create.after-database=explode", "=error", "Create.start=exit",
	} {
		if fp, err := failpoint(spec, log); err == nil || fp != nil {
			t.Errorf("failpoint(%q) accepted", spec)
		}
	}
	for _, b := range tenancy.Boundaries() {
		for _, action := range []string{"exit", "error"} {
			if fp, err := failpoint(b+"="+action, log); err != nil || fp == nil {
				t.Errorf("failpoint(%s=%s): %v", b, action, err)
			}
		}
	}
	fp, err := failpoint("create.after-role=error", log)
	if err != nil || !errors.Is(fp("create.after-role"), tenancy.ErrFailpoint) || fp("create.after-database") != nil {
		t.Fatalf("create.after-role=error does not fire at that boundary only (%v)", err)
	}
	fp, err = failpoint("move.after-copy=error,unmove.after-drop=exit", log)
	if err != nil || !errors.Is(fp("move.after-copy"), tenancy.ErrFailpoint) || fp("move.after-freeze") != nil {
		t.Fatalf("a list of failpoints does not fire at its boundaries only (%v)", err)
	}
	if _, err := failpoint("move.after-copy=error,unmove.after-nothing=exit", log); err == nil {
		t.Fatal("a list with an unknown boundary was accepted")
	}
	if fp, err := failpoint("", log); err != nil || fp != nil {
		t.Fatalf("an empty TENANTQL_FAILPOINT is not inert: %v", err)
	}

	// refused before anything is connected to
	cfg, err := LoadConfig(func(k string) string {
		return map[string]string{
			"DATABASE_URL": "postgres://tenantql@127.0.0.1:1/nowhere", "ADMIN_TOKEN": testAdminToken,
			"SECRET_KEY": testSecretKey, "TENANTQL_FAILPOINT": "create.after-nothing=exit",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newApp(context.Background(), cfg, log); err == nil || !strings.Contains(err.Error(), "TENANTQL_FAILPOINT") {
		t.Fatalf("newApp with an unknown boundary: %v", err)
	}
}
