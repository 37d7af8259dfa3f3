package loop

// LoopSafe is an optional interface of a Handler. A handler whose methods
// never block and return quickly (they compute, call Conn.Send or
// Conn.Close, and nothing else: no I/O, no lock held for long, no
// Conn.Info, no BroadcastPaced) says so by returning true, and its events
// run on the event loop that read them instead of on the worker pool.
// Order per connection is the same (OnOpen, each message, OnClose); what
// goes away is the hand-off: the pool's channel send, a goroutine switch,
// and the wakeup system call with which a worker's Send reaches an idle
// loop. A frame sent from OnMessage then goes out in the loop pass that
// read the message (drain runs before the loop polls again). A handler
// that blocks while declaring itself loop-safe stalls every connection of
// its loop: when in doubt, do not implement it.
type LoopSafe interface {
	LoopSafe() bool
}

// loopSafe reports whether h's events may run on the loops.
func loopSafe(h Handler) bool {
	ls, ok := h.(LoopSafe)
	return ok && ls.LoopSafe()
}

// runInline runs c's mailbox on the loop, in place of a worker: the same
// work function, so the order, the inbound pauses and a held-back close
// behave as with the pool.
func (l *eventLoop) runInline(c *Conn) {
	l.srv.work(c)
}
