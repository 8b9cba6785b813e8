package auth

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"
)

// ErrInvalidToken is returned when a token is malformed, expired, badly
// signed or bound to another tenant.
var ErrInvalidToken = errors.New("auth: invalid or expired token")

// DefaultTokenTTL is how long a user token stays valid.
const DefaultTokenTTL = 7 * 24 * time.Hour

// Claims is what a user token proves: a user of one tenant, as of one
// token generation of that user. The caller compares Generation with the
// user's current one: logout and a change of password move it on, and a
// token of an older generation is revoked.
type Claims struct {
	UserID     string
	TenantID   string
	Generation int64 // 0 for tokens issued before generations existed
	Expires    time.Time
}

// Tokens issues and verifies user tokens (HS256 JWTs) bound to a tenant id.
type Tokens struct {
	key []byte
	// verify is what Verify accepts: key, then the previous keys
	verify jwt.VerificationKeySet
	ttl    time.Duration
	now    func() time.Time
	// verified remembers the tokens that passed Verify: a client sends
	// the same token with every request, and parsing and checking it
	// (base64, two JSON documents, an HMAC) was ~4 % of a request's CPU.
	// A hit is the same bytes that verified before; its expiry and tenant
	// are checked again.
	verified *lru.Cache[string, Claims]
}

// verifiedTokens bounds Tokens.verified: the tokens of the users active
// at once on one server, each ~0.5 KB.
const verifiedTokens = 8192

// NewTokens derives the signing key from secretKey (at least 32 bytes),
// and from previousKeys (empty ones skipped) keys that still verify tokens
// signed before SECRET_KEY was rotated; new tokens are signed with
// secretKey's. ttl <= 0 defaults to DefaultTokenTTL.
func NewTokens(secretKey string, ttl time.Duration, previousKeys ...string) (*Tokens, error) {
	key, err := tokenKey(secretKey)
	if err != nil {
		return nil, err
	}
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	verified, err := lru.New[string, Claims](verifiedTokens)
	if err != nil {
		return nil, fmt.Errorf("auth: verified tokens: %w", err)
	}
	t := &Tokens{key: key, ttl: ttl, now: time.Now, verified: verified}
	t.verify.Keys = []jwt.VerificationKey{key}
	for _, p := range previousKeys {
		if p == "" {
			continue
		}
		k, err := tokenKey(p)
		if err != nil {
			return nil, fmt.Errorf("previous key: %w", err)
		}
		t.verify.Keys = append(t.verify.Keys, k)
	}
	return t, nil
}

func tokenKey(secretKey string) ([]byte, error) {
	if len(secretKey) < 32 {
		return nil, fmt.Errorf("auth: secret key must be at least 32 characters")
	}
	key, err := hkdf.Key(sha256.New, []byte(secretKey), nil, "tenantql user tokens v1", 32)
	if err != nil {
		return nil, fmt.Errorf("auth: derive token key: %w", err)
	}
	return key, nil
}

type jwtClaims struct {
	Tenant     string `json:"tid"`
	Generation int64  `json:"gen,omitempty"`
	jwt.RegisteredClaims
}

// Issue returns a signed token for userID in tenantID, of the user's
// token generation.
func (t *Tokens) Issue(userID, tenantID string, generation int64) (string, error) {
	now := t.now()
	c := jwtClaims{
		Tenant:     tenantID,
		Generation: generation,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   userID,
			Audience:  jwt.ClaimStrings{tenantID},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.key)
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return s, nil
}

// Verify checks token and that it was issued for tenantID.
// Returns ErrInvalidToken for any token that is not valid for that tenant.
func (t *Tokens) Verify(token, tenantID string) (Claims, error) {
	if c, ok := t.verified.Get(token); ok {
		if c.TenantID != tenantID || !t.now().Before(c.Expires) {
			return Claims{}, ErrInvalidToken
		}
		return c, nil
	}
	c, err := t.verifySigned(token, tenantID)
	if err == nil {
		t.verified.Add(token, c)
	}
	return c, err
}

// verifySigned is Verify without the cache: the signature and claims.
func (t *Tokens) verifySigned(token, tenantID string) (Claims, error) {
	var c jwtClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.verify, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(tenantID),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil || c.Tenant != tenantID || c.Subject == "" {
		return Claims{}, ErrInvalidToken
	}
	return Claims{UserID: c.Subject, TenantID: c.Tenant, Generation: c.Generation, Expires: c.ExpiresAt.Time}, nil
}

// AdminTokenMatches compares a presented admin token with the configured one
// in constant time. An empty configured token matches nothing.
func AdminTokenMatches(configured, presented string) bool {
	if configured == "" {
		return false
	}
	a := sha256.Sum256([]byte(configured))
	b := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
