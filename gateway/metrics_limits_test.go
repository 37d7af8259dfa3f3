package gateway_test

import (
	"testing"

	"github.com/wsgate/wsgate/gateway"
)

// wsgate_max_connections carries --max-conns, so that an alert can divide
// wsgate_connections_open by it; 0 stands for unbounded.
func TestMetricsMaxConnections(t *testing.T) {
	for _, max := range []int{0, 7} {
		srv := startServer(t, gateway.Config{MaxConns: max}, gateway.Echo{})
		if got := metricValue(t, srv, "wsgate_max_connections"); got != float64(max) {
			t.Errorf("MaxConns %d: wsgate_max_connections %v", max, got)
		}
	}
}
