package main

import (
	"strings"
	"testing"
	"time"

	migrate "github.com/rubenv/sql-migrate"

	"github.com/tenantql/tenantql/migrations"
	"github.com/tenantql/tenantql/tenancy"
)

// A READY tenant whose database is behind the server's tenant migrations
// (a failed `tenantql migrate`) is not served by code that expects the
// newer schema: its host answers 503 TENANT_NOT_READY with Retry-After,
// the platform API says why in lastError, and once migrated it is served
// again.
func TestLaggingTenantIsNotServedUntilMigrated(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "lag", false)
	ta.createTenant(t, "fresh", false)
	owner := ta.owner(t, "lag")
	latest := ta.waitStatus(t, "lag", "READY")["schemaVersion"].(string)

	// as after a new server version whose migration failed on this tenant
	_, db := ta.superuserDB(t, "lag")
	if _, err := migrations.TenantSet().ExecMax(db.DB, "postgres", migrations.Tenant(), migrate.Down, 1); err != nil {
		t.Fatal(err)
	}
	var older string
	if err := db.Get(&older, `SELECT max(id) FROM `+migrations.TenantSet().TableName); err != nil || older >= latest {
		t.Fatalf("after one migration down: %q, %v", older, err)
	}
	if _, err := ta.super.Exec(`UPDATE tenants SET schema_version = $1, updated_at = now() WHERE slug = 'lag'`, older); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var r gqlResponse
	for {
		r = owner.do(t, `{ viewer { id } }`, nil)
		if r.Status == 503 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.Status != 503 || r.Code() != "TENANT_NOT_READY" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a tenant behind the schema answered HTTP %d %s", r.Status, r.Raw)
	}
	ta.as("fresh", ta.login(t, "fresh")).must(t, `{ viewer { id } }`, nil) // others are served
	tn := mustOK(t, ta.admin(t, `{ tenant(slug: "lag") { status schemaVersion lastError } }`, nil))
	if le, _ := field(tn.Data, "tenant", "lastError").(string); field(tn.Data, "tenant", "status") != "READY" ||
		!strings.Contains(le, "tenantql migrate") || !strings.Contains(le, latest) {
		t.Fatalf("platform view of a lagging tenant: %s", tn.Raw)
	}

	failed, err := ta.registry.MigrateTenants(t.Context(), ta.pools, tenancy.MigrateOptions{})
	if err != nil || failed != 0 {
		t.Fatalf("migrate: %d failed, %v", failed, err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		r = owner.do(t, `{ viewer { id } }`, nil)
		if r.Status == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mustOK(t, r)
	tn = mustOK(t, ta.admin(t, `{ tenant(slug: "lag") { schemaVersion lastError } }`, nil))
	if field(tn.Data, "tenant", "lastError") != nil || field(tn.Data, "tenant", "schemaVersion") != latest {
		t.Fatalf("after migrate: %s", tn.Raw)
	}
}
