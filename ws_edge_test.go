package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/tenantql/tenantql/internal/gqlclient"
)

// edgeSocket is a graphql-transport-ws connection for the tests of the
// websocket edge: gqlclient's, read as decoded JSON maps.
type edgeSocket struct {
	*gqlclient.WS
	t *testing.T
}

// openEdgeSocket dials /graphql on host and sends connection_init with
// payload (nil: none), then waits for connection_ack.
func openEdgeSocket(t *testing.T, ta *testApp, host string, payload map[string]any) *edgeSocket {
	t.Helper()
	c, _, err := dialWS(t, ta.srv.URL, host, protoTransportWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Init(payload, 10*time.Second); err != nil {
		t.Fatalf("connection_init: %v", err)
	}
	return &edgeSocket{WS: c.WS, t: t}
}

func (s *edgeSocket) subscribe(id, query string, vars map[string]any) {
	s.t.Helper()
	if err := s.Subscribe(id, query, vars); err != nil {
		s.t.Fatalf("websocket write: %v", err)
	}
}

// read returns the next message that is not a keep-alive, or the error
// that ended the socket; gqlclient.ErrTimeout when none came within.
func (s *edgeSocket) read(within time.Duration) (map[string]any, error) {
	m, err := s.Next(within)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(m)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("message %s: %w", b, err)
	}
	return out, nil
}

// closed waits until the socket is closed, skipping messages, and returns
// why.
func (s *edgeSocket) closed(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		_, err := s.read(time.Until(deadline))
		if err != nil {
			return err
		}
	}
}

// result waits for the outcome of operation id: its first "next" payload,
// or the errors of its "error" message (as a payload with errors only).
func (s *edgeSocket) result(id string) map[string]any {
	s.t.Helper()
	for {
		m, err := s.read(20 * time.Second)
		if err != nil {
			s.t.Fatalf("waiting for operation %s: %v", id, err)
		}
		if m["id"] != id || m["type"] == "complete" {
			continue
		}
		switch m["type"] {
		case "next":
			return m["payload"].(map[string]any)
		case "error":
			return map[string]any{"errors": m["payload"]}
		}
		s.t.Fatalf("operation %s: unexpected %v", id, m)
	}
}

