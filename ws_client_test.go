package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tenantql/tenantql/internal/gqlclient"
)

// The two websocket subprotocols gqlgen serves.
const (
	protoTransportWS = gqlclient.ProtoTransportWS
	protoLegacyWS    = gqlclient.ProtoLegacyWS
)

// wsClient is a test's websocket: a gqlclient.WS that fails the test on
// what it cannot do.
type wsClient struct {
	*gqlclient.WS
	t testing.TB
}

// dialWS opens a websocket to serverURL's /graphql as host with the
// protocol proto, sending header on the upgrade request; it sends no
// connection_init. It returns the HTTP status of a refused upgrade. The
// connection is closed when the test ends.
func dialWS(t testing.TB, serverURL, host, proto string, header http.Header) (*wsClient, int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, status, err := gqlclient.Dial(ctx, serverURL, gqlclient.DialOptions{Host: host, Proto: proto, Header: header})
	if err != nil {
		return nil, status, err
	}
	t.Cleanup(func() {
		_ = ws.Close()
		if b := ws.BadMessage(); b != "" {
			t.Errorf("bad websocket message %q", b)
		}
	})
	return &wsClient{WS: ws, t: t}, status, nil
}

// dialWS opens a subscription connection to host with the protocol proto,
// sending header on the upgrade request and init as connection_init's
// payload, and waits for connection_ack.
func (ta *testApp) dialWS(t testing.TB, host, proto string, header http.Header, init map[string]any) *wsClient {
	t.Helper()
	c, err := ta.tryDialWS(t, host, proto, header, init)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tryDialWS is dialWS returning the failure.
func (ta *testApp) tryDialWS(t testing.TB, host, proto string, header http.Header, init map[string]any) (*wsClient, error) {
	t.Helper()
	c, _, err := dialWS(t, ta.srv.URL, host, proto, header)
	if err != nil {
		return nil, err
	}
	if err := c.Init(init, 5*time.Second); err != nil {
		return nil, err
	}
	return c, nil
}

// init sends connection_init with payload and fails the test unless the
// server acknowledges it.
func (c *wsClient) init(payload map[string]any) {
	c.t.Helper()
	if err := c.Init(payload, 20*time.Second); err != nil {
		c.t.Fatalf("%s: %v", c.Proto, err)
	}
}

// subscribe starts operation id.
func (c *wsClient) subscribe(id, query string, vars map[string]any) {
	c.t.Helper()
	if err := c.Subscribe(id, query, vars); err != nil {
		c.t.Fatalf("%s: subscribe %s: %v", c.Proto, id, err)
	}
}

// stop ends operation id from the client side.
func (c *wsClient) stop(id string) {
	c.t.Helper()
	if err := c.Stop(id); err != nil {
		c.t.Fatalf("%s: stop %s: %v", c.Proto, id, err)
	}
}

// mustNext returns the next message, failing the test unless it comes
// within 20 seconds and has type typ.
func (c *wsClient) mustNext(typ string) gqlclient.Message {
	c.t.Helper()
	m, err := c.Next(20 * time.Second)
	if err != nil {
		c.t.Fatalf("%s: waiting for %s: %v", c.Proto, typ, err)
	}
	if m.Type != typ {
		c.t.Fatalf("%s: want %s, got %s %s", c.Proto, typ, m.Type, m.Payload)
	}
	return m
}

// mustEvent returns the next message as an event, failing the test
// unless it comes within 20 seconds and has type typ.
func (c *wsClient) mustEvent(typ string) gqlclient.Event {
	c.t.Helper()
	e, err := c.mustNext(typ).Event()
	if err != nil {
		c.t.Fatalf("%s: %v", c.Proto, err)
	}
	return e
}

// event returns the next event of any operation, failing the test after
// timeout.
func (c *wsClient) event(timeout time.Duration) gqlclient.Event {
	c.t.Helper()
	e, ok := c.tryEvent(timeout)
	if !ok {
		c.t.Fatalf("%s: no event within %s", c.Proto, timeout)
	}
	return e
}

// tryEvent returns the next event, false after timeout or once the
// connection ended.
func (c *wsClient) tryEvent(timeout time.Duration) (gqlclient.Event, bool) {
	c.t.Helper()
	m, err := c.Next(timeout)
	if err != nil {
		return gqlclient.Event{}, false
	}
	e, err := m.Event()
	if err != nil {
		c.t.Fatalf("%s: %v", c.Proto, err)
	}
	return e, true
}
