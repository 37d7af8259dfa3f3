package loop

import (
	"net/netip"
	"sync/atomic"
	"unsafe"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/timerwheel"
)

// connData is the part of a connection that only a connection that has
// carried data needs: its reader's frame and message state, its mailbox,
// its outbound accounting and its traffic counts. An idle connection
// (pings and pongs only) never allocates it: the control frames it reads
// are parsed whole from gnet's buffer and its pings are written from the
// loop's shared frame, so what it needs of the fields below is their zero
// value, which the readers of a nil part return.
//
// It is allocated once, on the first data frame read, the first Send or
// Publish, the first event queued besides the open (a close, a resume),
// or the first byte left unparsed, and kept until the Conn is collected:
// Send and the workers keep their pointer to it without a lock, so it is
// never freed or replaced while the connection lives. Conn.d installs it
// with a compare-and-swap, from any goroutine.
type connData struct {
	// Loop-owned read state.
	frame  frameState
	msgBuf *buffer    // the message being reassembled
	utf8   codec.UTF8 // the text message's validation state

	// Loop-owned.
	linger     bool  // closing handshake done: close once our output is written
	flushWatch bool  // on the loop's flushing list
	lastData   int64 // last data message either way; 0: none since the upgrade (lastDataAt)

	// Traffic counts, loop-owned (read through Info).
	msgsIn, msgsOut   int64
	bytesIn, bytesOut int64

	// Outbound accounting (see outbound.go).
	outQueued   atomic.Int64 // bytes handed to the loop, not yet written
	outBuffered atomic.Int64 // snapshot of gnet's outbound buffer

	// Dispatch state, guarded by Conn.mu (see dispatch.go).
	mailbox []event
	mbytes  int32 // payload bytes in the mailbox (see inbound.go)
	mhead   int32 // next event to run
}

// d returns c's data part, creating it if needed. Safe from any goroutine.
func (c *Conn) d() *connData { return lazy(&c.data) }

// lastDataAt is when c last carried a data message either way, on the
// server's clock (now): for a connection that never has, its upgrade,
// which an idle connection does not record: its accept time stands in (at
// most the handshake timeout earlier; precise, where now is as of the
// last tick), on the loop.
func (c *Conn) lastDataAt() int64 {
	if d := c.data.Load(); d != nil && d.lastData != 0 {
		return d.lastData
	}
	return c.connectedAt
}

// countIn counts one message of n payload bytes received, on the loop.
func (c *Conn) countIn(n int, now int64) {
	d := c.d()
	d.msgsIn++
	d.bytesIn += int64(n)
	d.lastData = now
}

// countOut counts msgs messages of n frame bytes written, on the loop.
func (c *Conn) countOut(msgs int64, n int, now int64) {
	d := c.d()
	d.msgsOut += msgs
	d.bytesOut += int64(n)
	d.lastData = now
}

// counts returns c's traffic counts: on the loop, or once c is gone.
func (c *Conn) counts() (msgsIn, msgsOut, bytesIn, bytesOut int64) {
	if d := c.data.Load(); d != nil {
		return d.msgsIn, d.msgsOut, d.bytesIn, d.bytesOut
	}
	return 0, 0, 0, 0
}

// outQueued and outBuffered read c's outbound accounting (outbound.go).
func (c *Conn) outQueued() int64 {
	if d := c.data.Load(); d != nil {
		return d.outQueued.Load()
	}
	return 0
}

func (c *Conn) outBuffered() int64 {
	if d := c.data.Load(); d != nil {
		return d.outBuffered.Load()
	}
	return 0
}

// dropMsgBuf gives back the message being reassembled, on the loop.
func (c *Conn) dropMsgBuf() {
	if d := c.data.Load(); d != nil && d.msgBuf != nil {
		putBuffer(d.msgBuf)
		d.msgBuf = nil
	}
}

// unparsed is what gnet holds of c's input unparsed (setUnparsed).
func (c *Conn) unparsed() int32 {
	if d := c.data.Load(); d != nil {
		return d.frame.unparsed
	}
	return 0
}

// lingering reports whether c's closing handshake is done (close.go).
func (c *Conn) lingering() bool {
	d := c.data.Load()
	return d != nil && d.linger
}

