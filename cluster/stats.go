package cluster

import "sync/atomic"

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

// Stats is a snapshot of a Node's counters.
type Stats struct {
	Connected     bool  // gauge: the NATS connection is up
	Nodes         int   // gauge: live nodes in the registry, this one included
	Subscriptions int   // gauge: topic and user subjects subscribed
	Pending       int   // gauge: interest changes not yet applied
	Published     int64 // messages sent to NATS
	Received      int64 // messages received from NATS
	// Unavailable counts calls that needed NATS while it was unreachable:
	// cluster pushes answered 503, library publishes that reached this
	// node only.
	Unavailable int64
	Timeouts    int64 // requests to a node and gathers that ran out of time
	Undecodable int64 // messages dropped for their format or version
	Busy        int64 // requests refused: too many in flight
	// SlowConsumer counts messages NATS delivered but this node dropped
	// because its inbound queue was full.
	SlowConsumer int64
	Disconnects  int64
	Reconnects   int64
	SubErrors    int64 // subscribe or unsubscribe calls NATS refused
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
