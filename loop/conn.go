package loop

import (
	"errors"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/timerwheel"
)

// OpCode is a WebSocket frame opcode; handlers see OpText and OpBinary.
type OpCode = ws.OpCode

// StatusCode is a WebSocket close status code (RFC 6455 §7.4).
type StatusCode = ws.StatusCode

// Data opcodes.
const (
	OpText   = ws.OpText
	OpBinary = ws.OpBinary
)

// Errors returned by Conn methods.
var (
	// ErrClosed is returned by Send and Close on a connection that is
	// closing or closed.
	ErrClosed = errors.New("loop: connection closed")
	// ErrBadOpCode is returned by Send for an opcode other than text or
	// binary.
	ErrBadOpCode = errors.New("loop: Send needs OpText or OpBinary")
	// ErrInvalidUTF8 is returned by Send for a text message that is not
	// valid UTF-8 (RFC 6455 §5.6).
	ErrInvalidUTF8 = errors.New("loop: text message is not valid UTF-8")
	// ErrBadClose is returned by Close for a status code that may not be
	// sent (RFC 6455 §7.4.1: 1005, 1006, 1015, and codes outside 1000-1003,
	// 1007-1014 and 3000-4999) or a reason that is not UTF-8 (§5.5.1).
	ErrBadClose = errors.New("loop: Close needs a code that may be sent and a UTF-8 reason")
	// ErrServerClosed is returned once the server has shut down.
	ErrServerClosed = errors.New("loop: server closed")
)

// Connection states. Transitions happen on the owning loop only.
const (
	stateHandshake uint8 = iota // reading the HTTP upgrade request
	stateOpen                   // frames flow both ways
	stateClosing                // our close frame is out; waiting for the peer's
	stateClosed                 // the TCP connection is gone
)

// Conn is one client connection. Its exported methods are safe to call from
// any goroutine; a Conn stays valid (its methods return ErrClosed) after
// the connection is gone.
type Conn struct {
	// Identity: set before OnOpen and never changed.
	id          uint64
	loop        *eventLoop
	remote      netip.AddrPort
	subprotocol string
	value       atomic.Value

	// Loop-owned state.
	gc      gnet.Conn // nil once the TCP connection is closed
	state   uint8
	discard bool // framing is lost: input is dropped until the end
	drain   bool // closing handshake done: close once our output is written
	cause   closeCause
	hs      *codec.Request // parse state of a request split across reads
	prev    *Conn          // the loop's list of sessions
	next    *Conn
	frame   frameState
	msgBuf  *buffer // the message being reassembled
	utf8    codec.UTF8
	// closeCode and closeReason describe how the connection ended, for
	// the handler's OnClose.
	closeCode   StatusCode
	closeReason string

	// Deadlines (loop-owned; times on the server's coarse clock, see
	// timers.go).
	timer    timerwheel.Node[*Conn]
	lastRead int64 // last frame header or payload bytes from the peer
	lastData int64 // last data message either way
	pingSent int64 // our unanswered ping; 0 if none
	expireAt int64 // handshake, closing or lifetime deadline by state

	// Shared with other goroutines.
	closing atomic.Bool // set once a close has started; Send refuses

	// Dispatch state, guarded by mu (see dispatch.go).
	mu       sync.Mutex
	mailbox  []event
	mhead    int  // next event to run
	inflight bool // a worker owns the mailbox
	waiting  bool // on the loop's retry list, waiting for a free worker
}

// frameState is the reader's position within the current frame and message.
type frameState struct {
	remaining int64   // payload bytes of the current frame not yet read
	msgLen    int     // bytes of the current message read so far
	mask      [4]byte // the current frame's masking key
	maskPos   uint8   // payload bytes of the current frame unmasked, mod 4
	inFrame   bool    // a data frame's header has been read
	fin       bool    // the current data frame is the message's last
	msgOp     OpCode  // opcode of the message in progress; 0 if none
}

// ID returns the connection's identifier, unique within the process.
func (c *Conn) ID() uint64 { return c.id }

// IDString returns ID in decimal.
func (c *Conn) IDString() string { return strconv.FormatUint(c.id, 10) }

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

// Subprotocol returns the subprotocol selected at the handshake, or "".
func (c *Conn) Subprotocol() string { return c.subprotocol }

// SetValue attaches an application value to the connection.
func (c *Conn) SetValue(v any) { c.value.Store(valueBox{v}) }

// Value returns the value set by SetValue, or nil.
func (c *Conn) Value() any {
	if b, ok := c.value.Load().(valueBox); ok {
		return b.v
	}
	return nil
}

// valueBox lets SetValue store nil and values of differing types.
type valueBox struct{ v any }

// Send queues one message for the client. op is OpText or OpBinary; data is
// copied before Send returns, so the caller may reuse it. Messages sent
// from one goroutine reach the client in the order of the calls.
func (c *Conn) Send(op OpCode, data []byte) error {
	if op != OpText && op != OpBinary {
		return ErrBadOpCode
	}
	if op == OpText && !codec.ValidUTF8(data) {
		return ErrInvalidUTF8
	}
	if c.closing.Load() {
		return ErrClosed
	}
	b := getBuffer(codec.MaxHeaderSize + len(data))
	b.b = codec.AppendFrame(b.b, op, true, data)
	if !c.loop.enqueue(command{kind: cmdSend, c: c, buf: b}) {
		putBuffer(b)
		return ErrServerClosed
	}
	return nil
}

// Close starts the closing handshake with code and reason (cut to 123
// bytes); a code of 0 sends a close frame without a status. It returns at
// once; the handler's OnClose follows when the connection is gone.
func (c *Conn) Close(code StatusCode, reason string) error {
	if code != 0 && !codec.ValidCloseCode(code) || !codec.ValidUTF8([]byte(reason)) {
		return ErrBadClose
	}
	if c.closing.Load() {
		return ErrClosed
	}
	if !c.loop.enqueue(command{kind: cmdClose, c: c, code: code, reason: reason}) {
		return ErrServerClosed
	}
	return nil
}
