package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/internal/pgtest"
	"github.com/tenantql/tenantql/tenancy"
)

// tenantHost is the host of the tenant with slug in tests.
func tenantHost(slug string) string { return slug + ".example.test" }

// tenantUser is a signed-in user of one tenant.
type tenantUser struct {
	ta    *testApp
	host  string
	token string
}

// as returns the client of the user holding token on the tenant slug.
func (ta *testApp) as(slug, token string) *tenantUser {
	return &tenantUser{ta: ta, host: tenantHost(slug), token: token}
}

// owner signs in as the owner of the tenant slug, once this process
// routes to it (createTenant waits for READY in the control database; the
// routing table follows through LISTEN/NOTIFY).
func (ta *testApp) owner(t testing.TB, slug string) *tenantUser {
	t.Helper()
	ta.waitRouted(t, tenantHost(slug), 200)
	return ta.as(slug, ta.login(t, slug))
}

// do runs an operation as the user.
func (u *tenantUser) do(t testing.TB, query string, vars map[string]any) gqlResponse {
	t.Helper()
	return u.ta.do(t, u.host, u.token, query, vars)
}

// must runs an operation as the user and fails the test on any error.
func (u *tenantUser) must(t testing.TB, query string, vars map[string]any) gqlResponse {
	t.Helper()
	return mustOK(t, u.do(t, query, vars))
}

// newUser creates a user with role (as the receiver, who must be allowed
// to) and signs in as it.
func (u *tenantUser) newUser(t testing.TB, name, role string) (id string, user *tenantUser) {
	t.Helper()
	email := fmt.Sprintf("%s-%d@users.test", name, time.Now().UnixNano())
	r := u.must(t, `mutation($in: CreateUserInput!) { createUser(input: $in) { id role } }`,
		map[string]any{"in": map[string]any{"email": email, "name": name, "password": "password-" + name, "role": role}})
	id = field(r.Data, "createUser", "id").(string)
	r = u.must(t, `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }`,
		map[string]any{"e": email, "p": "password-" + name})
	return id, &tenantUser{ta: u.ta, host: u.host, token: field(r.Data, "login", "token").(string)}
}

// createProject creates a project and fails the test on error.
func (u *tenantUser) createProject(t testing.TB, key, name string) {
	t.Helper()
	u.must(t, `mutation($k: String!, $n: String!) { createProject(input: {key: $k, name: $n}) { key } }`,
		map[string]any{"k": key, "n": name})
}

// createIssue creates an issue and returns its key.
func (u *tenantUser) createIssue(t testing.TB, in map[string]any) string {
	t.Helper()
	r := u.must(t, `mutation($in: CreateIssueInput!) { createIssue(input: $in) { key } }`, map[string]any{"in": in})
	return field(r.Data, "createIssue", "key").(string)
}

// secondProcess wires another tenantql process on ta's control database
// (and so on the same tenant databases), with its own pools, watcher,
// provisioner and HTTP server, as a second replica would run.
func (ta *testApp) secondProcess(t testing.TB) *testApp {
	t.Helper()
	return startTestApp(t, ta.cfg, ta.prefix, false)
}

// nodes returns the nodes of a connection at path in r's data.
func nodes(r gqlResponse, path ...string) []map[string]any {
	conn, _ := field(r.Data, path...).(map[string]any)
	var out []map[string]any
	for _, e := range conn["edges"].([]any) {
		out = append(out, field(e, "node").(map[string]any))
	}
	return out
}

// superuserDB returns the tenant of slug and a superuser connection to its
// database (for changes made behind the API's back), closed when the test
// ends.
func (ta *testApp) superuserDB(t testing.TB, slug string) (*tenancy.Tenant, *sqlx.DB) {
	t.Helper()
	tn, err := ta.registry.Get(t.Context(), slug)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlx.Open("postgres", pgtest.WithURLDatabase(pgtest.AdminURL(t), tn.DBName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return tn, db
}
