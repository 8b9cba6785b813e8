package gqlclient

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestPostSendsHostTokenAndVariablesAndDecodesErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Query     string         `json:"query"`
			Variables map[string]any `json:"variables"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil || r.URL.Path != "/graphql" || r.Method != "POST" ||
			r.Host != "acme.example.test" || r.Header.Get("Authorization") != "Bearer tok" ||
			r.Header.Get("Content-Type") != "application/json" || body.Query != "{ x }" || body.Variables["v"] != "1" {
			t.Errorf("request %s %s host %s auth %q body %s", r.Method, r.URL.Path, r.Host, r.Header.Get("Authorization"), b)
		}
		w.Header().Set("Content-Type", "application/graphql-response+json")
		w.Header().Set("X-Request-Id", "rid")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"status":"ignored","errors":[{"message":"slow down","extensions":{"code":"RATE_LIMITED"}},{"message":"b"}],"data":null}`))
	}))
	defer srv.Close()
	c := Client{URL: srv.URL}
	r, err := c.Post(context.Background(), "acme.example.test", "tok", "{ x }", map[string]any{"v": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 429 || r.Header.Get("X-Request-Id") != "rid" || r.Code() != "RATE_LIMITED" || len(r.Codes()) != 2 ||
		r.Codes()[1] != "" || r.Errors[0].Message != "slow down" || r.Data != nil || r.OK() {
		t.Fatalf("decoded %+v", r)
	}
}

func TestPostKeepsANonJSONBodyRaw(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("upstream down"))
	}))
	defer srv.Close()
	r, err := (&Client{URL: srv.URL}).Post(context.Background(), "h", "", "{ x }", nil)
	if err != nil || r.Status != 502 || r.Raw != "upstream down" || r.Errors != nil {
		t.Fatalf("got %+v, %v", r, err)
	}
}

func TestMessageEvent(t *testing.T) {
	for _, tc := range []struct {
		m        Message
		code     string
		data     any
		complete bool
	}{
		{Message{ID: "1", Type: "next", Payload: json.RawMessage(`{"data":{"a":1}}`)}, "", 1.0, false},
		{Message{ID: "1", Type: "data", Payload: json.RawMessage(`{"data":null,"errors":[{"message":"x","extensions":{"code":"NOT_FOUND"}}]}`)}, "NOT_FOUND", nil, false},
		{Message{ID: "1", Type: "error", Payload: json.RawMessage(`[{"message":"x","extensions":{"code":"RATE_LIMITED"}}]`)}, "RATE_LIMITED", nil, false},
		{Message{ID: "1", Type: "error", Payload: json.RawMessage(`{"message":"x","extensions":{"code":"UNAUTHENTICATED"}}`)}, "UNAUTHENTICATED", nil, false},
		{Message{ID: "1", Type: "complete"}, "", nil, true},
	} {
		e, err := tc.m.Event()
		if err != nil || e.ID != "1" || e.Code() != tc.code || Field(e.Data, "a") != tc.data || e.Complete != tc.complete {
			t.Errorf("%s %s: %+v, %v", tc.m.Type, tc.m.Payload, e, err)
		}
	}
	if _, err := (Message{Type: "connection_ack"}).Event(); err == nil {
		t.Error("connection_ack decoded as an event")
	}
}
