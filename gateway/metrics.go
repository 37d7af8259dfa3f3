package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are read from Server.Stats when Prometheus scrapes: the hot path
// keeps its per-loop atomic counters and pays nothing per message for
// them. Only the backend hooks, each an HTTP round trip anyway, feed real
// histograms.

// collector is the prometheus.Collector of a Server.
type collector struct {
	s *Server
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("wsgate_"+name, help, labels, nil)
}

var (
	descConnsOpen     = desc("connections_open", "WebSocket connections admitted and not yet closed (upgrading or open): the figure max_conns bounds.")
	descTCPOpen       = desc("tcp_connections_open", "TCP connections in any state: reading the request, upgrading, open or closing.")
	descAdmission     = desc("admission_refusals_total", "Upgrades refused by admission control with 503, by reason.", "reason")
	descProxyErrors   = desc("proxy_errors_total", "Connections closed at the PROXY protocol header, by reason.", "reason")
	descDraining      = desc("draining", "1 while the server drains or shuts down: upgrades are refused and /readyz fails.")
	descConnsAccepted = desc("connections_accepted_total", "TCP connections accepted.")
	descUpgrades      = desc("upgrades_total", "Upgrade requests answered, by HTTP status: 101 upgraded, others refused.", "status")
	descHTTPRequests  = desc("http_requests_total", "Plain HTTP requests served on the WebSocket address (health, demo page).")
	descMessages      = desc("messages_total", "WebSocket data messages, by direction (in: from clients).", "direction")
	descBytes         = desc("bytes_total", "Bytes by direction: in counts message payloads, out everything written.", "direction")
	descCloses        = desc("closes_total", "Closed WebSocket connections by cause (liveness: no pong in time).", "cause")
	descCloseCodes    = desc("close_codes_total", "Closed WebSocket connections by close code (1006: none was exchanged).", "code")
	descDropped       = desc("messages_dropped_total", "Messages dropped, by reason: slow_consumer (outbound queue full, drop policy), "+
		"closed (queued for a connection that closed).", "reason")
	descInboundPauses   = desc("inbound_pauses_total", "Times a connection's input paused: its handler mailbox was full (TCP then slows the client).")
	descInboundPaused   = desc("inbound_paused_seconds_total", "Time connections spent with their input paused, summed.")
	descInboundPausedN  = desc("inbound_paused_connections", "Connections whose input is paused now.")
	descInboundMax      = desc("inbound_held_max_bytes", "Most bytes one connection held inbound (messages waiting for its handler and unparsed input) over the last timer tick.")
	descInboundDropped  = desc("inbound_dropped_bytes_total", "Unparsed input dropped with connections closed by max_inbound (closes_total{cause=\"inbound_overflow\"}).")
	descHandlerConns    = desc("handler_connections", "Connections whose OnOpen was queued and whose OnClose has not run yet.")
	descEventsLost      = desc("handler_events_lost_total", "Handler events (open, message, close) still queued when the shutdown deadline ended: they never ran.")
	descPoolOverloads   = desc("pool_overloads_total", "Dispatches that found every handler worker busy (the messages waited, none was lost).")
	descPoolWaiting     = desc("pool_waiting_connections", "Connections waiting for a free handler worker.")
	descPoolRunning     = desc("pool_running_workers", "Busy handler workers.")
	descPoolCap         = desc("pool_workers", "Handler worker pool size.")
	descPanics          = desc("handler_panics_total", "Handler panics recovered.")
	descMailboxMax      = desc("mailbox_max_messages", "Deepest handler mailbox over the last timer tick.")
	descOutboundMax     = desc("outbound_queue_max_bytes", "Largest outbound queue of a connection at the last timer tick.")
	descPings           = desc("pings_sent_total", "Pings sent to quiet connections.")
	descCloseTimeouts   = desc("close_timeouts_total", "Peers that did not answer our close frame in time.")
	descLoopStalls      = desc("loop_stalls_total", "Timer ticks that ran more than a tick late: the gateway's own lateness (CPU starvation, a stop, a GC pause).")
	descLoopLag         = desc("loop_lag_seconds_total", "How late the loops' timer ticks ran, summed: its rate is the share of time the loops were away.")
	descLoopLagMax      = desc("loop_lag_max_seconds", "The longest loop stall over the last minute.")
	descLivenessRescues = desc("liveness_rescues_total", "Pong, idle and handshake deadlines that passed while the loop stalled (pong and idle: or with the peer's bytes unread in the socket), and were stretched instead of closing the connection.")
	descPublishes       = desc("publishes_total", "Publish and Broadcast calls.")
	descDeliveries      = desc("deliveries_total", "Published messages written to a subscriber.")
	descDeliveriesDrop  = desc("deliveries_dropped_total", "Published messages refused by a subscriber's full outbound queue.")
	descRefusals        = desc("handshake_refusals_total", "Upgrades refused by the gateway's policy, by reason.", "reason")
	descHandshakesOpen  = desc("handshakes_open", "TCP connections not yet upgraded: the figure max_handshakes bounds.")
	descHandshakeLimit  = desc("handshake_limit_closes_total", "New TCP connections closed at once because the handshake bounds were full, by bound: total (max_handshakes), per_ip (max_handshakes_per_ip).", "reason")
	descDisconnectsDrop = desc("backend_disconnects_dropped_total", "Disconnect hooks dropped: the queue was full, or shutdown ended first.")
	descMaxConns        = desc("max_connections", "The configured max_conns, the bound of wsgate_connections_open (0: unbounded), for alerts on the ratio.")

	descMemBudget        = desc("memory_budget_bytes", "The memory budget of all connections (--memory-budget); 0 when off.")
	descMemCharged       = desc("memory_charged_bytes", "Bytes charged to the memory budget, by what holds them: assembly, unparsed, outbound, handshake, messages.", "kind")
	descMemSheds         = desc("memory_sheds_total", "Connections closed with 1013 to free memory, by what they held: outbound, assembly.", "reason")
	descMemPauses        = desc("memory_pauses_total", "Times a connection's reads paused because a frame did not fit the memory budget.")
	descMemRefusals      = desc("memory_refusals_total", "Messages refused by the memory budget: send and publish (ErrMemoryBudget), delivery (dropped for a subscriber).", "what")
	descSessions         = desc("sessions", "Resumable sessions kept, by state: live (attached or suspended), suspended.", "state")
	descSessionEvents    = desc("session_events_total", "Resumable session events: suspended, resumed, expired, taken_over (a resume closed a live connection).", "event")
	descSessionMissed    = desc("session_resumes_missed_total", "Resumes that failed, by reason: unknown, expired, overflow, gone, user, invalid.", "reason")
	descSessionReplayed  = desc("session_replayed_messages_total", "Messages replayed to resumed sessions.")
	descSessionBuffered  = desc("session_buffered_bytes", "Payload bytes kept in session buffers for resumes (--resume-buffer each).")
	descSessionOverflows = desc("session_overflow_messages_total", "Messages dropped from full session buffers; a resume that needs them is told it missed messages.")
	descConnBytes        = desc("connection_bytes", "Memory per connection: fixed (an estimate, not charged), variable (charged bytes per WebSocket connection), variable_max (the most one connection holds that closing it would free).", "part")

	// permessage-deflate (RFC 7692), kept together.
	descZConns      = desc("compression_connections", "Open connections that negotiated permessage-deflate.")
	descZUpgrades   = desc("compression_upgrades_total", "Upgrades that negotiated permessage-deflate.")
	descZBytes      = desc("compression_bytes_total", "Payload bytes of compressed messages by direction (in: from clients), plain (before compression, after inflation) and wire (as sent or received); the saving is plain minus wire.", "direction", "form")
	descZSkipped    = desc("compression_skipped_total", "Messages to compressing connections sent plain: under --compression-min-size, or incompressible.")
	descZDone       = desc("compressions_total", "Messages compressed; a publish or broadcast counts once, whatever the number of subscribers.")
	descZInflateErr = desc("inflate_errors_total", "Compressed messages refused, by reason: corrupt (not DEFLATE, 1007), too_big (past --max-message once inflated, 1009).", "reason")

	// The cluster's (Config.NATS), only with one.
	descClusterConnected  = desc("cluster_connected", "1 while the node is connected to NATS: 0 means pushes to other nodes answer 503.")
	descClusterNodes      = desc("cluster_nodes", "Nodes of the cluster this one has heard from recently, itself included.")
	descClusterSubs       = desc("cluster_subscriptions", "NATS subscriptions for topics with a local subscriber and users with a local connection.")
	descClusterMessages   = desc("cluster_messages_total", "NATS messages by direction (out: sent by this node).", "direction")
	descClusterErrors     = desc("cluster_errors_total", "Cluster calls that failed or messages lost, by reason: unavailable (NATS unreachable), timeout, slow_consumer (inbound queue full), undecodable, busy, subscribe.", "reason")
	descClusterReconnects = desc("cluster_reconnects_total", "Reconnections to NATS after a disconnection.")
)

