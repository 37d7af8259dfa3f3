package loop

import (
	"strconv"
	"sync/atomic"
)

// closeCause says why a connection ended, for Stats.
type closeCause uint8

const (
	causePeer             closeCause = iota // the client sent a close frame or went away
	causeApp                                // a handler called Conn.Close
	causeProtocol                           // the client broke RFC 6455 (1002, 1007)
	causeTooBig                             // a message over the limit (1009)
	causeLiveness                           // no answer to a ping in time
	causeIdle                               // idle timeout
	causeLifetime                           // max connection lifetime
	causeShutdown                           // server shutdown or drain
	causeHandshakeTimeout                   // the upgrade did not complete in time
	causeSlowConsumer                       // outbound queue over its bound (1008)
	causeInboundOverflow                    // input over MaxInbound (1008)
	causeRateLimit                          // message rate over the limit (1008)
	causeHandlerPanic                       // the handler panicked (1011)
	causeBudget                             // shed for the memory budget (1013, budget_shed.go)
	numCauses
)

var causeNames = [numCauses]string{
	"peer", "app", "protocol", "too_big", "liveness", "idle", "lifetime",
	"shutdown", "handshake_timeout", "slow_consumer", "inbound_overflow",
	"rate_limit", "handler_panic", "memory_budget",
}

// String returns the cause's name as used in Stats and metrics.
func (c closeCause) String() string {
	if c < numCauses {
		return causeNames[c]
	}
	return "unknown"
}

// Upgrade outcomes counted by status.
var upgradeStatuses = [...]int{101, 400, 401, 403, 404, 405, 426, 431, 503}

func upgradeIndex(status int) int {
	for i, s := range upgradeStatuses {
		if s == status {
			return i
		}
	}
	return len(upgradeStatuses) // other
}

// counters are event counts. Each loop has its own, written only by that
// loop (atomics so that Stats can read them at any time; with one writer
// per cache line there is no contention); the server has one set for
// events that happen off the loops.
type counters struct {
	connsAccepted         atomic.Int64
	upgrades              [len(upgradeStatuses) + 1]atomic.Int64
	httpRequests          atomic.Int64
	messagesIn            atomic.Int64
	messagesOut           atomic.Int64
	bytesIn               atomic.Int64
	bytesOut              atomic.Int64
	droppedOut            atomic.Int64
	droppedIn             atomic.Int64
	droppedInBytes        atomic.Int64
	droppedOutBytes       atomic.Int64
	slowDropped           atomic.Int64
	poolOverloads         atomic.Int64
	pingsSent             atomic.Int64
	closeTimeouts         atomic.Int64
	handshakeTimeoutBytes atomic.Int64
	deliveries            atomic.Int64
	deliveriesDropped     atomic.Int64
	publishes             atomic.Int64
	handlerPanics         atomic.Int64
	pauses                atomic.Int64
	pausedNanos           atomic.Int64
	eventsLost            atomic.Int64
	closes                [numCauses]atomic.Int64
	refusals              [numRefusals]atomic.Int64
	proxyErrors           [numProxyErrors]atomic.Int64
	hsLimited             [numHSLimits]atomic.Int64
	sheds                 [numShedReasons]atomic.Int64
	budgetPauses          atomic.Int64
	budgetRefused         [numBudgetRefusals]atomic.Int64
	livenessRescues       atomic.Int64 // liveness closes deferred (lag.go)
	lagNanos              atomic.Int64 // lateness of the loop's ticks, summed
	lagStalls             atomic.Int64 // ticks that ran over a tick late

	// permessage-deflate (deflate.go), kept together.
	deflateUpgrades atomic.Int64 // upgrades that negotiated it
	deflateInWire   atomic.Int64 // payload bytes of compressed messages received, as received
	deflateInPlain  atomic.Int64 // the same messages inflated
	deflateOutPlain atomic.Int64 // payload bytes of messages sent compressed, before compression
	deflateOutWire  atomic.Int64 // the same messages compressed
	deflateSkipped  atomic.Int64 // messages to deflating connections sent plain: small or incompressible
	compressions    atomic.Int64 // messages compressed (a publish counts once)
	inflateCorrupt  atomic.Int64 // compressed messages that were not DEFLATE (1007)
	inflateTooBig   atomic.Int64 // compressed messages that inflated past MaxMessageSize (1009)

	// Gauges, loop-owned.
	connsOpen   atomic.Int64
	handshaking atomic.Int64
	waiting     atomic.Int64 // connections on the retry list
	mailboxMax  atomic.Int64 // deepest mailbox over the last tick
	inboundMax  atomic.Int64 // most bytes a connection held inbound over the last tick
	pausedConns atomic.Int64 // connections whose reads are paused
	outboundMax atomic.Int64 // largest outbound queue seen at the last tick
	lagMax      atomic.Int64 // longest stall over the last minute (lag.go)
	deflateOpen atomic.Int64 // open connections that negotiated permessage-deflate
	_           [64]byte
}

