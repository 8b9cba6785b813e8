package main

import (
	"testing"
)

// Forwarded headers count only from the peers in TRUSTED_PROXIES: from
// any other (here the test client, 127.0.0.1) X-Forwarded-Host cannot
// pick a tenant, even with TRUST_PROXY=true; from a trusted one it does,
// and the client's address (for the audit) is the right-most
// X-Forwarded-For hop that is not a trusted proxy, whatever the client
// put to its left.
func TestForwardedHeadersCountFromTrustedProxiesOnly(t *testing.T) {
	t.Parallel()
	const orgQuery = `{ organization { slug } }`
	untrusted := newTestApp(t, map[string]string{"TRUST_PROXY": "true", "TRUSTED_PROXIES": "10.9.9.9, 192.0.2.0/24"})
	untrusted.createTenant(t, "pxy", false)
	r := untrusted.raw(t, "POST", "example.test", jsonBody(orgQuery, nil), map[string]string{
		"Content-Type": "application/json", "X-Forwarded-Host": tenantHost("pxy")})
	if r.Code() != "TENANT_REQUIRED" {
		t.Fatalf("X-Forwarded-Host from an untrusted peer was honoured: HTTP %d %s", r.Status, r.Raw)
	}

	trusted := newTestApp(t, map[string]string{"TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"})
	trusted.createTenant(t, "pxy", false)
	r = trusted.raw(t, "POST", "example.test", jsonBody(orgQuery, nil), map[string]string{
		"Content-Type": "application/json", "X-Forwarded-Host": tenantHost("pxy")})
	if field(r.Data, "organization", "slug") != "pxy" {
		t.Fatalf("X-Forwarded-Host from a trusted proxy: HTTP %d %s", r.Status, r.Raw)
	}
	trusted.raw(t, "POST", "example.test", jsonBody(`mutation { suspendTenant(slug: "pxy") { status } }`, nil), map[string]string{
		"Content-Type": "application/json", "Authorization": "Bearer " + testAdminToken,
		"X-Forwarded-For": "1.2.3.4, 203.0.113.9, 10.1.2.3"})
	entries, err := trusted.registry.Audit(t.Context(), 1)
	if err != nil || len(entries) != 1 || entries[0].Action != "suspendTenant" {
		t.Fatalf("audit: %+v %v", entries, err)
	}
	if got := entries[0].ClientAddr; got != "203.0.113.9" {
		t.Fatalf("client address = %q, want the right-most untrusted hop 203.0.113.9", got)
	}
}
