package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

const historyQuery = `query($s: String!, $n: Int) { tenant(slug: $s) { lastError history(last: $n) { step outcome durationMs at error } } }`

// TestTenantHistoryInThePlatformAPI: Tenant.history lists the tenant's
// steps newest first (provisioning, lifecycle changes, migrations), with
// each outcome, duration and time; a failed step shows lastError-style
// words only (the step and a kind of failure, never the SQL error); last
// is 1 to 50.
func TestTenantHistoryInThePlatformAPI(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"SPARE_TENANTS": "0"})
	began := time.Now()
	ta.createTenant(t, "hist", false)
	mustOK(t, ta.admin(t, `mutation { suspendTenant(slug: "hist") { status } }`, nil))
	mustOK(t, ta.admin(t, `mutation { resumeTenant(slug: "hist") { status } }`, nil))
	// a migration that fails: the tenant database forgets what it ran
	_, db := ta.superuserDB(t, "hist")
	if _, err := db.Exec(`DELETE FROM tenant_migrations`); err != nil {
		t.Fatal(err)
	}
	if err := ta.migrateAll(context.Background(), io.Discard, 1); err == nil {
		t.Fatal("migrate succeeded on a database that forgot its migrations")
	}

	r := mustOK(t, ta.admin(t, historyQuery, map[string]any{"s": "hist", "n": 50}))
	events, _ := field(r.Data, "tenant", "history").([]any)
	want := []string{"upgrade.migrate", "resume.status", "suspend.status",
		"create.owner", "create.migrate", "create.privileges", "create.database", "create.role", "create.spare"}
	var steps []string
	for _, e := range events {
		steps = append(steps, field(e, "step").(string))
	}
	if strings.Join(steps, " ") != strings.Join(want, " ") {
		t.Fatalf("history steps %v, want %v", steps, want)
	}
	failed := events[0]
	msg, _ := field(failed, "error").(string)
	if field(failed, "outcome") != "ERROR" || !strings.HasPrefix(msg, "upgrade.migrate failed: ") ||
		strings.Contains(msg, "exists") || strings.Contains(msg, "relation") {
		t.Fatalf("the failed migration: %v", failed)
	}
	for i, e := range events {
		at, err := time.Parse(time.RFC3339Nano, field(e, "at").(string))
		if err != nil || at.Before(began.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
			t.Errorf("event %d at %v (%v)", i, field(e, "at"), err)
		}
		if d, _ := field(e, "durationMs").(float64); d < 0 {
			t.Errorf("event %d: durationMs %v", i, d)
		}
		if i > 0 && (field(e, "outcome") != "OK" || field(e, "error") != nil) {
			t.Errorf("event %d: %v", i, e)
		}
	}

	// the default is the last 20; last outside 1..50 is refused
	r = mustOK(t, ta.admin(t, `{ tenant(slug: "hist") { history { step } } }`, nil))
	if n := len(field(r.Data, "tenant", "history").([]any)); n != len(want) {
		t.Fatalf("default history: %d events", n)
	}
	r = mustOK(t, ta.admin(t, historyQuery, map[string]any{"s": "hist", "n": 2}))
	if n := len(field(r.Data, "tenant", "history").([]any)); n != 2 {
		t.Fatalf("history(last: 2): %d events", n)
	}
	for _, n := range []int{0, 51} {
		r := ta.admin(t, historyQuery, map[string]any{"s": "hist", "n": n})
		if r.Code() != "BAD_USER_INPUT" || !strings.Contains(r.Raw, "last must be between 1 and 50") {
			t.Errorf("history(last: %d): %s", n, r.Raw)
		}
	}
}