// Stats is a snapshot of a server's counters. Counts are totals since the
// server started; fields marked gauge are current values.
type Stats struct {
	ConnsOpen     int64 // gauge: TCP connections in any state
	ConnsAccepted int64
	Handshaking   int64 // gauge: connections holding parse state for a split request
	// Upgrades counts answered requests by status: "101" for upgrades,
	// "4xx"/"5xx" for refusals, "other".
	Upgrades     map[string]int64
	HTTPRequests int64 // plain requests served (health, readiness, demo page)

	MessagesIn  int64
	MessagesOut int64
	BytesIn     int64 // message payload bytes received
	BytesOut    int64 // bytes written, frames and handshake responses

	// DroppedOut counts messages queued for a connection that closed before
	// they could be written; SlowDropped counts messages refused because a
	// connection's outbound queue was full (under the drop policy; under
	// the close policy the connection is closed instead).
	DroppedOut      int64
	DroppedOutBytes int64
	SlowDropped     int64
	// DroppedIn counts connections closed with 1008 because what they
	// held inbound went over Options.MaxInbound (only possible where reads
	// cannot pause), and DroppedInBytes the unparsed input dropped with
	// them. A full mailbox pauses a connection's input, it drops nothing.
	DroppedIn      int64
	DroppedInBytes int64

	// InboundPauses counts the times a connection's input paused because
	// its mailbox was full (or a protocol error waited for the handler),
	// InboundPausedNanos the time connections spent paused, summed;
	// InboundPaused is a gauge of the connections paused now, and
	// InboundBytesMax the most bytes one connection held inbound (mailbox
	// and unparsed input) over the last tick.
	InboundPauses      int64
	InboundPausedNanos int64
	InboundPaused      int64
	InboundBytesMax    int64

	// HandlerConns is a gauge of connections whose OnOpen was queued and
	// whose OnClose has not run yet. EventsLost counts handler events
	// (OnOpen, messages, OnClose) still queued when Shutdown's deadline
	// ended; they never ran.
	HandlerConns int64
	EventsLost   int64

	PoolOverloads int64 // dispatches that found every worker busy
	PoolWaiting   int64 // gauge: connections waiting for a free worker
	PoolRunning   int64 // gauge: busy workers
	PoolCap       int64
	HandlerPanics int64

	// MailboxDepthMax is the deepest mailbox (messages waiting for the
	// handler) and OutboundBytesMax the largest outbound queue, seen over
	// the last tick.
	MailboxDepthMax  int64
	OutboundBytesMax int64

	PingsSent             int64
	CloseTimeouts         int64 // peers that did not answer our close in time
	HandshakeTimeoutBytes int64 // bytes trickled by clients dropped at the handshake timeout

	// A loop that runs late does not take its lateness for the peers'
	// death (lag.go). LoopStalls counts the ticks that ran more than a
	// tick late and LoopLagNanos their lateness, summed over the loops;
	// LoopLagMax is a gauge of the longest stall over the last minute.
	// LivenessRescues counts the pong, idle and handshake deadlines that
	// passed while the loop stalled (or, for pongs and idle, with the
	// peer's bytes unread in the socket), and so were stretched instead of
	// closing the connection.
	LoopStalls      int64
	LoopLagNanos    int64
	LoopLagMax      int64
	LivenessRescues int64

	Publishes         int64 // Publish and Broadcast calls
	Deliveries        int64 // published messages written to a subscriber
	DeliveriesDropped int64 // published messages refused by a full outbound queue

	// Refused counts upgrades refused by admission control (503), by
	// reason: draining, max_conns, per_ip, rate, memory_budget.
	Refused map[string]int64
	// ProxyErrors counts connections closed at the PROXY protocol stage:
	// untrusted, missing, malformed.
	ProxyErrors map[string]int64
	// HandshakesOpen is a gauge of TCP connections not yet upgraded (the
	// figure MaxHandshakes bounds); HandshakeLimitCloses counts the new
	// connections closed at once because a bound was full: total
	// (MaxHandshakes), per_ip (MaxHandshakesPerIP).
	HandshakesOpen       int64
	HandshakeLimitCloses map[string]int64
	// WSConns is a gauge of admitted WebSocket connections, the figure
	// MaxConns bounds.
	WSConns  int64
	Draining bool

	// Closes counts ended connections by cause: peer, app, protocol,
	// too_big, liveness, idle, lifetime, shutdown, handshake_timeout,
	// slow_consumer, inbound_overflow, rate_limit, handler_panic,
	// memory_budget.
	Closes map[string]int64

	// The memory budget (Options.MemoryBudget; budget.go). MemoryBudget
	// is the budget in bytes (0: off) and MemoryCharged a gauge of the
	// bytes charged to it; MemoryCharges splits them: assembly (messages
	// being received), unparsed (input not parsed yet), outbound (output
	// the sockets would not take), handshake, and messages (complete
	// messages waiting for or held by the handler, frames queued to be
	// written). The split is as of the last tick, and every figure is off
	// by less than one batch per loop.
	MemoryBudget  int64
	MemoryCharged int64
	MemoryCharges map[string]int64
	// MemorySheds counts connections closed with 1013 to free memory, by
	// what they held: outbound, assembly. MemoryPauses counts the times a
	// connection's reads paused because a frame did not fit the budget.
	// MemoryRefusals counts messages refused: send (Conn.Send returned
	// ErrMemoryBudget), publish (Publish or Broadcast did), delivery (a
	// published frame a subscriber could only have buffered).
	MemorySheds    map[string]int64
	MemoryPauses   int64
	MemoryRefusals map[string]int64
	// MemoryConnFixed estimates the bytes of an open connection that are
	// not charged (ConnFixedBytes); MemoryConnVariable is MemoryCharged per
	// WebSocket connection, and MemoryConnVariableMax the most memory one
	// connection held that closing it would free, at the last tick.
	MemoryConnFixed       int64
	MemoryConnVariable    int64
	MemoryConnVariableMax int64

	// permessage-deflate (RFC 7692). CompressionConns is a gauge of open
	// connections that negotiated it, CompressionUpgrades the upgrades that
	// did. CompressionInWire/InPlain are the payload bytes of compressed
	// messages received, as received and inflated; CompressionOutPlain/
	// OutWire those of messages sent compressed, before and after (a
	// published message counts once per subscriber that got it
	// compressed). CompressionSkipped counts messages to such connections
	// sent plain (under compression_min_size, or incompressible);
	// Compressions the compressions performed (one per publish, whatever
	// the subscribers). InflateErrors counts compressed messages refused:
	// corrupt (1007), too_big (1009, past max_message once inflated).
	CompressionConns    int64
	CompressionUpgrades int64
	CompressionInWire   int64
	CompressionInPlain  int64
	CompressionOutPlain int64
	CompressionOutWire  int64
	CompressionSkipped  int64
	Compressions        int64
	InflateErrors       map[string]int64
	// Sessions counts resumable sessions (docs/resume.md, session.go).
	Sessions SessionStats
}

