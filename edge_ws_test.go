package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestSubscriptionsOutliveHTTPTimeouts: the server's read and write
// timeouts cut slow HTTP requests, never a websocket (net/http clears a
// hijacked connection's deadlines); both protocols carry the token in
// connection_init.
func TestSubscriptionsOutliveHTTPTimeouts(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"HTTP_READ_TIMEOUT_SECONDS": "1", "HTTP_WRITE_TIMEOUT_SECONDS": "1"})
	ta.createTenant(t, "wst", false)
	// the http.Server of serve(), with these timeouts
	h, _ := ta.handler()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadHeaderTimeout = ta.cfg.ReadHeaderTimeout
	srv.Config.ReadTimeout = ta.cfg.ReadTimeout
	srv.Config.WriteTimeout = ta.cfg.WriteTimeout
	srv.Config.IdleTimeout = ta.cfg.IdleTimeout
	srv.Start()
	t.Cleanup(srv.Close)

	sub := `subscription { tenantStatusChanged(slug: "wst") { slug status } }`
	modern, _, err := dialWS(t, srv.URL, "example.test", protoTransportWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	modern.init(map[string]any{"Authorization": "Bearer " + testAdminToken})
	modern.subscribe("1", sub, nil)
	if e := modern.mustEvent("next"); field(e.Data, "tenantStatusChanged", "status") != "READY" {
		t.Fatalf("first event: %+v", e)
	}

	legacy, _, err := dialWS(t, srv.URL, "example.test", protoLegacyWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	legacy.init(map[string]any{"authToken": testAdminToken})
	legacy.subscribe("1", sub, nil)
	if e := legacy.mustEvent("data"); field(e.Data, "tenantStatusChanged", "status") != "READY" {
		t.Fatalf("first legacy event: %+v", e)
	}

	time.Sleep(2500 * time.Millisecond) // past both timeouts
	mustOK(t, ta.admin(t, `mutation { suspendTenant(slug: "wst") { status } }`, nil))
	if e := modern.mustEvent("next"); field(e.Data, "tenantStatusChanged", "status") != "SUSPENDED" {
		t.Fatalf("event after the timeouts: %+v", e)
	}
	if e := legacy.mustEvent("data"); field(e.Data, "tenantStatusChanged", "status") != "SUSPENDED" {
		t.Fatalf("legacy event after the timeouts: %+v", e)
	}

	// while a plain request that is slower than the read timeout is cut
	req, _ := http.NewRequest("POST", srv.URL+"/graphql", &slowReader{parts: []string{`{"query":`, `"{ __typename }"}`}, pause: 2 * time.Second})
	req.Host = "example.test"
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("a body slower than the read timeout was served")
		}
	}
}

// slowReader yields its parts with a pause before each but the first.
type slowReader struct {
	parts []string
	pause time.Duration
	n     int
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.n >= len(s.parts) {
		return 0, io.EOF
	}
	if s.n > 0 {
		time.Sleep(s.pause)
	}
	n := copy(p, s.parts[s.n])
	s.n++
	return n, nil
}

// TestWebsocketGuards: Origin checked before the upgrade, a cap on each
// tenant's connections, the init timeout, and the limits on subscriptions.
func TestWebsocketGuards(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"WS_MAX_CONNECTIONS_PER_TENANT": "1", "WS_INIT_TIMEOUT_SECONDS": "1"})
	ta.createRoutedTenant(t, "wsg")
	ta.createRoutedTenant(t, "wsh")
	const host = "wsg.example.test"

	// a foreign Origin is refused before the upgrade; the tenant's own is fine
	if _, status, err := dialWS(t, ta.srv.URL, host, protoTransportWS, http.Header{"Origin": {"https://wsh.example.test"}}); err == nil || status != 403 {
		t.Fatalf("foreign origin: status %d, %v", status, err)
	}
	own, _, err := dialWS(t, ta.srv.URL, host, protoTransportWS, http.Header{"Origin": {"http://wsg.example.test:5173"}})
	if err != nil {
		t.Fatalf("own origin: %v", err)
	}
	own.init(nil)

	// the cap: a second connection of the same tenant is 429, another tenant's is fine
	if _, status, err := dialWS(t, ta.srv.URL, host, protoTransportWS, nil); err == nil || status != 429 {
		t.Fatalf("over the cap: status %d, %v", status, err)
	}
	other, _, err := dialWS(t, ta.srv.URL, "wsh.example.test", protoTransportWS, nil)
	if err != nil {
		t.Fatalf("other tenant: %v", err)
	}

	// limits apply to subscriptions: an "error" message, nothing runs
	var aliases strings.Builder
	for i := range 31 {
		aliases.WriteString(" a" + string(rune('a'+i/26)) + string(rune('a'+i%26)) + ": key")
	}
	own.subscribe("x", `subscription { issueChanged(projectKey: "P") {`+aliases.String()+` } }`, nil)
	m := own.mustNext("error")
	if b, _ := json.Marshal(m); !strings.Contains(string(b), "QUERY_TOO_COMPLEX") || !strings.Contains(string(b), "more than 30 aliases") {
		t.Fatalf("refused subscription: %s", b)
	}

	// closing frees the slot
	_ = own.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, err := dialWS(t, ta.srv.URL, host, protoTransportWS, nil)
		if err == nil {
			_ = c.CloseNow()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %v", err)
		}
		sleepBriefly()
	}

	// a client that never sends connection_init is closed by the server
	_ = other.CloseNow()
	var silent *wsClient
	for silent == nil && time.Now().Before(deadline.Add(10*time.Second)) {
		silent, _, _ = dialWS(t, ta.srv.URL, "wsh.example.test", protoTransportWS, nil)
		if silent == nil {
			sleepBriefly()
		}
	}
	if silent == nil {
		t.Fatal("could not reconnect")
	}
	_, err = silent.Next(20 * time.Second)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "initialisation timeout") {
		t.Fatalf("silent client: want a close for the init timeout, got %v", err)
	}
}
