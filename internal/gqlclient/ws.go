package gqlclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The two websocket subprotocols gqlgen serves.
const (
	ProtoTransportWS = "graphql-transport-ws" // graphql-ws library, current
	ProtoLegacyWS    = "graphql-ws"           // subscriptions-transport-ws, legacy
)

// ErrTimeout is returned by Next when no message came in time.
var ErrTimeout = errors.New("no message in time")

// Message is one protocol message.
type Message struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// WS is a websocket connection speaking either protocol. A goroutine
// reads it from the dial on and answers the server's pings.
type WS struct {
	Proto string
	conn  *websocket.Conn
	msgs  chan Message  // from the server, pings answered
	done  chan struct{} // closed when reading ended
	// readErr is why reading ended, once done is closed
	readErr error
	// badMsg is the first message that was not JSON, if any
	badMu  sync.Mutex
	badMsg string
}

// DialOptions say how to open a websocket.
type DialOptions struct {
	Host   string      // the Host header; "" for the URL's
	Proto  string      // the subprotocol; "" for ProtoTransportWS
	Header http.Header // sent with the upgrade request (Origin, Authorization)
}

// Dial upgrades a connection to baseURL's /graphql (an http:// URL). On a
// refused upgrade it returns the HTTP status (0 when there was no answer)
// and the error; on success the status is 101. No connection_init is sent.
func Dial(ctx context.Context, baseURL string, o DialOptions) (*WS, int, error) {
	if o.Proto == "" {
		o.Proto = ProtoTransportWS
	}
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+"/graphql", &websocket.DialOptions{
		Host: o.Host, HTTPHeader: o.Header, Subprotocols: []string{o.Proto},
	})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, status, fmt.Errorf("dial %s: %w", o.Host, err)
	}
	conn.SetReadLimit(1 << 20)
	c := &WS{Proto: o.Proto, conn: conn, msgs: make(chan Message, 1024), done: make(chan struct{})}
	go c.readLoop()
	return c, 101, nil
}

func (c *WS) readLoop() {
	defer close(c.msgs)
	for {
		_, b, err := c.conn.Read(context.Background())
		if err != nil {
			c.readErr = err
			close(c.done)
			return
		}
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			c.badMu.Lock()
			if c.badMsg == "" {
				c.badMsg = string(b)
			}
			c.badMu.Unlock()
			continue
		}
		if m.Type == "ping" { // graphql-transport-ws keep-alive: unanswered, the server hangs up
			_ = c.Send(Message{Type: "pong"})
			continue
		}
		c.msgs <- m
	}
}

// BadMessage returns the first message from the server that was not
// JSON, "" when there was none.
func (c *WS) BadMessage() string {
	c.badMu.Lock()
	defer c.badMu.Unlock()
	return c.badMsg
}

// Send writes one message, giving up after 10 seconds.
func (c *WS) Send(m Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.conn.Write(ctx, websocket.MessageText, b)
}

// payload encodes v, nil for nil.
func payload(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("gqlclient: payload: %v", err)) // a test's own bug
	}
	return b
}

// Init sends connection_init with payload (nil for none) and waits up to
// timeout for connection_ack. Returns an error naming whatever else came.
func (c *WS) Init(payloadValue map[string]any, timeout time.Duration) error {
	var p json.RawMessage
	if payloadValue != nil {
		p = payload(payloadValue)
	}
	if err := c.Send(Message{Type: "connection_init", Payload: p}); err != nil {
		return fmt.Errorf("connection_init: %w", err)
	}
	m, err := c.Next(timeout)
	switch {
	case err != nil:
		return fmt.Errorf("no connection_ack: %w", err)
	case m.Type != "connection_ack":
		return fmt.Errorf("connection_init answered %s %s", m.Type, m.Payload)
	}
	return nil
}

// Next returns the next message other than keep-alives. Returns
// ErrTimeout after timeout, or once the connection ended the error that
// ended it (a websocket.CloseError when the server closed it).
func (c *WS) Next(timeout time.Duration) (Message, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				<-c.done
				return Message{}, c.readErr
			}
			if m.Type == "ka" || m.Type == "pong" {
				continue
			}
			return m, nil
		case <-timer.C:
			return Message{}, ErrTimeout
		}
	}
}

// CloseStatus is the close code the server sent, -1 while the connection
// is open or when it ended without a close frame.
func (c *WS) CloseStatus() websocket.StatusCode {
	select {
	case <-c.done:
		return websocket.CloseStatus(c.readErr)
	default:
		return -1
	}
}

// Subscribe starts operation id (subscribe, or start in the legacy
// protocol).
func (c *WS) Subscribe(id, query string, vars map[string]any) error {
	typ := "subscribe"
	if c.Proto == ProtoLegacyWS {
		typ = "start"
	}
	return c.Send(Message{ID: id, Type: typ, Payload: payload(map[string]any{"query": query, "variables": vars})})
}

// Stop ends operation id from the client side (complete, or stop in the
// legacy protocol).
func (c *WS) Stop(id string) error {
	typ := "complete"
	if c.Proto == ProtoLegacyWS {
		typ = "stop"
	}
	return c.Send(Message{ID: id, Type: typ})
}

// Close closes the connection with a normal close frame.
func (c *WS) Close() error { return c.conn.Close(websocket.StatusNormalClosure, "") }

// CloseNow drops the connection without a close handshake.
func (c *WS) CloseNow() error { return c.conn.CloseNow() }

// Event is what an operation produced: data, errors, or its end.
type Event struct {
	ID       string
	Data     map[string]any
	Errors   []Error
	Complete bool
}

// Code returns the first error's extensions.code, "" when none.
func (e Event) Code() string {
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code()
}

// Event decodes m as an operation's event: next/data (data and errors),
// error (an array of errors in graphql-transport-ws, one in graphql-ws)
// or complete. Returns an error for any other message.
func (m Message) Event() (Event, error) {
	e := Event{ID: m.ID}
	switch m.Type {
	case "next", "data":
		var p struct {
			Data   map[string]any `json:"data"`
			Errors []Error        `json:"errors"`
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			return e, fmt.Errorf("payload %s: %w", m.Payload, err)
		}
		e.Data, e.Errors = p.Data, p.Errors
	case "error":
		if json.Unmarshal(m.Payload, &e.Errors) != nil {
			var one Error
			if err := json.Unmarshal(m.Payload, &one); err != nil {
				return e, fmt.Errorf("error payload %s: %w", m.Payload, err)
			}
			e.Errors = []Error{one}
		}
	case "complete":
		e.Complete = true
	default:
		return e, fmt.Errorf("unexpected message %s %s", m.Type, m.Payload)
	}
	return e, nil
}
