package auth

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	t.Parallel()
	p := NewPasswords(0)
	h, err := p.Hash("t", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$") || strings.Contains(h, "correct horse") {
		t.Fatalf("unexpected hash %q", h)
	}
	if err := p.Check("t", h, "correct horse"); err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if err := p.Check("t", h, "wrong horse"); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: got %v", err)
	}
	if err := p.Check("t", "$bcrypt$x", "x"); err == nil || errors.Is(err, ErrWrongPassword) {
		t.Fatalf("malformed hash: got %v", err)
	}
	if err := p.CheckNoUser("t", "x"); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("CheckNoUser: %v", err)
	}
}

// The unknown-user check costs what a real one does: the dummy hash is a
// real hash with the current parameters.
func TestDummyHashHasTheCurrentParameters(t *testing.T) {
	t.Parallel()
	p := NewPasswords(0)
	h, err := p.Hash("t", "x")
	if err != nil {
		t.Fatal(err)
	}
	params := func(hash string) string { return hash[:strings.LastIndex(hash[:strings.LastIndex(hash, "$")], "$")] }
	if params(dummyHash) != params(h) {
		t.Fatalf("dummy hash parameters %q, a new hash's %q", params(dummyHash), params(h))
	}
	if err := p.Check("t", dummyHash, "tenantql-timing-equaliser"); err != nil {
		t.Fatalf("the dummy hash is not the hash it says: %v", err)
	}
}

