package edge

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/tenancy"
)

// Defaults of Options fields left zero.
const (
	DefaultMaxBodyBytes = 1 << 20 // 1 MiB, the contract's limit
	DefaultRateBuckets  = 10000
	// DefaultClientBuckets bounds the buckets of users and client
	// addresses (about 200 bytes each).
	DefaultClientBuckets = 100000
)

// Options configure a Guard.
type Options struct {
	// Hosts names the admin host and the base domain; a host's own names
	// are allowed origins on it.
	Hosts tenancy.Hosts
	// CORSOrigins are further origins ("https://app.example.com", lower
	// case) allowed to call every host.
	CORSOrigins []string
	// MaxBodyBytes bounds a POST body: a larger one is 413. Defaults to
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// RateLimit is the sustained number of requests per second each tenant
	// (and the admin host) may make; 0 or less turns rate limiting off.
	RateLimit float64
	// RateBurst is the size of each tenant's token bucket. Defaults to
	// twice RateLimit, at least 1.
	RateBurst int
	// RateBuckets bounds how many tenants' buckets are kept; the least
	// recently used is forgotten (a forgotten bucket comes back full).
	// Defaults to DefaultRateBuckets.
	RateBuckets int
	// Under the tenant's bucket, each caller has one of its own: a
	// signed-in user (UserRateLimit, UserRateBurst; default the tenant's
	// RateLimit and RateBurst), and, for calls without a valid token, the
	// client address (AddressRateLimit, AddressRateBurst; default a quarter
	// of the tenant's), whose calls together spend at most the tenant's
	// AnonymousRateLimit and AnonymousRateBurst (default half), so that no
	// anonymous flood leaves the tenant's signed-in users without requests.
	UserRateLimit      float64
	UserRateBurst      int
	AddressRateLimit   float64
	AddressRateBurst   int
	AnonymousRateLimit float64
	AnonymousRateBurst int
	// ClientBuckets bounds how many users' and addresses' buckets are kept
	// (idle ones, full again, are dropped first). Defaults to
	// DefaultClientBuckets.
	ClientBuckets int
	// Identify names who a request's token signs in: a user id, "admin" for
	// the admin token, "" for no valid token. nil: every request is
	// anonymous. Tokens are checked for their signature only; revocation is
	// the resolvers' business.
	Identify func(r *http.Request, t *tenancy.Target) string
	// MaxWebsockets caps the open websocket connections of one tenant
	// (and of the admin host); 0 or less means no cap.
	MaxWebsockets int
}

// Guard is the HTTP edge of the GraphQL endpoint. It runs after host
// routing (tenancy.Router) and before gqlgen, and refuses what must never
// reach GraphQL: origins the host does not allow (CORS), methods and
// content types we do not serve, cross-site simple requests (CSRF),
// oversized and batched bodies, tenants over their rate or websocket cap.
type Guard struct {
	o          Options
	buckets    *buckets    // per tenant; nil when rate limiting is off
	users      *buckets    // per user of a tenant
	addresses  *buckets    // per client address of a tenant, without a token
	anonymous  *buckets    // per tenant, its calls without a token
	websockets *connCounts // nil when uncapped
	drain      *wsDrain
}

