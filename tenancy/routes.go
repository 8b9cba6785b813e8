package tenancy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// routeTable is the in-memory copy of every tenant, indexed for routing.
type routeTable struct {
	mu       sync.RWMutex
	byID     map[uuid.UUID]*Tenant
	bySlug   map[string]*Tenant
	byDomain map[string]*Tenant
	loaded   bool

	subMu    sync.Mutex
	subs     map[string]map[chan *Tenant]struct{} // slug -> status subscribers
	onChange []func(old, new *Tenant)
}

func newRouteTable() *routeTable {
	return &routeTable{
		byID: map[uuid.UUID]*Tenant{}, bySlug: map[string]*Tenant{}, byDomain: map[string]*Tenant{},
		subs: map[string]map[chan *Tenant]struct{}{},
	}
}

// put replaces (t != nil) or removes (t == nil) the tenant id and tells
// watchers when something they care about changed.
func (rt *routeTable) put(id uuid.UUID, t *Tenant) {
	rt.mu.Lock()
	old := rt.byID[id]
	if t != nil && old != nil && t.UpdatedAt.Before(old.UpdatedAt) {
		// a read that lost the race to a newer one (the mutation's own
		// refresh and the NOTIFY watcher's run concurrently): keep the newer
		rt.mu.Unlock()
		return
	}
	if old != nil {
		delete(rt.bySlug, old.Slug)
		for _, d := range old.Domains {
			delete(rt.byDomain, d)
		}
		delete(rt.byID, id)
	}
	if t != nil {
		rt.byID[id] = t
		rt.bySlug[t.Slug] = t
		for _, d := range t.Domains {
			rt.byDomain[d] = t
		}
	}
	hooks := rt.onChange
	rt.mu.Unlock()
	if old == nil && t == nil {
		return
	}
	for _, h := range hooks {
		h(old, t)
	}
	if t != nil && (old == nil || old.Status != t.Status || old.LastError != t.LastError ||
		old.SchemaVersion != t.SchemaVersion || old.Name != t.Name || len(old.Domains) != len(t.Domains) ||
		old.Step != t.Step || old.Server != t.Server) {
		rt.publish(t.Slug, t)
	}
	if t == nil && old != nil {
		rt.publish(old.Slug, nil)
	}
}

