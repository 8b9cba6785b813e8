package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tenantql/tenantql/tenancy"
)

// One request carries at most one platform mutation, aliases and
// fragments included; more is refused before any of them runs.
func TestOnePlatformMutationPerRequest(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "one-a", false)
	ta.createTenant(t, "one-b", false)
	for name, q := range map[string]string{
		"aliases":   `mutation { a: deleteTenant(slug: "one-a") { tenant { status } } b: deleteTenant(slug: "one-b") { tenant { status } } }`,
		"two kinds": `mutation { suspendTenant(slug: "one-a") { status } deleteTenant(slug: "one-b") { tenant { status } } }`,
		"fragments": `mutation { ...D ...S } fragment D on Mutation { deleteTenant(slug: "one-b") { tenant { status } } } fragment S on Mutation { suspendTenant(slug: "one-a") { status } }`,
	} {
		r := ta.admin(t, q, nil)
		if r.Code() != "BAD_USER_INPUT" || !strings.Contains(r.Raw, "at most one platform mutation") {
			t.Fatalf("%s: %s", name, r.Raw)
		}
	}
	for _, slug := range []string{"one-a", "one-b"} {
		if st := ta.waitStatus(t, slug, "READY"); st["status"] != "READY" {
			t.Fatalf("%s after refused requests: %v", slug, st)
		}
	}
	var audited int
	if err := ta.super.Get(&audited, `SELECT count(*) FROM platform_audit WHERE action <> 'createTenant'`); err != nil || audited != 0 {
		t.Fatalf("refused requests left %d audit records (%v)", audited, err)
	}
	mustOK(t, ta.admin(t, `mutation { suspendTenant(slug: "one-a") { status } }`, nil))
}

// Every platform mutation is recorded: what, which tenant, when, the
// request id, the client's address, the token's fingerprint (never the
// token) and the outcome; `tenantql audit` lists them, newest first.
func TestPlatformMutationsAreAudited(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "aud", false)
	send := func(id, q string) {
		ta.raw(t, "POST", "example.test", jsonBody(q, nil), map[string]string{
			"Content-Type": "application/json", "Authorization": "Bearer " + testAdminToken, "X-Request-Id": id,
		})
	}
	send("req-suspend-0001", `mutation { suspendTenant(slug: "aud") { status } }`)
	send("req-missing-0002", `mutation { deleteTenant(slug: "nobody") { tenant { status } } }`)
	send("req-delete-00003", `mutation { deleteTenant(slug: "aud", purge: true) { tenant { status } } }`)
	// a query and an unauthenticated attempt are not platform mutations done
	ta.admin(t, `{ tenants { totalCount } }`, nil)
	ta.do(t, "example.test", "wrong-token", `mutation { suspendTenant(slug: "aud") { status } }`, nil)

	entries, err := ta.registry.Audit(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ action, slug, outcome, request string }{
		{"deleteTenant", "aud", "ok", "req-delete-00003"},
		{"deleteTenant", "nobody", "NOT_FOUND", "req-missing-0002"},
		{"suspendTenant", "aud", "ok", "req-suspend-0001"},
		{"createTenant", "aud", "ok", ""},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d audit records, want %d: %+v", len(entries), len(want), entries)
	}
	fp := tenancy.TokenFingerprint(testAdminToken)
	for i, w := range want {
		e := entries[i]
		if e.Action != w.action || e.TenantSlug != w.slug || e.Outcome != w.outcome ||
			(w.request != "" && e.RequestID != w.request) || e.RequestID == "" {
			t.Fatalf("record %d = %+v, want %+v", i, e, w)
		}
		if e.ClientAddr != "127.0.0.1" || e.TokenFingerprint != fp || e.At.IsZero() {
			t.Fatalf("record %d = %+v (fingerprint want %s)", i, e, fp)
		}
		if (e.TenantID == nil) != (w.slug == "nobody") {
			t.Fatalf("record %d tenant id = %v", i, e.TenantID)
		}
	}
	var out bytes.Buffer
	if err := ta.app.audit(t.Context(), &out, 10); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), testAdminToken) || strings.Count(out.String(), "deleteTenant") != 2 ||
		!strings.Contains(out.String(), fp) || !strings.Contains(out.String(), "req-missing-0002") {
		t.Fatalf("tenantql audit printed:\n%s", out.String())
	}
	var leaked int
	if err := ta.super.Get(&leaked, `SELECT count(*) FROM platform_audit WHERE strpos(platform_audit::text, $1) > 0`, testAdminToken); err != nil || leaked != 0 {
		t.Fatalf("%d audit rows hold the token (%v)", leaked, err)
	}
}
