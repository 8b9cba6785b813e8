package tenancy

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Sealer encrypts tenant database passwords and database server URLs at
// rest with AES-256-GCM, under a key derived from SECRET_KEY. While the
// key is being rotated it also opens what was sealed under the previous
// keys (SECRET_KEY_PREVIOUS); it always seals under the current one.
type Sealer struct {
	aead     cipher.AEAD
	previous []cipher.AEAD
}

// NewSealer derives the encryption key from secretKey and the keys that
// still open older secrets from previousKeys (each at least 32 bytes;
// empty ones are skipped).
func NewSealer(secretKey string, previousKeys ...string) (*Sealer, error) {
	aead, err := newAEAD(secretKey)
	if err != nil {
		return nil, err
	}
	s := &Sealer{aead: aead}
	for _, k := range previousKeys {
		if k == "" {
			continue
		}
		p, err := newAEAD(k)
		if err != nil {
			return nil, fmt.Errorf("previous key: %w", err)
		}
		s.previous = append(s.previous, p)
	}
	return s, nil
}

func newAEAD(secretKey string) (cipher.AEAD, error) {
	if len(secretKey) < 32 {
		return nil, errors.New("tenancy: secret key must be at least 32 characters")
	}
	key, err := hkdf.Key(sha256.New, []byte(secretKey), nil, "tenantql role passwords v1", 32)
	if err != nil {
		return nil, fmt.Errorf("tenancy: derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("tenancy: cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("tenancy: gcm: %w", err)
	}
	return aead, nil
}

// Seal encrypts plaintext under the current key; additional (the tenant
// id) binds it to its row.
func (s *Sealer) Seal(plaintext, additional []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("tenancy: nonce: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, additional), nil
}

// Open decrypts what Seal returned, under the current key or a previous
// one. It fails if the data or additional differ, or no key opens it.
func (s *Sealer) Open(sealed, additional []byte) ([]byte, error) {
	out, _, err := s.open(sealed, additional)
	return out, err
}

// open is Open telling whether the current key opened it.
func (s *Sealer) open(sealed, additional []byte) (plain []byte, current bool, err error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, false, errors.New("tenancy: sealed secret too short")
	}
	if out, err := s.aead.Open(nil, sealed[:n], sealed[n:], additional); err == nil {
		return out, true, nil
	}
	for _, p := range s.previous {
		if out, err := p.Open(nil, sealed[:n], sealed[n:], additional); err == nil {
			return out, false, nil
		}
	}
	return nil, false, errors.New("tenancy: open sealed secret: no key opens it (wrong SECRET_KEY, or SECRET_KEY_PREVIOUS missing?)")
}

// Reseal returns sealed under the current key: sealed itself (changed
// false) when the current key opens it, else a new sealing of what a
// previous key opened. It fails as Open does.
func (s *Sealer) Reseal(sealed, additional []byte) (out []byte, changed bool, err error) {
	plain, current, err := s.open(sealed, additional)
	if err != nil {
		return nil, false, err
	}
	if current {
		return sealed, false, nil
	}
	out, err = s.Seal(plain, additional)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// ownerPasswordAD is the additional data of a tenant's sealed owner
// password: bound to its row, and never mistaken for its role password
// (sealed with the bare id).
func ownerPasswordAD(id uuid.UUID) []byte {
	return append([]byte("owner-password:"), id[:]...)
}

// serverURLAD is the additional data of a database server's sealed URL:
// bound to the server's name.
func serverURLAD(name string) []byte { return []byte("server:" + name) }

// newRolePassword returns a random 32-byte password, base64url encoded.
func newRolePassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("tenancy: password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// scramVerifier returns the SCRAM-SHA-256 verifier PostgreSQL stores for
// password, so that CREATE/ALTER ROLE never carries the cleartext.
//
// Its iteration count is low on purpose: every connection to a tenant
// database pays it on the client (0.8 ms at PostgreSQL's default 4096 on a
// benchmark machine), and with thousands of tenants sharing a bounded
// connection budget, connections are made all the time. Iterations only
// slow down guessing a low-entropy password from a stolen verifier; tenant
// role passwords are 32 random bytes (newRolePassword), which no number of
// guesses reaches, so fewer iterations lose nothing. 1000 is the least
// lib/pq accepts (it wants four digits).
func scramVerifier(password string) (string, error) {
	const iterations = 1000
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("tenancy: salt: %w", err)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, 32)
	if err != nil {
		return "", fmt.Errorf("tenancy: pbkdf2: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations,
		b64.EncodeToString(salt), b64.EncodeToString(storedKey[:]), b64.EncodeToString(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
