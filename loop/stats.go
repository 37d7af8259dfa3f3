package loop

import (
	"strconv"
	"sync/atomic"

	"github.com/wsgate/wsgate/internal/stat"
)

func init() { stat.Register[Stats]() }

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
// events that happen off the loops. Each field's stat tag names the Stats
// field it folds into (stats_fold.go): summed over the loops, or the
// largest with ",max"; an array indexed by an enum folds into a map keyed
// by statKeys.
type counters struct {
	connsAccepted         atomic.Int64                           `stat:"ConnsAccepted"`
	upgrades              [len(upgradeStatuses) + 1]atomic.Int64 `stat:"Upgrades"`
	httpRequests          atomic.Int64                           `stat:"HTTPRequests"`
	messagesIn            atomic.Int64                           `stat:"MessagesIn"`
	messagesOut           atomic.Int64                           `stat:"MessagesOut"`
	bytesIn               atomic.Int64                           `stat:"BytesIn"`
	bytesOut              atomic.Int64                           `stat:"BytesOut"`
	droppedOut            atomic.Int64                           `stat:"DroppedOut"`
	droppedIn             atomic.Int64                           `stat:"DroppedIn"`
	droppedInBytes        atomic.Int64                           `stat:"DroppedInBytes"`
	droppedOutBytes       atomic.Int64                           `stat:"DroppedOutBytes"`
	slowDropped           atomic.Int64                           `stat:"SlowDropped"`
	poolOverloads         atomic.Int64                           `stat:"PoolOverloads"`
	pingsSent             atomic.Int64                           `stat:"PingsSent"`
	closeTimeouts         atomic.Int64                           `stat:"CloseTimeouts"`
	handshakeTimeoutBytes atomic.Int64                           `stat:"HandshakeTimeoutBytes"`
	deliveries            atomic.Int64                           `stat:"Deliveries"`
	deliveriesDropped     atomic.Int64                           `stat:"DeliveriesDropped"`
	publishes             atomic.Int64                           `stat:"Publishes"`
	handlerPanics         atomic.Int64                           `stat:"HandlerPanics"`
	pauses                atomic.Int64                           `stat:"InboundPauses"`
	pausedNanos           atomic.Int64                           `stat:"InboundPausedNanos"`
	eventsLost            atomic.Int64                           `stat:"EventsLost"`
	closes                [numCauses]atomic.Int64                `stat:"Closes"`
	refusals              [numRefusals]atomic.Int64              `stat:"Refused"`
	proxyErrors           [numProxyErrors]atomic.Int64           `stat:"ProxyErrors"`
	hsLimited             [numHSLimits]atomic.Int64              `stat:"HandshakeLimitCloses"`
	sheds                 [numShedReasons]atomic.Int64           `stat:"MemorySheds"`
	budgetPauses          atomic.Int64                           `stat:"MemoryPauses"`
	budgetRefused         [numBudgetRefusals]atomic.Int64        `stat:"MemoryRefusals"`
	livenessRescues       atomic.Int64                           `stat:"LivenessRescues"` // liveness closes deferred (lag.go)
	lagNanos              atomic.Int64                           `stat:"LoopLagNanos"`    // lateness of the loop's ticks, summed
	lagStalls             atomic.Int64                           `stat:"LoopStalls"`      // ticks that ran over a tick late

	// permessage-deflate (deflate.go).
	deflateUpgrades atomic.Int64                   `stat:"CompressionUpgrades"`
	deflateInWire   atomic.Int64                   `stat:"CompressionInWire"`
	deflateInPlain  atomic.Int64                   `stat:"CompressionInPlain"`
	deflateOutPlain atomic.Int64                   `stat:"CompressionOutPlain"`
	deflateOutWire  atomic.Int64                   `stat:"CompressionOutWire"`
	deflateSkipped  atomic.Int64                   `stat:"CompressionSkipped"`
	compressions    atomic.Int64                   `stat:"Compressions"`
	inflateErrors   [numInflateErrors]atomic.Int64 `stat:"InflateErrors"`

	// Gauges, loop-owned.
	connsOpen   atomic.Int64 `stat:"ConnsOpen"`
	handshaking atomic.Int64 `stat:"Handshaking"`
	waiting     atomic.Int64 `stat:"PoolWaiting"`          // connections on the retry list
	mailboxMax  atomic.Int64 `stat:"MailboxDepthMax,max"`  // deepest mailbox over the last tick
	inboundMax  atomic.Int64 `stat:"InboundBytesMax,max"`  // most bytes a connection held inbound over the last tick
	pausedConns atomic.Int64 `stat:"InboundPaused"`        // connections whose reads are paused
	outboundMax atomic.Int64 `stat:"OutboundBytesMax,max"` // largest outbound queue seen at the last tick
	deflateOpen atomic.Int64 `stat:"CompressionConns"`     // open connections that negotiated permessage-deflate
	lagMax      atomic.Int64 `stat:"LoopLagMax,max"`       // longest stall over the last minute (lag.go)
	_           [64]byte
}

