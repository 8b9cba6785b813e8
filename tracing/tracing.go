// Package tracing sets up OpenTelemetry traces: the SDK's tracer provider
// exporting over OTLP/HTTP as the standard OTEL_* variables say, the W3C
// trace context, the HTTP server span (otelhttp) and spans of SQL
// statements (otelsql) whose text carries no values. With tracing off,
// every helper hands back what it was given, so nothing is traced and
// nothing costs.
package tracing

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/XSAM/otelsql"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys tenantql puts on its spans.
const (
	TenantKey    = attribute.Key("tenant")     // the tenant's slug ("admin" on the admin host)
	RequestIDKey = attribute.Key("request_id") // the request id of the access log
)

// Options configure New.
type Options struct {
	// Exporter receives finished spans. Nil: OTLP over HTTP, configured
	// by the SDK from OTEL_EXPORTER_OTLP_ENDPOINT,
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS and
	// the other OTEL_EXPORTER_OTLP_* variables.
	Exporter sdktrace.SpanExporter
	// Synchronous exports each span as it ends (tests); otherwise spans
	// are batched as the OTEL_BSP_* variables say.
	Synchronous bool
	// ServiceName is the default of OTEL_SERVICE_NAME. Defaults to "tenantql".
	ServiceName string
}

// Tracing is the process's tracer provider; the zero value (and a nil
// *Tracing) is tracing off.
type Tracing struct {
	sdk        *sdktrace.TracerProvider
	propagator propagation.TextMapPropagator
}

// New starts tracing: spans are sampled as OTEL_TRACES_SAMPLER says
// (default: parent-based, always on), described by the resource of
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, and exported. Call
// Shutdown to flush them at exit. Returns an error when the exporter or
// the resource cannot be made.
func New(ctx context.Context, o Options) (*Tracing, error) {
	if o.ServiceName == "" {
		o.ServiceName = "tenantql"
	}
	exp := o.Exporter
	if exp == nil {
		var err error
		if exp, err = otlptracehttp.New(ctx); err != nil {
			return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
		}
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(o.ServiceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: last, so they win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	processor := sdktrace.WithBatcher(exp)
	if o.Synchronous {
		processor = sdktrace.WithSyncer(exp)
	}
	return &Tracing{
		sdk:        sdktrace.NewTracerProvider(processor, sdktrace.WithResource(res)),
		propagator: propagation.TraceContext{},
	}, nil
}

// Enabled reports whether spans are recorded.
func (t *Tracing) Enabled() bool { return t != nil && t.sdk != nil }

// Provider returns the tracer provider, or nil when tracing is off.
func (t *Tracing) Provider() trace.TracerProvider {
	if !t.Enabled() {
		return nil
	}
	return t.sdk
}

// Shutdown exports the spans still buffered and stops the provider.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

// Handler wraps next in a server span per request (otelhttp), named
// "METHOD route", continuing the W3C traceparent of the request; inner
// handlers add attributes with Annotate. The URL's query string, headers
// and bodies are never recorded. With tracing off it returns next.
func (t *Tracing) Handler(next http.Handler) http.Handler {
	if !t.Enabled() {
		return next
	}
	return otelhttp.NewHandler(next, "http",
		otelhttp.WithTracerProvider(t.sdk),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithPropagators(t.propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + route(r.URL.Path) }),
	)
}

// route is a low-cardinality name of path for span names.
func route(path string) string {
	switch {
	case path == "/graphql", path == "/healthz", path == "/readyz", path == "/metrics", path == "/":
		return path
	case strings.HasPrefix(path, "/app/"):
		return "/app/"
	case strings.HasPrefix(path, "/playground/"):
		return "/playground/"
	}
	return "other"
}

// Annotate adds attributes to the span of ctx (none when tracing is off).
func Annotate(ctx context.Context, attrs ...attribute.KeyValue) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attrs...)
	}
}

// OpenDB returns a database handle on c whose statements are spans of tp
// (otelsql): named by the statement's first keyword, with its text in
// db.query.text after Statement removed every literal; arguments are never
// recorded. Statements run outside any span (background work: polling,
// leases, flushes) make none. With tp nil it is sql.OpenDB(c).
func OpenDB(c driver.Connector, tp trace.TracerProvider) *sql.DB {
	if tp == nil {
		return sql.OpenDB(c)
	}
	return otelsql.OpenDB(c,
		otelsql.WithTracerProvider(tp),
		otelsql.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelsql.WithAttributes(semconv.DBSystemNamePostgreSQL),
		otelsql.WithSpanNameFormatter(func(_ context.Context, method otelsql.Method, query string) string {
			if kw, _, _ := strings.Cut(strings.TrimSpace(query), " "); kw != "" {
				return strings.ToUpper(kw)
			}
			return string(method)
		}),
		otelsql.WithSpanOptions(otelsql.SpanOptions{
			DisableQuery:         true, // recorded by the getter below, without literals
			DisableErrSkip:       true,
			OmitRows:             true,
			OmitConnResetSession: true,
			SpanFilter: func(ctx context.Context, _ otelsql.Method, _ string, _ []driver.NamedValue) bool {
				return trace.SpanContextFromContext(ctx).IsValid()
			},
		}),
		otelsql.WithAttributesGetter(func(_ context.Context, _ otelsql.Method, query string, _ []driver.NamedValue) []attribute.KeyValue {
			if query == "" {
				return nil
			}
			return []attribute.KeyValue{semconv.DBQueryText(Statement(query))}
		}),
	)
}

// Statement returns SQL text with every literal replaced by '?': quoted
// strings ('…', E'…' with backslash escapes) and dollar-quoted ones
// ($tag$…$tag$). Placeholders ($1) and identifiers ("…") stay. tenantql
// sends values as placeholders; the literals left are in DDL, where a
// role's password verifier is one, and in migrations.
func Statement(q string) string {
	var b strings.Builder
	b.Grow(len(q))
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'':
			backslash := i > 0 && (q[i-1] == 'E' || q[i-1] == 'e') && (i < 2 || !isIdent(q[i-2]))
			i = skipQuoted(q, i+1, backslash)
			b.WriteString("'?'")
		case c == '$' && (i == 0 || !isIdent(q[i-1])):
			if end := strings.IndexByte(q[i+1:], '$'); end >= 0 && validTag(q[i+1:i+1+end]) {
				tag := q[i : i+end+2]
				if close := strings.Index(q[i+len(tag):], tag); close >= 0 {
					i += len(tag) + close + len(tag)
				} else {
					i = len(q)
				}
				b.WriteString("'?'")
				continue
			}
			b.WriteByte(c)
			i++
		case c == '"':
			end := strings.IndexByte(q[i+1:], '"')
			if end < 0 {
				b.WriteString(q[i:])
				i = len(q)
				continue
			}
			b.WriteString(q[i : i+end+2])
			i += end + 2
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// skipQuoted returns the index after the quote closing the string whose
// text starts at i (” is a quote inside; with backslash, \' is too).
func skipQuoted(q string, i int, backslash bool) int {
	for i < len(q) {
		switch q[i] {
		case '\\':
			if backslash {
				i += 2
				continue
			}
		case '\'':
			if i+1 < len(q) && q[i+1] == '\'' {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return len(q)
}

// validTag reports whether s can be the tag of a dollar quote: empty, or
// an identifier not starting with a digit ($1 is a placeholder).
func validTag(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isIdent(s[i]) || (i == 0 && s[i] >= '0' && s[i] <= '9') {
			return false
		}
	}
	return true
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