// TestTokensAreBoundToTenant: the checks after the first Verify run on
// the remembered token (Tokens.verified), as a server's do.
func TestTokensAreBoundToTenant(t *testing.T) {
	t.Parallel()
	tok, err := NewTokens(strings.Repeat("k", 32), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.Issue("user-1", "tenant-a", 7)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tok.Verify(s, "tenant-a")
	if err != nil || c.UserID != "user-1" || c.TenantID != "tenant-a" || c.Generation != 7 {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	if _, err := tok.Verify(s, "tenant-b"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("other tenant accepted the token: %v", err)
	}
	other, _ := NewTokens(strings.Repeat("o", 32), time.Hour)
	if _, err := other.Verify(s, "tenant-a"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token signed with another key accepted: %v", err)
	}
	tok.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := tok.Verify(s, "tenant-a"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired token accepted: %v", err)
	}
	if _, err := NewTokens("short", 0); err == nil {
		t.Fatal("short secret accepted")
	}
}

// After a rotation (SECRET_KEY=B, SECRET_KEY_PREVIOUS=A) tokens signed
// with A still verify, new ones are signed with B (so B alone verifies
// them), and a token of a third key does not verify.
func TestTokensOfThePreviousKeyVerify(t *testing.T) {
	t.Parallel()
	keyA, keyB, keyC := strings.Repeat("a", 32), strings.Repeat("b", 32), strings.Repeat("c", 32)
	underA, _ := NewTokens(keyA, time.Hour)
	old, err := underA.Issue("user-1", "tenant-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := NewTokens(keyB, time.Hour, keyA)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := rotated.Verify(old, "tenant-a"); err != nil || c.UserID != "user-1" {
		t.Fatalf("a token of the previous key: %+v, %v", c, err)
	}
	if _, err := rotated.Verify(old, "tenant-b"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a previous key's token accepted for another tenant: %v", err)
	}
	fresh, _ := rotated.Issue("user-1", "tenant-a", 1)
	onlyB, _ := NewTokens(keyB, time.Hour)
	if _, err := onlyB.Verify(fresh, "tenant-a"); err != nil {
		t.Fatalf("a new token is not signed with the current key: %v", err)
	}
	if _, err := onlyB.Verify(old, "tenant-a"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("without the previous key its token verified: %v", err)
	}
	underC, _ := NewTokens(keyC, time.Hour)
	foreign, _ := underC.Issue("user-1", "tenant-a", 1)
	if _, err := rotated.Verify(foreign, "tenant-a"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a token of neither key verified: %v", err)
	}
	if _, err := NewTokens(keyB, 0, "short"); err == nil {
		t.Fatal("a short previous key accepted")
	}
}

func TestAdminTokenMatches(t *testing.T) {
	t.Parallel()
	cases := []struct {
		configured, presented string
		want                  bool
	}{
		{"s3cret-token", "s3cret-token", true},
		{"s3cret-token", "s3cret-tokeN", false},
		{"s3cret-token", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		if got := AdminTokenMatches(c.configured, c.presented); got != c.want {
			t.Errorf("AdminTokenMatches(%q, %q) = %v", c.configured, c.presented, got)
		}
	}
}

// A burst of password checks runs at most GOMAXPROCS argon2id
// computations (19 MiB each) at once.
func TestPasswordHashingIsBoundedToTheCPUs(t *testing.T) {
	t.Parallel()
	p := NewPasswords(0)
	hash, err := p.Hash("t", "burst")
	if err != nil {
		t.Fatal(err)
	}
	p.peak.Store(0)
	var wg sync.WaitGroup
	for range 4 * p.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Check("t", hash, "burst"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if peak := p.peak.Load(); peak < 1 || int(peak) > p.workers {
		t.Fatalf("peak argon2id computations at once = %d, want 1..%d", peak, p.workers)
	}
}

// The wait for a place is fair between queues: with the one place taken
// and five computations of tenant a waiting, one of tenant b that comes
// after them goes second, not sixth.
func TestPasswordQueuesTakeTurns(t *testing.T) {
	t.Parallel()
	p := NewPasswords(1)
	p.acquire("a") // the place, taken
	order := make(chan string, 10)
	var wg sync.WaitGroup
	waiters := func(queue string, n int) {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.acquire(queue)
				order <- fmt.Sprint(queue, i)
				p.release()
			}()
			for { // in line, in this order
				p.mu.Lock()
				in := len(p.waiting[queue])
				p.mu.Unlock()
				if in == i+1 {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	waiters("a", 5)
	waiters("b", 1)
	p.release()
	var got []string
	for range 6 {
		got = append(got, <-order)
	}
	if want := "[a0 b0 a1 a2 a3 a4]"; fmt.Sprint(got) != want {
		t.Fatalf("served %v, want %s", got, want)
	}
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy != 0 || len(p.turns) != 0 || len(p.waiting) != 0 {
		t.Fatalf("after all: busy %d, turns %v, waiting %v", p.busy, p.turns, p.waiting)
	}
}

// LoginThrottle: five free failures per account, then a wait that doubles
// with each failure; a success clears the account; the address has its
// own count over every account; once an account has failed, attempts at
// once count; stale counts are forgotten.
func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	now := time.Now()
	lt := NewLoginThrottle(ThrottleOptions{FreePerAddress: 8, MaxBackoff: time.Minute})
	lt.now = func() time.Time { return now }
	fail := func(email, addr string) time.Duration {
		a, wait := lt.Begin("t1", email, addr)
		if wait > 0 {
			return wait
		}
		a.Done(false)
		return 0
	}
	for i := range 5 {
		if w := fail("Ada@x.test", "198.51.100.1"); w != 0 {
			t.Fatalf("failure %d refused: %s", i+1, w)
		}
	}
	// the sixth is checked, and the seventh must wait 1 s, then 2 s
	if w := fail("ada@x.test ", "198.51.100.2"); w != 0 {
		t.Fatalf("sixth attempt refused: %s", w)
	}
	if w := fail("ada@x.test", "198.51.100.3"); w != time.Second {
		t.Fatalf("seventh attempt: wait %s, want 1s", w)
	}
	now = now.Add(time.Second)
	if w := fail("ada@x.test", "198.51.100.3"); w != 0 {
		t.Fatalf("after the wait: %s", w)
	}
	if w := fail("ada@x.test", "198.51.100.3"); w != 2*time.Second {
		t.Fatalf("eighth attempt: wait %s, want 2s", w)
	}
	// another tenant's account of the same email is not affected
	if a, w := lt.Begin("t2", "ada@x.test", "198.51.100.3"); w != 0 {
		t.Fatalf("other tenant: %s", w)
	} else {
		a.Done(true)
	}
	// a success clears the account
	now = now.Add(2 * time.Second)
	a, w := lt.Begin("t1", "ada@x.test", "198.51.100.4")
	if w != 0 {
		t.Fatalf("after the wait: %s", w)
	}
	a.Done(true)
	for i := range 5 {
		if w := fail("ada@x.test", "198.51.100.4"); w != 0 {
			t.Fatalf("failure %d after a success refused: %s", i+1, w)
		}
	}
	// one address over many accounts: 8 free, then it waits
	for i := range 8 {
		if w := fail(fmt.Sprintf("u%d@x.test", i), "203.0.113.7"); w != 0 {
			t.Fatalf("address failure %d refused: %s", i+1, w)
		}
	}
	if w := fail("u8@x.test", "203.0.113.7"); w != 0 {
		t.Fatalf("ninth address attempt: %s", w)
	}
	if w := fail("u9@x.test", "203.0.113.7"); w != time.Second {
		t.Fatalf("tenth address attempt: wait %s, want 1s", w)
	}
	// a clean account may sign in many times at once; once it has failed,
	// attempts under way count: with 2 failures, 3 more may be under way
	for range 10 {
		if _, w := lt.Begin("t1", "bob@x.test", ""); w != 0 {
			t.Fatalf("a clean account's attempts at once: %s", w)
		}
	}
	fail("carl@x.test", "")
	fail("carl@x.test", "")
	passed := 0
	for range 10 {
		if _, w := lt.Begin("t1", "carl@x.test", ""); w == 0 {
			passed++
		}
	}
	if passed != 3 {
		t.Fatalf("%d of 10 attempts at once passed after 2 failures, want 3", passed)
	}
	// forgotten once MaxBackoff has passed since the last failure
	now = now.Add(2 * time.Minute)
	lt.Begin("t1", "dora@x.test", "")
	if n := lt.len(); n != 1 {
		t.Fatalf("%d counts kept after they went stale, want 1", n)
	}
	if w := fail("carl@x.test", ""); w != 0 {
		t.Fatalf("a stale account: %s", w)
	}
}

// TestTamperedTokenIsNotRemembered: a token that verified once does not
// make a token differing from it in one byte verify.
func TestTamperedTokenIsNotRemembered(t *testing.T) {
	t.Parallel()
	tok, err := NewTokens(strings.Repeat("k", 32), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.Issue("user-1", "tenant-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Verify(s, "tenant-a"); err != nil {
		t.Fatal(err)
	}
	// the signature's last character carries 4 bits of it: A, Q, g and w
	// differ in those (two characters differing only in the 2 unused bits
	// would decode to the same signature)
	last := s[len(s)-1]
	for _, b := range []byte("AQgw") {
		if b == last {
			continue
		}
		if _, err := tok.Verify(s[:len(s)-1]+string(b), "tenant-a"); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("tampered token accepted: %v", err)
		}
	}
}

// BenchmarkVerifyToken: a token verified again (remembered) against one
// parsed and checked from scratch, as every request did before.
func BenchmarkVerifyToken(b *testing.B) {
	tok, err := NewTokens(strings.Repeat("k", 32), time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	s, err := tok.Issue("0b7c9a52-4d3e-4a8e-9c1f-1d2e3f4a5b6c", "5f0e1d2c-3b4a-4958-8776-655443322110", 3)
	if err != nil {
		b.Fatal(err)
	}
	for name, verify := range map[string]func(string, string) (Claims, error){"remembered": tok.Verify, "from-scratch": tok.verifySigned} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := verify(s, "5f0e1d2c-3b4a-4958-8776-655443322110"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
