package resolvers

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantql/tenantql/store"
)

func TestUserCacheKeysByTenantAndForgetsThePasswordHash(t *testing.T) {
	var c userCache
	ttl := time.Minute
	tenantA, tenantB, user := uuid.New(), uuid.New(), uuid.New()
	c.add(ttl, userKey{tenantA, user}, store.User{ID: user, Name: "ann", PasswordHash: "$argon2id$secret"})

	got, ok := c.get(ttl, userKey{tenantA, user})
	if !ok || got.Name != "ann" {
		t.Fatalf("get = %+v, %v: want ann", got, ok)
	}
	if got.PasswordHash != "" {
		t.Errorf("cached user keeps its password hash %q", got.PasswordHash)
	}
	// the same user id in another tenant (or a re-created one) is unknown
	if _, ok := c.get(ttl, userKey{tenantB, user}); ok {
		t.Error("a user cached for one tenant answered for another")
	}
}

func TestUserCacheExpires(t *testing.T) {
	var c userCache
	ttl := 50 * time.Millisecond
	k := userKey{uuid.New(), uuid.New()}
	c.add(ttl, k, store.User{ID: k.user})
	if _, ok := c.get(ttl, k); !ok {
		t.Fatal("a fresh entry is missing")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := c.get(ttl, k); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry still cached 5 s after a time to live of %s", ttl)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUserCacheOffRemembersNothing(t *testing.T) {
	var c userCache
	k := userKey{uuid.New(), uuid.New()}
	c.add(0, k, store.User{ID: k.user})
	if _, ok := c.get(0, k); ok {
		t.Error("a cache with no time to live remembered a user")
	}
}
