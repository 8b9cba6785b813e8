package resolvers

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/graph/model"
	"github.com/tenantql/tenantql/store"
	"github.com/tenantql/tenantql/tenancy"
)

// Tuning of the issue hub.
const (
	issueSubBuffer       = 64               // events a subscriber may lag behind before it is dropped
	issueListenTimeout   = 10 * time.Second // to open the LISTEN connection
	issueLoadTimeout     = 5 * time.Second  // to read a changed issue
	listenerMinReconnect = 250 * time.Millisecond
	listenerMaxReconnect = 30 * time.Second
	defaultIssueFeeds    = 16              // LISTEN connections when Resolver.MaxIssueFeeds is 0
	issuePollInterval    = 2 * time.Second // of a feed that polls (over the LISTEN cap)
	// After a reconnection the feed reads the issues changed since the
	// newest one it saw, less replayOverlap (updated_at is set before
	// commit, so a slow transaction can land a little in the past), at
	// most replayLimit of them.
	replayOverlap = 2 * time.Second
	replayLimit   = 500
)

// issueHub fans the issue_changed notifications of tenant databases out
// to this process's issueChanged subscribers. It keeps one LISTEN
// connection (a pq.Listener, logged in as the tenant's own role) per
// tenant database that has at least one subscriber here, keyed by tenant
// id, so no subscriber ever sees another tenant's events. The connection
// closes when the tenant's last subscriber leaves, or as soon as the
// tenant stops being READY (suspended, deleted): its subscriptions then
// complete. Each notification costs one query (the issue by id), whatever
// the number of subscribers. LISTEN connections hold slots of the Pools'
// budget, at most Resolver.MaxIssueFeeds of them; a tenant followed
// beyond that cap is polled instead (issuePollInterval, through its pool)
// for the issues changed since the last poll. When a LISTEN connection is
// lost, the feed reconnects and then reads the issues changed meanwhile
// the same way, so subscribers miss nothing.
//
// The zero value is ready to use; its methods are the Resolver's, which
// holds the dependencies (Registry, Pools, Log).
type issueHub struct {
	watchOnce sync.Once

	mu        sync.Mutex
	feeds     map[uuid.UUID]*issueFeed
	listening int // feeds of feeds that LISTEN (the others poll)
}

// issueFeed is the LISTEN connection of one tenant and its subscribers.
type issueFeed struct {
	tenantID uuid.UUID
	ready    chan struct{} // closed once LISTEN is acknowledged, or failed (err set)
	err      error

	// only runIssueFeed touches these
	seen      time.Time               // newest updated_at delivered (at first: the database clock at LISTEN)
	delivered map[uuid.UUID]time.Time // updated_at of each issue delivered within replayOverlap of seen

	listens bool          // LISTENs (counted in issueHub.listening); false: polls
	stop    chan struct{} // closed by closeIssueFeed

	// guarded by issueHub.mu
	listener *pq.Listener // nil until ready, and for a polling feed
	closing  bool
	subs     map[*issueSub]struct{}
}

// issueSub is one subscriber: the issues of one project.
type issueSub struct {
	feed      *issueFeed
	projectID uuid.UUID
	ch        chan store.Issue // closed by the hub when the feed ends or the subscriber lags
}

