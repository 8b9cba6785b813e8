package edge

import (
	"net/http"
	"strings"

	"github.com/tenantql/tenantql/apierr"
)

// Headers that a browser cannot send cross-origin without a CORS preflight;
// either one, non-empty, marks a request as not forgeable by a plain form or
// <img> (Apollo Server's csrfPrevention uses the same pair).
var preflightHeaders = []string{"apollo-require-preflight", "x-apollo-operation-name"}

// Content types a cross-site <form> or a no-preflight fetch can send.
var simpleContentTypes = []string{"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}

const csrfMessage = "This operation has been blocked as a potential Cross-Site Request Forgery (CSRF). " +
	"Please either specify a 'content-type' header (with a type that is not one of " +
	"application/x-www-form-urlencoded, multipart/form-data, text/plain) or provide a non-empty value " +
	"for one of the following headers: x-apollo-operation-name, apollo-require-preflight"

// csrf applies Apollo Server's CSRF prevention to GET and POST: a request
// goes on only if a browser would have had to preflight it, that is if it
// has a Content-Type that is not one a form can send, or a non-empty
// apollo-require-preflight or x-apollo-operation-name header. A GET needs
// one too (Apollo Client sends Content-Type: application/json on GETs). It
// then requires POST bodies to be application/json (415 otherwise).
// It reports whether the request goes on.
func (g *Guard) csrf(w http.ResponseWriter, r *http.Request) bool {
	mediaType := essence(r.Header.Get("Content-Type"))
	if !preflighted(r, mediaType) {
		g.refuse(w, http.StatusBadRequest, apierr.ValidationFailed, csrfMessage)
		return false
	}
	if r.Method == http.MethodPost && mediaType != "application/json" {
		g.refuse(w, http.StatusUnsupportedMediaType, apierr.ValidationFailed,
			"POST bodies must be Content-Type: application/json (GraphQL over HTTP); multipart and form posts are not served")
		return false
	}
	return true
}

// essence returns the "type/subtype" of a Content-Type value, lower case,
// without parameters, as a browser's MIME sniffing sees it: "text/plain;
// anything" is text/plain.
func essence(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.Trim(mt, " \t\r\n"))
}

// preflighted reports whether a browser would have sent a CORS preflight
// before this request.
func preflighted(r *http.Request, mediaType string) bool {
	if mediaType != "" {
		simple := false
		for _, s := range simpleContentTypes {
			simple = simple || mediaType == s
		}
		if !simple {
			return true
		}
	}
	for _, h := range preflightHeaders {
		if r.Header.Get(h) != "" {
			return true
		}
	}
	return false
}
