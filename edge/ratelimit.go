package edge

import (
	"math"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// buckets holds one token bucket per key, at most size of them: the least
// recently used is forgotten first, and so is any bucket idle long enough
// to be full again (burst/rate), which loses nothing.
type buckets struct {
	limit rate.Limit
	burst int
	full  time.Duration // how long an unused bucket takes to refill

	mu  sync.Mutex
	lru *simplelru.LRU[string, *bucket]
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
}

func newBuckets(limit rate.Limit, burst, size int) *buckets {
	l, err := simplelru.NewLRU[string, *bucket](size, nil)
	if err != nil {
		panic(err) // only for size <= 0, which NewGuard rules out
	}
	full := time.Duration(math.MaxInt64)
	if secs := float64(burst) / float64(limit); secs < full.Seconds() {
		full = time.Duration(secs * float64(time.Second))
	}
	return &buckets{limit: limit, burst: burst, full: full, lru: l}
}

// take spends one token of key's bucket and returns the function that
// gives it back (a request that another bucket refuses spends none).
// When none is left it reports false and how long until one is.
func (b *buckets) take(key string, now time.Time) (undo func(), wait time.Duration, ok bool) {
	b.mu.Lock()
	// forget the buckets that have been idle long enough to be full
	for {
		_, oldest, found := b.lru.GetOldest()
		if !found || now.Sub(oldest.used) < b.full {
			break
		}
		b.lru.RemoveOldest()
	}
	e, found := b.lru.Get(key)
	if !found {
		e = &bucket{lim: rate.NewLimiter(b.limit, b.burst)}
		b.lru.Add(key, e)
	}
	e.used = now
	b.mu.Unlock()
	r := e.lim.ReserveN(now, 1)
	if !r.OK() {
		return nil, time.Second, false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, d, false
	}
	return func() { r.CancelAt(now) }, 0, true
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
