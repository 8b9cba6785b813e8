package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ServerStat is one database server of the fleet as a scrape shows it.
type ServerStat struct {
	Name      string
	Tenants   int  // tenants placed on it
	Reachable bool // its last probe answered
}

// WatchServers adds two gauges per database server, read by read at every
// scrape within timeout: tenantql_database_server_tenants and
// tenantql_database_server_reachable. A read that fails or runs out of
// time leaves them out of that scrape (and is logged); the other metrics
// are still served.
func (m *Metrics) WatchServers(read func(context.Context) ([]ServerStat, error), timeout time.Duration, log *slog.Logger) {
	m.reg.MustRegister(&serversCollector{read: read, timeout: timeout, log: log,
		tenants: prometheus.NewDesc("tenantql_database_server_tenants",
			"Tenants placed on the database server (as the platform API's tenantCount), read from the control database at scrape time.", []string{"server"}, nil),
		reachable: prometheus.NewDesc("tenantql_database_server_reachable",
			"1 when the database server answered its last probe (by any replica), 0 when it did not.", []string{"server"}, nil),
	})
}

// ServerProbed implements tenancy.ServerMetrics: the failures counter of
// a server starts at 0 with its first probe.
func (m *Metrics) ServerProbed(server string, ok bool) {
	c := m.probeFailures.WithLabelValues(server)
	if !ok {
		c.Inc()
	}
}

// serversCollector reads the fleet at every scrape: a few rows of the
// control database, cheaper than keeping gauges in step with every
// placement, move and deletion of every replica.
type serversCollector struct {
	read               func(context.Context) ([]ServerStat, error)
	timeout            time.Duration
	log                *slog.Logger
	tenants, reachable *prometheus.Desc
}

func (c *serversCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tenants
	ch <- c.reachable
}

func (c *serversCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	stats, err := c.read(ctx)
	if err != nil {
		c.log.Warn("metrics: read the database servers", "err", err)
		return
	}
	for _, s := range stats {
		reachable := 0.0
		if s.Reachable {
			reachable = 1
		}
		ch <- prometheus.MustNewConstMetric(c.tenants, prometheus.GaugeValue, float64(s.Tenants), s.Name)
		ch <- prometheus.MustNewConstMetric(c.reachable, prometheus.GaugeValue, reachable, s.Name)
	}
}
