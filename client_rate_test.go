package main

import (
	"testing"
)

// replicaWith starts another process on setup's control database (and so
// its tenants) with env on top of the test configuration: a test whose
// limits are too tight for its own set-up (creating a tenant polls the
// admin host) sets them up on setup and measures on the replica.
func replicaWith(t *testing.T, setup *testApp, env map[string]string) *testApp {
	t.Helper()
	vars := map[string]string{
		"DATABASE_URL": setup.cfg.DatabaseURL, "ADMIN_TOKEN": setup.cfg.AdminToken, "SECRET_KEY": setup.cfg.SecretKey,
		"BASE_DOMAIN": setup.cfg.BaseDomain, "TENANT_NAME_PREFIX": setup.prefix, "DELETE_GRACE_HOURS": "0",
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return startTestApp(t, cfg, setup.prefix, false)
}

// TestAnonymousFloodLeavesSignedInUsersAlone: requests without a token
// from four client addresses (forwarded by a trusted proxy) flood a tenant
// whose bucket holds 100 and hardly refills. Each address gets its own 25,
// all of them together the anonymous half (50), and the rest is 429; the
// tenant's signed-in users are not refused meanwhile.
func TestAnonymousFloodLeavesSignedInUsersAlone(t *testing.T) {
	t.Parallel()
	setup := newTestApp(t, nil)
	setup.createRoutedTenant(t, "crowd")
	owner := setup.owner(t, "crowd")
	_, member := owner.newUser(t, "member", "MEMBER")
	ta := replicaWith(t, setup, map[string]string{"RATE_LIMIT_RPS": "0.001", "RATE_LIMIT_BURST": "100", "TRUSTED_PROXIES": "127.0.0.1"})
	host := tenantHost("crowd")
	// wait until the replica routes the tenant, from an address of its own
	for i := 0; ; i++ {
		r := ta.raw(t, "POST", host, jsonBody(`{ organization { slug } }`, nil),
			map[string]string{"Content-Type": "application/json", "X-Forwarded-For": "192.0.2.99"})
		if r.Status == 200 {
			break
		} else if i == 200 {
			t.Fatalf("the replica never routed the tenant: HTTP %d %s", r.Status, r.Raw)
		}
		sleepBriefly()
	}

	served := map[string]int{}
	for _, addr := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "2001:db8::1"} {
		for range 60 {
			r := ta.raw(t, "POST", host, jsonBody(`{ organization { slug } }`, nil),
				map[string]string{"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.50, " + addr})
			switch {
			case r.Status == 200:
				served[addr]++
			case r.Status != 429 || r.Code() != "RATE_LIMITED" || r.Header.Get("Retry-After") == "":
				t.Fatalf("flood from %s: HTTP %d %v %s", addr, r.Status, r.Header, r.Raw)
			}
		}
	}
	t.Logf("anonymous requests served per address (60 sent by each): %v", served)
	// the first address its own 25; the share of all anonymous calls is 50
	// (one spent by the wait above)
	if served["198.51.100.1"] != 25 || served["198.51.100.2"] != 24 || served["198.51.100.3"]+served["2001:db8::1"] != 0 {
		t.Errorf("served %v: want 25 to the first address, then the 24 left of the anonymous 50", served)
	}

	for i := range 20 {
		for _, u := range []*tenantUser{owner, member} {
			if r := ta.do(t, host, u.token, `{ viewer { email } }`, nil); r.Status != 200 || len(r.Errors) > 0 {
				t.Fatalf("signed-in request %d during the flood: HTTP %d %s", i, r.Status, r.Raw)
			}
		}
	}
	// and they are under the tenant's ceiling: it holds 100 in all
	refused := 0
	for range 40 {
		if r := ta.do(t, host, owner.token, `{ viewer { email } }`, nil); r.Status == 429 {
			refused++
		}
	}
	if refused == 0 {
		t.Errorf("signed-in users made %d requests besides 50 anonymous ones without a 429: the tenant's ceiling of 100 did not hold", 80)
	} else {
		t.Logf("the tenant's ceiling: %d of 40 further signed-in requests refused", refused)
	}
}
