package resolvers

import (
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/tenantql/tenantql/store"
)

// Users, once read from a tenant database, are remembered for a few
// seconds: the signed-in user (one statement per request) and the users
// that issues and comments point to (one batch per request). A typical
// list request then runs one statement instead of three. Tokens are still
// verified on every request, and so is the token generation they carry
// against the user's. Users are not deleted through the API; logout and
// changePassword, which revoke tokens, make every process forget the user
// at once (Resolver.ForgetUser, through the control database's
// NOTIFY); a change made directly in SQL takes effect within the cache's
// time to live (Resolver.UserTTL, USER_CACHE_SECONDS). Misses are not
// remembered.
const userCacheSize = 10_000 // users remembered, over all tenants

// userKey names a user across tenants: a re-created tenant has a new id,
// so nothing cached for its predecessor can answer for it.
type userKey struct{ tenant, user uuid.UUID }

// userCache is safe for concurrent use. Its zero value is ready and
// remembers nothing until the first use with a positive time to live.
type userCache struct {
	once sync.Once
	lru  *expirable.LRU[userKey, store.User] // nil: caching is off
}

func (c *userCache) init(ttl time.Duration) {
	c.once.Do(func() {
		if ttl > 0 {
			c.lru = expirable.NewLRU[userKey, store.User](userCacheSize, nil, ttl)
		}
	})
}

func (c *userCache) get(ttl time.Duration, k userKey) (store.User, bool) {
	if c.init(ttl); c.lru == nil {
		return store.User{}, false
	}
	return c.lru.Get(k)
}

// add remembers u, without its password hash, which no cached use needs.
func (c *userCache) add(ttl time.Duration, k userKey, u store.User) {
	if c.init(ttl); c.lru == nil {
		return
	}
	u.PasswordHash = ""
	c.lru.Add(k, u)
}

// forget drops what is remembered of one user; uuid.Nil as the tenant
// drops everything.
func (c *userCache) forget(ttl time.Duration, k userKey) {
	if c.init(ttl); c.lru == nil {
		return
	}
	if k.tenant == uuid.Nil {
		c.lru.Purge()
		return
	}
	c.lru.Remove(k)
}