// NewGuard returns a Guard with o's defaults applied.
func NewGuard(o Options) *Guard {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.RateBuckets <= 0 {
		o.RateBuckets = DefaultRateBuckets
	}
	if o.RateBurst <= 0 {
		o.RateBurst = max(1, int(2*o.RateLimit))
	}
	if o.ClientBuckets <= 0 {
		o.ClientBuckets = DefaultClientBuckets
	}
	share := func(limit *float64, burst *int, part float64) {
		if *limit <= 0 {
			*limit = o.RateLimit * part
		}
		if *burst <= 0 {
			*burst = max(1, int(float64(o.RateBurst)*part))
		}
	}
	share(&o.UserRateLimit, &o.UserRateBurst, 1)
	share(&o.AddressRateLimit, &o.AddressRateBurst, 0.25)
	share(&o.AnonymousRateLimit, &o.AnonymousRateBurst, 0.5)
	g := &Guard{o: o, drain: newWSDrain()}
	if o.RateLimit > 0 {
		g.buckets = newBuckets(rate.Limit(o.RateLimit), o.RateBurst, o.RateBuckets)
		g.users = newBuckets(rate.Limit(o.UserRateLimit), o.UserRateBurst, o.ClientBuckets)
		g.addresses = newBuckets(rate.Limit(o.AddressRateLimit), o.AddressRateBurst, o.ClientBuckets)
		g.anonymous = newBuckets(rate.Limit(o.AnonymousRateLimit), o.AnonymousRateBurst, o.RateBuckets)
	}
	if o.MaxWebsockets > 0 {
		g.websockets = newConnCounts(o.MaxWebsockets)
	}
	return g
}

// Wrap returns next behind the guard. It must run inside the tenancy
// router's middleware: it reads the request's tenancy.Target.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target, _ := tenancy.FromContext(r.Context())
		key, name := tenantKey(target)
		noteTenant(r.Context(), name)

		// a user's data: no shared cache may keep it, nor serve one
		// caller's answer to another
		w.Header().Set("Cache-Control", "no-store")
		if !g.cors(w, r, target) {
			return
		}
		w.Header().Add("Vary", "Authorization")
		switch r.Method {
		case http.MethodOptions: // preflights were answered by cors
			w.Header().Set("Allow", allowedMethods)
			w.WriteHeader(http.StatusNoContent)
			return
		case http.MethodGet, http.MethodPost:
		default:
			w.Header().Set("Allow", allowedMethods)
			g.refuse(w, http.StatusMethodNotAllowed, apierr.ValidationFailed,
				fmt.Sprintf("method %s is not served here: use POST (application/json), GET for queries, or a websocket", r.Method))
			return
		}
		if ref := g.Take(target, g.clientOf(r, target)); ref != nil {
			w.Header().Set("Retry-After", strconv.Itoa(ref.RetryAfterSeconds()))
			g.refuse(w, http.StatusTooManyRequests, apierr.RateLimited, ref.Message)
			return
		}
		if isWebsocketUpgrade(r) {
			g.serveWebsocket(w, r, key, next)
			return
		}
		if !g.csrf(w, r) {
			return
		}
		if r.Method == http.MethodPost && !g.readBody(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Client is who sends a request or an operation, for the rate buckets.
type Client struct {
	User string // who its token signs in (Options.Identify); "" for no valid token
	Addr string // the client's address: the peer's, or the one a trusted proxy forwarded (Proxies)
}

// clientOf names the sender of an HTTP request.
func (g *Guard) clientOf(r *http.Request, t *tenancy.Target) Client {
	c := Client{Addr: r.RemoteAddr}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		c.Addr = host
	}
	if g.o.Identify != nil {
		c.User = g.o.Identify(r, t)
	}
	return c
}