// add folds c into s.
func (s *Stats) add(c *counters) {
	s.ConnsOpen += c.connsOpen.Load()
	s.ConnsAccepted += c.connsAccepted.Load()
	s.Handshaking += c.handshaking.Load()
	for i := range c.upgrades {
		key := "other"
		if i < len(upgradeStatuses) {
			key = strconv.Itoa(upgradeStatuses[i])
		}
		s.Upgrades[key] += c.upgrades[i].Load()
	}
	s.HTTPRequests += c.httpRequests.Load()
	s.MessagesIn += c.messagesIn.Load()
	s.MessagesOut += c.messagesOut.Load()
	s.BytesIn += c.bytesIn.Load()
	s.BytesOut += c.bytesOut.Load()
	s.DroppedOut += c.droppedOut.Load()
	s.DroppedOutBytes += c.droppedOutBytes.Load()
	s.SlowDropped += c.slowDropped.Load()
	s.DroppedIn += c.droppedIn.Load()
	s.DroppedInBytes += c.droppedInBytes.Load()
	s.InboundPauses += c.pauses.Load()
	s.InboundPausedNanos += c.pausedNanos.Load()
	s.InboundPaused += c.pausedConns.Load()
	s.InboundBytesMax = max(s.InboundBytesMax, c.inboundMax.Load())
	s.EventsLost += c.eventsLost.Load()
	s.PoolOverloads += c.poolOverloads.Load()
	s.PoolWaiting += c.waiting.Load()
	s.HandlerPanics += c.handlerPanics.Load()
	s.MailboxDepthMax = max(s.MailboxDepthMax, c.mailboxMax.Load())
	s.OutboundBytesMax = max(s.OutboundBytesMax, c.outboundMax.Load())
	s.PingsSent += c.pingsSent.Load()
	s.CloseTimeouts += c.closeTimeouts.Load()
	s.HandshakeTimeoutBytes += c.handshakeTimeoutBytes.Load()
	s.LoopStalls += c.lagStalls.Load()
	s.LoopLagNanos += c.lagNanos.Load()
	s.LoopLagMax = max(s.LoopLagMax, c.lagMax.Load())
	s.LivenessRescues += c.livenessRescues.Load()
	s.Publishes += c.publishes.Load()
	s.Deliveries += c.deliveries.Load()
	s.DeliveriesDropped += c.deliveriesDropped.Load()
	for i := range c.closes {
		s.Closes[closeCause(i).String()] += c.closes[i].Load()
	}
	for i := 1; i < int(numRefusals); i++ {
		s.Refused[refusalNames[i]] += c.refusals[i].Load()
	}
	for i := range c.proxyErrors {
		s.ProxyErrors[proxyErrorNames[i]] += c.proxyErrors[i].Load()
	}
	for i := range c.hsLimited {
		s.HandshakeLimitCloses[hsLimitNames[i]] += c.hsLimited[i].Load()
	}
	for i := range c.sheds {
		s.MemorySheds[shedNames[i]] += c.sheds[i].Load()
	}
	s.MemoryPauses += c.budgetPauses.Load()
	s.CompressionConns += c.deflateOpen.Load()
	s.CompressionUpgrades += c.deflateUpgrades.Load()
	s.CompressionInWire += c.deflateInWire.Load()
	s.CompressionInPlain += c.deflateInPlain.Load()
	s.CompressionOutPlain += c.deflateOutPlain.Load()
	s.CompressionOutWire += c.deflateOutWire.Load()
	s.CompressionSkipped += c.deflateSkipped.Load()
	s.Compressions += c.compressions.Load()
	s.InflateErrors["corrupt"] += c.inflateCorrupt.Load()
	s.InflateErrors["too_big"] += c.inflateTooBig.Load()
	for i := range c.budgetRefused {
		s.MemoryRefusals[budgetRefusalNames[i]] += c.budgetRefused[i].Load()
	}
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{Upgrades: map[string]int64{}, Closes: map[string]int64{}, Refused: map[string]int64{}, ProxyErrors: map[string]int64{},
		HandshakeLimitCloses: map[string]int64{},

		MemorySheds: map[string]int64{}, MemoryRefusals: map[string]int64{}, InflateErrors: map[string]int64{}}
	st.add(&s.counters)
	for _, l := range s.eventLoops() {
		st.add(&l.stats)
	}
	st.PoolRunning = int64(s.pool.Running())
	st.PoolCap = int64(s.pool.Cap())
	st.WSConns = s.admission.open.Load()
	st.HandlerConns = s.handlerConns.Load()
	st.HandshakesOpen = s.admission.handshakes.Load()
	st.Draining = s.draining.Load()
	s.memStats(&st)
	st.Sessions = s.sessions.snapshot()
	return st
}

// ConnsOpen returns the number of open TCP connections, cheaper than Stats.
func (s *Server) ConnsOpen() int64 {
	var n int64
	for _, l := range s.eventLoops() {
		n += l.stats.connsOpen.Load()
	}
	return n
}

// BuffersInUse returns how many pooled buffers (messages being read,
// queued or handled, frames waiting to be written) are checked out in the
// process.
func BuffersInUse() int64 { return buffersOut.Load() }
