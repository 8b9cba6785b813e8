package resolvers

import (
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/tenantql/tenantql/store"
)

// The signed-in user of a request is read from the tenant database once
// and then remembered for a few seconds: the lookup was one of the three
// statements of a typical list request. The token itself (signature,
// expiry, tenant) is still checked on every request. Users are neither
// deleted nor changed through the API; a change made directly in SQL
// takes effect within the cache's time to live (Resolver.ViewerTTL,
// VIEWER_CACHE_SECONDS).
const viewerCacheSize = 10_000 // signed-in users remembered, over all tenants

// viewerKey names a user across tenants: a re-created tenant has a new id,
// so nothing cached for its predecessor can answer for it.
type viewerKey struct{ tenant, user uuid.UUID }

// viewerCache is safe for concurrent use. Its zero value is ready and
// remembers nothing until the first use with a positive time to live.
type viewerCache struct {
	once sync.Once
	lru  *expirable.LRU[viewerKey, store.User] // nil: caching is off
}

func (c *viewerCache) init(ttl time.Duration) {
	c.once.Do(func() {
		if ttl > 0 {
			c.lru = expirable.NewLRU[viewerKey, store.User](viewerCacheSize, nil, ttl)
		}
	})
}

func (c *viewerCache) get(ttl time.Duration, k viewerKey) (store.User, bool) {
	if c.init(ttl); c.lru == nil {
		return store.User{}, false
	}
	return c.lru.Get(k)
}

// add remembers u, without its password hash, which no cached use needs.
func (c *viewerCache) add(ttl time.Duration, k viewerKey, u store.User) {
	if c.init(ttl); c.lru == nil {
		return
	}
	u.PasswordHash = ""
	c.lru.Add(k, u)
}
