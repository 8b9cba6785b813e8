package main

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// deepQuery returns a tenant query whose deepest field is at depth depth
// (depth >= 2): issue → project → issues → edges → node → project → …,
// each list asking for one item, ending in __typename.
func deepQuery(depth int) string {
	cycle := []string{"project", "issues(first: 1)", "edges", "node"}
	var b strings.Builder
	b.WriteString(`{ issue(key: "A-1") { `)
	for i := range depth - 2 {
		b.WriteString(cycle[i%len(cycle)] + " { ")
	}
	b.WriteString("__typename")
	b.WriteString(strings.Repeat(" }", depth))
	return b.String()
}

// aliasQuery returns a query with n aliased fields.
func aliasQuery(n int) string {
	var b strings.Builder
	b.WriteString("{ ")
	for i := range n {
		fmt.Fprintf(&b, "a%d: __typename ", i)
	}
	b.WriteString("}")
	return b.String()
}

// tokenQuery returns the longest and the shortest over-the-limit queries
// around limit tokens, as gqlparser counts them (comments count).
func tokenQuery(t *testing.T, limit int) (under, over string) {
	t.Helper()
	return tokenQueryOf(t, "{ __typename }", limit)
}

// tokenQueryOf is tokenQuery for the query base, padded with comments.
func tokenQueryOf(t *testing.T, base string, limit int) (under, over string) {
	t.Helper()
	q := func(n int) string { return base + strings.Repeat("\n#", n) }
	for n := limit - 30; n < limit+10; n++ {
		_, errUnder := parser.ParseQueryWithTokenLimit(&ast.Source{Input: q(n)}, limit)
		_, errOver := parser.ParseQueryWithTokenLimit(&ast.Source{Input: q(n + 1)}, limit)
		if errUnder == nil && errOver != nil {
			return q(n), q(n + 1)
		}
	}
	t.Fatal("no token boundary found")
	return "", ""
}

// complexityQuery returns a platform query costing exactly cost (9704 to
// 10100): eight tenant lists of 100 rows with ten fields (1 + 100 × 12
// each), one of 98 rows with one field (1 + 98 × 3) and a count whose
// `first` makes up the rest (1 + first × 1).
func complexityQuery(cost int) string {
	var b strings.Builder
	b.WriteString("{ ")
	for i := range 8 {
		fmt.Fprintf(&b, "l%d: tenants(first: 100) { edges { node { id slug name status host domains schemaVersion lastError createdAt updatedAt } } } ", i)
	}
	b.WriteString("s: tenants(first: 98) { edges { node { slug } } } ")
	fmt.Fprintf(&b, "c: tenants(first: %d) { totalCount } }", cost-8*1201-295-1)
	return b.String()
}

