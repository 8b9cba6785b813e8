package main

import (
	"testing"
	"time"
)

// logout revokes every token of the user (not only the one it was sent
// with), at once; a new login works.
func TestLogoutRevokesEveryTokenOfTheUser(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"USER_CACHE_SECONDS": "60"})
	ta.createTenant(t, "bye", false)
	first := ta.owner(t, "bye")
	second := ta.as("bye", ta.login(t, "bye"))
	_, member := first.newUser(t, "ann", "MEMBER")
	for _, u := range []*tenantUser{first, second, member} {
		u.must(t, `{ viewer { id } }`, nil) // cached now
	}
	r := first.must(t, `mutation { logout }`, nil)
	if field(r.Data, "logout") != true {
		t.Fatalf("logout = %s", r.Raw)
	}
	for name, u := range map[string]*tenantUser{"the token logged out": first, "another token of the user": second} {
		if r := u.do(t, `{ viewer { id } }`, nil); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("%s still works after logout: %s", name, r.Raw)
		}
	}
	member.must(t, `{ viewer { id } }`, nil) // another user keeps signed in
	again := ta.as("bye", ta.login(t, "bye"))
	again.must(t, `{ viewer { email } }`, nil)
	if r := first.do(t, `mutation { logout }`, nil); r.Code() != "UNAUTHENTICATED" {
		t.Fatalf("logout with a revoked token: %s", r.Raw)
	}
}

// changePassword answers a token of the new password and revokes the
// user's other tokens; the old password no longer signs in. A wrong
// current password or a short new one changes nothing.
func TestChangePasswordRevokesOtherTokens(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"USER_CACHE_SECONDS": "60"})
	ta.createTenant(t, "pwd", false)
	owner := ta.owner(t, "pwd")
	other := ta.as("pwd", ta.login(t, "pwd"))
	other.must(t, `{ viewer { id } }`, nil)
	const change = `mutation($c: String!, $n: String!) { changePassword(current: $c, new: $n) { token user { email } } }`
	for _, tc := range []struct{ current, new string }{{"not-the-password", "brand-new-password"}, {"password-pwd", "short"}} {
		if r := owner.do(t, change, map[string]any{"c": tc.current, "n": tc.new}); r.Code() != "BAD_USER_INPUT" {
			t.Fatalf("changePassword(%q, %q): %s", tc.current, tc.new, r.Raw)
		}
	}
	other.must(t, `{ viewer { id } }`, nil) // refused changes revoke nothing
	r := owner.must(t, change, map[string]any{"c": "password-pwd", "n": "brand-new-password"})
	fresh := ta.as("pwd", field(r.Data, "changePassword", "token").(string))
	fresh.must(t, `{ viewer { email } }`, nil)
	for name, u := range map[string]*tenantUser{"the token that changed it": owner, "another token": other} {
		if r := u.do(t, `{ viewer { id } }`, nil); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("%s works after changePassword: %s", name, r.Raw)
		}
	}
	const login = `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }`
	if r := ta.do(t, tenantHost("pwd"), "", login, map[string]any{"e": "owner@pwd.test", "p": "password-pwd"}); r.Code() != "UNAUTHENTICATED" {
		t.Fatalf("old password still signs in: %s", r.Raw)
	}
	mustOK(t, ta.do(t, tenantHost("pwd"), "", login, map[string]any{"e": "owner@pwd.test", "p": "brand-new-password"}))
}

// A logout on one replica holds at once on another that has the user in
// its cache (USER_CACHE_SECONDS=60): the news goes through the control
// database's NOTIFY, not the cache's expiry.
func TestLogoutHoldsOnEveryReplicaAtOnce(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"USER_CACHE_SECONDS": "60"})
	other := ta.secondProcess(t)
	ta.createTenant(t, "rep", false)
	token := ta.login(t, "rep")
	other.waitRouted(t, tenantHost("rep"), 200)
	onA, onB := ta.as("rep", token), other.as("rep", token)
	onA.must(t, `{ viewer { id } }`, nil)
	onB.must(t, `{ viewer { id } }`, nil) // B caches the user
	onA.must(t, `mutation { logout }`, nil)
	start := time.Now()
	for {
		r := onB.do(t, `{ viewer { id } }`, nil)
		if r.Code() == "UNAUTHENTICATED" {
			break
		}
		if r.Code() != "" {
			t.Fatalf("viewer on the other replica: %s", r.Raw)
		}
		if time.Since(start) > 3*time.Second {
			t.Fatalf("the other replica accepts a logged-out token %s later", time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("revoked on the other replica after %s", time.Since(start))
}

// A change of a user's role or password hash made directly in SQL revokes
// the user's tokens within the user cache's time to live (a trigger moves
// the token generation on).
func TestUserChangedInSQLLosesTokensWithinTheUserCacheTTL(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"USER_CACHE_SECONDS": "1"})
	ta.createTenant(t, "sql", false)
	owner := ta.owner(t, "sql")
	for _, change := range []string{
		`UPDATE users SET role = 'MEMBER' WHERE id = $1`,
		`UPDATE users SET password_hash = password_hash || 'x' WHERE id = $1`,
	} {
		id, member := owner.newUser(t, "eve", "ADMIN")
		member.must(t, `{ viewer { id } }`, nil)
		_, db := ta.superuserDB(t, "sql")
		if _, err := db.Exec(change, id); err != nil {
			t.Fatal(err)
		}
		changed := time.Now()
		for {
			r := member.do(t, `{ viewer { id } }`, nil)
			if r.Code() == "UNAUTHENTICATED" {
				break
			}
			if time.Since(changed) > 1500*time.Millisecond {
				t.Fatalf("%s: the user's token still works %s later: %s", change, time.Since(changed), r.Raw)
			}
			time.Sleep(20 * time.Millisecond)
		}
		owner.must(t, `{ viewer { id } }`, nil)
	}
}
