// Package webapp serves the example single-page app at /app/: an
// organization's issue board on tenant hosts and the operator console on
// the admin host (the app tells them apart at run time).
//
// The app is built from ../web with Vite; web/build.sh writes the output to
// dist/, which is committed and embedded, so `go build` needs no Node.
// web/check-build.sh fails when dist/ does not match the sources.
package webapp

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/tenantql/tenantql/static"
)

// Prefix is the URL path the app lives under; Vite builds it with
// `base: '/app/'`, so every asset URL in index.html starts with it.
const Prefix = "/app/"

// Cache policies. Files under assets/ carry a content hash in their names,
// so they never change; index.html names the current ones and is always
// revalidated; other files (the favicon) keep their names across builds.
const (
	hashedCacheControl = "public, max-age=31536000, immutable"
	fileCacheControl   = "public, max-age=3600"
	pageCacheControl   = "no-cache"
	hashedDir          = "assets/"
)

// pageCSP is the Content-Security-Policy of the app's page: scripts, styles
// and requests (including the subscription websocket, which 'self' covers)
// stay on the page's own origin; no inline script or style.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

//go:embed dist
var dist embed.FS

// file is one embedded file, ready to serve.
type file struct {
	body         []byte
	gz           []byte // gzip copy, nil when not worth it
	etag, gzEtag string
	contentType  string
	cacheControl string
}

// server serves the embedded build.
type server struct {
	files map[string]*file // by path below Prefix: "index.html", "assets/index-Ab12.js"
}

// Handler serves the app for GET and HEAD under Prefix (other methods get
// 405); mount it at Prefix.
//
//   - Prefix itself, and any path below it whose last segment has no file
//     extension and names no file (client-side routes such as
//     /app/p/WEB/WEB-12), get index.html with Cache-Control no-cache and a
//     strict Content-Security-Policy.
//   - Files of the build are served with their media type, a strong ETag and
//     X-Content-Type-Options: nosniff; those under assets/ (content-hashed
//     names) with Cache-Control "public, max-age=31536000, immutable",
//     others for an hour. Text files go gzipped to clients that accept it.
//   - Anything else (such as a hashed asset of an older build) is 404.
//
// It panics if the embedded build has no index.html, which `go test
// ./webapp` reports first.
func Handler() http.Handler {
	root, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("webapp: embedded build: " + err.Error())
	}
	s := &server{files: map[string]*file{}}
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		s.files[name] = newFile(name, body)
		return nil
	})
	if err != nil {
		panic("webapp: embedded build: " + err.Error())
	}
	if s.files["index.html"] == nil {
		panic("webapp: embedded build has no index.html: run web/build.sh")
	}
	return s
}

func newFile(name string, body []byte) *file {
	f := &file{body: body, etag: static.ETag(body), contentType: static.ContentType(name), cacheControl: fileCacheControl}
	switch {
	case name == "index.html":
		f.cacheControl = pageCacheControl
	case strings.HasPrefix(name, hashedDir):
		f.cacheControl = hashedCacheControl
	}
	if static.Compressible(name) && len(body) > 1024 {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if buf.Len() < len(body)*9/10 {
			f.gz = buf.Bytes()
			f.gzEtag = static.ETag(f.gz)
		}
	}
	return f
}

// ServeHTTP answers one request below Prefix.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, found := s.files[name]
	switch {
	case name == "" || name == "index.html":
		s.serve(w, r, "index.html", s.files["index.html"])
	case found:
		s.serve(w, r, name, f)
	case path.Ext(path.Base(name)) == "":
		s.serve(w, r, "index.html", s.files["index.html"]) // a client-side route
	default:
		w.Header().Set("Cache-Control", "no-store")
		http.NotFound(w, r)
	}
}

func (s *server) serve(w http.ResponseWriter, r *http.Request, name string, f *file) {
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", f.cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	if name == "index.html" {
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
	}
	body, tag := f.body, f.etag
	if f.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if static.AcceptsGzip(r.Header.Get("Accept-Encoding")) {
			body, tag = f.gz, f.gzEtag
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", tag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}