// issueChanged streams every issue of the project created or updated
// from now on, by this process or any other sharing the database.
// Returns NOT_FOUND for an unknown project key.
func (r *Resolver) issueChanged(ctx context.Context, projectKey string) (<-chan *model.Issue, error) {
	target, err := tenantTarget(ctx)
	if err != nil {
		return nil, err
	}
	p, err := store.New(target.DB).ProjectByKey(ctx, projectKey)
	if err != nil {
		return nil, err
	}
	sub, err := r.subscribeIssues(ctx, target.Tenant, p.ID)
	if err != nil {
		return nil, err
	}
	out := make(chan *model.Issue)
	go func() {
		defer close(out)
		defer r.unsubscribeIssues(sub)
		for {
			select {
			case <-ctx.Done():
				return
			case is, ok := <-sub.ch:
				if !ok {
					return
				}
				// the event's nested fields get loaders of their own
				renewLoaders(ctx)
				select {
				case out <- issueModel(is):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// subscribeIssues registers a subscriber for the project's issues and
// returns once the tenant's feed is in place, so no later change is
// missed.
func (r *Resolver) subscribeIssues(ctx context.Context, t *tenancy.Tenant, projectID uuid.UUID) (*issueSub, error) {
	h := &r.issueHub
	h.watchOnce.Do(func() {
		r.Registry.OnChange(func(old, cur *tenancy.Tenant) {
			if old != nil && (cur == nil || cur.Status != tenancy.StatusReady) {
				r.closeIssueFeed(old.ID)
			}
		})
	})
	h.mu.Lock()
	if h.feeds == nil {
		h.feeds = map[uuid.UUID]*issueFeed{}
	}
	f := h.feeds[t.ID]
	if f == nil {
		f = &issueFeed{tenantID: t.ID, ready: make(chan struct{}), stop: make(chan struct{}), subs: map[*issueSub]struct{}{}}
		f.listens = h.listening < cmp.Or(r.MaxIssueFeeds, defaultIssueFeeds)
		if f.listens {
			h.listening++
		} else {
			r.Log.Info("issueChanged: MAX_LISTEN_CONNECTIONS reached, polling the tenant instead", "tenant", t.Slug, "interval", issuePollInterval)
		}
		h.feeds[t.ID] = f
		go r.startIssueFeed(f, t)
	}
	sub := &issueSub{feed: f, projectID: projectID, ch: make(chan store.Issue, issueSubBuffer)}
	f.subs[sub] = struct{}{}
	h.mu.Unlock()

	select {
	case <-f.ready:
		if f.err != nil {
			r.unsubscribeIssues(sub)
			return nil, f.err
		}
		return sub, nil
	case <-ctx.Done():
		r.unsubscribeIssues(sub)
		return nil, ctx.Err()
	}
}

// unsubscribeIssues removes sub; the last one out closes the feed.
func (r *Resolver) unsubscribeIssues(sub *issueSub) {
	h := &r.issueHub
	f := sub.feed
	h.mu.Lock()
	delete(f.subs, sub)
	last := len(f.subs) == 0 && h.feeds[f.tenantID] == f
	h.mu.Unlock()
	if last {
		r.closeIssueFeed(f.tenantID)
	}
}

// closeIssueFeed stops the tenant's feed, if any: its LISTEN connection
// closes and its subscribers' channels close. It never blocks.
func (r *Resolver) closeIssueFeed(tenantID uuid.UUID) {
	h := &r.issueHub
	h.mu.Lock()
	f := h.feeds[tenantID]
	if f == nil {
		h.mu.Unlock()
		return
	}
	// a subscriber that joined meanwhile keeps the feed open
	if len(f.subs) > 0 && r.tenantReady(tenantID) {
		h.mu.Unlock()
		return
	}
	h.removeLocked(f)
	f.closing = true
	close(f.stop)
	l := f.listener
	h.mu.Unlock()
	if l != nil {
		go l.Close() // runIssueFeed then ends and closes the subscribers
	}
}

// removeLocked takes f out of the hub (if it is still there).
func (h *issueHub) removeLocked(f *issueFeed) {
	if h.feeds[f.tenantID] != f {
		return
	}
	delete(h.feeds, f.tenantID)
	if f.listens {
		h.listening--
	}
}

// endLocked removes f and closes its subscribers' channels.
func (h *issueHub) endLocked(f *issueFeed) {
	h.removeLocked(f)
	for sub := range f.subs {
		delete(f.subs, sub)
		close(sub.ch)
	}
}

// tenantReady reports whether the routing table has the tenant READY.
func (r *Resolver) tenantReady(id uuid.UUID) bool {
	t, err := r.Registry.Cached(id)
	return err == nil && t.Status == tenancy.StatusReady
}

// startIssueFeed opens the tenant's LISTEN connection (a listening
// feed), notes where a replay or the first poll starts, then runs the
// feed until it is closed.
func (r *Resolver) startIssueFeed(f *issueFeed, t *tenancy.Tenant) {
	var l *pq.Listener
	var err error
	if f.listens {
		l, err = r.listenIssues(f, t)
	}
	h := &r.issueHub
	h.mu.Lock()
	if err != nil {
		r.Log.Error("issueChanged: cannot LISTEN on the tenant database", "tenant", t.Slug, "err", err)
		f.err = apierr.New(apierr.ServiceUnavailable, "cannot follow issue changes now, retry later")
		h.endLocked(f)
		h.mu.Unlock()
		close(f.ready)
		return
	}
	h.mu.Unlock()
	// Changes from now on are notified (or polled for): a replay or poll
	// starts here, by the database's clock.
	f.seen = time.Now()
	if db, err := r.tenantDB(t.ID); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), issueLoadTimeout)
		if now, err := store.New(db).Clock(ctx); err == nil {
			f.seen = now
		}
		cancel()
	}
	f.delivered = map[uuid.UUID]time.Time{}
	h.mu.Lock()
	f.listener = l
	closing := f.closing
	h.mu.Unlock()
	close(f.ready)
	if !f.listens {
		r.pollIssueFeed(f, t)
		return
	}
	if closing {
		_ = l.Close()
	}
	r.runIssueFeed(f, l, t)
}

// pollIssueFeed reads the issues changed since the last poll every
// issuePollInterval until the feed is closed, then closes the subscribers.
func (r *Resolver) pollIssueFeed(f *issueFeed, t *tenancy.Tenant) {
	tick := time.NewTicker(issuePollInterval)
	defer tick.Stop()
	for {
		select {
		case <-f.stop:
			r.endIssueFeed(f)
			return
		case <-tick.C:
			r.readChangedIssues(f, t)
		}
	}
}

// endIssueFeed removes f and closes its subscribers' channels.
func (r *Resolver) endIssueFeed(f *issueFeed) {
	h := &r.issueHub
	h.mu.Lock()
	defer h.mu.Unlock()
	h.endLocked(f)
}

// listenIssues connects as the tenant's role and LISTENs on
// store.IssueChangedChannel, giving up after issueListenTimeout.
func (r *Resolver) listenIssues(f *issueFeed, t *tenancy.Tenant) (*pq.Listener, error) {
	if r.Pools == nil {
		return nil, errors.New("resolvers: Resolver.Pools is not set")
	}
	dsn, err := r.Pools.TenantURL(t)
	if err != nil {
		return nil, err
	}
	l := pq.NewDialListener(r.Pools.Dialer(), dsn, listenerMinReconnect, listenerMaxReconnect, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventDisconnected, pq.ListenerEventConnectionAttemptFailed:
			if !r.tenantReady(f.tenantID) {
				r.closeIssueFeed(f.tenantID) // deleted or suspended: stop reconnecting
				return
			}
			r.Log.Warn("issueChanged: LISTEN connection lost, reconnecting", "tenant", t.Slug, "event", ev.String(), "err", err)
		}
	})
	errc := make(chan error, 1)
	go func() { errc <- l.Listen(store.IssueChangedChannel) }()
	timer := time.NewTimer(issueListenTimeout)
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

// runIssueFeed delivers each notified issue to the subscribers of its
// project until the listener closes, then closes the subscribers.
func (r *Resolver) runIssueFeed(f *issueFeed, l *pq.Listener, t *tenancy.Tenant) {
	for n := range l.Notify {
		if n == nil {
			// reconnected: read what was changed while disconnected
			r.readChangedIssues(f, t)
			continue
		}
		id, err := uuid.Parse(n.Extra)
		if err != nil {
			continue
		}
		is, err := r.changedIssue(t.ID, id)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) { // deleted meanwhile: nothing to tell
				r.Log.Warn("issueChanged: cannot read the changed issue", "tenant", t.Slug, "err", err)
			}
			continue
		}
		r.deliverIssue(f, t, is)
	}
	r.endIssueFeed(f)
}

