package faulttest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/tenantql/tenantql/internal/gqlclient"
)

// TestSIGTERMDrainsAndRestartKeepsEverything stops the server with
// SIGTERM while requests are in flight: each of them completes and the
// process exits 0. After a restart every tenant, its data and the tokens
// issued before still work.
func TestSIGTERMDrainsAndRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	// 16 connections per tenant: most of the burst admitted at once, and
	// within the tenant roles' CONNECTION LIMIT (20) with the
	// subscription's LISTEN connection beside them (over it, PostgreSQL
	// refuses the connection: 53300, SERVICE_UNAVAILABLE)
	d := newDeployment(t, map[string]string{"MAX_DB_CONNECTIONS_PER_TENANT": "16"})
	s1 := d.start(t, nil)
	slugs := []string{"keep-alpha", "keep-beta"}
	tokens := map[string]string{}
	for _, slug := range slugs {
		s1.createReady(t, slug)
		tokens[slug] = s1.login(t, slug)
		r := mustOK(t, s1.mustGQL(t, tenantHost(slug), tokens[slug],
			`mutation($n: String!) { createProject(input: {key: "KEEP", name: $n}) { key } }`,
			map[string]any{"n": "Project of " + slug}))
		if field(r.Data, "createProject", "key") != "KEEP" {
			t.Fatalf("createProject: %s", r.Raw)
		}
	}

	// An open subscription: SIGTERM must close it with a close frame.
	sub := openSubscription(t, s1, tenantHost(slugs[0]), tokens[slugs[0]])
	subClosed := make(chan websocket.StatusCode, 1)
	go func() {
		for {
			if _, err := sub.Next(time.Minute); err != nil && !errors.Is(err, gqlclient.ErrTimeout) {
				subClosed <- sub.CloseStatus()
				return
			}
		}
	}()

	// The burst below needs up to 20 connections per tenant at once; open
	// them first, retrying what a slow VM refuses (a backend start can
	// take longer than connect_timeout while 40 start together). Cold
	// connection storms are not this test's subject; the drain is.
	var warm sync.WaitGroup
	for i := range 40 {
		warm.Add(1)
		go func() {
			defer warm.Done()
			slug := slugs[i%len(slugs)]
			for try := 0; ; try++ {
				// (a query that reaches the database: the viewer alone
				// comes from the user cache)
				r, err := s1.gql(context.Background(), tenantHost(slug), tokens[slug], `{ projects { edges { node { key } } } }`, nil)
				if err == nil && r.OK() {
					return
				}
				if try == 20 {
					t.Errorf("warming %s: %v %s", slug, err, r.Raw)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	warm.Wait()

	// Logins are slow on purpose (argon2id): many of them keep the server
	// busy for a while. SIGTERM once the first answer is back.
	const inFlight = 40
	results := make([]string, inFlight)
	first := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for i := range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slug := slugs[i%len(slugs)]
			r, err := s1.gql(context.Background(), tenantHost(slug), "", `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }`,
				map[string]any{"e": ownerEmail(slug), "p": "password-" + slug})
			once.Do(func() { close(first) })
			switch {
			case err != nil:
				results[i] = "transport: " + err.Error()
			case !r.OK() || field(r.Data, "login", "token") == nil:
				results[i] = fmt.Sprintf("HTTP %d %s", r.Status, r.Raw)
			default:
				results[i] = "ok"
			}
		}()
	}
	select {
	case <-first:
	case <-time.After(20 * time.Second):
		t.Fatal("no login answered within 20s")
	}
	began := time.Now()
	code := s1.term(t)
	took := time.Since(began)
	wg.Wait()
	completed := 0
	for i, r := range results {
		if r != "ok" {
			t.Errorf("in-flight request %d: %s", i, r)
		} else {
			completed++
		}
	}
	if completed < inFlight {
		t.Logf("server 1's warnings and errors:\n%s", logLines(s1.logPath, "level=WARN", "level=ERROR"))
	}
	// The server's own log shows the drain: access lines of logins that
	// ended after it began shutting down, so they were in flight at
	// SIGTERM (the test sends it once the first answer is back; a
	// SIGTERM after the burst would prove nothing).
	drained := loggedAfter(s1.logPath, "shutting down: draining requests", "msg=request method=POST path=/graphql")
	t.Logf("SIGTERM with %d logins sent: %d completed, %d of them after the shutdown began; exit %d after %s",
		inFlight, completed, drained, code, took.Round(time.Millisecond))
	if drained < 1 {
		t.Errorf("no request ended after the shutdown began: nothing was in flight at SIGTERM\n%s", tail(s1.logPath, 20))
	}
	if code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0:\n%s", code, tail(s1.logPath, 20))
	}
	select {
	case status := <-subClosed:
		if status != websocket.StatusNormalClosure {
			t.Errorf("the subscription ended with close status %d, want a close frame with %d", status, websocket.StatusNormalClosure)
		}
	case <-time.After(10 * time.Second):
		t.Error("the subscription is still open after the server exited")
	}

	s2 := d.start(t, nil)
	for _, slug := range slugs {
		s2.waitStatus(t, slug, "READY", 10*time.Second)
		s2.viewerOK(t, slug, tokens[slug]) // a token issued before the restart
		r := mustOK(t, s2.mustGQL(t, tenantHost(slug), tokens[slug], `{ projects(first: 10) { totalCount edges { node { key name } } } }`, nil))
		if n := field(r.Data, "projects", "totalCount"); n != float64(1) || !strings.Contains(r.Raw, `"name":"Project of `+slug+`"`) {
			t.Fatalf("%s's data after the restart: %s", slug, r.Raw)
		}
		s2.viewerOK(t, slug, s2.login(t, slug))
	}
	d.mustDoctorClean(t)
}

// loggedAfter counts the lines of the log at path that contain line and
// come after the first line containing mark (-1 when there is no mark).
func loggedAfter(path, mark, line string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n, seen := 0, false
	for _, l := range strings.Split(string(raw), "\n") {
		switch {
		case !seen && strings.Contains(l, mark):
			seen = true
		case seen && strings.Contains(l, line):
			n++
		}
	}
	if !seen {
		return -1
	}
	return n
}

// openSubscription opens a graphql-transport-ws connection to host as
// token's user, subscribes to issueChanged on project KEEP and returns
// the connection once the server acknowledged it.
func openSubscription(t *testing.T, s *server, host, token string) *gqlclient.WS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := gqlclient.Dial(ctx, s.base, gqlclient.DialOptions{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	if err := ws.Init(map[string]any{"Authorization": "Bearer " + token}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := ws.Subscribe("1", `subscription { issueChanged(projectKey: "KEEP") { key } }`, nil); err != nil {
		t.Fatal(err)
	}
	return ws
}
