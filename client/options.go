package client

import (
	"context"
	"net"
	"net/http"
	"time"
)

// MessageType is a message's opcode (RFC 6455 §5.6).
type MessageType int

// Message types.
const (
	Text   MessageType = 1
	Binary MessageType = 2
)

// Defaults of Options.
const (
	DefaultQueueMessages    = 1024
	DefaultQueueBytes       = 1 << 20
	DefaultRetainMessages   = 1024
	DefaultRetainBytes      = 64 << 10
	DefaultPingInterval     = 30 * time.Second
	DefaultPongTimeout      = 10 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultReadLimit        = 1<<20 + 1
	DefaultReadBufferSize   = 1024
	DefaultMaxRetryAfter    = 5 * time.Minute
)

// Options configure a Client; the zero value works. Callbacks run on the
// client's one goroutine, one at a time and in order; a callback that
// blocks stops the reading (that is the backpressure). A callback may call
// Send and Close.
type Options struct {
	// Protocols are the application's subprotocols, in preference order
	// (a "bearer.TOKEN" entry passes a JWT as the gateway reads it).
	Protocols []string
	// Header is sent with every upgrade request (e.g. Authorization).
	Header http.Header
	// Resume offers the resume envelope (docs/resume.md) and resumes the
	// session after a drop.
	Resume bool

	Backoff Backoff
	// MaxRetryAfter caps a server's Retry-After or retry hint. If zero,
	// DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration

	// QueueMessages and QueueBytes bound the offline queue (what Send
	// keeps while disconnected). If zero, the defaults.
	QueueMessages, QueueBytes int
	// RetainMessages and RetainBytes bound what an envelope connection
	// keeps of its own sends until the server confirms them
	// (docs/resume.md §6). If zero, the defaults.
	RetainMessages, RetainBytes int

	// PingInterval is the quiet time after which a plain connection pings
	// the server; PongTimeout the time to hear anything after it. No frame
	// for both together drops the connection (ErrSilence). Envelope
	// connections use the server's values from HELLO instead. If zero, the
	// defaults; a negative PingInterval turns detection off on plain
	// connections.
	PingInterval, PongTimeout time.Duration
	// HandshakeTimeout bounds the upgrade and, with the envelope, the wait
	// for HELLO. If zero, DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds each write. If zero, DefaultWriteTimeout.
	WriteTimeout time.Duration
	// ReadLimit is the largest message read; larger closes with 1009. If
	// zero, DefaultReadLimit.
	ReadLimit int64
	// ReadBufferSize is gorilla's read buffer per connection. If zero,
	// DefaultReadBufferSize.
	ReadBufferSize int
	// NetDialContext dials TCP. If nil, net.Dialer's.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// ShouldReconnect decides after a connection that opened ends with a
	// close code. If nil, every code but 1000 and 4000-4999 reconnects.
	ShouldReconnect func(code int, reason string) bool

	// OnOpen: a new session (or a plain connection) is open.
	OnOpen func(Open)
	// OnMessage: a message. data is valid only during the call.
	OnMessage func(t MessageType, data []byte)
	// OnReconnecting: a connection ended or an attempt failed; the next
	// attempt follows after Reconnect.Delay.
	OnReconnecting func(Reconnect)
	// OnResumed: the session resumed; Replay messages follow first.
	OnResumed func(Resumed)
	// OnMissed: the session could not be resumed; what it missed is gone.
	// OnOpen follows.
	OnMissed func(Missed)
	// OnError: a protocol error (ErrProtocol); the connection is dropped.
	OnError func(error)
	// OnClose: the client has ended: nil after Close, else an *EndError.
	OnClose func(error)
}

// Open describes an opened connection.
type Open struct {
	// Protocol is the application subprotocol the server chose.
	Protocol string
	// Resumable is whether the connection has a session to resume.
	Resumable bool
}

// Reconnect describes why and when the client tries again.
type Reconnect struct {
	Attempt int           // 1 for the first retry
	Delay   time.Duration // before the attempt
	// Cause is why: a *CloseError, a *HandshakeError, ErrSilence, a
	// protocol or network error.
	Cause error
	// RetryAfter is the server's hint (close reason or Retry-After)
	// that Delay honours; 0 without one.
	RetryAfter time.Duration
}

// Resumed describes a resume.
type Resumed struct {
	Replay int // messages replayed before live ones
	// LostSends is the number of sends the server never took that had
	// already left the retention buffer (normally 0).
	LostSends int
}

// Missed describes a session that could not be resumed.
type Missed struct {
	Reason string // docs/resume.md §5.2: expired, overflow, unknown, ...
	// UnconfirmedSends is the number of sends whose arrival is unknown;
	// they are not re-sent.
	UnconfirmedSends int
}

func (o *Options) withDefaults() {
	o.Backoff.withDefaults()
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.QueueMessages, DefaultQueueMessages)
	def(&o.QueueBytes, DefaultQueueBytes)
	def(&o.RetainMessages, DefaultRetainMessages)
	def(&o.RetainBytes, DefaultRetainBytes)
	def(&o.ReadBufferSize, DefaultReadBufferSize)
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	dur(&o.PingInterval, DefaultPingInterval)
	dur(&o.PongTimeout, DefaultPongTimeout)
	dur(&o.HandshakeTimeout, DefaultHandshakeTimeout)
	dur(&o.WriteTimeout, DefaultWriteTimeout)
	dur(&o.MaxRetryAfter, DefaultMaxRetryAfter)
	if o.ReadLimit <= 0 {
		o.ReadLimit = DefaultReadLimit
	}
	if o.ShouldReconnect == nil {
		o.ShouldReconnect = func(code int, _ string) bool { return code != 1000 && (code < 4000 || code > 4999) }
	}
}
