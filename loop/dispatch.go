package loop

import (
	"fmt"
	"runtime/debug"

	"github.com/gobwas/ws"
)

// evKind is the kind of event a connection's mailbox holds.
type evKind uint8

const (
	evOpen evKind = iota + 1
	evMessage
	evClose
)

// event is one entry of a connection's mailbox.
type event struct {
	buf  *buffer // evMessage payload; nil for an empty message
	err  error   // evClose reason
	kind evKind
	op   OpCode
}

// deliver queues ev for c's handler. At most one worker task runs per
// connection, so events reach the handler in order; the loop never waits.
func (l *eventLoop) deliver(c *Conn, ev event) {
	c.mu.Lock()
	if ev.kind == evMessage {
		// The mailbox is bounded (Options.MailboxMessages, MailboxBytes):
		// gnet cannot stop reading, so a client that outruns its handler
		// is told so with 1008 rather than buffered without end.
		n := 0
		if ev.buf != nil {
			n = len(ev.buf.b)
		}
		// A message over MailboxBytes is still taken when no bytes are
		// queued, as MaxOutbound does: MaxMessageSize stays the limit.
		depth := len(c.mailbox) - int(c.mhead)
		if depth >= l.srv.opts.MailboxMessages || c.mbytes > 0 && int(c.mbytes)+n > l.srv.opts.MailboxBytes {
			c.mu.Unlock()
			putBuffer(ev.buf)
			l.stats.droppedIn.Add(1)
			l.startClose(c, ws.StatusPolicyViolation, "too many queued messages", causeInboundOverflow)
			return
		}
		c.mbytes += int32(n) // both bounds are under 1 GiB (NewServer)
		if depth+1 > l.mailboxWindow {
			l.mailboxWindow = depth + 1
			l.wantTicks() // to publish and reset the gauge
		}
	}
	c.mailbox = append(c.mailbox, ev)
	start := !c.inflight && !c.waiting
	if start {
		c.inflight = true
	}
	c.mu.Unlock()
	if start {
		l.invoke(c)
	}
}

// invoke hands c to a worker. If every worker is busy (ants'
// ErrPoolOverload: the pool is non-blocking), the events stay in the
// mailbox and c joins the loop's retry list: nothing is dropped and the
// loop does not wait. A worker that finishes, or the next tick, retries.
func (l *eventLoop) invoke(c *Conn) {
	if l.srv.pool.Invoke(c) == nil {
		return
	}
	l.stats.poolOverloads.Add(1)
	c.mu.Lock()
	c.inflight = false
	c.waiting = true
	c.mu.Unlock()
	l.retry = append(l.retry, c)
	l.stats.waiting.Store(int64(len(l.retry)))
	if !l.retryArmed.Swap(true) {
		l.srv.retries.Add(1)
	}
}

// retryDispatch retries the connections that met a full pool, in order,
// until the pool is full again.
func (l *eventLoop) retryDispatch() {
	for i, c := range l.retry {
		c.mu.Lock()
		c.waiting = false
		start := !c.inflight && int(c.mhead) < len(c.mailbox)
		if start {
			c.inflight = true
		}
		c.mu.Unlock()
		if !start {
			continue
		}
		if l.srv.pool.Invoke(c) != nil {
			l.stats.poolOverloads.Add(1)
			c.mu.Lock()
			c.inflight = false
			c.waiting = true
			c.mu.Unlock()
			n := copy(l.retry, l.retry[i:])
			clear(l.retry[n:])
			l.retry = l.retry[:n]
			l.stats.waiting.Store(int64(n))
			return
		}
	}
	clear(l.retry)
	l.retry = l.retry[:0]
	l.stats.waiting.Store(0)
	l.retryArmed.Store(false)
	l.srv.retries.Add(-1)
}

// work is the pool's task: it runs c's queued events in order until the
// mailbox is empty.
func (s *Server) work(c *Conn) {
	onlyOpen := true
	for {
		c.mu.Lock()
		if int(c.mhead) == len(c.mailbox) {
			clear(c.mailbox)
			c.mailbox = c.mailbox[:0]
			if onlyOpen {
				// A connection that has only opened may stay idle for
				// hours: it keeps no mailbox. One that has talked keeps
				// it, so that its messages allocate nothing.
				c.mailbox = nil
			}
			c.mhead = 0
			c.inflight = false
			c.mu.Unlock()
			break
		}
		ev := c.mailbox[c.mhead]
		c.mailbox[c.mhead] = event{}
		c.mhead++
		onlyOpen = onlyOpen && ev.kind == evOpen
		if ev.buf != nil {
			c.mbytes -= int32(len(ev.buf.b))
		}
		c.mu.Unlock()
		s.run(c, &ev)
	}
	if s.retries.Load() > 0 {
		for _, l := range s.eventLoops() {
			if l.retryArmed.Load() {
				l.wake()
			}
		}
	}
}

// run calls the handler for one event. A panicking handler is logged and
// counted, its connection is closed with 1011, and the worker lives on.
func (s *Server) run(c *Conn, ev *event) {
	defer func() {
		putBuffer(ev.buf)
		if r := recover(); r != nil {
			s.counters.handlerPanics.Add(1)
			s.log.Error("wsgate: handler panic", "conn", c.id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			if ev.kind != evClose {
				_ = c.Close(1011, "internal error")
			}
		}
	}()
	switch ev.kind {
	case evOpen:
		s.handler.OnOpen(c)
	case evMessage:
		var data []byte
		if ev.buf != nil {
			data = ev.buf.b
		}
		s.handler.OnMessage(c, ev.op, data)
	case evClose:
		s.handler.OnClose(c, ev.err)
	}
}

// workerPanic is the pool's last line of defence; run recovers first.
func (s *Server) workerPanic(v any) {
	s.counters.handlerPanics.Add(1)
	s.log.Error("wsgate: worker panic", "panic", fmt.Sprint(v))
}
