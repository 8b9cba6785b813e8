package apierr

import "net/http"

// StatusRecorder remembers the status a handler wrote, for the access log
// and metrics. When Rewrite is set, the status written is Rewrite's answer
// for the one the handler asked for (the GraphQL handler turns gqlgen's
// statuses into the contract's).
type StatusRecorder struct {
	http.ResponseWriter
	Rewrite func(code int) int
	status  int
}

// Status returns the status written, 200 when the handler wrote none.
func (w *StatusRecorder) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// WriteHeader records code (rewritten) and passes it on, once.
func (w *StatusRecorder) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	if w.Rewrite != nil {
		code = w.Rewrite(code)
	}
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Write writes the status first when the handler did not, and passes b on.
func (w *StatusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and websocket upgrades reach the
// real writer.
func (w *StatusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
