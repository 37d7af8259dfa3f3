package cluster

import (
	"sync/atomic"

	"github.com/wsgate/wsgate/internal/stat"
)

func init() { stat.Register[Stats]() }

// counters are the Node's event counts, written by whichever goroutine
// sees the event.
type counters struct {
	published   atomic.Int64 // messages handed to NATS
	received    atomic.Int64 // messages taken from NATS
	unavailable atomic.Int64 // calls refused: NATS unreachable
	timeouts    atomic.Int64 // requests and gathers that ran out of time
	undecodable atomic.Int64 // messages dropped: bad format or version
	busy        atomic.Int64 // blocking requests refused: too many in flight
	disconnects atomic.Int64
	reconnects  atomic.Int64
	subErrors   atomic.Int64 // subscribe or unsubscribe calls that failed
	retired     atomic.Int64 // Dropped of subscriptions since removed
}

// Stats is a snapshot of a Node's counters; the tags say how /metrics
// shows each (internal/stat).
type Stats struct {
	Connected     bool  `metric:"cluster_connected,gauge" help:"1 while the node is connected to NATS: 0 means pushes to other nodes answer 503."` // the NATS connection is up
	Nodes         int   `metric:"cluster_nodes,gauge" help:"Nodes of the cluster this one has heard from recently, itself included."`              // live nodes in the registry
	Subscriptions int   `metric:"cluster_subscriptions,gauge" help:"NATS subscriptions for topics with a local subscriber and users with a local connection."`
	Pending       int   `metric:"cluster_pending_changes,gauge" help:"Interest changes (subscribe, unsubscribe) not yet applied to NATS."`
	Published     int64 `metric:"cluster_messages_total,direction=out" help:"NATS messages by direction (out: sent by this node)."`
	Received      int64 `metric:"cluster_messages_total,direction=in"`
	// Unavailable counts calls that needed NATS while it was unreachable:
	// cluster pushes answered 503, library publishes that reached this
	// node only.
	Unavailable int64 `metric:"cluster_errors_total,reason=unavailable" help:"Cluster calls that failed or messages lost, by reason: unavailable (NATS unreachable), timeout, slow_consumer (inbound queue full), undecodable, busy, subscribe."`
	Timeouts    int64 `metric:"cluster_errors_total,reason=timeout"`     // requests to a node and gathers that ran out of time
	Undecodable int64 `metric:"cluster_errors_total,reason=undecodable"` // messages dropped for their format or version
	Busy        int64 `metric:"cluster_errors_total,reason=busy"`        // requests refused: too many in flight
	// SlowConsumer counts messages NATS delivered but this node dropped
	// because its inbound queue was full.
	SlowConsumer int64 `metric:"cluster_errors_total,reason=slow_consumer"`
	Disconnects  int64 `metric:"cluster_disconnects_total" help:"Disconnections from NATS."`
	Reconnects   int64 `metric:"cluster_reconnects_total" help:"Reconnections to NATS after a disconnection."`
	SubErrors    int64 `metric:"cluster_errors_total,reason=subscribe"` // subscribe or unsubscribe calls NATS refused
}

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats {
	st := Stats{
		Connected:   n.Connected(),
		Nodes:       len(n.Nodes()),
		Published:   n.ctr.published.Load(),
		Received:    n.ctr.received.Load(),
		Unavailable: n.ctr.unavailable.Load(),
		Timeouts:    n.ctr.timeouts.Load(),
		Undecodable: n.ctr.undecodable.Load(),
		Busy:        n.ctr.busy.Load(),
		Disconnects: n.ctr.disconnects.Load(),
		Reconnects:  n.ctr.reconnects.Load(),
		SubErrors:   n.ctr.subErrors.Load(),
	}
	st.Subscriptions, st.Pending, st.SlowConsumer = n.interest.stats()
	st.SlowConsumer += n.ctr.retired.Load()
	return st
}
