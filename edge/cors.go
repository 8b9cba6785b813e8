package edge

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

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
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !g.OriginAllowed(t, origin) {
		g.refuse(w, http.StatusForbidden, codeForbidden, fmt.Sprintf(
			"origin %.200q may not call this host's API: only the organization's own hosts and CORS_ORIGINS may", origin))
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		h.Set("Access-Control-Allow-Methods", allowedMethods)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	return true
}

// OriginAllowed reports whether a page at origin may call the API of the
// host t resolved to: an http or https origin on one of the host's own names
// (a tenant's subdomain or custom domains; the admin host), on any port, or
// an origin listed in CORSOrigins. Another tenant's origin never is.
func (g *Guard) OriginAllowed(t *tenancy.Target, origin string) bool {
	o := strings.ToLower(origin)
	if slices.Contains(g.o.CORSOrigins, strings.TrimSuffix(o, "/")) {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	host := strings.TrimSuffix(u.Hostname(), ".")
	if host == "" {
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
