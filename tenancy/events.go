package tenancy

import (
	"context"
	"log/slog"
	"time"
)

// Outcomes of a step in its event line.
const (
	outcomeOK    = "ok"
	outcomeError = "error"
)

// logStep writes the event line of one step of a tenant operation
// (provisioning, deletion, migration): one line per step at info level,
// with the tenant's slug and id, the step ("create.role", "delete.database",
// "upgrade.migrate"), its duration in milliseconds and its outcome ("ok" or
// "error", then with the error). The error may hold SQL error text, never a
// password or connection string (dbError and the steps keep those out).
func logStep(ctx context.Context, log *slog.Logger, t *Tenant, step string, start time.Time, err error, extra ...slog.Attr) {
	attrs := make([]slog.Attr, 0, 6+len(extra))
	attrs = append(attrs,
		slog.String("tenant", t.Slug),
		slog.String("tenant_id", t.ID.String()),
		slog.String("step", step),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
	)
	if err != nil {
		attrs = append(attrs, slog.String("outcome", outcomeError), slog.String("err", err.Error()))
	} else {
		attrs = append(attrs, slog.String("outcome", outcomeOK))
	}
	attrs = append(attrs, extra...)
	log.LogAttrs(ctx, slog.LevelInfo, "tenant step", attrs...)
}
