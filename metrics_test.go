package main

import "testing"

// Requests are counted under the kind of host they were sent to: the
// platform API as host_kind="admin", a tenant's API (routed or refused)
// as "tenant". The middleware runs outside the router, so it cannot
// learn the kind from the routed tenant (it once counted every request
// as "admin").
func TestRequestMetricsByHostKind(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "kinds", false)
	u := ta.owner(t, "kinds")
	series := func(kind, code string) string {
		return `tenantql_http_requests_total{code="` + code + `",host_kind="` + kind + `",path="/graphql"}`
	}
	count := func() (admin, tenant, tenant404 float64) {
		return ta.metric(t, series("admin", "200")), ta.metric(t, series("tenant", "200")), ta.metric(t, series("tenant", "404"))
	}
	admin0, tenant0, missing0 := count()
	for range 3 {
		u.must(t, `{ viewer { role } }`, nil)
	}
	mustOK(t, ta.admin(t, `{ tenants(first: 1) { totalCount } }`, nil))
	if r := ta.do(t, tenantHost("nobody"), "", `{ organization { slug } }`, nil); r.Status != 404 {
		t.Fatalf("unknown tenant: HTTP %d", r.Status)
	}
	admin, tenant, missing := count()
	if admin-admin0 != 1 || tenant-tenant0 != 3 || missing-missing0 != 1 {
		t.Fatalf("counted admin +%v, tenant +%v, tenant 404 +%v; want +1, +3, +1", admin-admin0, tenant-tenant0, missing-missing0)
	}
}
