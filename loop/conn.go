package loop

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

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
	// ErrBadCloseCode is returned by Close for a code that may not be sent
	// (RFC 6455 §7.4: 1005, 1006, 1015 and unassigned ranges).
	ErrBadCloseCode = errors.New("loop: close code may not be sent")
	// ErrServerClosed is returned once the server has shut down.
	ErrServerClosed = errors.New("loop: server closed")
	// ErrNotOpen is returned by Send and Close on a connection whose
	// upgrade has not completed (a HandshakeHook's Request.Conn).
	ErrNotOpen = errors.New("loop: connection not open: the upgrade has not completed")
)

// Connection states. Transitions happen on the owning loop only.
const (
	stateProxy     uint8 = iota // reading a PROXY protocol header
	stateHandshake              // reading the HTTP upgrade request
	stateDeferred               // request read; a hook decides (pending.go)
	stateOpen                   // frames flow both ways
	stateClosing                // our close frame is out; waiting for the peer's
	stateClosed                 // the TCP connection is gone
)

// Conn is one client connection. Its exported methods are safe to call from
// any goroutine; a Conn stays valid (its methods return ErrClosed) after
// the connection is gone.
//
// The struct is what an idle connection costs us: it fits Go's 112-byte
// size class (TestConnSize) with no byte to spare, and a million idle
// connections carry nothing else of ours but their table slot (table.go).
// What only a connection that carries data needs is in connData,
// allocated on its first data (conn_data.go); what most connections never
// need is in connExt, an IPv6 peer's address included. The gnet
// connection is one pointer (gc), the time of our unanswered ping is
// implied by lastRead (pingedAt), and the loop-owned booleans and the
// address kind are bits of the flags word.
type Conn struct {
	// Identity: set before OnOpen and never changed.
	id          uint64
	loop        *eventLoop
	connectedAt int64 // accept time, nanoseconds since the server's epoch (clock.go), as now
	// ext holds what most connections never need (see connExt); data
	// what only a connection that has carried data needs (see connData).
	ext  atomic.Pointer[connExt]
	data atomic.Pointer[connData]

	// gp is the gnet connection, in one word (gc); nil once the TCP
	// connection is closed. Loop-owned.
	gp unsafe.Pointer

	// Deadlines (loop-owned; times on the server's coarse clock, see
	// timers.go). The node finds its Conn by its offset (connOfTimer).
	timer timerwheel.Node[struct{}]
	// lastRead is when the peer last sent a frame header or payload
	// bytes; while our ping is unanswered (fPinged), the ping's time
	// less the ping interval (pingedAt).
	lastRead int64
	expireAt int64 // handshake, closing or lifetime deadline by state

	// Dispatch state (see dispatch.go): mflags below, and the mailbox
	// in connData, are guarded by mu.
	mu sync.Mutex

	// The client's address, in compact form (conn_data.go: remoteAddr,
	// its kind in flags): loop-owned until the upgrade (a PROXY header
	// may set it), then read-only.
	addr      [4]byte // IPv4, or the IPv4 part of a mapped IPv6 address; an IPv6 one is in ext
	port      uint16
	closeCode StatusCode // with ext.closeReason: how it ended, for OnClose
	// flags is atomic: upgraded, closing and gone for anyone, the
	// address kind, and the loop's own booleans (conn_data.go).
	flags connFlags

	// Small fields, packed together.
	state    uint8      // loop-owned, like everything to upgraded
	cause    closeCause // why it ended, for Stats
	admitted uint8      // what admission control counts it in (counted*, admission.go); high bits: compression (deflate*, deflate.go)
	mflags   mflag      // dispatch flags, under mu (dispatch.go)
}

// frameState is the reader's position within the current frame and message.
type frameState struct {
	remaining int64   // payload bytes of the current frame not yet read
	msgLen    int32   // bytes of the current message read so far (≤ 1 GiB)
	unparsed  int32   // bytes left in gnet's inbound buffer (inbound.go)
	mask      [4]byte // the current frame's masking key
	maskPos   uint8   // payload bytes of the current frame unmasked, mod 4
	inFrame   bool    // a data frame's header has been read
	fin       bool    // the current data frame is the message's last
	msgOp     OpCode  // opcode of the message in progress; 0 if none
}

// gc returns c's gnet connection, or nil once the TCP connection is
// closed; on the loop. The Conn keeps it as gnet's pointer (the gnet
// patch's ConnPointer, third_party/gnet/PATCH.md), a word less than the
// interface; a test's loop that runs without gnet hands out its fake.
func (c *Conn) gc() gnet.Conn {
	if c.gp == nil {
		return nil
	}
	if f := c.loop.fake; f != nil {
		return f
	}
	return gnet.ConnAt(c.gp)
}

// ID returns the connection's identifier, unique within the process.
func (c *Conn) ID() uint64 { return c.id }

// IDString returns ID in decimal, after the node's prefix in a cluster
// (see Server.SetIDPrefix).
func (c *Conn) IDString() string { return c.loop.srv.FormatID(c.id) }

