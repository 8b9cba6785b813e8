// Package metrics defines tenantql's Prometheus metrics on a registry of
// its own (no global state) and the HTTP middleware that records requests.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tenantql/tenantql/apierr"
)

// Metrics holds every collector; create one with New.
type Metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	poolsOpen    prometheus.Gauge
	poolEvicted  prometheus.Counter
	poolClosed   prometheus.Counter
	connsOpen    prometheus.Gauge
	connWait     prometheus.Histogram
	connTimeouts prometheus.Counter
	dbCreated    *prometheus.CounterVec
	connReclaim  prometheus.Counter
	sparesReady  prometheus.Gauge
	replicas     prometheus.Gauge
	tenantCap    prometheus.Gauge

	probeFailures *prometheus.CounterVec
}

// New registers tenantql's collectors plus the Go and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenantql_http_requests_total", Help: "HTTP requests by kind of host, path and status code.",
	}, []string{"host_kind", "path", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tenantql_http_request_duration_seconds", Help: "HTTP request latency.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"host_kind", "path"})
	m.poolsOpen = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tenantql_tenant_pools_open", Help: "Tenant connection pools currently open."})
	m.poolEvicted = prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantql_tenant_pool_evictions_total", Help: "Tenant pools closed as least recently used."})
	m.poolClosed = prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantql_tenant_pool_closes_total", Help: "Tenant pools closed because the tenant was suspended, deleted or stopped."})
	m.connsOpen = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tenantql_tenant_connections_open", Help: "PostgreSQL connections held by all tenant pools, on every database server (bounded by MAX_DB_CONNECTIONS per server)."})
	m.connWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "tenantql_tenant_connection_wait_seconds", Help: "Wait for a slot of the global connection budget.",
		Buckets: []float64{0, .001, .005, .01, .05, .1, .5, 1, 3},
	})
	m.connTimeouts = prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantql_tenant_connection_wait_timeouts_total", Help: "Requests that got no connection slot in time."})
	m.dbCreated = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenantql_tenant_databases_created_total", Help: "Tenant databases made, by source: spare, template or template0.",
	}, []string{"source"})
	m.sparesReady = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tenantql_spare_databases_ready", Help: "Spare tenant databases ready to be claimed (as last counted by this process's refill)."})
	m.connReclaim = prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantql_tenant_connections_reclaimed_total", Help: "Idle tenant connections closed to give their slot to another tenant."})
	m.replicas = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tenantql_replicas", Help: "Live server processes on this control database, as last counted by this one."})
	m.tenantCap = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tenantql_tenant_pool_max_connections", Help: "Most connections one tenant's pool may open: MAX_DB_CONNECTIONS_PER_TENANT, or less to share the tenant role's CONNECTION LIMIT among the replicas."})
	m.probeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenantql_database_server_probe_failures_total", Help: "Probes of a database server (by this process) that got no answer.",
	}, []string{"server"})
	m.reg.MustRegister(m.requests, m.duration, m.poolsOpen, m.poolEvicted, m.poolClosed, m.connsOpen, m.connWait, m.connTimeouts,
		m.dbCreated, m.sparesReady, m.connReclaim, m.replicas, m.tenantCap, m.probeFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Register adds more collectors (e.g. gauges computed at scrape time).
func (m *Metrics) Register(c prometheus.Collector) { m.reg.MustRegister(c) }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// PoolOpened implements tenancy.PoolMetrics.
func (m *Metrics) PoolOpened() { m.poolsOpen.Inc() }

// PoolClosed implements tenancy.PoolMetrics.
func (m *Metrics) PoolClosed(evicted bool) {
	m.poolsOpen.Dec()
	if evicted {
		m.poolEvicted.Inc()
	} else {
		m.poolClosed.Inc()
	}
}

// ConnOpened implements tenancy.PoolMetrics.
func (m *Metrics) ConnOpened() { m.connsOpen.Inc() }

// ConnClosed implements tenancy.PoolMetrics.
func (m *Metrics) ConnClosed() { m.connsOpen.Dec() }

// ConnWait implements tenancy.PoolMetrics.
func (m *Metrics) ConnWait(d time.Duration, ok bool) {
	m.connWait.Observe(d.Seconds())
	if !ok {
		m.connTimeouts.Inc()
	}
}

// ConnReclaimed implements tenancy.PoolMetrics.
func (m *Metrics) ConnReclaimed() { m.connReclaim.Inc() }

// DatabaseCreated implements tenancy.ReserveMetrics.
func (m *Metrics) DatabaseCreated(source string) { m.dbCreated.WithLabelValues(source).Inc() }

// SparesReady implements tenancy.ReserveMetrics.
func (m *Metrics) SparesReady(n int) { m.sparesReady.Set(float64(n)) }

// Replicas records the live processes counted and the per-tenant pool
// bound derived from them.
func (m *Metrics) Replicas(n, tenantCap int) {
	m.replicas.Set(float64(n))
	m.tenantCap.Set(float64(tenantCap))
}

// Middleware records each request under path (a fixed label, never the
// raw URL) and hostKind ("admin" or "tenant").
func (m *Metrics) Middleware(path string, hostKind func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &apierr.StatusRecorder{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		kind := hostKind(r)
		m.requests.WithLabelValues(kind, path, strconv.Itoa(sw.Status())).Inc()
		m.duration.WithLabelValues(kind, path).Observe(time.Since(start).Seconds())
	})
}