// TestLimitsAtTheLine sends, for each limit at its default, the largest
// request that passes and the smallest that is refused.
func TestLimitsAtTheLine(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createRoutedTenant(t, "lim")
	const tenant, admin = "lim.example.test", "example.test"
	ok := func(what string, r gqlResponse) {
		t.Helper()
		if r.Status != 200 || r.Data == nil || len(r.Errors) > 0 {
			t.Errorf("%s: want data, got HTTP %d %s", what, r.Status, r.Raw)
		}
	}
	notRefused := func(what string, r gqlResponse, status int, code string) {
		t.Helper()
		if r.Status != status || r.Code() != code {
			t.Errorf("%s: want HTTP %d %s, got HTTP %d %s", what, status, code, r.Status, r.Raw)
		}
	}
	jsonCT := map[string]string{"Content-Type": "application/json"}

	// body: 1 MiB passes, one byte more is 413
	body := jsonBody("{ __typename }", nil)
	ok("body of 1 MiB", ta.raw(t, "POST", admin, body+strings.Repeat(" ", 1<<20-len(body)), jsonCT))
	wantRefused(t, "body of 1 MiB + 1", ta.raw(t, "POST", admin, body+strings.Repeat(" ", 1<<20-len(body)+1), jsonCT),
		413, "QUERY_TOO_COMPLEX", "request body exceeds the limit of 1048576 bytes")

	// batching is 400
	wantRefused(t, "batch", ta.raw(t, "POST", admin, "["+body+","+body+"]", jsonCT), 400, "GRAPHQL_VALIDATION_FAILED", "batched operations")

	// tokens: 5000
	under, over := tokenQuery(t, 5000)
	ok("5000 tokens", ta.do(t, admin, "", under, nil))
	wantRefused(t, "5001 tokens", ta.do(t, admin, "", over, nil), 400, "QUERY_TOO_COMPLEX", "more than 5000 tokens")

	// depth: 15 runs (and fails later, unauthenticated), 16 is refused
	notRefused("depth 15", ta.do(t, tenant, "", deepQuery(15), nil), 200, "UNAUTHENTICATED")
	wantRefused(t, "depth 16", ta.do(t, tenant, "", deepQuery(16), nil), 400, "QUERY_TOO_COMPLEX", "deeper than the limit of 15 levels")
	// fragments add no depth of their own, but their fields do
	frag := func(tail string) string { // issue(1) project(2) … node(13), then tail at 14
		return `{ issue(key: "A-1") { ...P } } fragment P on Issue { project { ...I } } fragment I on Project { ` +
			`issues(first: 1) { edges { node { project { issues(first: 1) { edges { node { project { issues(first: 1) { edges { node { ` +
			tail + strings.Repeat(" }", 12)
	}
	notRefused("depth 15 through fragments", ta.do(t, tenant, "", frag("project { __typename }"), nil), 200, "UNAUTHENTICATED")
	wantRefused(t, "depth 16 through fragments", ta.do(t, tenant, "", frag("project { issues(first: 1) { totalCount } }"), nil),
		400, "QUERY_TOO_COMPLEX", "deeper than the limit of 15")

	// aliases: 30
	ok("30 aliases", ta.do(t, admin, "", aliasQuery(30), nil))
	wantRefused(t, "31 aliases", ta.do(t, admin, "", aliasQuery(31), nil), 400, "QUERY_TOO_COMPLEX", "more than 30 aliases")
	// counted across fragments, once per use
	fragment := " fragment F on Query { " + strings.TrimPrefix(aliasQuery(15), "{ ")
	ok("30 aliases in a fragment used twice", ta.do(t, admin, "", "{ ...F ...F }"+fragment, nil))
	wantRefused(t, "31 aliases with a fragment used twice", ta.do(t, admin, "", "{ ...F ...F x: __typename }"+fragment, nil),
		400, "QUERY_TOO_COMPLEX", "more than 30 aliases")

	// directives per field: 5 (unknown ones fail validation, not the limit); 6 is refused
	ok("@include and @skip", ta.do(t, admin, "", "{ __typename @include(if: true) @skip(if: false) }", nil))
	notRefused("5 directives", ta.do(t, admin, "", "{ __typename @a @b @c @d @e }", nil), 400, "GRAPHQL_VALIDATION_FAILED")
	wantRefused(t, "6 directives", ta.do(t, admin, "", "{ __typename @a @b @c @d @e @f }", nil), 400, "QUERY_TOO_COMPLEX", "has 6 directives, over the limit of 5")

	// complexity: 10000
	ok("complexity 10000", ta.admin(t, complexityQuery(10000), nil))
	wantRefused(t, "complexity 10001", ta.admin(t, complexityQuery(10001), nil), 400, "QUERY_TOO_COMPLEX", "over the budget of 10000")
	// `first` from a variable and from the field's default count too
	vq := `query($n: Int!) { tenants(first: $n) { edges { node { slug } } } }`
	ok("complexity 1 + 100 × 3 by variable", ta.admin(t, vq, map[string]any{"n": 100}))
	wantRefused(t, "complexity by variable", ta.admin(t, vq, map[string]any{"n": 5000}), 400, "QUERY_TOO_COMPLEX", "over the budget of 10000")
	wantRefused(t, "nested defaults", ta.do(t, tenant, "", `{ projects { edges { node { issues { edges { node { comments { edges { node { body } } } } } } } } } }`, nil),
		400, "QUERY_TOO_COMPLEX", "over the budget of 10000") // 50 × 20 × 20 × …
	// fragments that spread each other twice over stop at the budget
	var bomb strings.Builder
	bomb.WriteString("{ ...F0 } ")
	for i := range 30 {
		fmt.Fprintf(&bomb, "fragment F%d on Query { ...F%d ...F%d } ", i, i+1, i+1)
	}
	bomb.WriteString("fragment F30 on Query { __typename }")
	wantRefused(t, "fragment bomb", ta.do(t, admin, "", bomb.String(), nil), 400, "QUERY_TOO_COMPLEX", "over the budget of 10000")

	// over GET, the same refusals
	wantRefused(t, "31 aliases over GET", ta.get(t, admin, url.Values{"query": {aliasQuery(31)}}, nil), 400, "QUERY_TOO_COMPLEX", "more than 30 aliases")
	// the refusal names its limit for programs too
	rr := ta.do(t, admin, "", aliasQuery(31), nil)
	if len(rr.Errors) == 1 && (rr.Errors[0].Extensions["limit"] != "aliases" || rr.Errors[0].Extensions["max"] != float64(30)) {
		t.Errorf("extensions: %v", rr.Errors[0].Extensions)
	}
}

