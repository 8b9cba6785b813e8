package edge

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/tenantql/tenantql/apierr"
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
		sw := &apierr.StatusRecorder{ResponseWriter: w}
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
