package playground

import (
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/tenantql/tenantql/static"
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
		s.etags[name] = static.ETag(data)
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
	h.Set("Content-Type", static.ContentType(name))
	h.Set("Cache-Control", assetCacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	file := name
	if _, ok := s.etags[name+".gz"]; ok {
		h.Add("Vary", "Accept-Encoding")
		if static.AcceptsGzip(r.Header.Get("Accept-Encoding")) {
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