// connExt is the part of a connection that most connections never need:
// allocated on first use, so that an idle connection does not carry it.
type connExt struct {
	// Set on the loop before the upgrade completes; read-only after.
	subprotocol string
	user        string

	value atomic.Value // any goroutine

	// Loop-owned.
	hs          *codec.Request // parse state of a request split across reads
	closeReason string
	pausedAt    int64 // when reading paused (inbound.go); 0 if it is not
	failErr     error // a protocol error whose close waits for the handler (close.go)
	failAt      int64 // when that close goes out anyway
	failStream  bool  // the error lost the framing: input is discarded after it
	congestedAt int64 // since when its outbound queue is over half the bound (pacing.go)
	subs        []*loopTopic
	tokens      int64         // message rate limit (ratelimit.go)
	deflate     *deflateState // an agreement other than the common one (deflate.go)
	lastRefill  int64
	// Resumable sessions (session.go): what the request offered, until
	// the upgrade; then the session, set before the upgrade completes.
	offer *resumeOffer
	sess  *session
	// ip is the client's address if it is IPv6 and not IPv4-mapped
	// (addr6, conn_data.go).
	ip netip.Addr
}

// x returns c's extension, creating it if needed. Safe from any goroutine.
func (c *Conn) x() *connExt { return lazy(&c.ext) }

// lazy returns what p points at, installing a new zero T first if p is
// nil: a compare-and-swap, so that every goroutine gets the same one.
func lazy[T any](p *atomic.Pointer[T]) *T {
	if v := p.Load(); v != nil {
		return v
	}
	v := new(T)
	if p.CompareAndSwap(nil, v) {
		return v
	}
	return p.Load()
}

// User returns the user the handshake authenticated, or "".
func (c *Conn) User() string {
	if e := c.ext.Load(); e != nil {
		return e.user
	}
	return ""
}

// ConnectedAt returns when the TCP connection was accepted.
func (c *Conn) ConnectedAt() time.Time {
	return c.loop.srv.epoch.Add(time.Duration(c.connectedAt))
}

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remoteAddr() }

// Subprotocol returns the subprotocol selected at the handshake, or "".
func (c *Conn) Subprotocol() string {
	if e := c.ext.Load(); e != nil {
		return e.subprotocol
	}
	return ""
}

// SetValue attaches an application value to the connection.
func (c *Conn) SetValue(v any) { c.x().value.Store(valueBox{v}) }

// Value returns the value set by SetValue, or nil.
func (c *Conn) Value() any {
	e := c.ext.Load()
	if e == nil {
		return nil
	}
	if b, ok := e.value.Load().(valueBox); ok {
		return b.v
	}
	return nil
}

// valueBox lets SetValue store nil and values of differing types.
type valueBox struct{ v any }

// Send queues one message for the client. op is OpText or OpBinary; data is
// copied before Send returns, so the caller may reuse it. Messages sent
// from one goroutine reach the client in the order of the calls.
//
// Send returns ErrNotOpen before the upgrade has completed and ErrClosed
// once a close has started. If the connection's outbound queue
// (Config.MaxOutbound) cannot take the message, Send returns
// ErrSlowConsumer and, under the SlowClose policy,
// closes the connection with 1008; under SlowDrop the message is dropped
// and counted in Stats.SlowDropped. When the server's memory budget
// (Config.MemoryBudget) cannot take the message, Send returns
// ErrMemoryBudget and the connection stays open.
func (c *Conn) Send(op OpCode, data []byte) error {
	return c.SendID(MsgID{}, op, data)
}

// SendID is Send for a message the cluster numbered id (session_move.go).
func (c *Conn) SendID(id MsgID, op OpCode, data []byte) error {
	if err := checkSend(op, data); err != nil {
		return err
	}
	if ss := c.session(); ss != nil && c.flags.has(fUpgraded) {
		return c.sendSession(ss, id, op, data) // session_frames.go
	}
	if c.flags.has(fClosing) {
		return ErrClosed
	}
	if !c.flags.has(fUpgraded) {
		return ErrNotOpen
	}
	n := codec.MaxHeaderSize + len(data)
	if err := c.reserve(n); err != nil {
		return err
	}
	b := getBuffer(n)
	b.b = codec.AppendFrame(b.b, op, true, data)
	if !c.loop.enqueue(command{kind: cmdSend, c: c, buf: b, n: n}) {
		c.unreserve(n)
		putBuffer(b)
		return ErrServerClosed
	}
	return nil
}

// checkSend validates an outgoing message: text must be valid UTF-8 (RFC
// 6455 §5.6), or the client would have to fail the connection.
func checkSend(op OpCode, data []byte) error {
	if op != OpText && op != OpBinary {
		return ErrBadOpCode
	}
	if op == OpText && !codec.ValidUTF8(data) {
		return ErrInvalidUTF8
	}
	return nil
}

// Close starts the closing handshake with code and reason (cut to 123
// bytes at a rune boundary). code must be valid on the wire
// (codec.ValidCloseCode). It returns at once; the handler's OnClose follows when the
// connection is gone. Like Send, it returns ErrNotOpen before the upgrade
// has completed and ErrClosed once a close has started.
func (c *Conn) Close(code StatusCode, reason string) error {
	if !codec.ValidCloseCode(code) {
		return ErrBadCloseCode
	}
	if !utf8.ValidString(reason) {
		return ErrInvalidUTF8
	}
	if ss := c.session(); ss != nil && c.flags.has(fUpgraded) {
		return ss.close(code, reason) // session_life.go
	}
	if c.flags.has(fClosing) {
		return ErrClosed
	}
	if !c.flags.has(fUpgraded) {
		return ErrNotOpen
	}
	if !c.loop.enqueue(command{kind: cmdClose, c: c, code: code, reason: reason, cause: causeApp}) {
		return ErrServerClosed
	}
	return nil
}
