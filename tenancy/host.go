package tenancy

import (
	"net"
	"strings"
)

// NormalizeHost lower-cases a Host header value and removes any ":port" and
// a trailing dot. It returns the host and the port ("" when none was given).
func NormalizeHost(hostport string) (host, port string) {
	h := strings.TrimSpace(hostport)
	if strings.HasPrefix(h, "[") { // IPv6 literal
		if hh, p, err := net.SplitHostPort(h); err == nil {
			return strings.ToLower(hh), p
		}
		return strings.ToLower(strings.Trim(h, "[]")), ""
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.Count(h, ":") == 1 {
		h, port = h[:i], h[i+1:]
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	return h, port
}

// HostKind says what a normalized host addresses.
type HostKind int

// The kinds of host.
const (
	HostUnknown   HostKind = iota // not ours: 404
	HostAdmin                     // the platform API
	HostSubdomain                 // <slug>.<base domain>; Label holds the slug
	HostCustom                    // anything else: maybe a tenant's custom domain
)

// Hosts classifies hosts for one deployment.
type Hosts struct {
	BaseDomain string // e.g. "example.com"; lower case, no trailing dot
	AdminHost  string // defaults to BaseDomain
}

// Classify returns the kind of a normalized host and, for a subdomain, its
// label. Exactly one label under BaseDomain is a subdomain; deeper names and
// names that are not valid hostnames are HostUnknown.
func (h Hosts) Classify(host string) (HostKind, string) {
	admin := h.AdminHost
	if admin == "" {
		admin = h.BaseDomain
	}
	switch {
	case host == "":
		return HostUnknown, ""
	case host == admin:
		return HostAdmin, ""
	case !validHostname(host):
		return HostUnknown, ""
	}
	if label, ok := strings.CutSuffix(host, "."+h.BaseDomain); ok {
		if label == "" || strings.Contains(label, ".") {
			return HostUnknown, ""
		}
		return HostSubdomain, label
	}
	return HostCustom, host
}

// validHostname reports whether s looks like a DNS name: labels of letters,
// digits and hyphens, 1..63 bytes each, 253 bytes in all.
func validHostname(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
