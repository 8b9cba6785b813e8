package main

import (
	"testing"
	"time"
)

// A user deleted directly in SQL (the API cannot delete users) loses
// access once the user cache forgets it, and a user renamed in SQL shows
// the new name as a reporter: at once with the cache off, within
// USER_CACHE_SECONDS with it on. The token stays valid meanwhile, so only
// the lookup can refuse it.
func TestDeletedUserLosesAccessWithinTheUserCacheTTL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		seconds string
		within  time.Duration
	}{{"0", 0}, {"1", time.Second}} {
		t.Run("USER_CACHE_SECONDS="+tc.seconds, func(t *testing.T) {
			t.Parallel()
			ta := newTestApp(t, map[string]string{"USER_CACHE_SECONDS": tc.seconds})
			ta.createTenant(t, "gone", false)
			owner := ta.owner(t, "gone")
			id, member := owner.newUser(t, "mallory", "MEMBER")
			member.must(t, `{ viewer { id } }`, nil) // cached now, when the cache is on
			owner.createProject(t, "WEB", "Website")
			owner.createIssue(t, map[string]any{"projectKey": "WEB", "title": "cached reporter"})
			reporter := func() any {
				return field(nodes(owner.must(t, `{ issues { edges { node { reporter { name } } } } }`, nil), "issues")[0], "reporter", "name")
			}
			if got := reporter(); got != "Owner of gone" {
				t.Fatalf("reporter = %v", got)
			}

			_, db := ta.superuserDB(t, "gone")
			if _, err := db.Exec(`UPDATE users SET name = 'Renamed' WHERE role = 'OWNER'`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`DELETE FROM users WHERE id = $1`, id); err != nil {
				t.Fatal(err)
			}
			deleted := time.Now()
			for reporter() != "Renamed" {
				if time.Since(deleted) > tc.within+500*time.Millisecond {
					t.Fatalf("a reporter renamed %s ago keeps the old name (cache TTL %s)", time.Since(deleted), tc.within)
				}
				time.Sleep(20 * time.Millisecond)
			}
			for {
				r := member.do(t, `{ viewer { id } }`, nil)
				if r.Code() == "UNAUTHENTICATED" {
					break
				}
				if r.Code() != "" {
					t.Fatalf("viewer of a deleted user: %s", r.Raw)
				}
				if time.Since(deleted) > tc.within+500*time.Millisecond {
					t.Fatalf("a user deleted %s ago still signs in (cache TTL %s)", time.Since(deleted), tc.within)
				}
				time.Sleep(20 * time.Millisecond)
			}
			// other users are unaffected
			owner.must(t, `{ viewer { id } }`, nil)
		})
	}
}
