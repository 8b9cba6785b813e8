// Package playground serves a GraphQL IDE (GraphiQL) for a host's API.
//
// Everything the page loads is embedded in the binary and served by Assets
// under AssetPrefix, so the IDE works with no internet access and under a
// strict Content-Security-Policy. The vendored bundles in assets/vendor are
// built from pinned npm packages by build.sh; `go build` needs no Node.
package playground

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"time"
)

// AssetPrefix is the URL path under which Assets serves the IDE's static
// files. The page references every script and stylesheet by an absolute path
// under it, so the server must mount Assets at exactly this prefix.
const AssetPrefix = "/_playground/"

// welcomeQuery fills the query editor when Handler is given no default
// query. It names no field, so it is valid against any schema.
const welcomeQuery = "# Welcome to tenantql\n#\n# Type a query here and press Ctrl-Enter to run it.\n# Put your token in the Headers tab below: {\"Authorization\": \"Bearer ...\"}\n"

// pageCSP is the Content-Security-Policy of the IDE page. Scripts, styles,
// fonts and requests stay on the page's own origin ('self' covers ws:// and
// wss:// to the same host); GraphiQL sets inline styles and embeds its fonts
// and icons as data: URLs.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed assets
var assets embed.FS

// pageData is what assets/index.html is rendered with.
type pageData struct {
	Title        string
	Endpoint     string
	DefaultQuery string
	Prefix       string
}

// Handler serves the IDE page for GET and HEAD; other methods get 405.
//
// endpoint is the path of the GraphQL API on the same origin ("/graphql"):
// the page sends queries and mutations there over HTTP and opens
// subscriptions on the same path over ws:// or wss://, following the page's
// own scheme. title is shown in the browser tab (e.g. "tenantql — acme").
// defaultQuery fills the query editor the first time a browser opens the IDE
// on this host (GraphiQL keeps the user's tabs in local storage afterwards);
// if empty, a welcome comment that names no field is shown. All three are
// HTML-escaped.
//
// The page is rendered once, here. It panics only if the embedded template
// is broken, which the package's tests catch.
func Handler(title, endpoint, defaultQuery string) http.Handler {
	if defaultQuery == "" {
		defaultQuery = welcomeQuery
	}
	tmpl := template.Must(template.ParseFS(assets, "assets/index.html"))
	var body bytes.Buffer
	err := tmpl.Execute(&body, pageData{
		Title:        title,
		Endpoint:     endpoint,
		DefaultQuery: defaultQuery,
		Prefix:       AssetPrefix,
	})
	if err != nil {
		panic("playground: rendering the page: " + err.Error())
	}
	return page(body.Bytes())
}

// page is the rendered IDE page.
type page []byte

// ServeHTTP writes the page with headers that keep it fresh and confined to
// its own origin.
func (p page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(p))
}
