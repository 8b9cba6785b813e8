package playground

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

// get sends a GET for target to h with the given request headers (name,
// value pairs) and returns the recorded response.
func get(t *testing.T, h http.Handler, target string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// body reads a response's body.
func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

// referenceRE matches the URL of every <script src> and <link href>.
var referenceRE = regexp.MustCompile(`<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]*)"`)

// references returns the script and stylesheet URLs of an HTML page.
func references(page string) []string {
	var urls []string
	for _, m := range referenceRE.FindAllStringSubmatch(page, -1) {
		urls = append(urls, m[1])
	}
	return urls
}

func TestHandlerPage(t *testing.T) {
	t.Parallel()
	h := Handler(`tenantql — <acme> & "co"`, "/graphql", "# Welcome to tenantql\n{ organization { slug name } }")
	res := get(t, h, "/")
	page := body(t, res)

	if res.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q, want text/html; charset=utf-8", ct)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy = %q, want script-src 'self'", csp)
	}
	for _, want := range []string{
		"<title>tenantql — &lt;acme&gt; &amp; &#34;co&#34;</title>",
		`data-endpoint="/graphql"`,
		"organization { slug name }",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<acme>") {
		t.Error("page contains the unescaped title")
	}
	if strings.Contains(page, "<script>") || regexp.MustCompile(`<script\b[^>]*>[^<]`).MatchString(page) {
		t.Error("page has an inline script; a CSP of script-src 'self' would block it")
	}

	refs := references(page)
	if len(refs) < 5 {
		t.Fatalf("page references %d scripts and stylesheets, want at least 5: %q", len(refs), refs)
	}
	for _, ref := range refs {
		if !strings.HasPrefix(ref, AssetPrefix) || strings.Contains(ref, "//") || strings.Contains(ref, "http:") || strings.Contains(ref, "https:") {
			t.Errorf("page references %q, want an absolute path under %s (no CDN)", ref, AssetPrefix)
		}
	}
	if regexp.MustCompile(`(?i)<(?:script|link)\b[^>]*https?://`).MatchString(page) {
		t.Error("a script or link tag names an http:// or https:// URL")
	}
}

func TestHandlerDefaultQuery(t *testing.T) {
	t.Parallel()
	page := body(t, get(t, Handler("tenantql — admin", "/graphql", ""), "/"))
	if !strings.Contains(page, "Welcome to tenantql") {
		t.Error("page lacks the welcome query")
	}
	if strings.Contains(page, "organization") {
		t.Error("the default query names a field; it must be valid on every host")
	}
}

func TestHandlerMethods(t *testing.T) {
	t.Parallel()
	h := Handler("t", "/graphql", "")
	req := httptest.NewRequest(http.MethodHead, "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: status %d with %d body bytes, want 200 and none", rec.Code, rec.Body.Len())
	}
	req = httptest.NewRequest(http.MethodPost, "/", nil)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", rec.Code)
	}
}

func TestAssetsServeEveryReference(t *testing.T) {
	t.Parallel()
	page := body(t, get(t, Handler("t", "/graphql", ""), "/"))
	assets := Assets()
	for _, ref := range references(page) {
		for _, enc := range []string{"", "gzip, deflate, br"} {
			res := get(t, assets, ref, "Accept-Encoding", enc)
			b := body(t, res)
			if res.StatusCode != http.StatusOK {
				t.Errorf("%s (Accept-Encoding %q): status %d, want 200", ref, enc, res.StatusCode)
				continue
			}
			want := map[string]string{
				".js":  "text/javascript; charset=utf-8",
				".css": "text/css; charset=utf-8",
				".svg": "image/svg+xml",
			}[path.Ext(ref)]
			if ct := res.Header.Get("Content-Type"); ct != want {
				t.Errorf("%s: Content-Type = %q, want %q", ref, ct, want)
			}
			if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=86400" {
				t.Errorf("%s: Cache-Control = %q", ref, cc)
			}
			if res.Header.Get("ETag") == "" {
				t.Errorf("%s: no ETag", ref)
			}
			if len(b) == 0 {
				t.Errorf("%s: empty body", ref)
			}
			if res.Header.Get("Content-Encoding") == "gzip" {
				if enc == "" {
					t.Errorf("%s: gzip sent to a client that did not ask for it", ref)
				}
				zr, err := gzip.NewReader(bytes.NewReader([]byte(b)))
				if err != nil {
					t.Errorf("%s: gzip body: %v", ref, err)
					continue
				}
				if _, err := io.Copy(io.Discard, zr); err != nil {
					t.Errorf("%s: gzip body: %v", ref, err)
				}
			}
		}
	}
}

func TestAssetsGzip(t *testing.T) {
	t.Parallel()
	const js = AssetPrefix + "vendor/graphiql-3.8.3/graphiql.min.js"
	plain := get(t, Assets(), js)
	zipped := get(t, Assets(), js, "Accept-Encoding", "gzip")
	if zipped.Header.Get("Content-Encoding") != "gzip" || zipped.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("gzip response headers: %v", zipped.Header)
	}
	if plain.Header.Get("Content-Encoding") != "" || plain.Header.Get("ETag") == zipped.Header.Get("ETag") {
		t.Fatalf("identity response headers: %v", plain.Header)
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if string(unzipped) != body(t, plain) {
		t.Error("the gzip copy does not match the file; run build.sh")
	}
}

func TestAssetsNotFound(t *testing.T) {
	t.Parallel()
	for _, target := range []string{
		AssetPrefix + "nope.js",
		AssetPrefix,
		AssetPrefix + "vendor",
		AssetPrefix + "vendor/",
		AssetPrefix + "index.html",
		AssetPrefix + "vendor/graphiql-3.8.3/graphiql.min.js.gz",
		AssetPrefix + "../playground.go",
		"/init.js",
	} {
		if res := get(t, Assets(), target); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", target, res.StatusCode)
		}
	}
}

func TestAssetsLicences(t *testing.T) {
	t.Parallel()
	res := get(t, Assets(), AssetPrefix+"vendor/graphiql-3.8.3/LICENSE.txt")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("licence: status %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if !strings.Contains(body(t, res), "MIT License") {
		t.Error("licence text missing")
	}
}

func TestStarterQueries(t *testing.T) {
	t.Parallel()
	page := body(t, get(t, Platform("/graphql"), "/"))
	for _, want := range []string{"<title>tenantql platform</title>", "Bearer &lt;admin token&gt;", "tenants(first: 10)"} {
		if !strings.Contains(page, want) {
			t.Errorf("platform page lacks %q", want)
		}
	}
	page = body(t, get(t, Organization("Acme <Corp>", "/graphql"), "/"))
	for _, want := range []string{"<title>tenantql: Acme &lt;Corp&gt;</title>", "# Acme &lt;Corp&gt;: sign in with login", "organization { slug name }"} {
		if !strings.Contains(page, want) {
			t.Errorf("organization page lacks %q", want)
		}
	}
	if strings.Contains(page, "tenants(") {
		t.Error("the organization page starts with a platform query")
	}
}