var allDescs = []*prometheus.Desc{
	descConnsOpen, descTCPOpen, descAdmission, descProxyErrors, descDraining, descConnsAccepted, descUpgrades, descHTTPRequests, descMessages, descBytes,
	descCloses, descCloseCodes, descDropped, descPoolOverloads, descPoolWaiting, descPoolRunning, descPoolCap,
	descPanics, descMailboxMax, descOutboundMax, descPings, descCloseTimeouts, descPublishes, descDeliveries,
	descLoopStalls, descLoopLag, descLoopLagMax, descLivenessRescues,
	descDeliveriesDrop, descRefusals, descDisconnectsDrop, descHandshakesOpen, descHandshakeLimit, descMaxConns,
	descInboundPauses, descInboundPaused, descInboundPausedN, descInboundMax, descInboundDropped, descHandlerConns, descEventsLost,
	descMemBudget, descMemCharged, descMemSheds, descMemPauses, descMemRefusals, descConnBytes,
	descZConns, descZUpgrades, descZBytes, descZSkipped, descZDone, descZInflateErr,
	descSessions, descSessionEvents, descSessionMissed, descSessionReplayed, descSessionBuffered, descSessionOverflows,
}

var clusterDescs = []*prometheus.Desc{
	descClusterConnected, descClusterNodes, descClusterSubs, descClusterMessages, descClusterErrors, descClusterReconnects,
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
	if c.s.cluster != nil {
		for _, d := range clusterDescs {
			ch <- d
		}
	}
	if b := c.s.backend; b != nil {
		b.requests.Describe(ch)
		b.latency.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	gauge(descConnsOpen, st.WSConns)
	gauge(descMaxConns, int64(c.s.cfg.MaxConns))
	gauge(descTCPOpen, st.ConnsOpen)
	for reason, n := range st.Refused {
		counter(descAdmission, n, reason)
	}
	for reason, n := range st.ProxyErrors {
		counter(descProxyErrors, n, reason)
	}
	gauge(descHandshakesOpen, st.HandshakesOpen)
	for reason, n := range st.HandshakeLimitCloses {
		counter(descHandshakeLimit, n, reason)
	}
	draining := int64(0)
	if st.Draining {
		draining = 1
	}
	gauge(descDraining, draining)
	counter(descConnsAccepted, st.ConnsAccepted)
	for status, n := range st.Upgrades {
		counter(descUpgrades, n, status)
	}
	counter(descHTTPRequests, st.HTTPRequests)
	counter(descMessages, st.MessagesIn, "in")
	counter(descMessages, st.MessagesOut, "out")
	counter(descBytes, st.BytesIn, "in")
	counter(descBytes, st.BytesOut, "out")
	for cause, n := range st.Closes {
		counter(descCloses, n, cause)
	}
	for i := range c.s.gate.closeCodes {
		if n := c.s.gate.closeCodes[i].Load(); n > 0 {
			counter(descCloseCodes, n, closeCodeLabel(i))
		}
	}
	counter(descDropped, st.SlowDropped, "slow_consumer")
	counter(descDropped, st.DroppedOut, "closed")
	counter(descInboundPauses, st.InboundPauses)
	ch <- prometheus.MustNewConstMetric(descInboundPaused, prometheus.CounterValue, float64(st.InboundPausedNanos)/1e9)
	gauge(descInboundPausedN, st.InboundPaused)
	gauge(descInboundMax, st.InboundBytesMax)
	counter(descInboundDropped, st.DroppedInBytes)
	gauge(descHandlerConns, st.HandlerConns)
	counter(descEventsLost, st.EventsLost)
	counter(descPoolOverloads, st.PoolOverloads)
	gauge(descPoolWaiting, st.PoolWaiting)
	gauge(descPoolRunning, st.PoolRunning)
	gauge(descPoolCap, st.PoolCap)
	counter(descPanics, st.HandlerPanics)
	gauge(descMailboxMax, st.MailboxDepthMax)
	gauge(descOutboundMax, st.OutboundBytesMax)
	counter(descPings, st.PingsSent)
	counter(descCloseTimeouts, st.CloseTimeouts)
	counter(descLoopStalls, st.LoopStalls)
	ch <- prometheus.MustNewConstMetric(descLoopLag, prometheus.CounterValue, float64(st.LoopLagNanos)/1e9)
	ch <- prometheus.MustNewConstMetric(descLoopLagMax, prometheus.GaugeValue, float64(st.LoopLagMax)/1e9)
	counter(descLivenessRescues, st.LivenessRescues)
	counter(descPublishes, st.Publishes)
	counter(descDeliveries, st.Deliveries)
	counter(descDeliveriesDrop, st.DeliveriesDropped)
	gauge(descMemBudget, st.MemoryBudget)
	for kind, n := range st.MemoryCharges {
		gauge(descMemCharged, n, kind)
	}
	for reason, n := range st.MemorySheds {
		counter(descMemSheds, n, reason)
	}
	counter(descMemPauses, st.MemoryPauses)
	for what, n := range st.MemoryRefusals {
		counter(descMemRefusals, n, what)
	}
	gauge(descConnBytes, st.MemoryConnFixed, "fixed")
	gauge(descConnBytes, st.MemoryConnVariable, "variable")
	gauge(descConnBytes, st.MemoryConnVariableMax, "variable_max")
	gauge(descZConns, st.CompressionConns)
	counter(descZUpgrades, st.CompressionUpgrades)
	counter(descZBytes, st.CompressionInPlain, "in", "plain")
	counter(descZBytes, st.CompressionInWire, "in", "wire")
	counter(descZBytes, st.CompressionOutPlain, "out", "plain")
	counter(descZBytes, st.CompressionOutWire, "out", "wire")
	counter(descZSkipped, st.CompressionSkipped)
	counter(descZDone, st.Compressions)
	for reason, n := range st.InflateErrors {
		counter(descZInflateErr, n, reason)
	}
	ss := &st.Sessions
	gauge(descSessions, ss.Live, "live")
	gauge(descSessions, ss.Suspended, "suspended")
	counter(descSessionEvents, ss.Suspends, "suspended")
	counter(descSessionEvents, ss.Resumes, "resumed")
	counter(descSessionEvents, ss.Expired, "expired")
	counter(descSessionEvents, ss.Takeovers, "taken_over")
	for reason, n := range ss.Missed {
		counter(descSessionMissed, n, reason)
	}
	counter(descSessionReplayed, ss.Replayed)
	gauge(descSessionBuffered, ss.Buffered)
	counter(descSessionOverflows, ss.Overflows)
	if h := c.s.hook; h != nil {
		for i := range h.refusals {
			counter(descRefusals, h.refusals[i].Load(), refusalNames[i])
		}
	}
	c.collectCluster(ch)
	if b := c.s.backend; b != nil {
		counter(descDisconnectsDrop, b.dropped.Load())
		b.requests.Collect(ch)
		b.latency.Collect(ch)
	}
}

// collectCluster adds the cluster's metrics.
func (c *collector) collectCluster(ch chan<- prometheus.Metric) {
	if c.s.cluster == nil {
		return
	}
	st := c.s.ClusterStats()
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	connected := int64(0)
	if st.Connected {
		connected = 1
	}
	gauge(descClusterConnected, connected)
	gauge(descClusterNodes, int64(st.Nodes))
	gauge(descClusterSubs, int64(st.Subscriptions))
	counter(descClusterMessages, st.Published, "out")
	counter(descClusterMessages, st.Received, "in")
	counter(descClusterErrors, st.Unavailable, "unavailable")
	counter(descClusterErrors, st.Timeouts, "timeout")
	counter(descClusterErrors, st.SlowConsumer, "slow_consumer")
	counter(descClusterErrors, st.Undecodable, "undecodable")
	counter(descClusterErrors, st.Busy, "busy")
	counter(descClusterErrors, st.SubErrors, "subscribe")
	counter(descClusterReconnects, st.Reconnects)
}

// Collector returns the server's Prometheus metrics, to register in a
// registry of the program's own; the admin server (Config.Admin) serves
// them at /metrics with the Go runtime's and the process's.
func (s *Server) Collector() prometheus.Collector { return &collector{s: s} }