// deliverIssue hands is to the subscribers of its project, once per
// version (a replay may read an issue that was notified too).
func (r *Resolver) deliverIssue(f *issueFeed, t *tenancy.Tenant, is store.Issue) {
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
	h := &r.issueHub
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
			r.Log.Warn("issueChanged: subscriber too slow, closing its subscription", "tenant", t.Slug)
			delete(f.subs, sub)
			close(sub.ch)
		}
	}
}

// readChangedIssues delivers the issues changed since the feed's newest
// one (less replayOverlap): a polling feed's poll, and a listening feed's
// replay after a reconnection (the notifications sent while its
// connection was down are lost).
func (r *Resolver) readChangedIssues(f *issueFeed, t *tenancy.Tenant) {
	db, err := r.tenantDB(t.ID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			r.Log.Warn("issueChanged: cannot read changed issues", "tenant", t.Slug, "err", err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), issueLoadTimeout)
	defer cancel()
	missed, err := store.New(db).IssuesChangedSince(ctx, f.seen.Add(-replayOverlap), replayLimit)
	if err != nil {
		r.Log.Warn("issueChanged: cannot read changed issues", "tenant", t.Slug, "err", err)
		return
	}
	if len(missed) == replayLimit {
		r.Log.Warn("issueChanged: more issues changed than read at once", "tenant", t.Slug, "read", replayLimit)
	}
	for _, is := range missed {
		r.deliverIssue(f, t, is)
	}
}

// changedIssue reads a notified issue on the tenant's pool, unless the
// tenant stopped being READY.
func (r *Resolver) changedIssue(tenantID, issueID uuid.UUID) (store.Issue, error) {
	db, err := r.tenantDB(tenantID)
	if err != nil {
		return store.Issue{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), issueLoadTimeout)
	defer cancel()
	return store.New(db).IssueByID(ctx, issueID)
}

// tenantDB returns the pool of a READY tenant for the hub's reads. When
// the tenant stopped being READY it closes the feed (the registry hook may
// not have run yet) and returns store.ErrNotFound.
func (r *Resolver) tenantDB(tenantID uuid.UUID) (*sqlx.DB, error) {
	t, err := r.Registry.Cached(tenantID)
	if err != nil || t.Status != tenancy.StatusReady {
		r.closeIssueFeed(tenantID)
		return nil, store.ErrNotFound
	}
	db, err := r.Pools.DB(t)
	if err != nil {
		return nil, err
	}
	if !r.tenantReady(tenantID) {
		// suspended or deleted meanwhile: do not keep the pool DB reopened
		r.Pools.Close(tenantID)
		r.closeIssueFeed(tenantID)
		return nil, store.ErrNotFound
	}
	return db, nil
}

// IssueFeeds returns the number of tenants whose issue changes this
// process follows (by LISTEN or by polling), for tests and metrics.
func (r *Resolver) IssueFeeds() int {
	r.issueHub.mu.Lock()
	defer r.issueHub.mu.Unlock()
	return len(r.issueHub.feeds)
}
