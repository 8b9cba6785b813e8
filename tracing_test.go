package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// newTracedTestApp is newTestApp with traces on, exported to exp as each
// span ends.
func newTracedTestApp(t *testing.T, exp sdktrace.SpanExporter) *testApp {
	t.Helper()
	cfg, prefix := testConfig(t, map[string]string{"SPARE_TENANTS": "0"})
	cfg.Tracing.exporter = exp
	return startTestApp(t, cfg, prefix, true)
}

// spanAttrs returns a span's attributes by key.
func spanAttrs(s tracetest.SpanStub) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value.Emit()
	}
	return m
}

// TestTraces: with tracing on, a GraphQL request continues the caller's
// W3C traceparent in a server span with the tenant and the request id; the
// operation is its child, named by type and name; SQL statements are
// children of the operation with their text and no values; provisioning
// is a job span with a span per step. No variable, token, password or
// password verifier is in any span.
func TestTraces(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	ta := newTracedTestApp(t, exp)
	ta.createTenant(t, "traced", false)

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	body, _ := json.Marshal(map[string]any{
		"query":     `mutation SignIn($e: String!, $p: String!) { login(email: $e, password: $p) { token } }`,
		"variables": map[string]any{"e": "owner@traced.test", "p": "password-traced"},
	})
	req, _ := http.NewRequest("POST", ta.srv.URL+"/graphql", bytes.NewReader(body))
	req.Host = "traced.example.test"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	r := mustOK(t, ta.send(t, req))
	token, _ := field(r.Data, "login", "token").(string)
	requestID := r.Header.Get("X-Request-Id")
	mustOK(t, ta.do(t, "traced.example.test", token, `query Me { viewer { name } }`, nil))

	spans := exp.GetSpans()
	byID := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID().String()] = s
	}
	find := func(name string, ok func(tracetest.SpanStub) bool) tracetest.SpanStub {
		t.Helper()
		for _, s := range spans {
			if s.Name == name && (ok == nil || ok(s)) {
				return s
			}
		}
		var names []string
		for _, s := range spans {
			names = append(names, s.Name)
		}
		t.Fatalf("no span %q among %v", name, names)
		return tracetest.SpanStub{}
	}

	// the request: the caller's trace continued, with tenant and request id
	server := find("POST /graphql", func(s tracetest.SpanStub) bool { return s.SpanContext.TraceID().String() == traceID })
	if got := server.Parent.SpanID().String(); got != parentID {
		t.Errorf("server span's parent %s, want the traceparent's %s", got, parentID)
	}
	if a := spanAttrs(server); a["tenant"] != "traced" || a["request_id"] != requestID || requestID == "" {
		t.Errorf("server span attributes %v, want tenant traced and request_id %q", a, requestID)
	}
	// the operation, its child
	op := find("mutation SignIn", nil)
	if op.Parent.SpanID() != server.SpanContext.SpanID() {
		t.Errorf("operation span is not the request's child")
	}
	if a := spanAttrs(op); a["graphql.operation.type"] != "mutation" || a["graphql.operation.name"] != "SignIn" ||
		a["tenant"] != "traced" || a["request_id"] != requestID {
		t.Errorf("operation span attributes %v", a)
	}
	// its SQL, with placeholders
	var sqlTexts []string
	for _, s := range spans {
		if s.Parent.SpanID() == op.SpanContext.SpanID() {
			if q := spanAttrs(s)["db.query.text"]; q != "" {
				sqlTexts = append(sqlTexts, q)
			}
		}
	}
	if !strings.Contains(strings.Join(sqlTexts, "\n"), "FROM users") || !strings.Contains(strings.Join(sqlTexts, "\n"), "$1") {
		t.Errorf("SQL under the operation: %q, want the user lookup with its placeholder", sqlTexts)
	}
	admin := find("mutation", func(s tracetest.SpanStub) bool { return spanAttrs(s)["tenant"] == "admin" })
	if admin.Parent.SpanID() == ([8]byte{}) {
		t.Errorf("the admin host's createTenant operation has no request span")
	}
	me := find("query Me", nil)
	if me.SpanContext.TraceID().String() == traceID {
		t.Errorf("a request without traceparent joined another trace")
	}

	// provisioning: a job span, a span per step
	job := find("tenant.job provisioning", func(s tracetest.SpanStub) bool { return spanAttrs(s)["tenant"] == "traced" })
	var steps []string
	for _, s := range spans {
		if s.Parent.SpanID() == job.SpanContext.SpanID() && strings.HasPrefix(s.Name, "tenant.step ") {
			steps = append(steps, strings.TrimPrefix(s.Name, "tenant.step "))
		}
	}
	if want := "create.spare create.role create.database create.privileges create.migrate create.owner"; strings.Join(steps, " ") != want {
		t.Errorf("steps of the job %q, want %q", steps, want)
	}
	role := find("CREATE", func(s tracetest.SpanStub) bool {
		return strings.HasPrefix(spanAttrs(s)["db.query.text"], "CREATE ROLE")
	})
	if q := spanAttrs(role)["db.query.text"]; !strings.HasSuffix(q, "PASSWORD '?'") {
		t.Errorf("CREATE ROLE as traced: %q", q)
	}

	// nothing secret anywhere
	secrets := []string{"owner@traced.test", "password-traced", token, testAdminToken, "SCRAM-SHA-256", "password="}
	for _, s := range spans {
		text := s.Name + fmt.Sprint(s.Attributes) + fmt.Sprint(s.Events) + s.Status.Description
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("span %q holds %q: %s", s.Name, secret, text)
			}
		}
	}
}

// TestTracingConfig: the standard OTEL_* variables turn tracing on; a
// protocol or exporter tenantql does not ship is refused at start.
func TestTracingConfig(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		enabled bool
		err     bool
	}{
		{map[string]string{}, false, false},
		{map[string]string{"OTEL_SERVICE_NAME": "x"}, false, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true, false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, false, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, false, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, true, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, true},
	} {
		c, err := loadTracingConfig(func(k string) string { return tc.env[k] })
		if (err != nil) != tc.err || c.Enabled != tc.enabled {
			t.Errorf("%v: enabled %v, err %v; want enabled %v, error %v", tc.env, c.Enabled, err, tc.enabled, tc.err)
		}
	}
}
