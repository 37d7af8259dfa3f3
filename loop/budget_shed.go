package loop

import "golang.org/x/sys/unix"

// Shedding, pausing and resuming for the memory budget (budget.go).
//
// Finding the largest holders must not cost a scan of every connection.
// Each loop lists the connections whose releasable memory (what closing
// them frees: output queued for them, and the buffer of a fragmented
// message) crossed holderMin (the budget / 1024, between 4 KiB and 1 MiB),
// when a charge makes it cross; a connection is listed once (mHolder) and
// leaves the list when a scan finds it under half of that. With the
// account at the budget there are at most about 2048 such connections
// whatever the number of connections, so a shed round scans a short list.
// Each loop publishes the largest releasable holder of its last scan, and a
// round sheds its own largest only if no other loop has a larger one; if
// one has, it hands the round over to that loop. So holders are shed
// largest first across the loops, give or take what changed since the
// other loop's last scan.
//
// A connection whose complete message waits for its handler is not a
// candidate: closing it would not free that message, which the handler
// still runs (issue 10: every message received is delivered). Neither is
// a single-frame message being received: its memory was reserved whole at
// its header, so it completes as fast as its client sends it. Neither is
// what a paused connection's last read brought: the pause already stops it.

// Shed reasons, counted in Stats.MemorySheds and stated in the close frame.
type shedReason uint8

const (
	shedOutbound shedReason = iota // output queued for a client that does not read
	shedAssembly                   // a fragmented message that needs more memory
	numShedReasons
)

var (
	shedNames        = [numShedReasons]string{"outbound", "assembly"}
	shedCloseReasons = [numShedReasons]string{"memory budget: outbound queue", "memory budget: message assembly"}
)

// Messages refused by the budget, counted in Stats.MemoryRefusals.
type budgetRefusal uint8

const (
	budgetSend     budgetRefusal = iota // Conn.Send returned ErrMemoryBudget
	budgetPublish                       // Publish or Broadcast returned ErrMemoryBudget
	budgetDelivery                      // a published frame a subscriber could only have buffered
	numBudgetRefusals
)

var budgetRefusalNames = [numBudgetRefusals]string{"send", "publish", "delivery"}

// StatusTryAgainLater is the close code of a connection shed for the
// memory budget: 1013, "Try Again Later" in the IANA WebSocket close code
// registry (RFC 6455 §7.4.2 delegates it): the server is overloaded.
const StatusTryAgainLater StatusCode = 1013

// maxShedsPerRound bounds the work of one round on the loop; a round that
// did not finish queues the next.
const maxShedsPerRound = 64

// noteHolder lists c among the loop's large holders, once; on the loop.
func (l *eventLoop) noteHolder(c *Conn) {
	c.mu.Lock()
	listed := c.mflags&mHolder != 0
	c.mflags |= mHolder
	c.mu.Unlock()
	if !listed {
		l.budget.holders = append(l.budget.holders, c)
		l.wantTicks()
	}
}

// releasable returns what closing c would free, and which part is larger.
func (l *eventLoop) releasable(c *Conn) (int64, shedReason) {
	if c.gp == nil || c.state != stateOpen {
		return 0, shedOutbound
	}
	out := c.outBuffered() + c.outQueued()
	var asm int64
	if d := c.data.Load(); d != nil && d.msgBuf != nil && d.frame.msgOp != 0 && !d.frame.fin {
		asm = int64(cap(d.msgBuf.b))
	}
	if asm > out {
		return out + asm, shedAssembly
	}
	return out + asm, shedOutbound
}

// scanHolders drops from the list the connections that hold little now or
// are gone, publishes the largest, and returns it.
func (l *eventLoop) scanHolders() (best *Conn, size int64, why shedReason) {
	lb := &l.budget
	floor := l.srv.mem.holderMin / 2
	keep := lb.holders[:0]
	for _, c := range lb.holders {
		n, r := l.releasable(c)
		if n < floor {
			c.mu.Lock()
			c.mflags &^= mHolder
			c.mu.Unlock()
			continue
		}
		keep = append(keep, c)
		if n > size {
			best, size, why = c, n, r
		}
	}
	clear(lb.holders[len(keep):])
	lb.holders = keep
	lb.top.Store(size)
	return best, size, why
}

// recountShedding sums the output that shed connections of the loop still
// have to drain, and forgets those that are gone.
func (l *eventLoop) recountShedding() {
	lb := &l.budget
	var n int64
	keep := lb.shed[:0]
	for _, c := range lb.shed {
		if c.gp == nil {
			continue
		}
		keep = append(keep, c)
		n += c.outBuffered() + c.outQueued()
	}
	clear(lb.shed[len(keep):])
	lb.shed = keep
	lb.shedding.Store(n)
}

// askShed queues a shed round on l, once until it runs. Safe from any
// goroutine.
func (l *eventLoop) askShed() {
	lb := &l.budget
	if lb.asked.Load() || lb.asked.Swap(true) {
		return
	}
	if !l.enqueue(command{kind: cmdFunc, fn: lb.shedFn}) {
		lb.asked.Store(false)
	}
}

// shedRound sheds holders, largest first, until the account less the output
// of shed connections still draining is down to lowWater. It runs on the
// loop, outside any read path (runInbox, tick).
func (l *eventLoop) shedRound() {
	l.budget.asked.Store(false)
	s := l.srv
	m := s.mem
	l.fold()
	l.recountShedding()
	for range maxShedsPerRound {
		s.settleMem()
		var draining int64
		for _, o := range s.eventLoops() {
			draining += o.budget.shedding.Load()
		}
		if m.total.Load()+l.budget.delta-draining <= m.lowWater {
			return
		}
		c, size, why := l.scanHolders()
		var other *eventLoop
		for _, o := range s.eventLoops() {
			if o != l && o.budget.top.Load() > size {
				other, size = o, o.budget.top.Load()
			}
		}
		if other != nil {
			other.askShed() // it holds a larger one: the round goes on there
			return
		}
		if c == nil {
			return // nothing that closing would free: pauses are the answer
		}
		l.shedConn(c, why)
	}
	l.askShed()
}

