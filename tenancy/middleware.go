package tenancy

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// Target is what a request's host resolved to.
type Target struct {
	Admin  bool     // the admin host: platform API
	Tenant *Tenant  // the tenant (nil on the admin host)
	DB     *sqlx.DB // the tenant's pool (nil on the admin host)
	Host   string   // normalized host the request used
	Port   string   // port in the Host header, "" when none

	reg   *Registry  // for Recheck
	pools *Pools     // for Admit
	adm   *admission // the request's per-tenant admission (nil: not admitted, e.g. a websocket)
}

// admission is a request's place among its tenant's admitted requests
// (Pools.Enter).
type admission struct {
	pools *Pools
	id    uuid.UUID

	mu    sync.Mutex
	leave func() // nil while the request is out
}

func (a *admission) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.leave != nil {
		a.leave()
		a.leave = nil
	}
}

// WithoutAdmission runs f, work that needs no database connection (a
// password hash: tens of milliseconds of CPU), outside the request's
// per-tenant admission, so that the tenant's waiting requests go ahead
// meanwhile; then it takes admission again, waiting as Pools.Enter does.
// It returns ErrUnavailable when that wait times out (f has run).
func (t *Target) WithoutAdmission(ctx context.Context, f func()) error {
	a := t.adm
	if a == nil {
		f()
		return nil
	}
	a.release()
	f()
	leave, err := a.pools.Enter(ctx, a.id)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.leave != nil { // cannot happen with one call at a time; never hold two places
		leave()
		return nil
	}
	a.leave = leave
	return nil
}

// Admit admits one request to its tenant (Pools.Enter): it returns a copy
// of t that holds the place, for the request's context (WithoutAdmission
// works on it), and the function that gives the place back. Middleware
// admits every HTTP request this way, and the websocket transport each
// operation of a connection (the connection's own request lasts as long as
// the socket, and is not admitted). A tenant no longer served (deleted or
// suspended since the connection opened) gets the error a new request
// would; the wait ends with ErrUnavailable after AcquireTimeout. The admin
// host's target needs no admission and is returned as it is.
func (t *Target) Admit(ctx context.Context) (*Target, func(), error) {
	if t.Tenant == nil || t.pools == nil {
		return t, func() {}, nil
	}
	if t.reg != nil && !t.reg.routable(t.Tenant.ID) {
		return nil, nil, t.reg.routeError(t.Tenant.ID)
	}
	leave, err := t.pools.Enter(ctx, t.Tenant.ID)
	if err != nil {
		if gone := t.Recheck(ctx, err); gone != nil {
			err = gone // deleted or suspended while it waited
		}
		return nil, nil, err
	}
	admitted := *t
	admitted.adm = &admission{pools: t.pools, id: t.Tenant.ID, leave: leave}
	return &admitted, admitted.adm.release, nil
}

type targetKey struct{}

// WithTarget returns ctx carrying t.
func WithTarget(ctx context.Context, t *Target) context.Context {
	return context.WithValue(ctx, targetKey{}, t)
}

// FromContext returns the request's target; ok is false outside the
// routing middleware.
func FromContext(ctx context.Context) (t *Target, ok bool) {
	t, ok = ctx.Value(targetKey{}).(*Target)
	return t, ok
}

// Router is the HTTP middleware mapping the Host header to the admin host
// or a READY tenant and its pool, from memory only.
type Router struct {
	Registry   *Registry
	Pools      *Pools
	Hosts      Hosts
	TrustProxy bool // honour X-Forwarded-Host
	// Reject writes the answer for a host that cannot be served; err wraps
	// ErrTenantNotFound, ErrTenantNotReady, ErrTenantSuspended or ErrUnavailable.
	Reject func(w http.ResponseWriter, r *http.Request, err error)
}

// RequestHost returns the host a request addressed, honouring
// X-Forwarded-Host only when trustProxy is set.
func RequestHost(r *http.Request, trustProxy bool) (host, port string) {
	h := r.Host
	if trustProxy {
		if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
			h, _, _ = strings.Cut(fh, ",")
		}
	}
	return NormalizeHost(h)
}

// Resolve returns the target for a normalized host.
func (rt *Router) Resolve(host, port string) (*Target, error) {
	if kind, _ := rt.Hosts.Classify(host); kind == HostAdmin {
		return &Target{Admin: true, Host: host, Port: port}, nil
	}
	t, err := rt.Registry.Route(rt.Hosts, host)
	if err != nil {
		return nil, err
	}
	db, err := rt.Pools.DB(t)
	if err != nil {
		return nil, err
	}
	// A change that closed the tenant's pool (suspend, delete) may have
	// landed between Route and DB, which then opened a new one: look
	// again, so that a stale copy never keeps a pool open.
	if now, err := rt.Registry.Route(rt.Hosts, host); err != nil || now.ID != t.ID {
		rt.Pools.Close(t.ID)
		if err == nil {
			err = ErrTenantNotFound
		}
		return nil, err
	}
	return &Target{Tenant: t, DB: db, Host: host, Port: port, reg: rt.Registry, pools: rt.Pools}, nil
}

// Middleware puts the request's Target into its context, or rejects it.
func (rt *Router) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, port := RequestHost(r, rt.TrustProxy)
		target, err := rt.Resolve(host, port)
		if err != nil {
			rt.Reject(w, r, err)
			return
		}
		// Per-tenant admission (pools.go); a websocket holds its request
		// for the subscription's life, so it is not counted.
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			admitted, leave, err := target.Admit(r.Context())
			if err != nil {
				rt.Reject(w, r, err)
				return
			}
			defer leave()
			target = admitted
		}
		next.ServeHTTP(w, r.WithContext(WithTarget(r.Context(), target)))
	})
}

// FollowRegistry closes a tenant's pool as soon as the tenant stops being
// served or disappears, on whichever process made the change. A change of
// status or location of a served tenant (READY to MOVING and back, a
// move's switch to the new copy) retires the pool instead: requests in
// flight finish on it, new ones get a pool of fresh sessions (the old
// sessions of a MOVING tenant may still write; new ones are read-only).
func (p *Pools) FollowRegistry(reg *Registry) {
	reg.OnChange(func(old, cur *Tenant) {
		switch {
		case old == nil:
		case cur == nil || !cur.Serving():
			p.Close(old.ID)
		case old.Status != cur.Status || old.DBName != cur.DBName || old.Server != cur.Server:
			p.Retire(old.ID)
		}
	})
}

// CurrentDB returns the pool of the request's tenant as routed now. A
// subscription outlives the request that started it, and meanwhile the
// tenant's pool may have been retired (a status change) or the tenant
// moved to a copy on another server: its events read through this, never
// through DB. A tenant no longer served gets the error a new request
// would.
func (t *Target) CurrentDB() (*sqlx.DB, error) {
	if t.Tenant == nil || t.reg == nil || t.pools == nil {
		return t.DB, nil
	}
	cur, err := t.reg.Cached(t.Tenant.ID)
	if err != nil || !cur.Serving() {
		return nil, t.reg.routeError(t.Tenant.ID)
	}
	return t.pools.DB(cur)
}

// Moving reports whether the request's tenant is MOVING now (read from
// the routing table, which may have changed since the request was
// routed): its mutations are refused with ErrTenantMoving.
func (t *Target) Moving() bool {
	if t == nil || t.Tenant == nil || t.reg == nil {
		return false
	}
	cur, err := t.reg.Cached(t.Tenant.ID)
	return err == nil && cur.Status == StatusMoving
}