// replaceAll swaps in a full snapshot, applying each difference through put.
func (rt *routeTable) replaceAll(all []*Tenant) {
	seen := make(map[uuid.UUID]bool, len(all))
	for _, t := range all {
		seen[t.ID] = true
		rt.mu.RLock()
		old := rt.byID[t.ID]
		rt.mu.RUnlock()
		if old == nil || !old.UpdatedAt.Equal(t.UpdatedAt) || len(old.Domains) != len(t.Domains) || !sameStrings(old.Domains, t.Domains) {
			rt.put(t.ID, t)
		}
	}
	rt.mu.RLock()
	var gone []uuid.UUID
	for id := range rt.byID {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	rt.mu.RUnlock()
	for _, id := range gone {
		rt.put(id, nil)
	}
	rt.mu.Lock()
	rt.loaded = true
	rt.mu.Unlock()
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (rt *routeTable) publish(slug string, t *Tenant) {
	rt.subMu.Lock()
	defer rt.subMu.Unlock()
	for ch := range rt.subs[slug] {
		select {
		case ch <- t:
		default: // a slow subscriber misses an intermediate state, never blocks routing
		}
	}
}

// OnChange registers f to run after every change of the routing table, with
// the tenant before (nil when new) and after (nil when gone). Register
// before Watch starts; f must not block.
func (r *Registry) OnChange(f func(old, new *Tenant)) {
	r.routes.mu.Lock()
	defer r.routes.mu.Unlock()
	r.routes.onChange = append(r.routes.onChange, f)
}

// SubscribeStatus delivers the tenant with slug each time its status (or
// error, version, name, domains) changes, and nil once it is gone. Call the
// returned cancel function to stop; the channel is then abandoned.
func (r *Registry) SubscribeStatus(slug string) (<-chan *Tenant, func()) {
	ch := make(chan *Tenant, 16)
	rt := r.routes
	rt.subMu.Lock()
	if rt.subs[slug] == nil {
		rt.subs[slug] = map[chan *Tenant]struct{}{}
	}
	rt.subs[slug][ch] = struct{}{}
	rt.subMu.Unlock()
	return ch, func() {
		rt.subMu.Lock()
		delete(rt.subs[slug], ch)
		if len(rt.subs[slug]) == 0 {
			delete(rt.subs, slug)
		}
		rt.subMu.Unlock()
	}
}

// Route returns the tenant serving a normalized host, from memory only.
// A MOVING tenant is routed like a READY one (its mutations are refused
// later, once the operation is known: Target.Moving).
// Returns ErrTenantNotFound (unknown, DELETED or DELETING), ErrTenantNotReady
// (PROVISIONING or FAILED; ErrSchemaBehind, which wraps it, for a READY
// tenant whose database is behind this server's tenant migrations) or ErrTenantSuspended, each wrapped; the tenant
// is returned alongside the last two.
func (r *Registry) Route(hosts Hosts, host string) (*Tenant, error) {
	kind, label := hosts.Classify(host)
	rt := r.routes
	rt.mu.RLock()
	var t *Tenant
	switch kind {
	case HostSubdomain:
		t = rt.bySlug[label]
	case HostCustom:
		t = rt.byDomain[label]
	}
	rt.mu.RUnlock()
	if t == nil {
		return nil, ErrTenantNotFound
	}
	switch t.Status {
	case StatusReady, StatusMoving:
		if _, behind := r.SchemaBehind(t); behind {
			return t, ErrSchemaBehind
		}
		return t, nil
	case StatusSuspended:
		return t, ErrTenantSuspended
	case StatusProvisioning, StatusFailed:
		return t, ErrTenantNotReady
	default:
		return nil, ErrTenantNotFound
	}
}

// Cached returns the in-memory copy of the tenant with id.
// Returns ErrTenantNotFound if the table holds none.
func (r *Registry) Cached(id uuid.UUID) (*Tenant, error) {
	r.routes.mu.RLock()
	defer r.routes.mu.RUnlock()
	if t := r.routes.byID[id]; t != nil {
		return t, nil
	}
	return nil, ErrTenantNotFound
}

// refresh re-reads one tenant into the routing table and returns it.
func (r *Registry) refresh(ctx context.Context, id uuid.UUID) (*Tenant, error) {
	t, err := r.getByID(ctx, id)
	if errors.Is(err, ErrTenantNotFound) {
		r.routes.put(id, nil)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	r.routes.put(id, t)
	return t, nil
}

// Load reads every tenant into the routing table.
func (r *Registry) Load(ctx context.Context) error {
	q := `SELECT ` + tenantColumns + ` FROM tenants t`
	var rows []tenantRow
	if err := r.db.SelectContext(ctx, &rows, q); err != nil {
		return dbError("load tenants", err)
	}
	all := make([]*Tenant, len(rows))
	for i, row := range rows {
		all[i] = row.tenant()
	}
	r.routes.replaceAll(all)
	return nil
}

// WatchOptions tune Watch.
type WatchOptions struct {
	ListenerURL string        // control database URL for LISTEN; required
	Refresh     time.Duration // full reload interval; defaults to 30s
}

// NotifyChannel is the control database channel announcing tenant changes.
const NotifyChannel = "tenantql_tenants"

// Watch keeps the routing table current until ctx ends: it LISTENs on the
// control database for changed tenant ids (written by triggers), and reloads
// everything every Refresh and after each reconnect as a safety net. It also
// hears revoked tokens (SessionsChannel) and runs the OnUserRevoked hooks.
func (r *Registry) Watch(ctx context.Context, o WatchOptions) error {
	if o.Refresh <= 0 {
		o.Refresh = 30 * time.Second
	}
	l := pq.NewListener(o.ListenerURL, 100*time.Millisecond, 5*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			r.log.Warn("tenant change listener", "event", int(ev), "err", err)
		}
	})
	defer l.Close()
	for _, ch := range []string{NotifyChannel, SessionsChannel} {
		if err := l.Listen(ch); err != nil {
			return fmt.Errorf("listen %s: %w", ch, err)
		}
	}
	if err := r.Load(ctx); err != nil {
		r.log.Warn("load tenants", "err", err)
	}
	tick := time.NewTicker(o.Refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-l.Notify:
			if n == nil { // reconnected: we may have missed changes
				r.userRevoked(uuid.Nil, uuid.Nil)
				if err := r.Load(ctx); err != nil {
					r.log.Warn("reload tenants after reconnect", "err", err)
				}
				continue
			}
			if n.Channel == SessionsChannel {
				if tenant, user, ok := revokedFromPayload(n.Extra); ok {
					r.userRevoked(tenant, user)
				}
				continue
			}
			id, err := uuid.Parse(n.Extra)
			if err != nil {
				continue
			}
			if _, err := r.refresh(ctx, id); err != nil && !errors.Is(err, ErrTenantNotFound) {
				r.log.Warn("refresh tenant", "tenant", id, "err", err)
			}
		case <-tick.C:
			if err := r.Load(ctx); err != nil {
				r.log.Warn("periodic tenant reload", "err", err)
			}
		}
	}
}
