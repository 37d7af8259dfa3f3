package loop

import (
	"github.com/wsgate/wsgate/internal/config"

	"errors"

	"github.com/gobwas/ws"
)

// ErrSlowConsumer is returned by Send (and counted for Publish) when the
// connection's outbound queue is full. Under config.SlowClose the connection is
// being closed with 1008.
var ErrSlowConsumer = errors.New("loop: slow consumer: outbound queue full")

// A connection's outbound queue is the frames handed to its loop and not
// yet written (outQueued, counted by Send) plus what gnet holds because the
// socket would not take it (outBuffered, a snapshot the loop refreshes on
// every write and, while it is not zero, on every tick). gnet only drains
// between our writes, so the snapshot is never below the truth, and the
// check outQueued + outBuffered + n <= MaxOutbound bounds the real queue.
// The snapshot is at most one tick old, and is also refreshed whenever the
// client sends something, so a client that has caught up is not refused for
// long. A message larger than the bound is still taken when the queue is empty,
// so that MaxOutbound below MaxMessageSize does not make large messages
// impossible: the queue never holds more than MaxOutbound plus one message.
// Both parts are charged to the memory budget (budget.go): Send charges the
// frame it queues, and each new snapshot its difference.

// reserve accounts n more queued bytes for c, off the loop. If that would
// exceed the bound it applies the slow-consumer policy and returns
// ErrSlowConsumer; if the memory budget cannot take them, ErrMemoryBudget.
func (c *Conn) reserve(n int) error {
	if !c.reserveQueue(n) {
		return c.refused()
	}
	if c.loop.srv.mem != nil && !c.chargeSend(n) {
		c.d().outQueued.Add(-int64(n))
		return ErrMemoryBudget
	}
	return nil
}

// unreserve undoes reserve for a frame that was not queued.
func (c *Conn) unreserve(n int) {
	c.d().outQueued.Add(-int64(n))
	if c.loop.srv.mem != nil {
		c.loop.chargeRemote(-int64(bufCap(n)))
	}
}

// reserveQueue accounts n more queued bytes for c, or reports false if that
// would exceed the bound.
func (c *Conn) reserveQueue(n int) bool {
	max := int64(c.loop.srv.cfg.MaxOutbound)
	d := c.d() // a connection's first Send allocates its data part (conn_data.go)
	q := d.outQueued.Add(int64(n))
	if max <= 0 {
		return true
	}
	if b := d.outBuffered.Load(); q+b > max && (q != int64(n) || b != 0) {
		d.outQueued.Add(-int64(n))
		return false
	}
	return true
}

// refused applies the slow-consumer policy after reserveQueue failed, off the
// loop.
func (c *Conn) refused() error {
	s := c.loop.srv
	if s.cfg.SlowPolicy == config.SlowDrop {
		s.counters.slowDropped.Add(1)
		return ErrSlowConsumer
	}
	c.loop.enqueue(command{kind: cmdClose, c: c, code: ws.StatusPolicyViolation,
		reason: "slow consumer", cause: causeSlowConsumer})
	return ErrSlowConsumer
}

// fits reports whether n more bytes fit c's outbound queue, on the loop.
func (l *eventLoop) fits(c *Conn, n int) bool {
	max := int64(l.srv.cfg.MaxOutbound)
	queued := c.outQueued() + int64(c.gc().OutboundBuffered())
	return max <= 0 || queued == 0 || queued+int64(n) <= max
}

// refusedOnLoop applies the slow-consumer policy on the loop.
func (l *eventLoop) refusedOnLoop(c *Conn) {
	if l.srv.cfg.SlowPolicy == config.SlowDrop {
		l.stats.slowDropped.Add(1)
		return
	}
	l.startClose(c, ws.StatusPolicyViolation, "slow consumer", causeSlowConsumer)
}

// wrote refreshes c's snapshot of gnet's outbound buffer after a write and
// watches it until it drains.
func (l *eventLoop) wrote(c *Conn) {
	gc := c.gc()
	if gc == nil {
		return
	}
	b := gc.OutboundBuffered()
	l.setOutBuffered(c, int64(b))
	if b > 0 {
		l.noteCongestion(c, int64(b))
	}
	if b > 0 && !c.flushWatched() {
		c.d().flushWatch = true
		l.flushing = append(l.flushing, c)
		l.wantTicks()
	}
}

// watchFlushes runs each tick: it refreshes the snapshots of connections
// whose gnet buffer was not empty, forgets those that drained, and
// publishes the largest queue as a gauge.
func (l *eventLoop) watchFlushes() {
	var most int64
	keep := l.flushing[:0]
	for _, c := range l.flushing {
		var b int64
		if c.gp != nil {
			b = int64(c.gc().OutboundBuffered())
		}
		l.setOutBuffered(c, b)
		most = max(most, b+c.outQueued())
		if b > 0 {
			keep = append(keep, c)
		} else {
			c.d().flushWatch = false
		}
	}
	clear(l.flushing[len(keep):])
	l.flushing = keep
	l.stats.outboundMax.Store(most)
	if bound := int64(l.srv.cfg.MaxOutbound); most <= bound/2 {
		l.congested.Store(false)
	}
}
