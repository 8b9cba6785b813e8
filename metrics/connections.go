package metrics

import "github.com/prometheus/client_golang/prometheus"

// connectionsByServer reports, at scrape time, the tenant connections this
// process holds open to each database server: the budget of
// MAX_DB_CONNECTIONS is per server, so the sum alone cannot show one
// server running full while another idles.
type connectionsByServer struct {
	desc *prometheus.Desc
	open func() map[string]int
}

// ConnectionsByServer returns a collector of
// tenantql_tenant_connections_open_by_server{server}, read from open.
func ConnectionsByServer(open func() map[string]int) prometheus.Collector {
	return connectionsByServer{
		desc: prometheus.NewDesc("tenantql_tenant_connections_open_by_server",
			"PostgreSQL connections this process holds open to each database server (bounded by MAX_DB_CONNECTIONS per server).",
			[]string{"server"}, nil),
		open: open,
	}
}

func (c connectionsByServer) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c connectionsByServer) Collect(ch chan<- prometheus.Metric) {
	for server, n := range c.open() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), server)
	}
}
