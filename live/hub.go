// Package live follows tenants' changes for this process's subscribers:
// the issues created or updated in each followed tenant database, by
// LISTEN/NOTIFY (store.IssueChangedChannel) within a connection cap, by
// polling beyond it, and by replaying what a lost connection missed. It
// reads through store on the tenant's pool and connects through the
// tenancy Pools' budget; it knows nothing of GraphQL.
package live

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/tenantql/tenantql/store"
	"github.com/tenantql/tenantql/tenancy"
)

// Tuning of the hub.
const (
	subBuffer            = 64               // events a subscriber may lag behind before it is dropped
	listenTimeout        = 10 * time.Second // to open the LISTEN connection
	loadTimeout          = 5 * time.Second  // to read a changed issue
	listenerMinReconnect = 250 * time.Millisecond
	listenerMaxReconnect = 30 * time.Second
	defaultMaxListeners  = 16              // LISTEN connections when Options.MaxListeners is 0
	pollInterval         = 2 * time.Second // of a feed that polls (over the LISTEN cap)
	// After a reconnection the feed reads the issues changed since the
	// newest one it saw, less replayOverlap (updated_at is set before
	// commit, so a slow transaction can land a little in the past), at
	// most replayLimit of them.
	replayOverlap = 2 * time.Second
	replayLimit   = 500
)

// Options tune a Hub.
type Options struct {
	// MaxListeners caps the tenants followed by LISTEN at once
	// (MAX_LISTEN_CONNECTIONS), one connection each, taken from the
	// Pools' budget. A tenant followed beyond the cap is polled every 2 s
	// instead, through its pool; no subscription is refused for it.
	// Defaults to 16.
	MaxListeners int
}

// Hub fans the issue_changed notifications of tenant databases out to
// this process's subscribers. It keeps one feed per tenant database that
// has at least one subscriber here, keyed by tenant id, so no subscriber
// ever sees another tenant's events: a LISTEN connection (a pq.Listener,
// logged in as the tenant's own role) while under Options.MaxListeners,
// else a poll. A feed closes when the tenant's last subscriber leaves, or
// as soon as the tenant stops being READY (suspended, deleted): its
// subscriptions then end. Each notification costs one query (the issue by
// id), whatever the number of subscribers. When a LISTEN connection is
// lost, the feed reconnects and then reads the issues changed meanwhile,
// so subscribers miss nothing; when the tenant moves to another database
// server, the feed LISTENs on the new copy the same way (see relocate).
type Hub struct {
	registry     *tenancy.Registry
	pools        *tenancy.Pools
	log          *slog.Logger
	maxListeners int

	mu        sync.Mutex
	feeds     map[uuid.UUID]*feed
	listening int // feeds of feeds that LISTEN (the others poll)
}

// New returns a hub that follows tenants of registry through pools (their
// URLs, their connection budget and their pools). Call it before the
// registry's Watch starts: it registers a registry hook that ends the
// feed of a tenant that stops being served, and moves the feed of a
// tenant that moves to a new copy.
func New(registry *tenancy.Registry, pools *tenancy.Pools, o Options, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.Default()
	}
	h := &Hub{
		registry: registry, pools: pools, log: log,
		maxListeners: cmp.Or(o.MaxListeners, defaultMaxListeners),
		feeds:        map[uuid.UUID]*feed{},
	}
	registry.OnChange(func(old, cur *tenancy.Tenant) {
		switch {
		case old == nil:
		case cur == nil || !cur.Serving():
			h.closeFeed(old.ID)
		case cur.DBName != old.DBName || cur.Server != old.Server:
			// a moved tenant's LISTEN connection is on its old copy
			go h.relocate(cur)
		}
	})
	return h
}

// Subscription is one subscriber: the issues of one project.
type Subscription struct {
	hub       *Hub
	feed      *feed
	projectID uuid.UUID
	ch        chan store.Issue // closed by the hub when the feed ends or the subscriber lags
}

// Issues delivers every issue of the project created or updated after
// Subscribe returned, by this process or any other sharing the database.
// It is closed when the feed ends (the tenant stopped being READY) or
// when the subscriber fell more than 64 events behind.
func (s *Subscription) Issues() <-chan store.Issue { return s.ch }

// Close ends the subscription; the last one out closes the tenant's feed.
func (s *Subscription) Close() { s.hub.unsubscribe(s) }

