package live

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/store"
	"github.com/tenantql/tenantql/tenancy"
)

// feed follows one tenant for its subscribers: by LISTEN, or by polling.
type feed struct {
	tenantID uuid.UUID
	ready    chan struct{} // closed once LISTEN is acknowledged, or failed (err set)
	err      error

	// only the feed's own goroutine touches these
	seen      time.Time               // newest updated_at delivered (at first: the database clock at LISTEN)
	delivered map[uuid.UUID]time.Time // updated_at of each issue delivered within replayOverlap of seen

	listens bool          // LISTENs (counted in Hub.listening); false: polls
	stop    chan struct{} // closed by closeFeed

	// guarded by Hub.mu
	listener *pq.Listener    // nil until ready, and for a polling feed; replaced by relocate
	tenant   *tenancy.Tenant // as of the listener's connection (relocate sets it)
	closing  bool
	subs     map[*Subscription]struct{}
}

// startFeed opens the tenant's LISTEN connection (a listening feed),
// notes where a replay or the first poll starts, then runs the feed until
// it is closed.
func (h *Hub) startFeed(f *feed, t *tenancy.Tenant) {
	var l *pq.Listener
	var err error
	if f.listens {
		l, err = h.listen(f, t)
	}
	h.mu.Lock()
	if err != nil {
		h.log.Error("issueChanged: cannot LISTEN on the tenant database", "tenant", t.Slug, "err", err)
		f.err = errCannotListen(err)
		h.endLocked(f)
		h.mu.Unlock()
		close(f.ready)
		return
	}
	h.mu.Unlock()
	// Changes from now on are notified (or polled for): a replay or poll
	// starts here, by the database's clock.
	f.seen = time.Now()
	if db, err := h.tenantDB(t.ID); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
		if now, err := store.New(db).Clock(ctx); err == nil {
			f.seen = now
		}
		cancel()
	}
	f.delivered = map[uuid.UUID]time.Time{}
	h.mu.Lock()
	f.listener, f.tenant = l, t
	closing := f.closing
	h.mu.Unlock()
	close(f.ready)
	if !f.listens {
		h.poll(f, t)
		return
	}
	if closing {
		_ = l.Close()
	}
	h.run(f, l, t)
}

// poll reads the issues changed since the last poll every pollInterval
// until the feed is closed, then closes the subscribers.
func (h *Hub) poll(f *feed, t *tenancy.Tenant) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-f.stop:
			h.endFeed(f)
			return
		case <-tick.C:
			h.readChanged(f, t)
		}
	}
}

// listen connects as the tenant's role through the Pools' budget and
// LISTENs on store.IssueChangedChannel, giving up after listenTimeout.
func (h *Hub) listen(f *feed, t *tenancy.Tenant) (*pq.Listener, error) {
	dsn, err := h.pools.TenantURL(t)
	if err != nil {
		return nil, err
	}
	l := pq.NewDialListener(h.pools.Dialer(t), dsn, listenerMinReconnect, listenerMaxReconnect, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventDisconnected, pq.ListenerEventConnectionAttemptFailed:
			if !h.tenantReady(f.tenantID) {
				h.closeFeed(f.tenantID) // deleted or suspended: stop reconnecting
				return
			}
			h.log.Warn("issueChanged: LISTEN connection lost, reconnecting", "tenant", t.Slug, "event", ev.String(), "err", err)
		}
	})
	errc := make(chan error, 1)
	go func() { errc <- l.Listen(store.IssueChangedChannel) }()
	timer := time.NewTimer(listenTimeout)
	defer timer.Stop()
	select {
	case err = <-errc:
	case <-timer.C:
		err = errors.New("timed out")
	}
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	return l, nil
}

// run delivers each notified issue to the subscribers of its project
// until the feed's listener closes for good, then closes the subscribers.
// A listener closed because relocate replaced it hands over to the new
// one, after a replay of what changed in between.
func (h *Hub) run(f *feed, l *pq.Listener, t *tenancy.Tenant) {
	for {
		h.deliverNotified(f, l, t)
		h.mu.Lock()
		next, closing := f.listener, f.closing
		t = f.tenant
		h.mu.Unlock()
		if closing || next == l {
			break
		}
		l = next
		h.readChanged(f, t)
	}
	h.endFeed(f)
}

