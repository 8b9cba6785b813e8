package playground

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// assetCacheControl lets browsers and proxies keep assets for a day. The
// vendored bundles live in versioned directories, so an upgrade changes
// their URLs.
const assetCacheControl = "public, max-age=86400"

// assetServer serves the files under assets/.
type assetServer struct {
	files fs.FS
	etags map[string]string // every regular file, .gz copies included
}

// Assets serves the IDE's static files under the URL prefix AssetPrefix, for
// GET and HEAD (other methods get 405). Anything else under the prefix,
// including the page template itself and the directories, is 404.
//
// Every file is served with Cache-Control "public, max-age=86400", a strong
// ETag and X-Content-Type-Options: nosniff. Where build.sh stored a gzip copy
// (the vendored bundles), clients that accept gzip get it with
// Content-Encoding: gzip, and the response varies on Accept-Encoding.
func Assets() http.Handler {
	files, err := fs.Sub(assets, "assets")
	if err != nil {
		panic("playground: embedded assets: " + err.Error())
	}
	s := &assetServer{files: files, etags: map[string]string{}}
	err = fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		s.etags[name] = `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
		return nil
	})
	if err != nil {
		panic("playground: embedded assets: " + err.Error())
	}
	return s
}

// ServeHTTP serves one asset, or its gzip copy when the client accepts it.
func (s *assetServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, AssetPrefix)
	if !ok || !s.servable(name) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType(name))
	h.Set("Cache-Control", assetCacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	file := name
	if _, ok := s.etags[name+".gz"]; ok {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			file = name + ".gz"
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", s.etags[file])
	f, err := s.files.Open(file)
	if err != nil {
		http.Error(w, "asset unreadable", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	http.ServeContent(w, r, name, time.Time{}, f.(io.ReadSeeker))
}

// servable reports whether name is an asset clients may request by its own
// name: a regular file other than the page template and the gzip copies.
func (s *assetServer) servable(name string) bool {
	if !fs.ValidPath(name) || name == "index.html" || strings.HasSuffix(name, ".gz") {
		return false
	}
	_, ok := s.etags[name]
	return ok
}

// contentType returns the media type for name's extension, independent of
// the machine's MIME tables. Defaults to application/octet-stream.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// acceptsGzip reports whether an Accept-Encoding header value allows gzip:
// named with a non-zero quality, or, when gzip is not named, "*" with a
// non-zero quality.
func acceptsGzip(header string) bool {
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

// quality returns the q parameter of an Accept-Encoding element's
// parameters. Defaults to 1; an unparsable value counts as 0.
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