// Subscribe follows the issues of project projectID in tenant t and
// returns once the tenant's feed is in place, so no later change is
// missed. Returns ctx's error if it ends first, and an error wrapping
// tenancy.ErrUnavailable when the tenant database cannot be LISTENed to.
func (h *Hub) Subscribe(ctx context.Context, t *tenancy.Tenant, projectID uuid.UUID) (*Subscription, error) {
	h.mu.Lock()
	f := h.feeds[t.ID]
	if f == nil {
		f = &feed{tenantID: t.ID, ready: make(chan struct{}), stop: make(chan struct{}), subs: map[*Subscription]struct{}{}}
		f.listens = h.listening < h.maxListeners
		if f.listens {
			h.listening++
		} else {
			h.log.Info("issueChanged: MAX_LISTEN_CONNECTIONS reached, polling the tenant instead", "tenant", t.Slug, "interval", pollInterval)
		}
		h.feeds[t.ID] = f
		go h.startFeed(f, t)
	}
	sub := &Subscription{hub: h, feed: f, projectID: projectID, ch: make(chan store.Issue, subBuffer)}
	f.subs[sub] = struct{}{}
	h.mu.Unlock()

	select {
	case <-f.ready:
		if f.err != nil {
			h.unsubscribe(sub)
			return nil, f.err
		}
		return sub, nil
	case <-ctx.Done():
		h.unsubscribe(sub)
		return nil, ctx.Err()
	}
}

// unsubscribe removes sub; the last one out closes the feed.
func (h *Hub) unsubscribe(sub *Subscription) {
	f := sub.feed
	h.mu.Lock()
	delete(f.subs, sub)
	last := len(f.subs) == 0 && h.feeds[f.tenantID] == f
	h.mu.Unlock()
	if last {
		h.closeFeed(f.tenantID)
	}
}

// closeFeed stops the tenant's feed, if any: its LISTEN connection
// closes and its subscribers' channels close. It never blocks.
func (h *Hub) closeFeed(tenantID uuid.UUID) {
	h.mu.Lock()
	f := h.feeds[tenantID]
	if f == nil {
		h.mu.Unlock()
		return
	}
	// a subscriber that joined meanwhile keeps the feed open
	if len(f.subs) > 0 && h.tenantReady(tenantID) {
		h.mu.Unlock()
		return
	}
	h.removeLocked(f)
	f.closing = true
	close(f.stop)
	l := f.listener
	h.mu.Unlock()
	if l != nil {
		go l.Close() // run then ends and closes the subscribers
	}
}

// relocate moves the feed of tenant t, which has just switched to a copy
// of its database on another server, onto that copy: a new LISTEN
// connection there, then the old one closed, after which run replays the
// issues changed since the last one delivered (from the new copy, whose
// updated_at values are the copied ones), so subscribers miss nothing.
// A polling feed reads through the tenant's current pool already. If the
// new copy cannot be LISTENed to, the feed ends, as it would on a lost
// tenant: its subscribers' operations complete and clients resubscribe.
func (h *Hub) relocate(t *tenancy.Tenant) {
	h.mu.Lock()
	f := h.feeds[t.ID]
	h.mu.Unlock()
	if f == nil || !f.listens {
		return
	}
	<-f.ready
	if f.err != nil {
		return
	}
	l, err := h.listen(f, t)
	h.mu.Lock()
	if err != nil || f.closing || h.feeds[t.ID] != f {
		old := f.listener
		if err != nil && !f.closing {
			h.log.Error("issueChanged: cannot LISTEN on the moved tenant's new database", "tenant", t.Slug, "err", err)
			h.removeLocked(f)
			f.closing = true
			close(f.stop)
		}
		h.mu.Unlock()
		if l != nil {
			_ = l.Close()
		}
		if err != nil && old != nil {
			_ = old.Close() // run then ends and closes the subscribers
		}
		return
	}
	old := f.listener
	f.listener, f.tenant = l, t
	h.mu.Unlock()
	h.log.Info("issueChanged: following the moved tenant on its new database server", "tenant", t.Slug, "server", t.Server)
	if old != nil {
		_ = old.Close() // run goes on with the new listener
	}
}

// removeLocked takes f out of the hub (if it is still there).
func (h *Hub) removeLocked(f *feed) {
	if h.feeds[f.tenantID] != f {
		return
	}
	delete(h.feeds, f.tenantID)
	if f.listens {
		h.listening--
	}
}

// endLocked removes f and closes its subscribers' channels.
func (h *Hub) endLocked(f *feed) {
	h.removeLocked(f)
	for sub := range f.subs {
		delete(f.subs, sub)
		close(sub.ch)
	}
}

// endFeed removes f and closes its subscribers' channels.
func (h *Hub) endFeed(f *feed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.endLocked(f)
}

// tenantReady reports whether the routing table has the tenant served
// (READY, or MOVING: its changes can still be followed).
func (h *Hub) tenantReady(id uuid.UUID) bool {
	t, err := h.registry.Cached(id)
	return err == nil && t.Serving()
}

// Feeds returns the number of tenants whose issue changes this process
// follows (by LISTEN or by polling), for tests and metrics.
func (h *Hub) Feeds() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.feeds)
}

// errCannotListen is a feed's failure to set up its LISTEN connection.
func errCannotListen(err error) error {
	return fmt.Errorf("live: cannot follow issue changes now (%v): %w", err, tenancy.ErrUnavailable)
}
