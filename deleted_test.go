package main

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

const deleteMutation = `mutation($s: String!, $p: Boolean) { deleteTenant(slug: $s, purge: $p) { tenant { status deletedAt purgeAfter } } }`

// locked reports whether the tenant's role may not log in and its database
// refuses connections, and checks that its database and role still exist.
func (ta *testApp) locked(t testing.TB, dbName, roleName string) bool {
	t.Helper()
	var st struct {
		CanLogin  bool `db:"rolcanlogin"`
		AllowConn bool `db:"datallowconn"`
	}
	const q = `SELECT r.rolcanlogin, d.datallowconn FROM pg_roles r, pg_database d WHERE r.rolname = $1 AND d.datname = $2`
	if err := ta.super.Get(&st, q, roleName, dbName); err != nil {
		t.Fatalf("the deleted tenant's role or database: %v", err)
	}
	return !st.CanLogin && !st.AllowConn
}

// deleteTenant (no purge) keeps the tenant DELETED: its host answers 404
// at once and its tokens fail, its database is kept but unreachable (role
// NOLOGIN, connections refused, the open ones ended), its slug stays
// taken; restoreTenant brings it back READY with its data; purge: true
// then drops it and frees the slug.
func TestDeleteKeepsTheTenantRestorableUntilPurged(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"DELETE_GRACE_HOURS": "72"})
	ta.createTenant(t, "keep", false)
	owner := ta.owner(t, "keep")
	owner.createProject(t, "WEB", "Website")
	key := owner.createIssue(t, map[string]any{"projectKey": "WEB", "title": "survives a delete"})
	tn, _ := ta.superuserDB(t, "keep")
	// a session the tenant's role has open: the lock must end it
	dsn, err := ta.pools.TenantURL(tn)
	if err != nil {
		t.Fatal(err)
	}
	open, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	open.SetMaxOpenConns(1)
	if err := open.Ping(); err != nil {
		t.Fatal(err)
	}

	before := time.Now()
	r := mustOK(t, ta.admin(t, deleteMutation, map[string]any{"s": "keep"}))
	if s := field(r.Data, "deleteTenant", "tenant", "status"); s != "DELETED" {
		t.Fatalf("status after deleteTenant = %v", s)
	}
	purgeAfter, err := time.Parse(time.RFC3339, field(r.Data, "deleteTenant", "tenant", "purgeAfter").(string))
	if err != nil || purgeAfter.Before(before.Add(72*time.Hour-time.Minute)) || purgeAfter.After(time.Now().Add(72*time.Hour+time.Minute)) {
		t.Fatalf("purgeAfter = %v (%v), want 72 h from now", purgeAfter, err)
	}
	if r := owner.do(t, `{ viewer { id } }`, nil); r.Status != 404 || r.Code() != "TENANT_NOT_FOUND" {
		t.Fatalf("a DELETED tenant answered HTTP %d %s", r.Status, r.Raw)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !ta.locked(t, tn.DBName, tn.RoleName) {
		if time.Now().After(deadline) {
			t.Fatal("the deleted tenant's database is still reachable")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := open.ExecContext(context.Background(), `SELECT 1`); err == nil {
		t.Fatal("a session opened before the delete still runs statements")
	}
	fresh, _ := sqlx.Open("postgres", dsn)
	defer fresh.Close()
	if err := fresh.Ping(); err == nil {
		t.Fatal("the tenant's role can still connect to its database")
	}
	// the slug stays taken, and the listing shows why
	r = ta.admin(t, createTenantMutation, map[string]any{"in": map[string]any{
		"organization": "Another keep", "slug": "keep",
		"owner": map[string]any{"email": "x@keep.test", "name": "X", "password": "password-x"},
	}})
	if r.Code() != "CONFLICT" {
		t.Fatalf("createTenant with a DELETED tenant's slug: %s", r.Raw)
	}
	r = mustOK(t, ta.admin(t, `{ tenants(status: DELETED) { edges { node { slug deletedAt } } } }`, nil))
	if ns := nodes(r, "tenants"); len(ns) != 1 || ns[0]["slug"] != "keep" || ns[0]["deletedAt"] == nil {
		t.Fatalf("tenants(status: DELETED) = %s", r.Raw)
	}

	r = mustOK(t, ta.admin(t, `mutation { restoreTenant(slug: "keep") { status deletedAt purgeAfter } }`, nil))
	if s := field(r.Data, "restoreTenant", "status"); s != "READY" || field(r.Data, "restoreTenant", "purgeAfter") != nil {
		t.Fatalf("restoreTenant = %s", r.Raw)
	}
	ta.waitRouted(t, tenantHost("keep"), 200)
	owner = ta.owner(t, "keep")
	r = owner.must(t, `query($k: String!) { issue(key: $k) { title } }`, map[string]any{"k": key})
	if field(r.Data, "issue", "title") != "survives a delete" {
		t.Fatalf("restored data: %s", r.Raw)
	}

	r = mustOK(t, ta.admin(t, deleteMutation, map[string]any{"s": "keep", "p": true}))
	if s := field(r.Data, "deleteTenant", "tenant", "status"); s != "DELETING" {
		t.Fatalf("status after deleteTenant(purge: true) = %v", s)
	}
	ta.waitStatus(t, "keep", "GONE")
	var left int
	if err := ta.super.Get(&left, `SELECT (SELECT count(*) FROM pg_database WHERE datname = $1) + (SELECT count(*) FROM pg_roles WHERE rolname = $2)`, tn.DBName, tn.RoleName); err != nil || left != 0 {
		t.Fatalf("purged tenant left %d objects (%v)", left, err)
	}
	ta.createTenant(t, "keep", false) // the slug is free again
}

// A DELETED tenant is purged when its grace ends, by the provisioner with
// no request; one deleted and purged at once (DELETE_GRACE_HOURS=0) goes
// straight to DELETING.
func TestDeletedTenantIsPurgedWhenItsGraceEnds(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"DELETE_GRACE_HOURS": "0.0005"}) // 1.8 s
	ta.createTenant(t, "brief", false)
	tn, _ := ta.superuserDB(t, "brief")
	r := mustOK(t, ta.admin(t, deleteMutation, map[string]any{"s": "brief"}))
	if s := field(r.Data, "deleteTenant", "tenant", "status"); s != "DELETED" {
		t.Fatalf("status after deleteTenant = %v", s)
	}
	deleted := time.Now()
	ta.waitStatus(t, "brief", "GONE")
	if took := time.Since(deleted); took < 1500*time.Millisecond {
		t.Fatalf("purged after %s, before its grace ended", took)
	}
	var left int
	if err := ta.super.Get(&left, `SELECT (SELECT count(*) FROM pg_database WHERE datname = $1) + (SELECT count(*) FROM pg_roles WHERE rolname = $2)`, tn.DBName, tn.RoleName); err != nil || left != 0 {
		t.Fatalf("purged tenant left %d objects (%v)", left, err)
	}

	now := newTestApp(t, map[string]string{"DELETE_GRACE_HOURS": "0"})
	now.createTenant(t, "gone", false)
	r = mustOK(t, now.admin(t, deleteMutation, map[string]any{"s": "gone"}))
	if s := field(r.Data, "deleteTenant", "tenant", "status"); s != "DELETING" {
		t.Fatalf("status after deleteTenant with no grace = %v", s)
	}
	now.waitStatus(t, "gone", "GONE")
}
