package auth

import (
	"crypto/sha256"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Defaults of ThrottleOptions fields left zero.
const (
	DefaultFreeFailuresPerEmail   = 5
	DefaultFreeFailuresPerAddress = 20
	DefaultLoginBackoff           = time.Second
	DefaultMaxLoginBackoff        = 15 * time.Minute
	DefaultThrottleEntries        = 100000
)

// ThrottleOptions configure a LoginThrottle.
type ThrottleOptions struct {
	// FreePerEmail is how many failed logins in a row an account of a
	// tenant gets before the back-off; defaults to
	// DefaultFreeFailuresPerEmail.
	FreePerEmail int
	// FreePerAddress is the same for a client address of a tenant, over
	// every account it tries; defaults to DefaultFreeFailuresPerAddress.
	FreePerAddress int
	// Backoff is the wait after the first failure past the free ones; it
	// doubles with each further failure, up to MaxBackoff. Default
	// DefaultLoginBackoff and DefaultMaxLoginBackoff.
	Backoff, MaxBackoff time.Duration
	// Entries bounds the failure counts kept (about 150 bytes each); the
	// least recently failed are forgotten first. Defaults to
	// DefaultThrottleEntries.
	Entries int
}

// LoginThrottle slows password guessing. It counts failed logins per
// (tenant, email) and per (tenant, client address); past the free ones,
// each failure makes the next attempt wait twice as long as the one
// before. A count is forgotten once MaxBackoff has passed since its last
// failure, and a successful login clears its account's count. It is safe
// for concurrent use; one value serves the whole process.
type LoginThrottle struct {
	o   ThrottleOptions
	now func() time.Time

	mu  sync.Mutex
	lru *simplelru.LRU[[sha256.Size]byte, *failures]
}

type failures struct {
	n        int       // failures in a row
	inFlight int       // attempts under way
	until    time.Time // no attempt before this
	last     time.Time // the last failure
}

// NewLoginThrottle returns a LoginThrottle with o's defaults applied.
func NewLoginThrottle(o ThrottleOptions) *LoginThrottle {
	if o.FreePerEmail <= 0 {
		o.FreePerEmail = DefaultFreeFailuresPerEmail
	}
	if o.FreePerAddress <= 0 {
		o.FreePerAddress = DefaultFreeFailuresPerAddress
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultLoginBackoff
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = max(o.Backoff, DefaultMaxLoginBackoff)
	}
	if o.Entries <= 0 {
		o.Entries = DefaultThrottleEntries
	}
	l, _ := simplelru.NewLRU[[sha256.Size]byte, *failures](o.Entries, nil)
	return &LoginThrottle{o: o, now: time.Now, lru: l}
}

// LoginAttempt is a login admitted by LoginThrottle.Begin; Done ends it.
type LoginAttempt struct {
	t            *LoginThrottle
	email, place [sha256.Size]byte
}

// Begin admits a login of email into tenant from the client address addr
// ("" when unknown: the account alone counts), before its password is
// checked. When the account or the address must still wait, it returns
// how long, and the login must be refused without checking the password.
// Once an account or address has failed, attempts under way count as
// failures too, so that guesses sent at once cannot all pass as the next
// one (a clean account may sign in many times at once).
func (t *LoginThrottle) Begin(tenant, email, addr string) (*LoginAttempt, time.Duration) {
	a := &LoginAttempt{t: t, email: throttleKey(tenant, "email", strings.ToLower(strings.TrimSpace(email)))}
	if addr != "" {
		a.place = throttleKey(tenant, "addr", addr)
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forgetStale(now)
	counts := []*failures{t.entry(a.email, now)}
	frees := []int{t.o.FreePerEmail}
	if addr != "" {
		counts = append(counts, t.entry(a.place, now))
		frees = append(frees, t.o.FreePerAddress)
	}
	var wait time.Duration
	for i, f := range counts {
		wait = max(wait, f.until.Sub(now))
		if f.n > 0 && f.n+f.inFlight >= frees[i] && f.inFlight > 0 {
			wait = max(wait, t.o.Backoff) // the next failure is under way
		}
	}
	if wait > 0 {
		return nil, wait
	}
	for _, f := range counts {
		f.inFlight++
	}
	return a, 0
}

// Done ends an attempt: a failed one is counted for its account and its
// address; a successful one clears its account's count.
func (a *LoginAttempt) Done(ok bool) {
	if a == nil {
		return
	}
	t := a.t
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for key, free := range map[[sha256.Size]byte]int{a.email: t.o.FreePerEmail, a.place: t.o.FreePerAddress} {
		f, found := t.lru.Peek(key)
		if !found { // forgotten meanwhile (the bound)
			continue
		}
		f.inFlight = max(0, f.inFlight-1)
		switch {
		case !ok:
			t.fail(f, free, now)
		case key == a.email:
			f.n, f.until = 0, time.Time{}
		}
	}
}

// entry returns key's failures, a new zero count when there is none or
// the one kept is stale.
func (t *LoginThrottle) entry(key [sha256.Size]byte, now time.Time) *failures {
	f, ok := t.lru.Get(key)
	if !ok {
		f = &failures{last: now}
		t.lru.Add(key, f)
	} else if t.stale(f, now) {
		*f = failures{last: now}
	}
	return f
}

// stale reports whether f is old enough to forget: its wait is over and
// its last failure more than MaxBackoff ago.
func (t *LoginThrottle) stale(f *failures, now time.Time) bool {
	return now.Sub(f.last) > t.o.MaxBackoff && !now.Before(f.until)
}

// fail counts one failure of f and, past free, sets the wait before the
// next attempt: Backoff, doubled for each failure beyond the first one
// past free, at most MaxBackoff.
func (t *LoginThrottle) fail(f *failures, free int, now time.Time) {
	f.n++
	f.last = now
	if over := f.n - free; over > 0 {
		wait := t.o.MaxBackoff
		if over <= 30 {
			wait = min(t.o.Backoff<<(over-1), t.o.MaxBackoff)
		}
		f.until = now.Add(wait)
	}
}

// forgetStale drops the counts whose last failure is more than MaxBackoff
// old, least recently used first (a count used since is kept, and found
// stale when it is next the oldest).
func (t *LoginThrottle) forgetStale(now time.Time) {
	for {
		_, f, ok := t.lru.GetOldest()
		if !ok || !t.stale(f, now) {
			return
		}
		t.lru.RemoveOldest()
	}
}

// len reports how many counts are kept.
func (t *LoginThrottle) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}

// throttleKey is a fixed-size key: the hash of what it counts, so that a
// long email costs no more memory than a short one.
func throttleKey(tenant, kind, value string) [sha256.Size]byte {
	return sha256.Sum256([]byte(tenant + "\x00" + kind + "\x00" + value))
}