// deliverNotified delivers each issue notified on l until l closes.
func (h *Hub) deliverNotified(f *feed, l *pq.Listener, t *tenancy.Tenant) {
	for n := range l.Notify {
		if n == nil {
			// reconnected: read what was changed while disconnected
			h.readChanged(f, t)
			continue
		}
		id, err := store.ParseIssueChanged(n.Extra)
		if err != nil {
			continue
		}
		is, err := h.changedIssue(t.ID, id)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) { // deleted meanwhile: nothing to tell
				h.log.Warn("issueChanged: cannot read the changed issue", "tenant", t.Slug, "err", err)
			}
			continue
		}
		h.deliver(f, t, is)
	}
}

// deliver hands is to the subscribers of its project, once per version
// (a replay may read an issue that was notified too).
func (h *Hub) deliver(f *feed, t *tenancy.Tenant, is store.Issue) {
	if at, ok := f.delivered[is.ID]; ok && !is.UpdatedAt.After(at) {
		return
	}
	f.delivered[is.ID] = is.UpdatedAt
	if is.UpdatedAt.After(f.seen) {
		f.seen = is.UpdatedAt
		for id, at := range f.delivered {
			if at.Before(f.seen.Add(-replayOverlap)) {
				delete(f.delivered, id)
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range f.subs {
		if sub.projectID != is.ProjectID {
			continue
		}
		select {
		case sub.ch <- is:
		default:
			// too far behind: end its subscription rather than skip events
			h.log.Warn("issueChanged: subscriber too slow, closing its subscription", "tenant", t.Slug)
			delete(f.subs, sub)
			close(sub.ch)
		}
	}
}

// readChanged delivers the issues changed since the feed's newest one
// (less replayOverlap): a polling feed's poll, and a listening feed's
// replay after a reconnection (the notifications sent while its
// connection was down are lost).
func (h *Hub) readChanged(f *feed, t *tenancy.Tenant) {
	db, err := h.tenantDB(t.ID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			h.log.Warn("issueChanged: cannot read changed issues", "tenant", t.Slug, "err", err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	missed, err := store.New(db).IssuesChangedSince(ctx, f.seen.Add(-replayOverlap), replayLimit)
	if err != nil {
		h.log.Warn("issueChanged: cannot read changed issues", "tenant", t.Slug, "err", err)
		return
	}
	if len(missed) == replayLimit {
		h.log.Warn("issueChanged: more issues changed than read at once", "tenant", t.Slug, "read", replayLimit)
	}
	for _, is := range missed {
		h.deliver(f, t, is)
	}
}

// changedIssue reads a notified issue on the tenant's pool, unless the
// tenant stopped being READY.
func (h *Hub) changedIssue(tenantID, issueID uuid.UUID) (store.Issue, error) {
	db, err := h.tenantDB(tenantID)
	if err != nil {
		return store.Issue{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	return store.New(db).IssueByID(ctx, issueID)
}

// tenantDB returns the pool of a READY tenant for the feed's reads. When
// the tenant stopped being READY it closes the feed (the registry hook may
// not have run yet) and returns store.ErrNotFound.
func (h *Hub) tenantDB(tenantID uuid.UUID) (*sqlx.DB, error) {
	t, err := h.registry.Cached(tenantID)
	if err != nil || !t.Serving() {
		h.closeFeed(tenantID)
		return nil, store.ErrNotFound
	}
	db, err := h.pools.DB(t)
	if err != nil {
		return nil, err
	}
	if !h.tenantReady(tenantID) {
		// suspended or deleted meanwhile: do not keep the pool DB reopened
		h.pools.Close(tenantID)
		h.closeFeed(tenantID)
		return nil, store.ErrNotFound
	}
	return db, nil
}
