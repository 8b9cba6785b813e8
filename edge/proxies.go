package edge

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the peers whose forwarded headers (X-Forwarded-Host,
// X-Forwarded-For, X-Forwarded-Proto, Forwarded) are believed. A nil
// *Proxies believes no peer.
type Proxies struct {
	all  bool
	nets []netip.Prefix
}

// ParseProxies reads TRUSTED_PROXIES: comma-separated addresses and CIDRs
// ("10.0.0.0/8, 192.168.1.7, ::1"). With list empty, trustAll (TRUST_PROXY
// alone, documented as unsafe) believes every peer and !trustAll none
// (nil). Returns an error naming the first entry that is neither.
func ParseProxies(list string, trustAll bool) (*Proxies, error) {
	p := &Proxies{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if pfx, err := netip.ParsePrefix(s); err == nil {
			p.nets = append(p.nets, pfx.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("TRUSTED_PROXIES: %q is neither an address nor a CIDR", s)
		}
		a = a.Unmap()
		p.nets = append(p.nets, netip.PrefixFrom(a, a.BitLen()))
	}
	switch {
	case len(p.nets) > 0:
		return p, nil
	case trustAll:
		return &Proxies{all: true}, nil
	}
	return nil, nil
}

// Trusts reports whether the peer at addr ("host" or "host:port") is a
// trusted proxy.
func (p *Proxies) Trusts(addr string) bool {
	if p == nil {
		return false
	}
	if p.all {
		return true
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedHeaders are dropped from requests of untrusted peers.
var forwardedHeaders = []string{"X-Forwarded-Host", "X-Forwarded-For", "X-Forwarded-Proto", "Forwarded"}

// Wrap makes the forwarded headers mean what they say before anything
// reads them: a request from a peer that is not a trusted proxy loses
// them, so its X-Forwarded-Host cannot pick a tenant; a request from a
// trusted proxy keeps them and gets as RemoteAddr the client's address:
// the right-most X-Forwarded-For hop that is not itself a trusted proxy
// (hops to its left could be forged by the client).
func (p *Proxies) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.Trusts(r.RemoteAddr) {
			for _, h := range forwardedHeaders {
				r.Header.Del(h)
			}
			next.ServeHTTP(w, r)
			return
		}
		if client, ok := p.clientOf(r.Header.Values("X-Forwarded-For")); ok {
			r = r.Clone(r.Context())
			r.RemoteAddr = net.JoinHostPort(client, "0")
		}
		next.ServeHTTP(w, r)
	})
}

// clientOf returns the right-most hop of X-Forwarded-For values that is
// not a trusted proxy (all of them trusted: the left-most).
func (p *Proxies) clientOf(values []string) (string, bool) {
	var hops []string
	for _, v := range values {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			return "", false // a forged or broken hop: keep the peer
		}
		if i == 0 || p.all || !p.Trusts(a.String()) {
			return a.Unmap().String(), true
		}
	}
	return "", false
}