// AddressKey names the client of an address, for what is counted per
// client (rate buckets, failed logins): an IPv6 address counts by its
// /64, which one client commonly holds whole.
func AddressKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	if a = a.Unmap(); a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// Refusal says why a request is over a rate limit and when to retry.
type Refusal struct {
	RetryAfter time.Duration
	Message    string
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1:
// the value of a Retry-After header.
func (r *Refusal) RetryAfterSeconds() int { return retryAfterSeconds(r.RetryAfter) }

// Take spends one request of the rate limits of target's tenant (the admin
// host's when target is the admin host or nil) and of its client: the
// signed-in user's bucket, or for a client without a valid token its
// address's bucket and the tenant's share for anonymous calls. Wrap takes
// one for every HTTP request, websocket upgrades included; the websocket
// transport takes one for every operation on an open socket, so that a
// socket is no way around the limits. It returns nil when the request may
// go on, else why not and when to retry; a refused request spends nothing.
func (g *Guard) Take(target *tenancy.Target, c Client) *Refusal {
	if g.buckets == nil {
		return nil
	}
	key, _ := tenantKey(target)
	type step struct {
		b        *buckets
		key, who string
		limit    float64
		burst    int
	}
	var steps []step
	switch {
	case c.User == "":
		steps = append(steps,
			step{g.addresses, key + " " + AddressKey(c.Addr), "each client address without a token", g.o.AddressRateLimit, g.o.AddressRateBurst},
			step{g.anonymous, key, "this organization's calls without a token (sign in)", g.o.AnonymousRateLimit, g.o.AnonymousRateBurst})
	case key != "admin": // the admin host has one caller with a token
		steps = append(steps, step{g.users, key + " " + c.User, "each signed-in user", g.o.UserRateLimit, g.o.UserRateBurst})
	}
	steps = append(steps, step{g.buckets, key, "this organization", g.o.RateLimit, g.o.RateBurst})
	now := time.Now()
	var undo []func()
	for _, s := range steps {
		give, wait, ok := s.b.take(s.key, now)
		if !ok {
			for _, u := range undo {
				u()
			}
			return &Refusal{RetryAfter: wait, Message: fmt.Sprintf(
				"rate limit exceeded: %g requests per second (burst %d) for %s; retry later", s.limit, s.burst, s.who)}
		}
		undo = append(undo, give)
	}
	return nil
}

// serveWebsocket runs a websocket connection within the tenant's cap.
func (g *Guard) serveWebsocket(w http.ResponseWriter, r *http.Request, key string, next http.Handler) {
	if g.websockets != nil {
		if !g.websockets.acquire(key) {
			w.Header().Set("Retry-After", "10")
			g.refuse(w, http.StatusTooManyRequests, apierr.RateLimited, fmt.Sprintf(
				"too many open websocket connections for this organization (limit %d); close one or retry later", g.o.MaxWebsockets))
			return
		}
		defer g.websockets.release(key)
	}
	ctx, done, ok := g.drain.enter(r.Context())
	if !ok {
		w.Header().Set("Retry-After", "1")
		g.refuse(w, http.StatusServiceUnavailable, apierr.ServiceUnavailable, "the server is shutting down; reconnect")
		return
	}
	defer done()
	next.ServeHTTP(w, r.WithContext(ctx)) // returns when the connection closes
}

// CloseWebsockets closes every open websocket connection with a close
// frame, refuses new ones (503), and waits until their handlers have
// returned or ctx ends. A stopping server calls it beside
// http.Server.Shutdown, which does neither for hijacked connections.
func (g *Guard) CloseWebsockets(ctx context.Context) error {
	return g.drain.closeAll(ctx)
}

func (g *Guard) refuse(w http.ResponseWriter, status int, code, msg string) {
	apierr.WriteBody(w, status, code, msg)
}

const allowedMethods = "GET, POST, OPTIONS"

// tenantKey returns the key of the request's buckets and counters (the
// tenant id, or "admin") and the name for logs (the slug, or "admin").
func tenantKey(t *tenancy.Target) (key, name string) {
	if t == nil || t.Tenant == nil {
		return "admin", "admin"
	}
	return t.Tenant.ID.String(), t.Tenant.Slug
}

func isWebsocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

type accessKey struct{}

// accessRecord is what inner handlers tell the access log.
type accessRecord struct {
	tenant string
}

func withAccessRecord(ctx context.Context, rec *accessRecord) context.Context {
	return context.WithValue(ctx, accessKey{}, rec)
}

// noteTenant tells the access log which tenant served the request.
func noteTenant(ctx context.Context, name string) {
	if rec, ok := ctx.Value(accessKey{}).(*accessRecord); ok {
		rec.tenant = name
	}
}
