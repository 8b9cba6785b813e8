package edge

import (
	"log/slog"
	"net/http"
	"time"
)

// AccessLog logs one line per request when it ends: method, path (never
// the query string, which may carry variables), host, status, duration,
// tenant (slug, "admin", or empty when the host was not routed) and
// request_id. It never logs headers, so no token reaches the log. Health
// probes (/healthz, /readyz) are logged at debug level. It must run inside
// RequestID.
func AccessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &accessRecord{}
		sw := &StatusRecorder{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(withAccessRecord(r.Context(), rec)))
		level := slog.LevelInfo
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			level = slog.LevelDebug
		}
		status := sw.Status()
		log.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("host", r.Host),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)),
			slog.String("tenant", rec.tenant),
			slog.String("request_id", RequestIDFromContext(r.Context())),
		)
	})
}

// StatusRecorder remembers the status a handler wrote.
type StatusRecorder struct {
	http.ResponseWriter
	status int
}

// Status returns the status written, 200 when the handler wrote none.
func (w *StatusRecorder) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// WriteHeader records code and passes it on.
func (w *StatusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and passes b on.
func (w *StatusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and websocket upgrades reach the
// real writer.
func (w *StatusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
