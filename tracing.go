package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tenantql/tenantql/edge"
	"github.com/tenantql/tenantql/tenancy"
	"github.com/tenantql/tenantql/tracing"
)

// TracingConfig is what tenantql reads of the standard OTEL_* variables.
// Tracing is on when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT
// or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or OTEL_TRACES_EXPORTER is
// "otlp", unless OTEL_SDK_DISABLED is "true" or OTEL_TRACES_EXPORTER is
// "none". The SDK itself reads the rest: headers, timeouts, sampler
// (OTEL_TRACES_SAMPLER), batching (OTEL_BSP_*), OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES.
type TracingConfig struct {
	Enabled bool
	// exporter replaces the OTLP exporter and exports each span as it
	// ends (tests only).
	exporter sdktrace.SpanExporter
}

func loadTracingConfig(getenv func(string) string) (TracingConfig, error) {
	var c TracingConfig
	exporter := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	endpoint := getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	switch {
	case strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true"), exporter == "none":
		return c, nil
	case exporter != "" && exporter != "otlp":
		return c, fmt.Errorf("OTEL_TRACES_EXPORTER: only otlp (or none) is supported, got %q", exporter)
	}
	c.Enabled = endpoint || exporter == "otlp"
	if !c.Enabled {
		return c, nil
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := getenv(k); p != "" {
			if p != "http/protobuf" {
				return TracingConfig{}, fmt.Errorf("%s: only http/protobuf is supported, got %q", k, p)
			}
			break
		}
	}
	return c, nil
}

// startTracing makes the process's tracer provider (off: a nil Tracing,
// whose helpers change nothing).
func (a *app) startTracing(ctx context.Context) error {
	c := a.cfg.Tracing
	if c.exporter == nil && !c.Enabled {
		return nil
	}
	t, err := tracing.New(ctx, tracing.Options{Exporter: c.exporter, Synchronous: c.exporter != nil})
	if err != nil {
		return err
	}
	a.tracing = t
	return nil
}

// openControl opens the control database; its statements are traced.
func (a *app) openControl() (*sqlx.DB, error) {
	c, err := pq.NewConnector(a.controlURL)
	if err != nil {
		return nil, fmt.Errorf("open control database: %w", err)
	}
	return sqlx.NewDb(tracing.OpenDB(c, a.tracing.Provider()), "postgres"), nil
}

// traced puts next in a span per request (tracing.Handler) that carries
// the request id and the tenant of the host (its slug, "admin" on the
// admin host), looked up in the routing table in memory. It must run
// inside edge.RequestID. With tracing off it returns next.
func (a *app) traced(next http.Handler) http.Handler {
	if !a.tracing.Enabled() {
		return next
	}
	return a.tracing.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		tracing.Annotate(ctx, tracing.RequestIDKey.String(edge.RequestIDFromContext(ctx)))
		host, _ := tenancy.RequestHost(r, a.cfg.TrustProxy)
		if kind, _ := a.hosts.Classify(host); kind == tenancy.HostAdmin {
			tracing.Annotate(ctx, tracing.TenantKey.String("admin"))
		} else if t, err := a.registry.Route(a.hosts, host); err == nil {
			tracing.Annotate(ctx, tracing.TenantKey.String(t.Slug))
		}
		next.ServeHTTP(w, r)
	}))
}
