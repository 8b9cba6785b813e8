package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const loginMutation = `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }`

// loginFrom tries a login on slug from the client address addr (forwarded
// by the test's trusted proxy; "" for the connection's own).
func (ta *testApp) loginFrom(t *testing.T, slug, addr, email, password string) gqlResponse {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if addr != "" {
		h["X-Forwarded-For"] = addr
	}
	return ta.raw(t, "POST", tenantHost(slug), jsonBody(loginMutation, map[string]any{"e": email, "p": password}), h)
}

// wantLoginThrottled fails unless r is a throttled login: 429 with
// Retry-After, RATE_LIMITED with the same extensions.retryAfter. It
// returns the wait.
func wantLoginThrottled(t *testing.T, what string, r gqlResponse) time.Duration {
	t.Helper()
	ra, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	if r.Status != 429 || r.Code() != "RATE_LIMITED" || ra < 1 || len(r.Errors) != 1 ||
		r.Errors[0].Extensions["retryAfter"] != float64(ra) || !strings.Contains(r.Errors[0].Message, "too many failed logins") {
		t.Fatalf("%s: HTTP %d Retry-After %q %s; want a throttled login", what, r.Status, r.Header.Get("Retry-After"), r.Raw)
	}
	return time.Duration(ra) * time.Second
}

// TestLoginBruteForceIsSlowed: wrong passwords for one account are
// checked five times, then each next attempt must wait twice as long as
// the one before (429 RATE_LIMITED, Retry-After, no password checked,
// the right one included); a success clears the account. One address
// failing over many accounts is slowed the same way, while another
// address still signs in.
func TestLoginBruteForceIsSlowed(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"TRUSTED_PROXIES": "127.0.0.1", "LOGIN_FREE_FAILURES_PER_ADDRESS": "8"})
	ta.createRoutedTenant(t, "brute")
	const owner, right = "owner@brute.test", "password-brute"

	// guess until refused: five free failures, and the sixth is checked
	guess := 0
	var sent []time.Time // when each guess was sent
	try := func() gqlResponse {
		guess++
		sent = append(sent, time.Now())
		return ta.loginFrom(t, "brute", "198.51.100.1", owner, fmt.Sprint("guess-", guess))
	}
	r := try()
	for ; r.Code() == "UNAUTHENTICATED"; r = try() {
		if r.Status != 200 || guess > 10 {
			t.Fatalf("guess %d: HTTP %d %s", guess, r.Status, r.Raw)
		}
	}
	if guess != 7 {
		t.Fatalf("%d guesses checked before the first refusal, want 6", guess-1)
	}
	// then a wait of a second after the sixth failure, every guess
	// refused at once (no password checked) until it is over
	if wait := wantLoginThrottled(t, "the seventh guess", r); wait != time.Second {
		t.Errorf("wait after 6 failures: %s, want 1s", wait)
	}
	sixth := sent[5]
	for r = try(); r.Code() == "RATE_LIMITED"; r = try() {
		wantLoginThrottled(t, "a guess within the wait", r)
		time.Sleep(50 * time.Millisecond)
	}
	if r.Code() != "UNAUTHENTICATED" {
		t.Fatalf("the guess after the wait: HTTP %d %s", r.Status, r.Raw)
	}
	if early := sent[guess-1].Sub(sixth); early < time.Second {
		t.Fatalf("a guess sent %s after the sixth failed was checked, within its 1 s wait", early)
	}
	// the seventh failure: the next attempt waits (2 s, doubled), the
	// right password too, from any address
	wantLoginThrottled(t, "the guess after the seventh failure", try())
	wait := wantLoginThrottled(t, "the right password while throttled", ta.loginFrom(t, "brute", "198.51.100.2", owner, right))
	t.Logf("%d guesses in %s: 7 checked, %d refused before any check; then a wait of up to %s", guess,
		time.Since(sent[0]).Round(time.Millisecond), guess-7, wait)
	time.Sleep(wait)
	mustOK(t, ta.loginFrom(t, "brute", "198.51.100.2", owner, right))
	// and clears the account: five free failures again
	for i := range 5 {
		if r := ta.loginFrom(t, "brute", "198.51.100.3", owner, "wrong"); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("failure %d after a success: HTTP %d %s", i+1, r.Status, r.Raw)
		}
	}

	// one address over many accounts (unknown ones count too)
	for i := range 9 {
		if r := ta.loginFrom(t, "brute", "203.0.113.9", fmt.Sprintf("nobody%d@brute.test", i), "x"); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("address failure %d: HTTP %d %s", i+1, r.Status, r.Raw)
		}
	}
	wantLoginThrottled(t, "the address after 9 failures", ta.loginFrom(t, "brute", "203.0.113.9", "nobody@brute.test", "x"))
	// another tenant's logins from that address are its own business, and
	// another address signs in
	ta.createRoutedTenant(t, "calm")
	mustOK(t, ta.loginFrom(t, "calm", "203.0.113.9", "owner@calm.test", "password-calm"))
	mustOK(t, ta.loginFrom(t, "brute", "198.51.100.4", owner, right))

	// over a websocket, a throttled login is RATE_LIMITED with retryAfter
	for i := range 6 { // the sixth makes the next wait a second
		if r := ta.loginFrom(t, "brute", "198.51.100.5", "victim@brute.test", "x"); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("victim failure %d: HTTP %d %s", i+1, r.Status, r.Raw)
		}
	}
	s := openEdgeSocket(t, ta, tenantHost("brute"), nil)
	s.subscribe("l", loginMutation, map[string]any{"e": "victim@brute.test", "p": "x"})
	res := s.result("l")
	errs, _ := res["errors"].([]any)
	if errorCode(res) != "RATE_LIMITED" || len(errs) != 1 || field(errs[0], "extensions", "retryAfter") == nil {
		t.Fatalf("a throttled login over a websocket: %v", res)
	}
}

