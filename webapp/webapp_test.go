package webapp

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// request sends method target to h with header name/value pairs.
func request(t *testing.T, h http.Handler, method, target string, header ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

var referenceRE = regexp.MustCompile(`<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]*)"`)

// page returns the embedded index.html and the URLs it references.
func page(t *testing.T) (string, []string) {
	t.Helper()
	b, err := fs.ReadFile(dist, "dist/index.html")
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, m := range referenceRE.FindAllStringSubmatch(string(b), -1) {
		urls = append(urls, m[1])
	}
	return string(b), urls
}

func TestIndexAndSPAFallback(t *testing.T) {
	t.Parallel()
	h := Handler()
	index, _ := page(t)
	for _, target := range []string{"/app/", "/app/index.html", "/app/p/WEB", "/app/p/WEB/WEB-12", "/app/assets"} {
		res, body := request(t, h, http.MethodGet, target)
		if res.StatusCode != http.StatusOK || body != index {
			t.Errorf("GET %s: %d, index.html served: %v", target, res.StatusCode, body == index)
			continue
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", target, ct)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", target, cc)
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: CSP %q", target, csp)
		}
	}
}

func TestPageIsCSPCompatible(t *testing.T) {
	t.Parallel()
	index, urls := page(t)
	if regexp.MustCompile(`<script\b[^>]*>\s*[^<\s]`).MatchString(index) || strings.Contains(index, "<style") ||
		strings.Contains(index, " style=") {
		t.Errorf("index.html has inline script or style:\n%s", index)
	}
	if len(urls) < 3 {
		t.Fatalf("index.html references %v, want the script, the stylesheet and the icon", urls)
	}
}

func TestAssets(t *testing.T) {
	t.Parallel()
	h := Handler()
	_, urls := page(t)
	var js, css string
	for _, u := range urls {
		if !strings.HasPrefix(u, Prefix) {
			t.Errorf("index.html references %q outside %s", u, Prefix)
			continue
		}
		res, body := request(t, h, http.MethodGet, u)
		if res.StatusCode != http.StatusOK || body == "" {
			t.Errorf("GET %s: %d", u, res.StatusCode)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("ETag") == "" {
			t.Errorf("GET %s: headers %v", u, res.Header)
		}
		want := "public, max-age=3600"
		if strings.HasPrefix(u, Prefix+"assets/") {
			want = "public, max-age=31536000, immutable"
		}
		if cc := res.Header.Get("Cache-Control"); cc != want {
			t.Errorf("GET %s: Cache-Control %q, want %q", u, cc, want)
		}
		switch {
		case strings.HasSuffix(u, ".js"):
			js = u
			if ct := res.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
				t.Errorf("GET %s: Content-Type %q", u, ct)
			}
		case strings.HasSuffix(u, ".css"):
			css = u
			if ct := res.Header.Get("Content-Type"); ct != "text/css; charset=utf-8" {
				t.Errorf("GET %s: Content-Type %q", u, ct)
			}
		case strings.HasSuffix(u, ".svg"):
			if ct := res.Header.Get("Content-Type"); ct != "image/svg+xml" {
				t.Errorf("GET %s: Content-Type %q", u, ct)
			}
		}
	}
	if js == "" || css == "" {
		t.Fatalf("no script or stylesheet among %v", urls)
	}

	// gzip for clients that accept it, the same bytes once decompressed
	_, plain := request(t, h, http.MethodGet, js)
	res, zipped := request(t, h, http.MethodGet, js, "Accept-Encoding", "br, gzip")
	if res.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("gzip not served: %v", res.Header)
	}
	zr, err := gzip.NewReader(strings.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	if !bytes.Equal(unzipped, []byte(plain)) {
		t.Error("gzip copy differs from the file")
	}
	if res, _ := request(t, h, http.MethodGet, js, "Accept-Encoding", "gzip;q=0"); res.Header.Get("Content-Encoding") != "" {
		t.Error("gzip served despite q=0")
	}

	// revalidation
	res, _ = request(t, h, http.MethodGet, css)
	if res2, _ := request(t, h, http.MethodGet, css, "If-None-Match", res.Header.Get("ETag")); res2.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", res2.StatusCode)
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	t.Parallel()
	h := Handler()
	for _, target := range []string{"/app/assets/index-DoesNotExist.js", "/app/assets/old.css", "/app/robots.txt", "/app/p/WEB/logo.png", "/other/"} {
		if res, _ := request(t, h, http.MethodGet, target); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", target, res.StatusCode)
		}
	}
	res, body := request(t, h, http.MethodHead, "/app/")
	if res.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD /app/: %d, body %q", res.StatusCode, body)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		res, _ := request(t, h, m, "/app/")
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /app/: %d, Allow %q", m, res.StatusCode, res.Header.Get("Allow"))
		}
	}
}