// TestLimitsAreConfigurable moves every line and checks both sides.
func TestLimitsAreConfigurable(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{
		"MAX_BODY_BYTES": "2000", "MAX_TOKENS": "100", "MAX_DEPTH": "3", "MAX_ALIASES": "2",
		"MAX_DIRECTIVES_PER_FIELD": "1", "MAX_COMPLEXITY": "50",
	})
	const admin = "example.test"
	jsonCT := map[string]string{"Content-Type": "application/json"}
	body := jsonBody("{ __typename }", nil)
	pad := func(n int) string { return body + strings.Repeat(" ", n-len(body)) }
	mustOK(t, ta.raw(t, "POST", admin, pad(2000), jsonCT))
	wantRefused(t, "body", ta.raw(t, "POST", admin, pad(2001), jsonCT), 413, "QUERY_TOO_COMPLEX", "limit of 2000 bytes")

	under, over := tokenQuery(t, 100)
	mustOK(t, ta.do(t, admin, "", under, nil))
	wantRefused(t, "tokens", ta.do(t, admin, "", over, nil), 400, "QUERY_TOO_COMPLEX", "more than 100 tokens")

	if r := ta.do(t, admin, "", `{ tenants(first: 1) { edges { __typename } } }`, nil); r.Code() != "UNAUTHENTICATED" {
		t.Errorf("depth 3: %s", r.Raw)
	}
	wantRefused(t, "depth", ta.do(t, admin, "", `{ tenants(first: 1) { edges { node { slug } } } }`, nil), 400, "QUERY_TOO_COMPLEX", "limit of 3 levels")

	mustOK(t, ta.do(t, admin, "", aliasQuery(2), nil))
	wantRefused(t, "aliases", ta.do(t, admin, "", aliasQuery(3), nil), 400, "QUERY_TOO_COMPLEX", "more than 2 aliases")

	mustOK(t, ta.do(t, admin, "", `{ __typename @include(if: true) }`, nil))
	wantRefused(t, "directives", ta.do(t, admin, "", `{ __typename @include(if: true) @skip(if: false) }`, nil), 400, "QUERY_TOO_COMPLEX", "over the limit of 1")

	// 1 + 49 × 1 = 50; 1 + 50 × 1 = 51
	mustOK(t, ta.admin(t, `{ tenants(first: 49) { totalCount } }`, nil))
	wantRefused(t, "complexity", ta.admin(t, `{ tenants(first: 50) { totalCount } }`, nil), 400, "QUERY_TOO_COMPLEX", "budget of 50")
}

