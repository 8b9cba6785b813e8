package faulttest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSIGTERMDrainsAndRestartKeepsEverything stops the server with
// SIGTERM while requests are in flight: each of them completes and the
// process exits 0. After a restart every tenant, its data and the tokens
// issued before still work.
func TestSIGTERMDrainsAndRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	// every login in flight admitted at once (the per-tenant admission
	// limit would answer some with 503 before they start, not the point here)
	d := newDeployment(t, map[string]string{"MAX_DB_CONNECTIONS_PER_TENANT": "32"})
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
	t.Logf("SIGTERM with %d logins in flight: %d completed, exit %d after %s", inFlight, completed, code, took.Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0:\n%s", code, tail(s1.logPath, 20))
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
