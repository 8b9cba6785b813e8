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
// limit). One value serves the whole process; it is safe for concurrent use.
type Passwords struct {
	slots chan struct{}
	// running counts the computations under way; peak is its highest
	// value so far (for tests)
	running, peak atomic.Int32
}

// NewPasswords returns the process's password hasher, running at most
// concurrent argon2id computations at once; concurrent <= 0 defaults to
// runtime.GOMAXPROCS(0).
func NewPasswords(concurrent int) *Passwords {
	if concurrent <= 0 {
		concurrent = runtime.GOMAXPROCS(0)
	}
	return &Passwords{slots: make(chan struct{}, concurrent)}
}

// idKey is argon2.IDKey within p's slots.
func (p *Passwords) idKey(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	p.slots <- struct{}{}
	defer func() { <-p.slots }()
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
// ($argon2id$v=19$m=...,t=...,p=...$salt$key).
func (p *Passwords) Hash(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := p.idKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Check reports whether password matches hash (made by Hash).
// Returns ErrWrongPassword on a mismatch, another error if hash is malformed.
func (p *Passwords) Check(hash, password string) error {
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
	got := p.idKey([]byte(password), salt, time, memory, threads, uint32(len(want)))
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
func (p *Passwords) CheckNoUser(password string) error {
	_ = p.Check(dummyHash, password)
	return ErrWrongPassword
}
