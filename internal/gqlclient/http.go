// Package gqlclient is the GraphQL client of tenantql's tests and
// benchmark: operations posted over HTTP (POST /graphql with a Host and a
// bearer token) and subscriptions over the graphql-transport-ws and
// graphql-ws websocket protocols. It reports what the server answered
// (status, headers, data, errors with their extensions.code) and leaves
// judging it to the caller.
package gqlclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client posts GraphQL operations to one server.
type Client struct {
	// URL is the server's base URL (http://127.0.0.1:8080); requests go
	// to URL+"/graphql".
	URL string
	// HTTP sends the requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// Error is one entry of a response's errors.
type Error struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code returns the error's extensions.code, "" when it has none.
func (e Error) Code() string {
	c, _ := e.Extensions["code"].(string)
	return c
}

// Response is a decoded answer. Data and Errors are filled only when the
// answer is JSON; Raw always holds the body.
type Response struct {
	Status  int            `json:"-"`
	Header  http.Header    `json:"-"`
	Data    map[string]any `json:"data"`
	Errors  []Error        `json:"errors"`
	Raw     string         `json:"-"`
	Latency time.Duration  `json:"-"` // from sending the request to the end of the body
}

// Code returns the first error's extensions.code, "" when none.
func (r Response) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Code()
}

// Codes returns every error's extensions.code, in order.
func (r Response) Codes() []string {
	var out []string
	for _, e := range r.Errors {
		out = append(out, e.Code())
	}
	return out
}

// OK reports an HTTP 200 with data and no errors.
func (r Response) OK() bool { return r.Status == 200 && len(r.Errors) == 0 && r.Data != nil }

// DecodeData decodes the answer's data into out (a struct shaped like the
// query). Returns an error if the body is not JSON.
func (r Response) DecodeData(out any) error {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.Raw), &env); err != nil {
		return fmt.Errorf("decode data: %w", err)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("decode data: %w", err)
	}
	return nil
}

// Body encodes a GraphQL request body.
func Body(query string, vars map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		panic(fmt.Sprintf("gqlclient: variables: %v", err)) // a test's own bug
	}
	return b
}

// NewRequest builds the POST of query with vars to host, with token as a
// bearer token when it is not "".
func (c *Client) NewRequest(ctx context.Context, host, token, query string, vars map[string]any) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.URL+"/graphql", bytes.NewReader(Body(query, vars)))
	if err != nil {
		return nil, err
	}
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// Post sends query with vars to host as token's holder ("" for none).
// Returns an error only when there is no answer to decode (transport
// failure, a JSON body that does not parse); an answer with errors is a
// Response.
func (c *Client) Post(ctx context.Context, host, token, query string, vars map[string]any) (Response, error) {
	req, err := c.NewRequest(ctx, host, token, query, vars)
	if err != nil {
		return Response{}, err
	}
	return c.Do(req)
}

// Do sends a prepared request and decodes the answer, as Post does.
func (c *Client) Do(req *http.Request) (Response, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("read answer: %w", err)
	}
	out := Response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw), Latency: time.Since(start)}
	if strings.Contains(resp.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			return out, fmt.Errorf("decode %q: %w", raw, err)
		}
	}
	return out, nil
}

// Field walks a path of keys in decoded JSON; nil when a step is missing.
func Field(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}