// TestLoginHashQueueIsFairAcrossTenants: while tenant A floods logins
// whose hashes are slow (its users' stored argon2id hashes ask for 20
// passes instead of 2), a login of tenant B waits for about one of A's
// hashes, not for A's whole queue: the hash workers serve the tenants'
// queues in turn.
func TestLoginHashQueueIsFairAcrossTenants(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createRoutedTenant(t, "flooder")
	ta.createRoutedTenant(t, "quiet")
	_, db := ta.superuserDB(t, "flooder")
	salt, key := make([]byte, 16), make([]byte, 32)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(key)
	b64 := base64.RawStdEncoding
	slowHash := fmt.Sprintf("$argon2id$v=19$m=19456,t=20,p=1$%s$%s", b64.EncodeToString(salt), b64.EncodeToString(key))
	if _, err := db.Exec(`UPDATE users SET password_hash = $1`, slowHash); err != nil {
		t.Fatal(err)
	}

	// A's flood: 12 logins at once, each a slow hash that fails
	const flood = 12
	var doneA atomic.Int32
	var wg sync.WaitGroup
	began := time.Now()
	for range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", ta.srv.URL+"/graphql", strings.NewReader(
				jsonBody(loginMutation, map[string]any{"e": "owner@flooder.test", "p": "not it"})))
			req.Host = tenantHost("flooder")
			req.Header.Set("Content-Type", "application/json")
			if resp, err := ta.srv.Client().Do(req); err == nil {
				resp.Body.Close()
			}
			doneA.Add(1)
		}()
	}
	time.Sleep(300 * time.Millisecond) // A's logins have read their user and queue for the hash
	startB := time.Now()
	r := ta.loginFrom(t, "quiet", "", "owner@quiet.test", "password-quiet")
	tookB, aBefore := time.Since(startB), doneA.Load()
	mustOK(t, r)
	wg.Wait()
	tookA := time.Since(began)
	t.Logf("B's login took %s while A's %d slow logins took %s; %d of A's were answered before B's",
		tookB.Round(time.Millisecond), flood, tookA.Round(time.Millisecond), aBefore)
	if aBefore > 4 {
		t.Errorf("%d of A's %d logins were answered before B's: B waited in A's queue", aBefore, flood)
	}
}