// shedConn closes c with 1013 (StatusTryAgainLater) and the reason, on the
// loop. Its close frame goes out after what was queued for it: nothing
// accepted for it is dropped unsaid.
func (l *eventLoop) shedConn(c *Conn, why shedReason) {
	out := c.outBuffered() + c.outQueued()
	l.stats.sheds[why].Add(1)
	l.srv.log.Warn("wsgate: memory budget: shedding a connection", "conn", c.id, "reason", shedNames[why],
		"outbound", out, "charged", l.memNow(), "budget", l.srv.mem.limit)
	l.startClose(c, StatusTryAgainLater, shedCloseReasons[why], causeBudget)
	if c.gp == nil || c.state == stateClosed {
		return
	}
	if why == shedAssembly {
		// The rest of the message is not wanted: discard the input until
		// the client closes (or the close timeout), as after a bad frame.
		c.flags.set(fDiscard)
		_, _ = c.gc().Discard(-1)
		l.setUnparsed(c, 0)
		if c.gc().OutboundBuffered() == 0 {
			_ = unix.Shutdown(c.gc().Fd(), unix.SHUT_WR)
		}
	}
	if out > 0 {
		// Its output goes on draining behind the close frame until the
		// client has read it or the close timeout cuts it.
		l.budget.shed = append(l.budget.shed, c)
		l.budget.shedding.Add(out)
		l.wantTicks()
	}
}

// budgetPause stops c's reads because a frame's memory does not fit, on
// the loop. The reads resume once the account is under refuseAt
// (budgetResume), and shed rounds free what they can meanwhile.
func (l *eventLoop) budgetPause(c *Conn) {
	c.flags.set(fInPaused)
	c.mu.Lock()
	listed := c.mflags&mBudget != 0
	c.mflags |= mBudget
	c.mu.Unlock()
	if !listed {
		l.budget.waiting = append(l.budget.waiting, c)
	}
	l.pauseReads(c)
	l.stats.budgetPauses.Add(1)
	l.wantTicks()
	l.askShed()
}

// readBytes is the most one read(2) brings: gnet's read buffer (its
// default, which wsgate keeps).
const readBytes = 64 << 10

// allowRead decides, before gnet reads from c, whether the budget can take
// what the read may bring; if not, c's reads pause without reading, on the
// loop. Pausing after the read instead (budgetPause from reserveFrame)
// would let every connection that sends while the budget is full add one
// read of unparsed input: 200 such clients took a 64 MiB budget 8.5 MiB
// over. Connections past the upgrade only: a handshake must be read to be
// refused (503), and a closing one to find the peer's close frame. A
// connection in the middle of a data frame's payload reads on: the frame's
// memory was reserved at its header (reserveFrame), and stopping it would
// hold that reservation without ever completing the message.
func (l *eventLoop) allowRead(c *Conn) bool {
	if c.state != stateOpen || c.flags.has(fInPaused) || (c.inFrame() && c.data.Load().frame.remaining > 0) {
		return true
	}
	if l.memEstimate()+readBytes <= l.srv.mem.limit || l.mayTake(readBytes) {
		return true
	}
	l.budgetPause(c)
	return false
}

// budgetResume lets the connections paused for the budget read again once
// the account is under refuseAt, in the order they paused; on the loop.
func (l *eventLoop) budgetResume() {
	lb := &l.budget
	if len(lb.waiting) == 0 {
		return
	}
	if !l.underMark(l.srv.mem.refuseAt) {
		// Still full: only forget those that are gone.
		keep := lb.waiting[:0]
		for _, c := range lb.waiting {
			if c.gp != nil {
				keep = append(keep, c)
			}
		}
		clear(lb.waiting[len(keep):])
		lb.waiting = keep
		return
	}
	waiting := lb.waiting
	for i, c := range waiting {
		waiting[i] = nil
		c.mu.Lock()
		mine := c.mflags&mBudget != 0
		c.mflags &^= mBudget
		mailbox := c.mflags&mPaused != 0 // the mailbox paused it too: its worker resumes it
		c.mu.Unlock()
		if !mine || mailbox || c.gp == nil || !c.flags.has(fInPaused) || c.state != stateOpen {
			continue
		}
		if e := c.ext.Load(); e != nil && e.failErr != nil {
			continue // paused for a protocol error (close.go)
		}
		l.resumeIn(c) // parses at the end of the inbox run: nothing joins waiting meanwhile
	}
	lb.waiting = waiting[:0]
}

// budgetTick runs each tick: it folds the loop's batch, publishes its
// charges, sheds if the account is over refuseAt, and resumes paused reads
// below it. It reports whether the loop needs more ticks.
func (l *eventLoop) budgetTick() bool {
	m := l.srv.mem
	if m == nil {
		return false
	}
	lb := &l.budget
	l.fold()
	changed := false
	for k := range lb.kinds {
		if lb.pub[k].Load() != lb.kinds[k] {
			lb.pub[k].Store(lb.kinds[k])
			changed = true
		}
	}
	if len(lb.holders) > 0 {
		l.scanHolders()
	}
	if lb.seen >= m.refuseAt {
		l.shedRound()
	} else {
		l.recountShedding()
	}
	l.budgetResume()
	return changed || len(lb.holders) > 0 || len(lb.waiting) > 0 || len(lb.shed) > 0
}
