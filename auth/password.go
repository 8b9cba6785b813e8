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

// ErrWrongPassword is returned by CheckPassword when the password does not match.
var ErrWrongPassword = errors.New("auth: wrong password")

// argon2id parameters: OWASP's minimum recommendation (19 MiB, 2 passes).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// hashSlots bounds the argon2id computations running at once to the CPUs
// Go uses: each holds 19 MiB, and more at once would not finish sooner,
// so a burst of logins queues here instead of growing the heap by 19 MiB
// per request (40 logins at once were 760 MiB, against a 128 MiB soft
// memory limit).
var hashSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// idKey is argon2.IDKey within hashSlots.
func idKey(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	notePeak(hashing.Add(1))
	defer hashing.Add(-1)
	return argon2.IDKey(password, salt, time, memory, threads, keyLen)
}

func notePeak(n int32) {
	for {
		peak := peakHashing.Load()
		if n <= peak || peakHashing.CompareAndSwap(peak, n) {
			return
		}
	}
}

// hashing counts the computations running; peakHashing is its highest
// value so far (for tests).
var hashing, peakHashing atomic.Int32

// HashPassword returns an argon2id hash of password in the PHC string format
// ($argon2id$v=19$m=...,t=...,p=...$salt$key).
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := idKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches hash (made by HashPassword).
// Returns ErrWrongPassword on a mismatch, another error if hash is malformed.
func CheckPassword(hash, password string) error {
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
	got := idKey([]byte(password), salt, time, memory, threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrWrongPassword
	}
	return nil
}

// dummyHash is checked against when a login names an unknown user, so that
// the answer takes as long as for a known user with a wrong password.
var dummyHash, _ = HashPassword("tenantql-timing-equaliser")

// CheckNoUser spends the time CheckPassword would and returns ErrWrongPassword.
func CheckNoUser(password string) error {
	_ = CheckPassword(dummyHash, password)
	return ErrWrongPassword
}
