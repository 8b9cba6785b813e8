package edge

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/tenancy"
)

// The CORS answer: what a browser may send and read cross-origin.
const (
	corsAllowHeaders  = "Authorization, Content-Type, apollo-require-preflight, x-apollo-operation-name, X-Request-Id, apollographql-client-name, apollographql-client-version"
	corsExposeHeaders = "X-Request-Id, Retry-After"
	corsMaxAge        = "600"
)

// cors applies the host's CORS policy. A request without Origin (a
// non-browser client) passes untouched. An allowed Origin is echoed in
// Access-Control-Allow-Origin (never "*", never with credentials: tokens are
// bearer headers); a disallowed one is refused with 403 before anything
// runs, websocket upgrades included. Preflights are answered here. It
// reports whether the request goes on.
func (g *Guard) cors(w http.ResponseWriter, r *http.Request, t *tenancy.Target) bool {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !g.OriginAllowed(t, origin) {
		g.refuse(w, http.StatusForbidden, apierr.Forbidden, fmt.Sprintf(
			"origin %.200q may not call this host's API: only the organization's own hosts and CORS_ORIGINS may", origin))
		return false
	}
	return !allowOrigin(w, r, origin)
}

// allowOrigin answers an allowed origin: it echoes origin, then either
// answers a preflight (and reports true: nothing more to write) or
// exposes the headers a page may read.
func allowOrigin(w http.ResponseWriter, r *http.Request, origin string) (preflightAnswered bool) {
	w.Header().Set("Access-Control-Allow-Origin", origin)
	if answerPreflight(w, r) {
		return true
	}
	w.Header().Set("Access-Control-Expose-Headers", corsExposeHeaders)
	return false
}

// answerPreflight answers r with 204 and the allowed methods and headers
// if it is a preflight (the origin was found allowed) and reports whether
// it was.
func answerPreflight(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", allowedMethods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}

// OriginAllowed reports whether a page at origin may call the API of the
// host t resolved to: an http or https origin on one of the host's own names
// (a tenant's subdomain or custom domains; the admin host), on any port, or
// an origin listed in CORSOrigins. Another tenant's origin never is.
func (g *Guard) OriginAllowed(t *tenancy.Target, origin string) bool {
	if g.listedOrigin(origin) {
		return true
	}
	host, ok := originHost(origin)
	if !ok {
		return false
	}
	if t == nil || t.Tenant == nil {
		admin := g.o.Hosts.AdminHost
		if admin == "" {
			admin = g.o.Hosts.BaseDomain
		}
		return t != nil && t.Admin && host == admin
	}
	if host == t.Tenant.Host(g.o.Hosts.BaseDomain) {
		return true
	}
	for _, d := range t.Tenant.Domains {
		if host == strings.ToLower(d) {
			return true
		}
	}
	return false
}

// RejectionCORS sets the CORS headers on an answer that host routing
// gives instead of serving the request (an unknown, suspended or deleted
// tenant; a tenant over its admission limit), so that a page allowed to
// call host can read why. Without the tenant's record only two kinds of
// origin are known to be allowed: one on host itself (any port) and the
// CORS_ORIGINS. A preflight from such an origin is answered here (204), so
// that the request itself comes and reads the error; RejectionCORS then
// reports true and the caller writes nothing more.
func (g *Guard) RejectionCORS(w http.ResponseWriter, r *http.Request, host string) (answered bool) {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || !g.rejectionOriginAllowed(origin, host) {
		return false
	}
	return allowOrigin(w, r, origin)
}

func (g *Guard) rejectionOriginAllowed(origin, host string) bool {
	if g.listedOrigin(origin) {
		return true
	}
	h, ok := originHost(origin)
	return ok && h == strings.TrimSuffix(strings.ToLower(host), ".")
}

// listedOrigin reports whether origin is one of CORSOrigins.
func (g *Guard) listedOrigin(origin string) bool {
	return slices.Contains(g.o.CORSOrigins, strings.TrimSuffix(strings.ToLower(origin), "/"))
}

// originHost returns the lower-case host name of an http or https origin
// ("https://acme.example.com:8443" → "acme.example.com"); ok is false for
// anything that is not a bare origin.
func originHost(origin string) (host string, ok bool) {
	u, err := url.Parse(strings.ToLower(origin))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	host = strings.TrimSuffix(u.Hostname(), ".")
	return host, host != ""
}