// errorCode returns the first error's extensions.code of a result.
func errorCode(result map[string]any) string {
	errs, _ := result["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	code, _ := field(errs[0], "extensions", "code").(string)
	return code
}

// TestWebsocketFloodIsRateLimited: 600 queries sent at once on one
// authenticated socket spend the tenant's rate limit as 600 HTTP requests
// would: most are refused with an "error" message, RATE_LIMITED with
// extensions.retryAfter, and the tenant's HTTP requests are then refused
// too (one bucket).
func TestWebsocketFloodIsRateLimited(t *testing.T) {
	t.Parallel()
	setup := newTestApp(t, nil)
	setup.createRoutedTenant(t, "wsflood")
	token := setup.login(t, "wsflood")
	// a replica with a small bucket (the set-up above spends many requests)
	ta := replicaWith(t, setup, map[string]string{"RATE_LIMIT_RPS": "1", "RATE_LIMIT_BURST": "50", "WS_MAX_OPERATIONS_IN_FLIGHT": "1000"})
	ta.waitRouted(t, tenantHost("wsflood"), 200)
	s := openEdgeSocket(t, ta, tenantHost("wsflood"), map[string]any{"Authorization": "Bearer " + token})

	const n = 600
	began := time.Now()
	for i := range n {
		s.subscribe(fmt.Sprint(i), `{ viewer { email } }`, nil)
	}
	answered, limited := 0, 0
	done := map[string]bool{}
	for len(done) < n {
		m, err := s.read(30 * time.Second)
		if err != nil {
			t.Fatalf("after %d answers: %v", len(done), err)
		}
		id, _ := m["id"].(string)
		switch m["type"] {
		case "next":
			if field(m, "payload", "data", "viewer", "email") != "owner@wsflood.test" {
				t.Fatalf("answer %s: %v", id, m)
			}
			answered++
			done[id] = true
		case "error":
			b, _ := json.Marshal(m)
			errs, _ := m["payload"].([]any)
			if len(errs) != 1 || field(errs[0], "extensions", "code") != "RATE_LIMITED" {
				t.Fatalf("refusal %s: %s", id, b)
			}
			if ra, _ := field(errs[0], "extensions", "retryAfter").(float64); ra < 1 {
				t.Fatalf("refusal without retryAfter: %s", b)
			}
			limited++
			done[id] = true
		}
	}
	elapsed := time.Since(began)
	t.Logf("%d queries on one socket in %s: %d answered, %d RATE_LIMITED", n, elapsed.Round(time.Millisecond), answered, limited)
	// the bucket holds 50 and refills 1 a second
	if most := 50 + int(elapsed.Seconds()+1); answered > most || limited < n-most {
		t.Errorf("%d answered, %d refused: want at most %d answered", answered, limited, most)
	}
	// HTTP spends the same buckets: at most the few tokens left or refilled
	// meanwhile pass (the flood may have been cut by the tenant's bucket,
	// which the set-up's requests had spent, before the user's was empty),
	// where a bucket of its own would let all ten through
	refused := false
	for i := 0; i < 10 && !refused; i++ {
		r := ta.do(t, tenantHost("wsflood"), token, `{ viewer { email } }`, nil)
		refused = r.Status == 429 && r.Code() == "RATE_LIMITED"
	}
	if !refused {
		t.Errorf("ten HTTP requests after the socket's flood all passed: want 429 (one bucket)")
	}
}

// TestUnauthenticatedWebsocket: a socket whose connection_init carries no
// token, or an invalid one, runs what an anonymous HTTP request may
// (organization, not issues) and is closed once idle for
// WS_ANONYMOUS_IDLE_SECONDS, while a signed-in socket stays open.
func TestUnauthenticatedWebsocket(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"WS_ANONYMOUS_IDLE_SECONDS": "1"})
	ta.createRoutedTenant(t, "wsanon")
	owner := ta.owner(t, "wsanon")
	owner.createProject(t, "ANON", "Anon")
	key := owner.createIssue(t, map[string]any{"projectKey": "ANON", "title": "secret"})
	host := tenantHost("wsanon")

	for _, payload := range []map[string]any{nil, {"Authorization": "Bearer not-a-token"}} {
		s := openEdgeSocket(t, ta, host, payload)
		s.subscribe("org", `{ organization { slug } }`, nil)
		if r := s.result("org"); field(r, "data", "organization", "slug") != "wsanon" {
			t.Errorf("init %v: organization: %v", payload, r)
		}
		s.subscribe("issue", `query($k: String!) { issue(key: $k) { title } }`, map[string]any{"k": key})
		if r := s.result("issue"); errorCode(r) != "UNAUTHENTICATED" || strings.Contains(fmt.Sprint(r), "secret") {
			t.Errorf("init %v: an issue read anonymously: %v", payload, r)
		}
		s.subscribe("sub", `subscription { issueChanged(projectKey: "ANON") { title } }`, nil)
		if r := s.result("sub"); errorCode(r) != "UNAUTHENTICATED" {
			t.Errorf("init %v: an anonymous subscription: %v", payload, r)
		}
		began := time.Now()
		err := s.closed(10 * time.Second)
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4401 || !strings.Contains(ce.Reason, "unauthenticated connection idle") {
			t.Fatalf("init %v: want a 4401 close once idle, got %v", payload, err)
		}
		if idle := time.Since(began); idle < 800*time.Millisecond {
			t.Errorf("init %v: closed %s after its last operation, before the idle timeout", payload, idle)
		}
	}

	// a signed-in socket outlives the idle timeout
	s := openEdgeSocket(t, ta, host, map[string]any{"Authorization": "Bearer " + owner.token})
	time.Sleep(2500 * time.Millisecond)
	s.subscribe("issue", `query($k: String!) { issue(key: $k) { title } }`, map[string]any{"k": key})
	if r := s.result("issue"); field(r, "data", "issue", "title") != "secret" {
		t.Errorf("signed-in socket after the idle timeout: %v", r)
	}
}

// TestWebsocketOperationsInFlightAreCapped: with two subscriptions open on
// a socket capped at two operations in flight, a third operation is
// refused with RATE_LIMITED; once one subscription completes, it runs.
func TestWebsocketOperationsInFlightAreCapped(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"WS_MAX_OPERATIONS_IN_FLIGHT": "2"})
	ta.createRoutedTenant(t, "wscap")
	owner := ta.owner(t, "wscap")
	owner.createProject(t, "CAP", "Cap")
	s := openEdgeSocket(t, ta, tenantHost("wscap"), map[string]any{"Authorization": "Bearer " + owner.token})

	sub := `subscription { issueChanged(projectKey: "CAP") { title } }`
	s.subscribe("a", sub, nil)
	s.subscribe("b", sub, nil)
	// both are live: an issue created now reaches both
	deadline := time.Now().Add(20 * time.Second)
	for seen := map[string]bool{}; len(seen) < 2; {
		owner.createIssue(t, map[string]any{"projectKey": "CAP", "title": "ping"})
		for len(seen) < 2 {
			m, err := s.read(time.Second)
			if err != nil {
				break // not subscribed yet: create another
			}
			if m["type"] != "next" {
				t.Fatalf("subscription: %v", m)
			}
			seen[m["id"].(string)] = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriptions never saw an issue: %v", seen)
		}
	}

	s.subscribe("q", `{ viewer { email } }`, nil)
	r := s.result("q")
	if errorCode(r) != "RATE_LIMITED" || !strings.Contains(fmt.Sprint(r), "too many operations in flight on this connection (limit 2)") {
		t.Fatalf("a third operation: %v", r)
	}

	if err := s.Stop("a"); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		s.subscribe(fmt.Sprint("q", i), `{ viewer { email } }`, nil)
		r := s.result(fmt.Sprint("q", i))
		if field(r, "data", "viewer", "email") == "owner@wscap.test" {
			break
		}
		if errorCode(r) != "RATE_LIMITED" || i == 100 {
			t.Fatalf("after a subscription completed: %v", r)
		}
		sleepBriefly() // the completed subscription's place comes back once it has ended
	}
}
