package loop

import (
	"unsafe"

	"github.com/wsgate/wsgate/codec"
)

// The memory budget's charge points (budget.go) outside the account: what
// the read path, the handshake, the outbound snapshot and the close call.

// reserveFrame reserves the memory of a data frame's payload when its
// header arrives, growing the message's buffer to hold it, on the loop. If
// the budget cannot take it, c's reads pause and it reports false: the
// header stays in gnet's buffer and is parsed again on resume.
func (l *eventLoop) reserveFrame(c *Conn, length int64, continuation, fin bool) bool {
	d := c.d() // readFrames allocated it for this data frame
	have := int64(0)
	if continuation {
		have = int64(d.frame.msgLen)
	}
	if length <= 0 || length > l.messageLimit(c)-have { // messageLimit: deflate.go
		return true // nothing to hold, or checkData refuses it
	}
	need := int(have + length)
	old := 0
	if d.msgBuf != nil {
		old = cap(d.msgBuf.b)
	}
	if old >= need {
		return true
	}
	total := bufCap(need)
	if !l.take(memAssembly, int64(total-old)) {
		l.budgetPause(c)
		return false
	}
	nb := getBuffer(need)
	if d.msgBuf != nil {
		nb.b = append(nb.b, d.msgBuf.b...)
		putBuffer(d.msgBuf)
	}
	d.msgBuf = nb
	if !fin && int64(total) >= l.srv.mem.holderMin {
		l.noteHolder(c) // a fragmented message: shed it if memory runs out
	}
	return true
}

// grewMessage charges a growth of the message buffer that reserveFrame did
// not make (the budget reserves ahead, so only a frame it let through
// unreserved grows here).
func (l *eventLoop) grewMessage(old, now int) {
	if l.srv.mem != nil && now != old {
		l.charge(memAssembly, int64(now-old))
	}
}

// handOff moves a complete message from assembly to messages, on the loop;
// the worker that runs it releases it (putHandled).
func (l *eventLoop) handOff(b *buffer) {
	if b != nil && l.srv.mem != nil {
		l.budget.kinds[memAssembly] -= int64(cap(b.b))
	}
}

// dropAssembly releases the charge of c's message buffer, which the caller
// puts back.
func (l *eventLoop) dropAssembly(c *Conn) {
	if d := c.data.Load(); d != nil && d.msgBuf != nil && l.srv.mem != nil {
		l.charge(memAssembly, -int64(cap(d.msgBuf.b)))
	}
}

// Handshake charges: a request split across reads keeps its parse state,
// and a deferred upgrade its copy of the request (at most MaxHeaderBytes).
const requestStateBytes = int64(unsafe.Sizeof(codec.Request{}))

func (l *eventLoop) deferredCost() int64 {
	return int64(unsafe.Sizeof(PendingUpgrade{})) + int64(l.srv.cfg.MaxHeaderBytes)
}

// chargeHandshake charges n handshake bytes (negative: released).
func (l *eventLoop) chargeHandshake(n int64) {
	if l.srv.mem != nil {
		l.charge(memHandshake, n)
	}
}

// setOutBuffered records a new snapshot b of gnet's outbound buffer for c
// and charges the difference, on the loop.
func (l *eventLoop) setOutBuffered(c *Conn, b int64) {
	d := c.data.Load()
	if d == nil {
		if b == 0 {
			return // an idle connection's zero (conn_data.go)
		}
		d = c.d()
	}
	if m := l.srv.mem; m != nil {
		if old := d.outBuffered.Load(); old != b {
			l.charge(memOutbound, b-old)
		}
		if b >= m.holderMin/2 && b+d.outQueued.Load() >= m.holderMin {
			l.noteHolder(c)
		}
	}
	d.outBuffered.Store(b)
}

// upgraded moves the unparsed input charged to the handshake to unparsed
// when c's upgrade completes, and releases a deferred upgrade's copy.
func (l *eventLoop) memUpgraded(c *Conn, wasDeferred bool) {
	if l.srv.mem == nil {
		return
	}
	lb := &l.budget
	u := int64(c.unparsed())
	lb.kinds[memHandshake] -= u
	lb.kinds[memUnparsed] += u
	if wasDeferred {
		l.charge(memHandshake, -l.deferredCost())
	}
}

// memClosed releases what c held when its TCP connection is gone: gnet has
// dropped its buffers. prev is the state it was in.
func (l *eventLoop) memClosed(c *Conn, prev uint8) {
	if l.srv.mem == nil {
		return
	}
	l.dropAssembly(c)
	if u := int64(c.unparsed()); u != 0 {
		k := memUnparsed
		if prev < stateOpen {
			k = memHandshake
		}
		l.charge(k, -u)
		c.d().frame.unparsed = 0
	}
	l.setOutBuffered(c, 0)
	if prev == stateDeferred {
		l.charge(memHandshake, -l.deferredCost())
	}
}
