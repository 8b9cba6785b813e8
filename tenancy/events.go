package tenancy

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Outcomes of a step in its event line and its history (TenantEvent).
const (
	OutcomeOK    = "ok"
	OutcomeError = "error"
)

// logStep writes the event line of one step of a tenant operation
// (provisioning, deletion, migration): one line per step at info level,
// with the tenant's slug and id, the step ("create.role", "delete.database",
// "upgrade.migrate"), its duration in milliseconds and its outcome ("ok" or
// "error", then with the error). The error may hold SQL error text, never a
// password or connection string (dbError and the steps keep those out).
//
// Inside a recording span (the provisioner's job span) the step is also a
// span, "tenant.step <step>", from start to now, with the tenant and the
// step; a failed step has the error status with publicError's words.
func logStep(ctx context.Context, log *slog.Logger, t *Tenant, step string, start time.Time, err error, extra ...slog.Attr) {
	if parent := trace.SpanFromContext(ctx); parent.IsRecording() {
		_, span := parent.TracerProvider().Tracer(tracerName).Start(ctx, "tenant.step "+step,
			trace.WithTimestamp(start),
			trace.WithAttributes(attribute.String("tenant", t.Slug), attribute.String("tenant.step", step)))
		if err != nil {
			span.SetStatus(codes.Error, publicError(err))
		}
		span.End()
	}
	attrs := make([]slog.Attr, 0, 6+len(extra))
	attrs = append(attrs,
		slog.String("tenant", t.Slug),
		slog.String("tenant_id", t.ID.String()),
		slog.String("step", step),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
	)
	if err != nil {
		attrs = append(attrs, slog.String("outcome", OutcomeError), slog.String("err", err.Error()))
	} else {
		attrs = append(attrs, slog.String("outcome", OutcomeOK))
	}
	attrs = append(attrs, extra...)
	log.LogAttrs(ctx, slog.LevelInfo, "tenant step", attrs...)
}

// tracerName names tenancy's spans.
const tracerName = "github.com/tenantql/tenantql/tenancy"

// traceJob starts the span of one provisioner job when tracing is on:
// "tenant.job provisioning" (or deleting, …), with the tenant's id, its
// status and the attempt; the steps' spans are its children. end records
// the job's outcome and ends the span.
func (p *Provisioner) traceJob(ctx context.Context, j job) (_ context.Context, end func(error)) {
	if p.opts.TracerProvider == nil {
		return ctx, func(error) {}
	}
	ctx, span := p.opts.TracerProvider.Tracer(tracerName).Start(ctx, "tenant.job "+strings.ToLower(j.Status),
		trace.WithNewRoot(), // background work: a trace of its own
		trace.WithAttributes(attribute.String("tenant_id", j.ID.String()), attribute.String("tenant.status", j.Status),
			attribute.Int("tenant.attempt", j.Attempts+1)))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, publicError(err))
		}
		span.End()
	}
}

// addTenantToSpan puts the tenant's slug on the span of ctx, if recording.
func addTenantToSpan(ctx context.Context, t *Tenant) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String("tenant", t.Slug))
	}
}

// logStatusStep writes the event line of a status change made by the
// Registry (setStatus): "<op>.status", where op is the lifecycle
// operation, or "purge" (to DELETING) and "retry" (to PROVISIONING) for
// the changes that have none.
func (r *Registry) logStatusStep(ctx context.Context, op, slug string, to Status, start time.Time, t *Tenant, err error) {
	if op == "" {
		switch to {
		case StatusDeleting:
			op = "purge"
		case StatusProvisioning:
			op = "retry"
		default:
			op = strings.ToLower(string(to))
		}
	}
	if t == nil {
		t = &Tenant{Slug: slug}
	}
	r.stepEvent(ctx, r.log, t, op+".status", start, err)
}
