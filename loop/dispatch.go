package loop

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"

	"github.com/panjf2000/ants/v2"
)

// dispatcher is who runs the connections' events: the Handler and the
// worker pool. handler, inline and pool are set by NewServer and read-only
// after. handlerConns is added to by the loop that queues an OnOpen
// (timers.go) and subtracted from by the worker after OnClose; Drain and
// Shutdown wait for zero. retries counts the loops with connections
// waiting for a worker: each loop adds and subtracts its own share.
type dispatcher struct {
	handler Handler
	inline  bool // handler is LoopSafe: its events run on the loops (inline.go)
	pool    *ants.PoolWithFuncGeneric[*Conn]
	// handlerConns counts the connections whose OnOpen was queued and
	// whose OnClose has not run yet.
	handlerConns atomic.Int64
	retries      atomic.Int32
}

// evKind is the kind of event a connection's mailbox holds.
type evKind uint8

const (
	evOpen evKind = iota + 1
	evMessage
	evClose
	evResume // a session resumed (session.go's ResumeHandler)
)

// event is one entry of a connection's mailbox.
type event struct {
	buf  *buffer // evMessage payload; nil for an empty message
	err  error   // evClose reason
	kind evKind
	op   OpCode
}

// mflag is a bit of Conn.mflags, the dispatch state shared by the loop and
// the workers under Conn.mu.
type mflag uint8

const (
	mInflight    mflag = 1 << iota // a worker owns the mailbox
	mWaiting                       // on the loop's retry list
	mPaused                        // the loop stopped reading: tell it when the mailbox is low (inbound.go)
	mResumeAsked                   // a worker has asked the loop to resume
	mFailPending                   // a protocol error waits for the mailbox to empty (close.go)
	mHolder                        // on the loop's list of large memory holders (budget_shed.go)
	mBudget                        // reads paused for the memory budget (budget_shed.go)
	mOpen                          // OnOpen is due, before the mailbox (deliver)
)

// deliver queues ev for c's handler. At most one worker task runs per
// connection, so events reach the handler in order; the loop never waits.
// A message is always taken: a mailbox at its bounds pauses the
// connection's input instead (inbound.go), so a client that outruns its
// handler is slowed by TCP, never cut.
func (l *eventLoop) deliver(c *Conn, ev event) {
	c.mu.Lock()
	if ev.kind == evOpen {
		// The first event, and the only one an idle connection ever
		// has: a flag, not a mailbox entry, so that it needs no data
		// part (conn_data.go).
		c.mflags |= mOpen
	} else {
		d := c.d()
		if len(d.mailbox) == cap(d.mailbox) && d.mhead > 0 {
			// Reuse the slots of events already run: a mailbox that
			// never empties (reads resume at half) must not grow
			// without end.
			n := copy(d.mailbox, d.mailbox[d.mhead:])
			clear(d.mailbox[n:])
			d.mailbox = d.mailbox[:n]
			d.mhead = 0
		}
		d.mailbox = append(d.mailbox, ev)
	}
	if ev.kind == evMessage {
		if ev.buf != nil {
			c.holdIn(len(ev.buf.b))
		}
		l.noteMailbox(c)
	}
	start := c.mflags&(mInflight|mWaiting) == 0
	if start {
		c.mflags |= mInflight
	}
	c.mu.Unlock()
	if start {
		l.invoke(c)
	}
}

// pending reports whether c has an event for its handler; c.mu held.
func (c *Conn) pending() bool {
	d := c.data.Load()
	return c.mflags&mOpen != 0 || d != nil && int(d.mhead) < len(d.mailbox)
}

// invoke hands c to a worker. If every worker is busy (ants'
// ErrPoolOverload: the pool is non-blocking), the events stay in the
// mailbox and c joins the loop's retry list: nothing is dropped and the
// loop does not wait. A worker that finishes, or the next tick, retries.
func (l *eventLoop) invoke(c *Conn) {
	if l.srv.inline {
		l.runInline(c) // a LoopSafe handler (inline.go)
		return
	}
	if l.srv.pool.Invoke(c) == nil {
		return
	}
	l.stats.poolOverloads.Add(1)
	c.mu.Lock()
	c.mflags = c.mflags&^mInflight | mWaiting
	c.mu.Unlock()
	l.retry = append(l.retry, c)
	l.stats.waiting.Store(int64(len(l.retry)))
	if !l.retryArmed.Swap(true) {
		l.srv.retries.Add(1)
	}
}

// retryDispatch retries the connections that met a full pool, in order,
// until the pool is full again. It runs on the loop, or once the loops have
// stopped, on Shutdown's goroutine (flushEvents).
func (l *eventLoop) retryDispatch() {
	for i, c := range l.retry {
		c.mu.Lock()
		c.mflags &^= mWaiting
		start := c.mflags&mInflight == 0 && c.pending()
		if start {
			c.mflags |= mInflight
		}
		c.mu.Unlock()
		if !start {
			continue
		}
		if l.srv.pool.Invoke(c) != nil {
			l.stats.poolOverloads.Add(1)
			c.mu.Lock()
			c.mflags = c.mflags&^mInflight | mWaiting
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
// mailbox is empty. On the way it tells the loop when a paused connection
// may read again, and when a protocol error's close may go out.
func (s *Server) work(c *Conn) {
	for {
		c.mu.Lock()
		if c.mflags&mOpen != 0 {
			c.mflags &^= mOpen
			c.mu.Unlock()
			ev := event{kind: evOpen}
			s.run(c, &ev)
			continue
		}
		d := c.data.Load()
		if d == nil || int(d.mhead) == len(d.mailbox) {
			// A connection that has only opened keeps no mailbox (it
			// may stay idle for hours); one that has talked keeps it,
			// so that its messages allocate nothing.
			if d != nil {
				clear(d.mailbox)
				d.mailbox = d.mailbox[:0]
				d.mhead = 0
			}
			fail := c.mflags&mFailPending != 0
			c.mflags &^= mInflight | mFailPending
			c.mu.Unlock()
			if fail {
				// After the replies this worker sent: the inbox keeps
				// the order of one goroutine's commands.
				c.loop.enqueue(command{kind: cmdFailNow, c: c})
			}
			break
		}
		ev := d.mailbox[d.mhead]
		d.mailbox[d.mhead] = event{}
		d.mhead++
		if ev.buf != nil {
			c.releaseIn(len(ev.buf.b))
		}
		resume := c.mflags&(mPaused|mResumeAsked) == mPaused && s.lowWater(c)
		if resume {
			c.mflags |= mResumeAsked
		}
		c.mu.Unlock()
		if resume {
			c.loop.enqueue(command{kind: cmdResume, c: c})
		}
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
		s.putHandled(c, ev.buf)
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
		s.handler.OnMessage(c.logical(), ev.op, data) // a session's anchor (session.go)
	case evClose:
		defer s.handlerConns.Add(-1) // after OnClose, panicking or not
		s.handler.OnClose(c, ev.err)
	case evResume:
		if h, ok := s.handler.(ResumeHandler); ok {
			h.OnResume(c)
		}
	}
}

// workerPanic is the pool's last line of defence; run recovers first.
func (s *Server) workerPanic(v any) {
	s.counters.handlerPanics.Add(1)
	s.log.Error("wsgate: worker panic", "panic", fmt.Sprint(v))
}
