package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tenantql/tenantql/tenancy"
)

// `tenantql tenants create` signs up through tenancy as createTenant does
// and returns once the tenant is READY, telling where it answers; its
// owner then signs in. A bad input fails before any tenant row exists.
func TestCLICreateTenantWaitsUntilReady(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out strings.Builder
	in := tenancy.SignUp{Organization: "Cli Org", OwnerEmail: "owner@cli-org.test", OwnerName: "Owner", OwnerPassword: "password-cli-org"}
	if err := ta.app.createTenant(ctx, &out, in); err != nil {
		t.Fatalf("create: %v (output %q)", err, out.String())
	}
	if want := "cli-org is READY at http://cli-org.example.test:8080/"; !strings.Contains(out.String(), want) {
		t.Fatalf("output %q, want %q", out.String(), want)
	}
	if tn, err := ta.registry.Get(ctx, "cli-org"); err != nil || tn.Status != tenancy.StatusReady {
		t.Fatalf("after the command: %+v, %v", tn, err)
	}
	ta.owner(t, "cli-org").must(t, `{ viewer { role } }`, nil)

	bad := in
	bad.Organization, bad.OwnerPassword = "Short Password", "short"
	err := ta.app.createTenant(ctx, &out, bad)
	if !errors.Is(err, tenancy.ErrInvalidInput) || !strings.Contains(err.Error(), "owner.password") {
		t.Fatalf("short password: %v", err)
	}
	if _, err := ta.registry.Get(ctx, "short-password"); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Fatalf("a refused sign-up left a tenant: %v", err)
	}
}

// A tenant whose provisioning ends FAILED ends the command with the
// failed step, instead of waiting for ever.
func TestCLICreateTenantReportsFailure(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{
		"TENANTQL_FAILPOINT": "create.after-database=error", "PROVISION_MAX_ATTEMPTS": "1",
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out strings.Builder
	err := ta.app.createTenant(ctx, &out, tenancy.SignUp{
		Organization: "Doomed", OwnerEmail: "o@doomed.test", OwnerName: "O", OwnerPassword: "password-doomed",
	})
	if err == nil || !strings.Contains(err.Error(), "doomed FAILED") {
		t.Fatalf("err = %v, want doomed FAILED", err)
	}
}
