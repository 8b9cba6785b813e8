package static

import "testing"

func TestAcceptsGzip(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]bool{
		"":                    false,
		"gzip":                true,
		"GZIP":                true,
		"deflate, gzip;q=0.5": true,
		"br, gzip;q=0":        false,
		"gzip;q=0, *":         false,
		"*":                   true,
		"*;q=0":               false,
		"deflate, *;q=0.1":    true,
		"identity":            false,
		"gzip;q=nonsense":     false,
		"gzip;q=nonsense, *":  false,
	} {
		if got := AcceptsGzip(header); got != want {
			t.Errorf("AcceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestContentType(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"a.js": "text/javascript; charset=utf-8", "x/y.css": "text/css; charset=utf-8",
		"i.html": "text/html; charset=utf-8", "f.svg": "image/svg+xml", "blob": "application/octet-stream",
	} {
		if got := ContentType(name); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestETagDependsOnContent(t *testing.T) {
	t.Parallel()
	a, b := ETag([]byte("a")), ETag([]byte("b"))
	if a == b || a != ETag([]byte("a")) || a[0] != '"' {
		t.Errorf("ETag: %q %q", a, b)
	}
}