// flushWatched reports whether c is on the loop's flushing list.
func (c *Conn) flushWatched() bool {
	d := c.data.Load()
	return d != nil && d.flushWatch
}

// inFrame reports whether the reader is within a data frame's payload.
func (c *Conn) inFrame() bool {
	d := c.data.Load()
	return d != nil && d.frame.inFrame
}

// connFlags are a Conn's atomic flags, in one word, all written by the
// loop. fUpgraded, fClosing and fGone are read by anyone; the address kind
// (addrKind) is written before the upgrade and read by anyone after it.
// The others are the loop's own booleans, here rather than in bytes of
// their own so that Conn keeps its size class: only the loop reads them,
// and an atomic load costs about what a plain one does.
type connFlags struct{ v atomic.Uint32 }

const (
	fUpgraded uint32 = 1 << iota // the upgrade completed: Lookup finds it
	fClosing                     // set once a close has started; Send refuses
	fGone                        // set once the loop has forgotten c: counts are final
	fDiscard                     // framing is lost: input is dropped until the end
	fDraining                    // expireAt is a drain close (drain.go)
	fInPaused                    // input is not parsed, reads paused (inbound.go)
	fPinged                      // our ping is unanswered (pingedAt, timers.go)
)

// addrShift places the address kind (addr*) in the flags word, two bits.
const addrShift = 30

func (f *connFlags) has(b uint32) bool { return f.v.Load()&b != 0 }
func (f *connFlags) set(b uint32)      { f.v.Or(b) }
func (f *connFlags) clear(b uint32)    { f.v.And(^b) }

// addrKind returns what Conn.addr holds.
func (c *Conn) addrKind() uint8 { return uint8(c.flags.v.Load() >> addrShift) }

// setAddrKind records what Conn.addr holds, on the loop, before the
// upgrade: nobody else reads it yet, so clearing the old kind and setting
// the new one need not be a single atomic step.
func (c *Conn) setAddrKind(k uint8) {
	c.flags.clear(3 << addrShift)
	c.flags.set(uint32(k) << addrShift)
}

// What Conn.addr holds. An IPv4 address, the common case, is kept in the
// Conn (4 bytes): a 16-byte field for every connection would cost every
// connection 12 bytes more, and Conn would leave its size class. An IPv6
// address is kept in ext, which an IPv6 peer allocates.
const (
	addrNone uint8 = iota // no address (the zero netip.AddrPort)
	addr4                 // an IPv4 address, in addr
	addr4in6              // an IPv4-mapped IPv6 address (::ffff:a.b.c.d), its IPv4 part in addr
	addr6                 // any other IPv6 address, zone included, in ext.ip
)

// setRemote stores a, on the loop, before the upgrade.
func (c *Conn) setRemote(a netip.AddrPort) {
	ip := a.Addr()
	c.addr, c.port = [4]byte{}, a.Port()
	switch {
	case !ip.IsValid():
		c.port = 0
		c.setAddrKind(addrNone)
	case ip.Is4():
		c.addr = ip.As4()
		c.setAddrKind(addr4)
	case ip.Is4In6() && ip.Zone() == "":
		c.addr = ip.Unmap().As4()
		c.setAddrKind(addr4in6)
	default:
		c.x().ip = ip
		c.setAddrKind(addr6)
	}
}

// remoteAddr returns the address setRemote stored.
func (c *Conn) remoteAddr() netip.AddrPort {
	var ip netip.Addr
	switch c.addrKind() {
	case addrNone:
		return netip.AddrPort{}
	case addr4:
		ip = netip.AddrFrom4(c.addr)
	case addr4in6:
		ip = netip.AddrFrom16(netip.AddrFrom4(c.addr).As16())
	default:
		ip = c.ext.Load().ip // set with addrKind
	}
	return netip.AddrPortFrom(ip, c.port)
}

// connOfTimer returns the Conn whose timer n is: every node on a loop's
// wheel is a Conn's, so the Conn starts timer's offset before it (the
// node carries no pointer back, which would cost every connection a word).
func connOfTimer(n *timerwheel.Node[struct{}]) *Conn {
	return (*Conn)(unsafe.Add(unsafe.Pointer(n), -int(unsafe.Offsetof(Conn{}.timer))))
}
