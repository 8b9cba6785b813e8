package edge

import (
	"context"
	"fmt"
	"net/http"
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
	buckets    *buckets    // nil when rate limiting is off
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
	g := &Guard{o: o, drain: newWSDrain()}
	if o.RateLimit > 0 {
		g.buckets = newBuckets(rate.Limit(o.RateLimit), o.RateBurst, o.RateBuckets)
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
		if ref := g.Take(target, Client{}); ref != nil {
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
type Client struct{}

// Refusal says why a request is over a rate limit and when to retry.
type Refusal struct {
	RetryAfter time.Duration
	Message    string
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1:
// the value of a Retry-After header.
func (r *Refusal) RetryAfterSeconds() int { return retryAfterSeconds(r.RetryAfter) }

// Take spends one request of the rate limits of target's tenant (the admin
// host's when target is the admin host or nil). Wrap takes one for every
// HTTP request, websocket upgrades included; the websocket transport takes
// one for every operation on an open socket, so that a socket is no way
// around the limits. It returns nil when the request may go on, else why
// not and when to retry.
func (g *Guard) Take(target *tenancy.Target, _ Client) *Refusal {
	if g.buckets == nil {
		return nil
	}
	key, _ := tenantKey(target)
	if wait, ok := g.buckets.take(key, time.Now()); !ok {
		return &Refusal{RetryAfter: wait, Message: fmt.Sprintf(
			"rate limit exceeded: %g requests per second (burst %d) for this organization; retry later", g.o.RateLimit, g.o.RateBurst)}
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
