package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkTracingOverhead is BenchmarkIssuesQuery with traces off and on
// (OTLP over HTTP to a local collector that discards them, every span
// exported: a large queue, flushed every 100 ms). Besides the time per
// request it reports the process's CPU per request (cpu-µs/op: user and
// system time of this process, server and client; PostgreSQL runs in
// another process) and, with traces on, the OTLP bytes sent per request.
func BenchmarkTracingOverhead(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			env := map[string]string{}
			var sent atomic.Int64
			if on {
				sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					n, _ := io.Copy(io.Discard, r.Body)
					sent.Add(n)
					w.Header().Set("Content-Type", "application/x-protobuf")
				}))
				defer sink.Close()
				for k, v := range map[string]string{
					"OTEL_EXPORTER_OTLP_ENDPOINT": sink.URL,
					"OTEL_BSP_SCHEDULE_DELAY":     "100",
					"OTEL_BSP_MAX_QUEUE_SIZE":     "100000",
				} {
					b.Setenv(k, v) // the SDK reads them from the process
					env[k] = v
				}
			}
			ta := newTestApp(b, env)
			ta.createTenant(b, "bench", true)
			owner := ta.owner(b, "bench")
			vars := map[string]any{"n": 20}
			if r := owner.must(b, nestedIssuesQuery, vars); len(nodes(r, "issues")) != 20 {
				b.Fatalf("want 20 issues: %s", r.Raw)
			}
			time.Sleep(200 * time.Millisecond) // the set-up's spans leave
			sent.Store(0)
			b.ReportAllocs()
			before := cpuTime(b)
			for b.Loop() {
				if r := owner.do(b, nestedIssuesQuery, vars); len(r.Errors) > 0 || r.Data == nil {
					b.Fatalf("query failed: %s", r.Raw)
				}
			}
			b.ReportMetric(float64((cpuTime(b)-before).Microseconds())/float64(b.N), "cpu-µs/op")
			if on {
				time.Sleep(300 * time.Millisecond) // the last batch
				b.ReportMetric(float64(sent.Load())/float64(b.N), "otlp-bytes/op")
			}
		})
	}
}

// cpuTime is the CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
