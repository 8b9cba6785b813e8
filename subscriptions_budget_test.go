package main

import (
	"testing"
	"time"

	"github.com/lib/pq"
)

// LISTEN connections come out of MAX_DB_CONNECTIONS, and at most
// MAX_LISTEN_CONNECTIONS tenants are followed through one: the others are
// polled, never a connection over the budget.
func TestIssueFeedsAreInsideTheConnectionBudget(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{
		"MAX_DB_CONNECTIONS": "3", "MAX_DB_CONNECTIONS_PER_TENANT": "1", "MAX_LISTEN_CONNECTIONS": "1",
	})
	ta.createTenant(t, "lc-a", false)
	ta.createTenant(t, "lc-b", false)
	a, b := ta.owner(t, "lc-a"), ta.owner(t, "lc-b")
	for _, u := range []*tenantUser{a, b} {
		u.createProject(t, "WEB", "Website")
		u.createIssue(t, map[string]any{"projectKey": "WEB", "title": "probe"})
	}
	ca := ta.dialWS(t, tenantHost("lc-a"), protoTransportWS, bearer(a.token), nil)
	ca.subscribe("1", issueChangedSub, map[string]any{"p": "WEB"})
	ca.syncIssues(a, "WEB-1")
	ta.waitListeners(t, "lc-a", 1)

	// the budget counts every tenant backend, the LISTEN one included
	var slots, backends int
	for range 100 {
		slots, backends = int(ta.metric(t, "tenantql_tenant_connections_open")), ta.tenantBackends(t)
		if slots == backends {
			break
		}
		sleepBriefly()
	}
	if slots != backends || backends < 2 {
		t.Fatalf("budget holds %d slots for %d tenant backends (a LISTEN and a pool connection expected)", slots, backends)
	}

	// a second tenant to follow is polled instead: no LISTEN connection
	// of its own, the same events
	cb := ta.dialWS(t, tenantHost("lc-b"), protoTransportWS, bearer(b.token), nil)
	cb.subscribe("1", issueChangedSub, map[string]any{"p": "WEB"})
	cb.syncIssues(b, "WEB-1")
	key := b.createIssue(t, map[string]any{"projectKey": "WEB", "title": "polled"})
	if is := cb.issueEvent(10 * time.Second); is["key"] != key || is["title"] != "polled" {
		t.Fatalf("polled event = %v", is)
	}
	if e, ok := cb.tryEvent(3 * time.Second); ok { // a later poll does not repeat it
		t.Fatalf("a further event: %+v", e)
	}
	ta.waitListeners(t, "lc-b", 0)
	if got := len(nodes(b.must(t, `{ issues { edges { node { id } } } }`, nil), "issues")); got != 2 {
		t.Fatalf("lc-b lists %d issues", got)
	}
	if n := ta.tenantBackends(t); n > 3 {
		t.Fatalf("%d tenant backends with MAX_DB_CONNECTIONS=3", n)
	}
	// both feeds end with their last subscriber
	ca.stop("1")
	cb.stop("1")
	ta.waitListeners(t, "lc-a", 0)
	for range 100 {
		if ta.metric(t, "tenantql_issue_feeds") == 0 {
			return
		}
		sleepBriefly()
	}
	t.Fatalf("%v issue feeds still open", ta.metric(t, "tenantql_issue_feeds"))
}

// A change made while the LISTEN connection is down (its notification is
// lost) still reaches the subscribers once the connection is back.
func TestIssueChangedReplaysWhatWasMissedWhileReconnecting(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "replay", false)
	owner := ta.owner(t, "replay")
	owner.createProject(t, "WEB", "Website")
	owner.createIssue(t, map[string]any{"projectKey": "WEB", "title": "probe"})
	owner.createIssue(t, map[string]any{"projectKey": "WEB", "title": "before"})
	c := ta.dialWS(t, tenantHost("replay"), protoTransportWS, bearer(owner.token), nil)
	c.subscribe("1", issueChangedSub, map[string]any{"p": "WEB"})
	c.syncIssues(owner, "WEB-1")

	tn, db := ta.superuserDB(t, "replay")
	role := pq.QuoteIdentifier(tn.RoleName)
	// keep the listener from reconnecting, cut it, and change an issue
	// behind its back: no NOTIFY at all, as with a lost notification
	if _, err := db.Exec(`ALTER ROLE ` + role + ` NOLOGIN`); err != nil {
		t.Fatal(err)
	}
	var killed int
	if err := ta.control.Get(&killed, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1 AND query ILIKE 'LISTEN%'`, tn.DBName); err != nil || killed != 1 {
		t.Fatalf("terminated %d LISTEN sessions (%v)", killed, err)
	}
	ta.waitListeners(t, "replay", 0)
	if _, err := db.Exec(`UPDATE issues SET title = 'changed while away', updated_at = clock_timestamp() WHERE number = 2`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a reconnection attempt or two fail meanwhile
	if _, err := db.Exec(`ALTER ROLE ` + role + ` LOGIN`); err != nil {
		t.Fatal(err)
	}
	if is := c.issueEvent(15 * time.Second); is["key"] != "WEB-2" || is["title"] != "changed while away" {
		t.Fatalf("after reconnecting: %v", is)
	}
	// and only once
	if e, ok := c.tryEvent(500 * time.Millisecond); ok {
		t.Fatalf("a further event: %+v", e)
	}
}
