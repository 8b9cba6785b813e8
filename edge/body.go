package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/tenantql/tenantql/apierr"
)

// readBody reads a POST body through http.MaxBytesReader and checks its
// shape before gqlgen sees it: over MaxBodyBytes is 413, a JSON array
// (batched operations) or anything but one JSON object is 400. The body is
// put back for the transport. It reports whether the request goes on.
func (g *Guard) readBody(w http.ResponseWriter, r *http.Request) bool {
	tooLarge := func() bool {
		g.refuse(w, http.StatusRequestEntityTooLarge, apierr.QueryTooComplex,
			fmt.Sprintf("request body exceeds the limit of %d bytes", g.o.MaxBodyBytes))
		return false
	}
	if r.ContentLength > g.o.MaxBodyBytes {
		return tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.o.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge()
		}
		g.refuse(w, http.StatusBadRequest, apierr.ValidationFailed, "could not read the request body")
		return false
	}
	switch trimmed := bytes.TrimLeft(body, " \t\r\n"); {
	case len(trimmed) > 0 && trimmed[0] == '[':
		g.refuse(w, http.StatusBadRequest, apierr.ValidationFailed,
			"batched operations (a JSON array body) are not supported: send one operation per request")
		return false
	case len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed):
		g.refuse(w, http.StatusBadRequest, apierr.ValidationFailed,
			`the request body must be one JSON object: {"query": "...", "variables": {...}}`)
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return true
}
