package main

import "testing"

// TestIssuesTotalCountHoweverSelected: the count query is skipped when
// totalCount is not selected, so every way of selecting it must still
// count (directly, aliased, through named and inline fragments).
func TestIssuesTotalCountHoweverSelected(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "counted", false)
	owner := ta.owner(t, "counted")
	owner.createProject(t, "CNT", "Counted")
	for range 3 {
		owner.must(t, `mutation { createIssue(input: {projectKey: "CNT", title: "an issue"}) { key } }`, nil)
	}
	for _, q := range []string{
		`{ issues(first: 1) { totalCount } }`,
		`{ issues(first: 1) { n: totalCount } }`,
		`{ issues(first: 1) { ...C } } fragment C on IssueConnection { totalCount }`,
		`{ issues(first: 1) { ... on IssueConnection { totalCount } } }`,
		`{ project(key: "CNT") { issues(first: 1) { totalCount } } }`,
	} {
		r := owner.must(t, q, nil)
		got := field(r.Data, "issues", "totalCount")
		if got == nil {
			got = field(r.Data, "issues", "n")
		}
		if got == nil {
			got = field(r.Data, "project", "issues", "totalCount")
		}
		if got != 3.0 {
			t.Errorf("%s: totalCount = %v (%s)", q, got, r.Raw)
		}
	}
	// without totalCount the page is the same
	r := owner.must(t, `{ issues(first: 2) { edges { node { key } } pageInfo { hasNextPage } } }`, nil)
	if field(r.Data, "issues", "pageInfo", "hasNextPage") != true || len(field(r.Data, "issues", "edges").([]any)) != 2 {
		t.Fatalf("page without totalCount: %s", r.Raw)
	}
}
