//go:build linux

package main

import (
	"sync/atomic"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Counter indices. Each loop owns one counters array and is its only
// writer; the runner reads them with atomic loads to draw the progress line
// and sample the timeline.
const (
	cAttempted      = iota // connection attempts, reconnects included
	cEstablished           // successful upgrades, reconnects included
	cFailed                // attempts that never got a 101
	cClosedByServer        // open connections the server closed (close frame, FIN or RST)
	cOpen                  // gauge: connections holding a socket past the upgrade
	cPending               // gauge: attempts in connect or upgrade
	cSent                  // data messages sent
	cReceived              // data messages received on the fast connections
	cBytesSent
	cBytesReceived
	cErrors      // sum of the errors-by-cause map
	cInflight    // gauge: fast messages sent and not yet received back
	cLost        // fast messages sent on a connection that closed before the reply
	cDropped     // storm: connections dropped (by us or by the server)
	cRecovered   // storm: dropped connections that came back
	cSlowConns   // slow: connections chosen to stop reading
	cSlowClosed  // slow: slow connections the server closed
	cSlowSent    // slow: messages the slow connections sent
	cSlowSkipped // slow: sends skipped because the socket would block
	cSlowRecv    // slow: messages found in a slow connection's buffer when it closed
	cCloseSent   // close frames we sent at the end of the run
	cCloseAnswered
	cCloseEOF        // our close was followed by the server's FIN, without its close frame
	cCloseUnanswered // our close got no answer within the wait
	cPayloadSent     // payload bytes of the data messages sent, before compression
	cPayloadReceived // payload bytes of the data messages received, inflated
	cPortRetries     // first dials whose own port's 4-tuple was taken: dialled again with the kernel's port
	cRetries         // --retries: failed ramp attempts scheduled to be tried again
	cRetryWait       // gauge: connections waiting for their retry
	nCounters
)

var counterNames = [nCounters]string{
	"attempted", "established", "failed", "closed_by_server", "open", "pending",
	"sent", "received", "bytes_sent", "bytes_received", "errors", "inflight",
	"lost_in_flight", "dropped", "recovered", "slow_conns", "slow_closed",
	"slow_sent", "slow_skipped", "slow_received", "close_sent", "close_answered",
	"close_eof", "close_unanswered", "payload_sent", "payload_received",
	"port_retries", "retries", "retry_wait",
}

type counters [nCounters]atomic.Int64

func (c *counters) add(i int, n int64) { c[i].Add(n) }

func (c *counters) snapshot() [nCounters]int64 {
	var s [nCounters]int64
	for i := range c {
		s[i] = c[i].Load()
	}
	return s
}

// Histogram ranges. Latency and connect time are in microseconds up to a
// minute; storm recovery in milliseconds up to an hour. Three significant
// digits keep each histogram near 30 KiB.
const (
	histLatency  = "latency_us"
	histConnect  = "connect_us"
	histRecovery = "recovery_ms"
	histClose    = "close_us" // from our close frame to the server's answer
)

func newHist(name string) *hdrhistogram.Histogram {
	switch name {
	case histRecovery:
		return hdrhistogram.New(1, 3_600_000, 3)
	default:
		return hdrhistogram.New(1, 60_000_000, 3)
	}
}

// record adds v to h, clamped into its range so an outlier is counted at
// the edge rather than dropped.
func record(h *hdrhistogram.Histogram, v int64) {
	if v < 1 {
		v = 1
	}
	if hi := h.HighestTrackableValue(); v > hi {
		v = hi
	}
	_ = h.RecordValue(v)
}

// sample is one point of the timeline, taken every sampleEvery by the
// runner. Counters are cumulative; open is a gauge.
type sample struct {
	T           int64 `json:"t_ns"` // since the process's epoch
	Attempted   int64 `json:"attempted"`
	Established int64 `json:"established"`
	Open        int64 `json:"open"`
	Sent        int64 `json:"sent"`
	Received    int64 `json:"received"`
	Errors      int64 `json:"errors"`
}
