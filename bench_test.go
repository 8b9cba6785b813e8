package main

import "testing"

// BenchmarkIssuesQuery measures issues(first: 20) with assignee, reporter,
// project and comments(first: 3) { author } on a demo tenant, through the
// real HTTP handler (httptest server, JSON in and out) on PostgreSQL.
func BenchmarkIssuesQuery(b *testing.B) {
	ta := newTestApp(b, map[string]string{"RATE_LIMIT_RPS": "0"}) // a rate limit would refuse the loop
	ta.createTenant(b, "bench", true)
	owner := ta.owner(b, "bench")
	vars := map[string]any{"n": 20}
	if r := owner.must(b, nestedIssuesQuery, vars); len(nodes(r, "issues")) != 20 {
		b.Fatalf("want 20 issues: %s", r.Raw)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r := owner.do(b, nestedIssuesQuery, vars); len(r.Errors) > 0 || r.Data == nil {
			b.Fatalf("query failed: %s", r.Raw)
		}
	}
}

// BenchmarkIssuesPage measures the query of the load benchmark (bench/):
// issues(first: 20) with each assignee's id and name, through the real
// HTTP handler on PostgreSQL. Profile it with -cpuprofile/-memprofile.
func BenchmarkIssuesPage(b *testing.B) {
	ta := newTestApp(b, map[string]string{"RATE_LIMIT_RPS": "0"}) // a rate limit would refuse the loop
	ta.createTenant(b, "page", true)
	owner := ta.owner(b, "page")
	const q = `{ issues(first: 20) { edges { node { id number title status assignee { id name } } } } }`
	if r := owner.must(b, q, nil); len(nodes(r, "issues")) != 20 {
		b.Fatalf("want 20 issues: %s", r.Raw)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r := owner.do(b, q, nil); len(r.Errors) > 0 || r.Data == nil {
			b.Fatalf("query failed: %s", r.Raw)
		}
	}
}
