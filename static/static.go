// Package static holds what the embedded web assets (the Playground and the
// example app) share: media types that do not depend on the machine's MIME
// tables, strong ETags and Accept-Encoding negotiation.
package static

import (
	"crypto/sha256"
	"encoding/base64"
	"path"
	"strconv"
	"strings"
)

// ContentType returns the media type for name's extension.
// Defaults to application/octet-stream.
func ContentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".json", ".map":
		return "application/json"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".woff2":
		return "font/woff2"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// Compressible reports whether gzip is worth trying on a file of this kind.
func Compressible(name string) bool {
	switch path.Ext(name) {
	case ".html", ".js", ".mjs", ".css", ".json", ".map", ".svg", ".txt":
		return true
	}
	return false
}

// ETag is a strong entity tag for a body.
func ETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
}

// AcceptsGzip reports whether an Accept-Encoding header value allows gzip:
// named with a non-zero quality, or, when gzip is not named, "*" with a
// non-zero quality.
func AcceptsGzip(header string) bool {
	star := false
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		ok := quality(params) > 0
		if coding == "gzip" {
			return ok
		}
		star = ok
	}
	return star
}

// quality returns the q parameter of an Accept-Encoding element. Defaults
// to 1; an unparsable value counts as 0.
func quality(params string) float64 {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0
			}
			return q
		}
	}
	return 1
}
