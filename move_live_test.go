package main

import (
	"testing"
	"time"

	"github.com/tenantql/tenantql/internal/pgtest"
)

// An issueChanged subscription open while its tenant moves to another
// database server keeps delivering: the feed LISTENs on the new copy after
// the switch, over the same websocket operation, and the old copy can
// still be dropped (no session of ours is left on it).
func TestSubscriptionFollowsMovedTenant(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	b := pgtest.NewCluster(t)
	mustOK(t, ta.admin(t, addServerMutation, map[string]any{"in": map[string]any{"name": "b", "url": b.ServerURL}}))
	createOn(t, ta, "live-mover", "default")
	owner := ta.owner(t, "live-mover")
	owner.createProject(t, "LIV", "Live")
	owner.createIssue(t, map[string]any{"projectKey": "LIV", "title": "probe"})
	oldDB, super := ta.superuserDB(t, "live-mover")
	super.Close()

	c := ta.dialWS(t, tenantHost("live-mover"), protoTransportWS, nil, map[string]any{"Authorization": "Bearer " + owner.token})
	c.subscribe("1", issueChangedSub, map[string]any{"p": "LIV"})
	c.syncIssues(owner, "LIV-1")

	mustOK(t, ta.admin(t, moveMutation, map[string]any{"s": "live-mover", "to": "b"}))
	ta.waitStatus(t, "live-mover", "READY")
	if got := tenantServer(t, ta, "live-mover"); got != "b" {
		t.Fatalf("moved to %s, want b", got)
	}
	// the old copy is dropped: no LISTEN session of ours holds it
	var left int
	_ = ta.super.Get(&left, `SELECT count(*) FROM pg_database WHERE datname = $1`, oldDB.DBName)
	if left != 0 {
		t.Fatalf("the old database is left on default")
	}

	key := owner.createIssue(t, map[string]any{"projectKey": "LIV", "title": "after the move"})
	for {
		e, ok := c.tryEvent(10 * time.Second)
		if !ok {
			t.Fatalf("no event for %s within 10s of its creation on the new copy", key)
		}
		if len(e.Errors) > 0 || e.Complete || e.Data == nil {
			t.Fatalf("the subscription ended with the move: %+v", e)
		}
		if is := field(e.Data, "issueChanged").(map[string]any); is["key"] == key {
			if is["title"] != "after the move" {
				t.Fatalf("event = %v", is)
			}
			break
		}
		// a probe update replayed from the new copy may come first
	}
}
