package tenancy

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/tenantql/tenantql/pgerr"
)

// HistoryKept is how many step events the control database keeps per
// tenant: recording one drops the older ones.
const HistoryKept = 50

// TenantEvent is one step of a tenant's provisioning, lifecycle change,
// deletion or migration, as recorded in its history.
type TenantEvent struct {
	At       time.Time     `db:"at"`   // when the step ended
	Step     string        `db:"step"` // "create.role", "suspend.status", "upgrade.migrate", …
	Outcome  string        `db:"outcome"`
	Duration time.Duration `db:"-"`
	// Error is the failure as lastError shows it (the step and its kind,
	// never SQL text or credentials); "" when the step succeeded.
	Error string `db:"error"`
}

// stepEvent reports one step of a tenant operation: its log line
// (logStep) and its row in the tenant's history. The history is best
// effort: a failure to record is logged and never fails the step.
func (r *Registry) stepEvent(ctx context.Context, log *slog.Logger, t *Tenant, step string, start time.Time, err error, extra ...slog.Attr) {
	logStep(ctx, log, t, step, start, err, extra...)
	if t.ID == uuid.Nil {
		return // a status change of a tenant that was not found
	}
	end := time.Now()
	outcome, public := OutcomeOK, ""
	if err != nil {
		outcome, public = OutcomeError, publicError(inStep(step, err))
	}
	// a step that ends as the process stops is still recorded
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// The insert and the trim are one statement: the trim does not see the
	// new row, so it keeps HistoryKept-1 of the others.
	const q = `WITH added AS (
			INSERT INTO tenant_events (tenant_id, at, step, outcome, duration_ms, error)
			VALUES ($1, $2, $3, $4, $5, NULLIF($6, '')) RETURNING id)
		DELETE FROM tenant_events WHERE tenant_id = $1 AND id < (
			SELECT id FROM tenant_events WHERE tenant_id = $1 ORDER BY id DESC OFFSET $7 LIMIT 1)`
	_, dbErr := r.db.ExecContext(ctx, q, t.ID, end, step, outcome, float64(end.Sub(start).Microseconds())/1000, public, HistoryKept-2)
	if code, _ := pgerr.Constraint(dbErr); dbErr != nil && code != "23503" { // 23503: the tenant's row is gone (purged)
		r.log.Warn("record tenant step", "tenant", t.Slug, "step", step, "err", dbError("record step", dbErr))
	}
}

// History returns the last (1 to HistoryKept) step events of the tenant
// with id, newest first; none for a tenant without any. Returns
// ErrInvalidInput for another last.
func (r *Registry) History(ctx context.Context, id uuid.UUID, last int) ([]TenantEvent, error) {
	if last < 1 || last > HistoryKept {
		return nil, invalid("last must be between 1 and %d", HistoryKept)
	}
	const q = `SELECT at, step, outcome, duration_ms, coalesce(error, '') AS error
		FROM tenant_events WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2`
	var rows []struct {
		TenantEvent
		DurationMs float64 `db:"duration_ms"`
	}
	if err := r.db.SelectContext(ctx, &rows, q, id, last); err != nil {
		return nil, dbError("tenant history", err)
	}
	out := make([]TenantEvent, len(rows))
	for i, row := range rows {
		out[i] = row.TenantEvent
		out[i].At = out[i].At.UTC()
		out[i].Duration = time.Duration(row.DurationMs * float64(time.Millisecond))
	}
	return out, nil
}
