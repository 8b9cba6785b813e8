package main

import (
	"context"
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

// hostTransport sends every request with Host set to host.
type hostTransport struct{ host string }

func (h hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = h.host
	return http.DefaultTransport.RoundTrip(r)
}

// wsConn is a GraphQL websocket client for tests.
type wsConn struct {
	t *testing.T
	c *websocket.Conn
}

// dialWS opens a websocket to serverURL's /graphql as host, with
// subprotocol and an optional Origin. It returns the HTTP status of a
// refused upgrade.
func dialWS(t *testing.T, serverURL, host, subprotocol, origin string) (*wsConn, int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(serverURL, "http")+"/graphql", &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: hostTransport{host}},
		HTTPHeader:   h,
		Subprotocols: []string{subprotocol},
	})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, status, err
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsConn{t: t, c: c}, 101, nil
}

func (w *wsConn) send(msg map[string]any) {
	w.t.Helper()
	b, _ := json.Marshal(msg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		w.t.Fatalf("websocket write: %v", err)
	}
}

// next reads the next message that is not a keep-alive.
func (w *wsConn) next() (map[string]any, error) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, b, err := w.c.Read(ctx)
		cancel()
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			w.t.Fatalf("websocket message %q: %v", b, err)
		}
		switch m["type"] {
		case "ping": // graphql-transport-ws keep-alive: unanswered, the server hangs up
			w.send(map[string]any{"type": "pong"})
			continue
		case "ka", "pong":
			continue
		}
		return m, nil
	}
}

func (w *wsConn) mustNext(typ string) map[string]any {
	w.t.Helper()
	m, err := w.next()
	if err != nil {
		w.t.Fatalf("waiting for %s: %v", typ, err)
	}
	if m["type"] != typ {
		w.t.Fatalf("want %s, got %v", typ, m)
	}
	return m
}

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
	modern, _, err := dialWS(t, srv.URL, "example.test", "graphql-transport-ws", "")
	if err != nil {
		t.Fatal(err)
	}
	modern.send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + testAdminToken}})
	modern.mustNext("connection_ack")
	modern.send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": sub}})
	if m := modern.mustNext("next"); field(m, "payload", "data", "tenantStatusChanged", "status") != "READY" {
		t.Fatalf("first event: %v", m)
	}

	legacy, _, err := dialWS(t, srv.URL, "example.test", "graphql-ws", "")
	if err != nil {
		t.Fatal(err)
	}
	legacy.send(map[string]any{"type": "connection_init", "payload": map[string]any{"authToken": testAdminToken}})
	legacy.mustNext("connection_ack")
	legacy.send(map[string]any{"id": "1", "type": "start", "payload": map[string]any{"query": sub}})
	if m := legacy.mustNext("data"); field(m, "payload", "data", "tenantStatusChanged", "status") != "READY" {
		t.Fatalf("first legacy event: %v", m)
	}

	time.Sleep(2500 * time.Millisecond) // past both timeouts
	mustOK(t, ta.admin(t, `mutation { suspendTenant(slug: "wst") { status } }`, nil))
	if m := modern.mustNext("next"); field(m, "payload", "data", "tenantStatusChanged", "status") != "SUSPENDED" {
		t.Fatalf("event after the timeouts: %v", m)
	}
	if m := legacy.mustNext("data"); field(m, "payload", "data", "tenantStatusChanged", "status") != "SUSPENDED" {
		t.Fatalf("legacy event after the timeouts: %v", m)
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
	if _, status, err := dialWS(t, ta.srv.URL, host, "graphql-transport-ws", "https://wsh.example.test"); err == nil || status != 403 {
		t.Fatalf("foreign origin: status %d, %v", status, err)
	}
	own, _, err := dialWS(t, ta.srv.URL, host, "graphql-transport-ws", "http://wsg.example.test:5173")
	if err != nil {
		t.Fatalf("own origin: %v", err)
	}
	own.send(map[string]any{"type": "connection_init"})
	own.mustNext("connection_ack")

	// the cap: a second connection of the same tenant is 429, another tenant's is fine
	if _, status, err := dialWS(t, ta.srv.URL, host, "graphql-transport-ws", ""); err == nil || status != 429 {
		t.Fatalf("over the cap: status %d, %v", status, err)
	}
	other, _, err := dialWS(t, ta.srv.URL, "wsh.example.test", "graphql-transport-ws", "")
	if err != nil {
		t.Fatalf("other tenant: %v", err)
	}

	// limits apply to subscriptions: an "error" message, nothing runs
	var aliases strings.Builder
	for i := range 31 {
		aliases.WriteString(" a" + string(rune('a'+i/26)) + string(rune('a'+i%26)) + ": key")
	}
	own.send(map[string]any{"id": "x", "type": "subscribe", "payload": map[string]any{
		"query": `subscription { issueChanged(projectKey: "P") {` + aliases.String() + ` } }`}})
	m := own.mustNext("error")
	if b, _ := json.Marshal(m); !strings.Contains(string(b), "QUERY_TOO_COMPLEX") || !strings.Contains(string(b), "more than 30 aliases") {
		t.Fatalf("refused subscription: %s", b)
	}

	// closing frees the slot
	own.c.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, err := dialWS(t, ta.srv.URL, host, "graphql-transport-ws", "")
		if err == nil {
			c.c.CloseNow()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %v", err)
		}
		sleepBriefly()
	}

	// a client that never sends connection_init is closed by the server
	_ = other.c.CloseNow()
	var silent *wsConn
	for silent == nil && time.Now().Before(deadline.Add(10*time.Second)) {
		silent, _, _ = dialWS(t, ta.srv.URL, "wsh.example.test", "graphql-transport-ws", "")
		if silent == nil {
			sleepBriefly()
		}
	}
	if silent == nil {
		t.Fatal("could not reconnect")
	}
	_, err = silent.next()
	var ce websocket.CloseError
	if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "initialisation timeout") {
		t.Fatalf("silent client: want a close for the init timeout, got %v", err)
	}
}