// TestRefusedOperationsRunNoSQL proves that a refused operation never
// reaches the database. Each case is a pair: a request within the limits
// that runs SQL on the tenant's database (its fields are read from there
// on every request), and the same request over one limit, which must run
// none. The statements are counted on the wire (pgCounter), so the count
// is exact and complete once the answer is back.
func TestRefusedOperationsRunNoSQL(t *testing.T) {
	t.Parallel()
	ta, counter := newCountedApp(t, nil)
	ta.createRoutedTenant(t, "nosql")
	tok := ta.login(t, "nosql")
	const host = "nosql.example.test"
	ran := func() int { return ta.tenantStatements(t, counter, "nosql") }

	// a field read from the tenant's database every time (the viewer
	// comes from the user cache, the organization from the routing table)
	const users = "users(first: 1) { totalCount }"
	login := `mutation { login(email: "owner@nosql.test", password: "password-nosql") { token } }`
	aliases := func(n int) string {
		var b strings.Builder
		b.WriteString("{ ")
		for i := range n {
			fmt.Fprintf(&b, "u%d: %s ", i, users)
		}
		b.WriteString("}")
		return b.String()
	}
	// deepQuery starts with issue(key:), read from the database
	deep := func(n int) string { return strings.Replace(deepQuery(n), `"A-1"`, `"WEB-1"`, 1) }
	under, over := tokenQueryOf(t, "{ "+users+" }", 5000)
	jsonCT := map[string]string{"Content-Type": "application/json"}
	post := func(body string, headers map[string]string) func() gqlResponse {
		return func() gqlResponse { return ta.raw(t, "POST", host, body, headers) }
	}
	query := func(q string) func() gqlResponse {
		return func() gqlResponse { return ta.do(t, host, tok, q, nil) }
	}
	loginBody := jsonBody(login, nil)
	cases := []struct {
		name    string
		allowed func() gqlResponse // runs SQL
		refused func() gqlResponse
		status  int
	}{
		{"31 aliases", query(aliases(30)), query(aliases(31)), 400},
		{"depth 16", query(deep(15)), query(deep(16)), 400},
		{"complexity", query(`{ issues(first: 100) { edges { node { id } } } }`),
			query(`{ issues(first: 100000) { edges { node { id } } } }`), 400},
		{"6 directives", query(`{ users(first: 1) @include(if: true) { totalCount } }`),
			query(`{ users(first: 1) @a @b @c @d @e @f { totalCount } }`), 400},
		{"tokens", query(under), query(over), 400},
		{"body over 1 MiB", post(loginBody+strings.Repeat(" ", 1<<20-len(loginBody)), jsonCT),
			post(loginBody+strings.Repeat(" ", 1<<20-len(loginBody)+1), jsonCT), 413},
		{"batch", post(loginBody, jsonCT), post("["+loginBody+"]", jsonCT), 400},
		{"mutation over GET", post(loginBody, jsonCT),
			func() gqlResponse { return ta.get(t, host, url.Values{"query": {login}}, nil) }, 405},
		{"text/plain POST", post(loginBody, jsonCT), post(loginBody, map[string]string{"Content-Type": "text/plain"}), 400},
		{"form POST", post(loginBody, jsonCT),
			post("query="+url.QueryEscape(login), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}), 400},
		{"foreign origin", post(loginBody, jsonCT),
			post(loginBody, map[string]string{"Content-Type": "application/json", "Origin": "https://evil.test"}), 403},
	}
	for _, c := range cases {
		before := ran()
		if r := c.allowed(); r.Status != 200 || r.Data == nil {
			t.Errorf("%s: the request within the limits got HTTP %d %s", c.name, r.Status, r.Raw)
		}
		if ran() == before {
			t.Errorf("%s: the request within the limits ran no SQL: the case proves nothing", c.name)
		}
		before = ran()
		r := c.refused()
		if r.Status != c.status || r.Data != nil || len(r.Errors) == 0 {
			t.Errorf("%s: got HTTP %d %s, want a %d refusal", c.name, r.Status, r.Raw, c.status)
		}
		if n := ran() - before; n != 0 {
			t.Errorf("%s: %d statements ran on the tenant's database for a refused request", c.name, n)
		}
	}
}
