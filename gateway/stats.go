package gateway

import (
	"github.com/wsgate/wsgate/internal/stat"
	"github.com/wsgate/wsgate/loop"
)

// Stats is a snapshot of the server's counters: the loop's (loop.Stats,
// embedded) and the gateway's own. /v1/stats serves it with snake_case
// names and /metrics as each field's metric tag says; loop/stats.go says
// how to add a figure.
type Stats struct {
	loop.Stats

	// MaxConns is the configured Config.MaxConns, the bound of WSConns
	// (0: unbounded), for alerts on the ratio.
	MaxConns int64 `metric:"max_connections,gauge" help:"The configured max_conns, the bound of wsgate_connections_open (0: unbounded), for alerts on the ratio."`
	// CloseCodes counts closed WebSocket connections by close code:
	// "1000".."1015", "3xxx", "4xxx", "other" (1006: none was exchanged);
	// codes never seen are left out.
	CloseCodes map[string]int64 `metric:"close_codes_total,code" help:"Closed WebSocket connections by close code (1006: none was exchanged)."`
	// HandshakeRefusals counts upgrades the gateway's policy refused, by
	// reason: origin, token_missing, token_invalid, backend_refused,
	// backend_error, overload (empty without a policy).
	HandshakeRefusals map[string]int64 `metric:"handshake_refusals_total,reason" help:"Upgrades refused by the gateway's policy, by reason."`
	// BackendDisconnectsDropped counts disconnect hooks dropped: the queue
	// was full, or shutdown ended first.
	BackendDisconnectsDropped int64 `metric:"backend_disconnects_dropped_total" help:"Disconnect hooks dropped: the queue was full, or shutdown ended first."`
	// Cluster holds the cluster's counters (Config.NATS); nil without one.
	Cluster *ClusterStats
}

func init() { stat.Register[Stats]() }

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{Stats: s.srv.Stats(), MaxConns: int64(s.cfg.MaxConns), CloseCodes: map[string]int64{}, HandshakeRefusals: map[string]int64{}}
	for i := range s.gate.closeCodes {
		if n := s.gate.closeCodes[i].Load(); n > 0 {
			st.CloseCodes[closeCodeLabel(i)] = n
		}
	}
	if h := s.hook; h != nil {
		for i := range h.refusals {
			st.HandshakeRefusals[refusalNames[i]] = h.refusals[i].Load()
		}
	}
	if b := s.backend; b != nil {
		st.BackendDisconnectsDropped = b.dropped.Load()
	}
	if s.cluster != nil {
		cs := s.cluster.node.Stats()
		st.Cluster = &cs
	}
	return st
}
