package auth

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	t.Parallel()
	p := NewPasswords(0)
	h, err := p.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$") || strings.Contains(h, "correct horse") {
		t.Fatalf("unexpected hash %q", h)
	}
	if err := p.Check(h, "correct horse"); err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if err := p.Check(h, "wrong horse"); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: got %v", err)
	}
	if err := p.Check("$bcrypt$x", "x"); err == nil || errors.Is(err, ErrWrongPassword) {
		t.Fatalf("malformed hash: got %v", err)
	}
	if err := p.CheckNoUser("x"); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("CheckNoUser: %v", err)
	}
}

// The unknown-user check costs what a real one does: the dummy hash is a
// real hash with the current parameters.
func TestDummyHashHasTheCurrentParameters(t *testing.T) {
	t.Parallel()
	p := NewPasswords(0)
	h, err := p.Hash("x")
	if err != nil {
		t.Fatal(err)
	}
	params := func(hash string) string { return hash[:strings.LastIndex(hash[:strings.LastIndex(hash, "$")], "$")] }
	if params(dummyHash) != params(h) {
		t.Fatalf("dummy hash parameters %q, a new hash's %q", params(dummyHash), params(h))
	}
	if err := p.Check(dummyHash, "tenantql-timing-equaliser"); err != nil {
		t.Fatalf("the dummy hash is not the hash it says: %v", err)
	}
}

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
	hash, err := p.Hash("burst")
	if err != nil {
		t.Fatal(err)
	}
	p.peak.Store(0)
	var wg sync.WaitGroup
	for range 4 * cap(p.slots) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Check(hash, "burst"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if peak := p.peak.Load(); peak < 1 || int(peak) > cap(p.slots) {
		t.Fatalf("peak argon2id computations at once = %d, want 1..%d", peak, cap(p.slots))
	}
}
