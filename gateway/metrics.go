package gateway

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgate/wsgate/internal/stat"
)

// Metrics are read from Server.Stats when Prometheus scrapes: the hot path
// keeps its per-loop atomic counters and pays nothing per message for
// them. Every metric comes from a field of Stats, declared there with its
// name and help (internal/stat), so that /metrics and /v1/stats carry the
// same figures. Only the backend hooks, each an HTTP round trip anyway,
// feed real histograms.

// collector is the prometheus.Collector of a Server.
type collector struct {
	s *Server
}

// descs holds one prometheus.Desc per stat.Family, made on first use.
var descs sync.Map // *stat.Family → *prometheus.Desc

func descOf(f *stat.Family) *prometheus.Desc {
	if d, ok := descs.Load(f); ok {
		return d.(*prometheus.Desc)
	}
	d, _ := descs.LoadOrStore(f, prometheus.NewDesc("wsgate_"+f.Name, f.Help, f.Labels, nil))
	return d.(*prometheus.Desc)
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range stat.Families(c.s.Stats()) {
		ch <- descOf(f)
	}
	if b := c.s.backend; b != nil {
		b.requests.Describe(ch)
		b.latency.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	stat.Samples(c.s.Stats(), func(s stat.Sample) {
		kind := prometheus.CounterValue
		if s.Family.Gauge {
			kind = prometheus.GaugeValue
		}
		ch <- prometheus.MustNewConstMetric(descOf(s.Family), kind, s.Value, s.Labels...)
	})
	if b := c.s.backend; b != nil {
		b.requests.Collect(ch)
		b.latency.Collect(ch)
	}
}

// Collector returns the server's Prometheus metrics, to register in a
// registry of the program's own; the admin server (Config.Admin) serves
// them at /metrics with the Go runtime's and the process's.
func (s *Server) Collector() prometheus.Collector { return &collector{s: s} }