// statKeys names the entries of the counters arrays, by Stats field; ok
// false leaves an entry out.
var statKeys = map[string]func(i int) (key string, ok bool){
	"Upgrades": func(i int) (string, bool) {
		if i < len(upgradeStatuses) {
			return strconv.Itoa(upgradeStatuses[i]), true
		}
		return "other", true
	},
	"Closes":               func(i int) (string, bool) { return closeCause(i).String(), true },
	"Refused":              func(i int) (string, bool) { return refusalNames[i], i > 0 }, // 0: admitted
	"ProxyErrors":          func(i int) (string, bool) { return proxyErrorNames[i], true },
	"HandshakeLimitCloses": func(i int) (string, bool) { return hsLimitNames[i], true },
	"MemorySheds":          func(i int) (string, bool) { return shedNames[i], true },
	"MemoryRefusals":       func(i int) (string, bool) { return budgetRefusalNames[i], true },
	"InflateErrors":        func(i int) (string, bool) { return inflateErrorNames[i], true },
}

// Stats is a snapshot of a server's counters. Counts are totals since the
// server started; fields marked gauge are current values.
//
// Each field is the one declaration of a figure: /v1/stats shows it under
// its snake_case name and /metrics as its metric tag says (internal/stat).
// To add a counter:
//
//  1. add the field here, with its metric and help tags (wsgate_ is
//     prefixed; ",gauge" for a current value; ",label=value" to share a
//     metric with other fields; ",label" on a map);
//  2. add the atomic to counters above, tagged stat:"TheField", and count
//     the event with it (a figure that is not an event count, such as the
//     pool's, is set in Server.Stats instead);
//  3. add its line to the Stats schema in gateway/openapi.yaml and copy
//     the file to docs/api/openapi.yaml (TestStatsSchemaMatchesCode prints
//     the line), and name the metric in README's metrics paragraph.
//
// TestStatsEverywhere (gateway) checks after a session through real
// sockets that every field appears in both outputs with the same value.
type Stats struct {
	ConnsOpen     int64 `metric:"tcp_connections_open,gauge" help:"TCP connections in any state: reading the request, upgrading, open or closing."`
	ConnsAccepted int64 `metric:"connections_accepted_total" help:"TCP connections accepted."`
	// gauge: connections holding parse state for a split request
	Handshaking int64 `metric:"handshakes_parsing,gauge" help:"Connections holding parse state for an upgrade request split over reads."`
	// Upgrades counts answered requests by status: "101" for upgrades,
	// "4xx"/"5xx" for refusals, "other".
	Upgrades     map[string]int64 `metric:"upgrades_total,status" help:"Upgrade requests answered, by HTTP status: 101 upgraded, others refused."`
	HTTPRequests int64            `metric:"http_requests_total" help:"Plain HTTP requests served on the WebSocket address (health, demo page)."`

	MessagesIn  int64 `metric:"messages_total,direction=in" help:"WebSocket data messages, by direction (in: from clients)."`
	MessagesOut int64 `metric:"messages_total,direction=out"`
	BytesIn     int64 `metric:"bytes_total,direction=in" help:"Bytes by direction: in counts message payloads, out everything written."`
	BytesOut    int64 `metric:"bytes_total,direction=out"`

	// DroppedOut counts messages queued for a connection that closed before
	// they could be written; SlowDropped counts messages refused because a
	// connection's outbound queue was full (under the drop policy; under
	// the close policy the connection is closed instead).
	DroppedOut      int64 `metric:"messages_dropped_total,reason=closed" help:"Messages dropped, by reason: slow_consumer (outbound queue full, drop policy), closed (queued for a connection that closed)."`
	DroppedOutBytes int64 `metric:"messages_dropped_bytes_total,reason=closed" help:"Bytes of the messages dropped, by reason (closed: queued for a connection that closed)."`
	SlowDropped     int64 `metric:"messages_dropped_total,reason=slow_consumer"`
	// DroppedIn counts connections closed with 1008 because what they
	// held inbound went over Config.MaxInbound (only possible where reads
	// cannot pause), and DroppedInBytes the unparsed input dropped with
	// them. A full mailbox pauses a connection's input, it drops nothing.
	DroppedIn      int64 `metric:"inbound_dropped_connections_total" help:"Connections closed with 1008 because they held more than max_inbound inbound."`
	DroppedInBytes int64 `metric:"inbound_dropped_bytes_total" help:"Unparsed input dropped with connections closed by max_inbound (closes_total{cause=\"inbound_overflow\"})."`

	// InboundPauses counts the times a connection's input paused because
	// its mailbox was full (or a protocol error waited for the handler),
	// InboundPausedNanos the time connections spent paused, summed;
	// InboundPaused is a gauge of the connections paused now, and
	// InboundBytesMax the most bytes one connection held inbound (mailbox
	// and unparsed input) over the last tick.
	InboundPauses      int64 `metric:"inbound_pauses_total" help:"Times a connection's input paused: its handler mailbox was full (TCP then slows the client)."`
	InboundPausedNanos int64 `metric:"inbound_paused_seconds_total,scale=1e-9" help:"Time connections spent with their input paused, summed."`
	InboundPaused      int64 `metric:"inbound_paused_connections,gauge" help:"Connections whose input is paused now."`
	InboundBytesMax    int64 `metric:"inbound_held_max_bytes,gauge" help:"Most bytes one connection held inbound (messages waiting for its handler and unparsed input) over the last timer tick."`

	// HandlerConns is a gauge of connections whose OnOpen was queued and
	// whose OnClose has not run yet. EventsLost counts handler events
	// (OnOpen, messages, OnClose) still queued when Shutdown's deadline
	// ended; they never ran.
	HandlerConns int64 `metric:"handler_connections,gauge" help:"Connections whose OnOpen was queued and whose OnClose has not run yet."`
	EventsLost   int64 `metric:"handler_events_lost_total" help:"Handler events (open, message, close) still queued when the shutdown deadline ended: they never ran."`

	PoolOverloads int64 `metric:"pool_overloads_total" help:"Dispatches that found every handler worker busy (the messages waited, none was lost)."`
	PoolWaiting   int64 `metric:"pool_waiting_connections,gauge" help:"Connections waiting for a free handler worker."` // gauge
	PoolRunning   int64 `metric:"pool_running_workers,gauge" help:"Busy handler workers."`                              // gauge
	PoolCap       int64 `metric:"pool_workers,gauge" help:"Handler worker pool size."`
	HandlerPanics int64 `metric:"handler_panics_total" help:"Handler panics recovered."`

	// MailboxDepthMax is the deepest mailbox (messages waiting for the
	// handler) and OutboundBytesMax the largest outbound queue, seen over
	// the last tick.
	MailboxDepthMax  int64 `metric:"mailbox_max_messages,gauge" help:"Deepest handler mailbox over the last timer tick."`
	OutboundBytesMax int64 `metric:"outbound_queue_max_bytes,gauge" help:"Largest outbound queue of a connection at the last timer tick."`

	PingsSent             int64 `metric:"pings_sent_total" help:"Pings sent to quiet connections."`
	CloseTimeouts         int64 `metric:"close_timeouts_total" help:"Peers that did not answer our close frame in time."`
	HandshakeTimeoutBytes int64 `metric:"handshake_timeout_bytes_total" help:"Bytes trickled by clients dropped at the handshake timeout."`

	// A loop that runs late does not take its lateness for the peers'
	// death (lag.go). LoopStalls counts the ticks that ran more than a
	// tick late and LoopLagNanos their lateness, summed over the loops;
	// LoopLagMax is a gauge of the longest stall over the last minute.
	// LivenessRescues counts the pong, idle and handshake deadlines that
	// passed while the loop stalled (or, for pongs and idle, with the
	// peer's bytes unread in the socket), and so were stretched instead of
	// closing the connection.
	LoopStalls      int64 `metric:"loop_stalls_total" help:"Timer ticks that ran more than a tick late: the gateway's own lateness (CPU starvation, a stop, a GC pause)."`
	LoopLagNanos    int64 `metric:"loop_lag_seconds_total,scale=1e-9" help:"How late the loops' timer ticks ran, summed: its rate is the share of time the loops were away."`
	LoopLagMax      int64 `metric:"loop_lag_max_seconds,gauge,scale=1e-9" help:"The longest loop stall over the last minute."`
	LivenessRescues int64 `metric:"liveness_rescues_total" help:"Pong, idle and handshake deadlines that passed while the loop stalled (pong and idle: or with the peer's bytes unread in the socket), and were stretched instead of closing the connection."`

	Publishes         int64 `metric:"publishes_total" help:"Publish and Broadcast calls."`
	Deliveries        int64 `metric:"deliveries_total" help:"Published messages written to a subscriber."`
	DeliveriesDropped int64 `metric:"deliveries_dropped_total" help:"Published messages refused by a subscriber's full outbound queue."`

	// Refused counts upgrades refused by admission control (503), by
	// reason: draining, max_conns, per_ip, rate, memory_budget.
	Refused map[string]int64 `metric:"admission_refusals_total,reason" help:"Upgrades refused by admission control with 503, by reason."`
	// ProxyErrors counts connections closed at the PROXY protocol stage:
	// untrusted, missing, malformed.
	ProxyErrors map[string]int64 `metric:"proxy_errors_total,reason" help:"Connections closed at the PROXY protocol header, by reason."`
	// HandshakesOpen is a gauge of TCP connections not yet upgraded (the
	// figure MaxHandshakes bounds); HandshakeLimitCloses counts the new
	// connections closed at once because a bound was full: total
	// (MaxHandshakes), per_ip (MaxHandshakesPerIP).
	HandshakesOpen       int64            `metric:"handshakes_open,gauge" help:"TCP connections not yet upgraded: the figure max_handshakes bounds."`
	HandshakeLimitCloses map[string]int64 `metric:"handshake_limit_closes_total,reason" help:"New TCP connections closed at once because the handshake bounds were full, by bound: total (max_handshakes), per_ip (max_handshakes_per_ip)."`
	// WSConns is a gauge of admitted WebSocket connections, the figure
	// MaxConns bounds.
	WSConns  int64 `metric:"connections_open,gauge" help:"WebSocket connections admitted and not yet closed (upgrading or open): the figure max_conns bounds."`
	Draining bool  `metric:"draining,gauge" help:"1 while the server drains or shuts down: upgrades are refused and /readyz fails."`

	// Closes counts ended connections by cause: peer, app, protocol,
	// too_big, liveness, idle, lifetime, shutdown, handshake_timeout,
	// slow_consumer, inbound_overflow, rate_limit, handler_panic,
	// memory_budget.
	Closes map[string]int64 `metric:"closes_total,cause" help:"Closed WebSocket connections by cause (liveness: no pong in time)."`

	// The memory budget (Config.MemoryBudget; budget.go). MemoryBudget
	// is the budget in bytes (0: off) and MemoryCharged a gauge of the
	// bytes charged to it; MemoryCharges splits them: assembly (messages
	// being received), unparsed (input not parsed yet), outbound (output
	// the sockets would not take), handshake, and messages (complete
	// messages waiting for or held by the handler, frames queued to be
	// written). The split is as of the last tick, and every figure is off
	// by less than one batch per loop.
	MemoryBudget  int64            `metric:"memory_budget_bytes,gauge" help:"The memory budget of all connections (--memory-budget); 0 when off."`
	MemoryCharged int64            `metric:"memory_budget_charged_bytes,gauge" help:"Bytes charged to the memory budget, all kinds together (memory_charged_bytes splits them as of the last tick)."`
	MemoryCharges map[string]int64 `metric:"memory_charged_bytes,kind,gauge" help:"Bytes charged to the memory budget, by what holds them: assembly, unparsed, outbound, handshake, messages."`
	// MemorySheds counts connections closed with 1013 to free memory, by
	// what they held: outbound, assembly. MemoryPauses counts the times a
	// connection's reads paused for the budget (a frame or a read did not fit).
	// MemoryRefusals counts messages refused: send (Conn.Send returned
	// ErrMemoryBudget), publish (Publish or Broadcast did), delivery (a
	// published frame a subscriber could only have buffered).
	MemorySheds    map[string]int64 `metric:"memory_sheds_total,reason" help:"Connections closed with 1013 to free memory, by what they held: outbound, assembly."`
	MemoryPauses   int64            `metric:"memory_pauses_total" help:"Times a connection's reads paused for the memory budget: a frame did not fit, or the account could not take another read."`
	MemoryRefusals map[string]int64 `metric:"memory_refusals_total,what" help:"Messages refused by the memory budget: send and publish (ErrMemoryBudget), delivery (dropped for a subscriber)."`
	// MemoryConnFixed estimates the bytes of an open connection that are
	// not charged (ConnFixedBytes); MemoryConnVariable is MemoryCharged per
	// WebSocket connection, and MemoryConnVariableMax the most memory one
	// connection held that closing it would free, at the last tick.
	MemoryConnFixed       int64 `metric:"connection_bytes,part=fixed,gauge" help:"Memory per connection: fixed (an estimate, not charged), variable (charged bytes per WebSocket connection), variable_max (the most one connection holds that closing it would free)."`
	MemoryConnVariable    int64 `metric:"connection_bytes,part=variable,gauge"`
	MemoryConnVariableMax int64 `metric:"connection_bytes,part=variable_max,gauge"`

	// permessage-deflate (RFC 7692; deflate.go). A published message
	// counts once per subscriber that got it compressed in
	// CompressionOutPlain/OutWire, and once in Compressions, whatever
	// the subscribers.
	CompressionConns    int64            `metric:"compression_connections,gauge" help:"Open connections that negotiated permessage-deflate."`
	CompressionUpgrades int64            `metric:"compression_upgrades_total" help:"Upgrades that negotiated permessage-deflate."`
	CompressionInWire   int64            `metric:"compression_bytes_total,direction=in,form=wire" help:"Payload bytes of compressed messages by direction (in: from clients), plain (before compression, after inflation) and wire (as sent or received); the saving is plain minus wire."`
	CompressionInPlain  int64            `metric:"compression_bytes_total,direction=in,form=plain"`
	CompressionOutPlain int64            `metric:"compression_bytes_total,direction=out,form=plain"`
	CompressionOutWire  int64            `metric:"compression_bytes_total,direction=out,form=wire"`
	CompressionSkipped  int64            `metric:"compression_skipped_total" help:"Messages to compressing connections sent plain: under --compression-min-size, or incompressible."`
	Compressions        int64            `metric:"compressions_total" help:"Messages compressed; a publish or broadcast counts once, whatever the number of subscribers."`
	InflateErrors       map[string]int64 `metric:"inflate_errors_total,reason" help:"Compressed messages refused, by reason: corrupt (not DEFLATE, 1007), too_big (past --max-message once inflated, 1009)."`

	// Sessions counts resumable sessions (docs/resume.md, session.go).
	Sessions *SessionStats
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	var st Stats
	fold(&st, &s.counters)
	for _, l := range s.eventLoops() {
		fold(&st, &l.stats)
	}
	st.PoolRunning = int64(s.pool.Running())
	st.PoolCap = int64(s.pool.Cap())
	st.WSConns = s.admission.open.Load()
	st.HandlerConns = s.handlerConns.Load()
	st.HandshakesOpen = s.admission.handshakes.Load()
	st.Draining = s.draining.Load()
	s.memStats(&st)
	ss := s.sessions.snapshot()
	st.Sessions = &ss
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
