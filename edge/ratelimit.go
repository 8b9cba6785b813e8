package edge

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// buckets holds one token bucket per tenant, at most size of them: the
// least recently used is forgotten first. A bucket idle for burst/rate
// seconds is full again, so forgetting an idle one loses nothing.
type buckets struct {
	limit rate.Limit
	burst int

	mu  sync.Mutex
	lru *simplelru.LRU[string, *rate.Limiter]
}

func newBuckets(limit rate.Limit, burst, size int) *buckets {
	l, err := simplelru.NewLRU[string, *rate.Limiter](size, nil)
	if err != nil {
		panic(err) // only for size <= 0, which NewGuard rules out
	}
	return &buckets{limit: limit, burst: burst, lru: l}
}

// take spends one token of key's bucket. When none is left it reports
// false and how long until one is.
func (b *buckets) take(key string, now time.Time) (wait time.Duration, ok bool) {
	b.mu.Lock()
	l, found := b.lru.Get(key)
	if !found {
		l = rate.NewLimiter(b.limit, b.burst)
		b.lru.Add(key, l)
	}
	b.mu.Unlock()
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return time.Second, false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// len reports how many buckets are kept.
func (b *buckets) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lru.Len()
}

// connCounts counts open connections per key, up to a cap. A key whose
// count drops to zero is removed, so the map holds only keys with open
// connections.
type connCounts struct {
	limit int

	mu   sync.Mutex
	open map[string]int
}

func newConnCounts(limit int) *connCounts {
	return &connCounts{limit: limit, open: map[string]int{}}
}

// acquire takes a slot for key; false when key already has limit open.
func (c *connCounts) acquire(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[key] >= c.limit {
		return false
	}
	c.open[key]++
	return true
}

// release gives back a slot taken by acquire.
func (c *connCounts) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[key] <= 1 {
		delete(c.open, key)
		return
	}
	c.open[key]--
}

// count reports key's open connections.
func (c *connCounts) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open[key]
}
