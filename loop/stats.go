package loop

import "sync/atomic"

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
	causeCloseTimeout                       // the peer did not answer our close in time
	causeHandshakeTimeout                   // the upgrade did not complete in time
	numCauses
)

var causeNames = [numCauses]string{
	"peer", "app", "protocol", "too_big", "liveness", "idle", "lifetime",
	"shutdown", "close_timeout", "handshake_timeout",
}

// String returns the cause's name as used in metrics.
func (c closeCause) String() string {
	if c < numCauses {
		return causeNames[c]
	}
	return "unknown"
}

// Stats holds the server's counters. Every field is updated atomically and
// may be read at any time.
type Stats struct {
	ConnsOpen     atomic.Int64 // TCP connections open, in any state
	ConnsAccepted atomic.Int64
	// Handshaking counts connections holding parse state for a request
	// that arrived in more than one read.
	Handshaking atomic.Int64

	UpgradesOK       atomic.Int64
	UpgradesRejected atomic.Int64 // handshake refused with a 4xx/5xx status
	HTTPRequests     atomic.Int64 // plain requests served (health, demo page)

	MessagesIn  atomic.Int64
	MessagesOut atomic.Int64
	BytesIn     atomic.Int64 // message payload bytes received
	BytesOut    atomic.Int64 // frame bytes written

	// DroppedOut counts messages queued for a connection that closed before
	// they could be written, and DroppedOutBytes their bytes.
	DroppedOut      atomic.Int64
	DroppedOutBytes atomic.Int64

	PoolOverloads atomic.Int64 // dispatches that found every worker busy
	HandlerPanics atomic.Int64

	PingsSent             atomic.Int64
	CloseTimeouts         atomic.Int64 // peers that did not answer our close in time
	HandshakeTimeoutBytes atomic.Int64 // bytes trickled by clients dropped at the handshake timeout
	closes                [numCauses]atomic.Int64
}

// BuffersInUse returns how many pooled buffers (messages being read,
// queued or handled, frames waiting to be written) are checked out in the
// process.
func BuffersInUse() int64 { return buffersOut.Load() }

// Closes returns how many connections ended for each cause, by name.
func (s *Stats) Closes() map[string]int64 {
	m := make(map[string]int64, numCauses)
	for i := range s.closes {
		m[closeCause(i).String()] = s.closes[i].Load()
	}
	return m
}

// dropped counts a queued frame that found its connection gone.
func (s *Stats) dropped(_ *Conn, n int) {
	s.DroppedOut.Add(1)
	s.DroppedOutBytes.Add(int64(n))
}
