package store_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/store"
)

func TestIssueChangedNotification(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	e.project(t, "WEB")
	rep := e.user(t, "rep")
	l := listen(t, e.url)

	created := e.issue(t, "WEB", rep.ID, "notify me")
	got := l.next(t)
	if got != created.ID.String() {
		t.Fatalf("notification %q after create, want %s", got, created.ID)
	}
	if id, err := store.ParseIssueChanged(got); err != nil || id != created.ID {
		t.Fatalf("ParseIssueChanged(%q) = %v, %v", got, id, err)
	}
	other := e.issue(t, "WEB", rep.ID, "other")
	if got := l.next(t); got != other.ID.String() {
		t.Fatalf("notification %q after create, want %s", got, other.ID)
	}
	// an empty patch and a failed update send nothing: the next notification is other's update
	if _, err := e.s.UpdateIssue(ctx, "WEB-1", store.IssuePatch{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.UpdateIssue(ctx, "WEB-1", store.IssuePatch{AssigneeID: ptr(uuid.New())}); err == nil {
		t.Fatal("update with an unknown assignee succeeded")
	}
	if _, err := e.s.UpdateIssue(ctx, "WEB-2", store.IssuePatch{Status: ptr(store.StatusDone)}); err != nil {
		t.Fatal(err)
	}
	if got := l.next(t); got != other.ID.String() {
		t.Fatalf("notification %q after update, want %s", got, other.ID)
	}
}

func TestParseIssueChangedRefusesOtherPayloads(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "WEB-1", "not-a-uuid", "00000000-0000-0000-0000-00000000000g"} {
		if id, err := store.ParseIssueChanged(p); err == nil {
			t.Errorf("ParseIssueChanged(%q) = %v, want an error", p, id)
		}
	}
}

// listener receives the notifications of store.IssueChangedChannel.
type listener struct{ ch <-chan *pq.Notification }

func (l listener) next(t *testing.T) string {
	t.Helper()
	select {
	case n := <-l.ch:
		if n.Channel != store.IssueChangedChannel {
			t.Fatalf("notification on %q", n.Channel)
		}
		return n.Extra
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s")
		return ""
	}
}

// listen LISTENs on store.IssueChangedChannel on the database at url.
func listen(t *testing.T, url string) listener {
	t.Helper()
	l := pq.NewListener(url, 10*time.Millisecond, time.Second, nil)
	t.Cleanup(func() { _ = l.Close() })
	if err := l.Listen(store.IssueChangedChannel); err != nil {
		t.Fatalf("listen: %v", err)
	}
	return listener{ch: l.Notify}
}
