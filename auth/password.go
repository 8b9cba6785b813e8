// Package auth hashes user passwords, issues and checks tenant-bound user
// tokens, and checks the platform's admin token.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// ErrWrongPassword is returned by Passwords.Check when the password does not match.
var ErrWrongPassword = errors.New("auth: wrong password")

// argon2id parameters: OWASP's minimum recommendation (19 MiB, 2 passes).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Passwords hashes and checks user passwords with argon2id. It runs at
// most a fixed number of computations at once (by default one per CPU Go
// uses): each holds 19 MiB, and more at once would not finish sooner, so
// a burst of logins queues here instead of growing the heap by 19 MiB per
// request (40 logins at once were 760 MiB, against a 128 MiB soft memory
// limit). The wait is fair between queues (one per tenant): each queue
// has its own line, and a computation that ends hands its place to the
// next queue in turn, so that one tenant's flood of logins delays
// another tenant's login by about one computation, not by the flood.
// One value serves the whole process; it is safe for concurrent use.
type Passwords struct {
	workers int

	mu      sync.Mutex
	busy    int                        // places taken
	waiting map[string][]chan struct{} // each queue's line, first come first
	turns   []string                   // queues with a line, in the order they are served
	// running counts the computations under way; peak is its highest
	// value so far (for tests)
	running, peak atomic.Int32
}

// PlatformQueue is the line of the platform's own hashes (the owners'
// passwords of sign-ups); a tenant's wait in the line named by its id.
const PlatformQueue = "platform"

// NewPasswords returns the process's password hasher, running at most
// concurrent argon2id computations at once; concurrent <= 0 defaults to
// runtime.GOMAXPROCS(0).
func NewPasswords(concurrent int) *Passwords {
	if concurrent <= 0 {
		concurrent = runtime.GOMAXPROCS(0)
	}
	return &Passwords{workers: concurrent, waiting: map[string][]chan struct{}{}}
}

// acquire takes a place for a computation of queue, waiting in queue's
// line while every place is taken.
func (p *Passwords) acquire(queue string) {
	p.mu.Lock()
	if p.busy < p.workers && len(p.turns) == 0 {
		p.busy++
		p.mu.Unlock()
		return
	}
	ready := make(chan struct{})
	if len(p.waiting[queue]) == 0 {
		p.turns = append(p.turns, queue)
	}
	p.waiting[queue] = append(p.waiting[queue], ready)
	p.mu.Unlock()
	<-ready // a computation that ended handed its place over
}

// release hands the place over to the first of the next queue's line in
// turn (that queue then goes to the back of the turns), or frees it.
func (p *Passwords) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.turns) == 0 {
		p.busy--
		return
	}
	q := p.turns[0]
	p.turns = p.turns[1:]
	line := p.waiting[q]
	close(line[0])
	if len(line) == 1 {
		delete(p.waiting, q)
		return
	}
	p.waiting[q] = line[1:]
	p.turns = append(p.turns, q)
}

// idKey is argon2.IDKey within one of p's places, taken in queue's line.
func (p *Passwords) idKey(queue string, password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	p.acquire(queue)
	defer p.release()
	p.notePeak(p.running.Add(1))
	defer p.running.Add(-1)
	return argon2.IDKey(password, salt, time, memory, threads, keyLen)
}

func (p *Passwords) notePeak(n int32) {
	for {
		peak := p.peak.Load()
		if n <= peak || p.peak.CompareAndSwap(peak, n) {
			return
		}
	}
}

// Hash returns an argon2id hash of password in the PHC string format
// ($argon2id$v=19$m=...,t=...,p=...$salt$key), computed in queue's line
// (the tenant's id; one line for the platform's sign-ups).
func (p *Passwords) Hash(queue, password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := p.idKey(queue, []byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Check reports whether password matches hash (made by Hash), computed in
// queue's line. Returns ErrWrongPassword on a mismatch, another error if
// hash is malformed.
func (p *Passwords) Check(queue, hash, password string) error {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return fmt.Errorf("auth: unknown password hash format")
	}
	var version int
	var memory, time uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return fmt.Errorf("auth: unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &time, &threads); err != nil {
		return fmt.Errorf("auth: malformed argon2 parameters: %w", err)
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return fmt.Errorf("auth: malformed salt: %w", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil {
		return fmt.Errorf("auth: malformed key: %w", err)
	}
	got := p.idKey(queue, []byte(password), salt, time, memory, threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrWrongPassword
	}
	return nil
}

// dummyHash is checked against when a login names an unknown user, so that
// the answer takes as long as for a known user with a wrong password: the
// hash of "tenantql-timing-equaliser" with the salt "tenantql-dummy16" and
// the parameters above (a test holds it to them).
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$dGVuYW50cWwtZHVtbXkxNg$btvSObisZFz2g85uK9UBfuIoTtZ1pbdUfRtsvEZSuh4"

// CheckNoUser spends the time Check would and returns ErrWrongPassword.
func (p *Passwords) CheckNoUser(queue, password string) error {
	_ = p.Check(queue, dummyHash, password)
	return ErrWrongPassword
}
