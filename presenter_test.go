package main

import "testing"

// Root fields resolve in goroutines of their own, and each error passes
// the presenter, which marks the request as failed for the usage counts.
// Two root fields failing in one request show, under the race detector,
// whether that mark is safe for concurrent use.
func TestErrorsOfParallelRootFields(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "twofold", false)
	owner := ta.owner(t, "twofold")
	r := owner.do(t, `{ a: users(first: 0) { totalCount } b: users(first: 0) { totalCount } c: users(first: 0) { totalCount } }`, nil)
	if r.Status != 200 || len(r.Errors) != 3 || r.Code() != "BAD_USER_INPUT" {
		t.Fatalf("three failing root fields: HTTP %d %s", r.Status, r.Raw)
	}
}
