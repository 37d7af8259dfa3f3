package loop

import (
	"errors"
	"sync/atomic"
	"unsafe"
)

// The memory budget (Config.MemoryBudget). Every byte a connection holds
// beyond its fixed state is charged to one account of the server:
//
//   - assembly: the buffer of the message being received. It is reserved
//     whole at each data frame's header (the header says how long the
//     frame is), so that a message either has the memory to complete or
//     waits before its payload is read: messages never deadlock half-read
//     for want of memory, except a fragmented message that needs more
//     memory at a later fragment;
//   - messages: complete messages waiting in mailboxes or held by a
//     handler (until OnMessage returns), and frames queued for writing in
//     the loops' inboxes (Conn.Send, Publish);
//   - unparsed: input read from a socket and not parsed yet (gnet's
//     inbound buffer);
//   - outbound: output a socket would not take (gnet's outbound buffer);
//   - handshake: the parse state of a request split across reads, the
//     copy a deferred upgrade keeps, and their unparsed bytes.
//
// What happens as the account fills, in fractions of the budget:
//
//   - at 90% (refuseAt) new upgrades get 503 with Retry-After (admission
//     reason memory_budget), and the loops shed the largest holders of
//     memory that closing frees (output queued for slow readers, and the
//     buffers of fragmented messages; see budget_shed.go) with 1013, until
//     the account is down to 80% (lowWater) counting the output of shed
//     connections still draining;
//   - at 100% (limit) nothing grows any more: a data frame that needs
//     memory pauses its connection's reads (the issue-10 pause: TCP slows
//     the client) until the account is back under 90%; Conn.Send and
//     Publish return ErrMemoryBudget; a published frame that a subscriber's
//     socket would not take is dropped and counted.
//
// Pausing is the answer to inbound pressure: a handler that does not keep
// up holds its messages, and its clients wait. Shedding is for memory that
// only closing frees.
//
// Cost. The account is one atomic counter. A loop batches its own charges
// and folds them into it when they reach quantum either way, so the
// account is off by less than one quantum per loop. Charges off the loops
// (Send, a worker releasing a message) go to their loop's remote counter,
// one atomic add each, folded the same way. So the hot path costs one
// atomic add per Send and one per message handled, and the budget is never
// exceeded by more than one message (and one quantum and one read) per
// loop. Reads are refused before they are made once the account cannot
// take one more (the gnet patch's ReadGate, allowRead in budget_shed.go):
// pausing after the read instead would let each connection that sends
// while the account is full add up to gnet's 64 KiB read buffer.

// ErrMemoryBudget is returned by Send and Publish when the server's memory
// budget (Config.MemoryBudget) is exhausted. The message was not queued.
var ErrMemoryBudget = errors.New("loop: memory budget exhausted")

// memKind is what a loop-side charge holds; the rest of the account is
// messages (see above).
type memKind uint8

const (
	memAssembly memKind = iota
	memUnparsed
	memOutbound
	memHandshake
	numMemKinds
)

var memKindNames = [numMemKinds]string{"assembly", "unparsed", "outbound", "handshake"}

// MemoryKindMessages names what is not a loop-side kind in
// Stats.MemoryCharges: complete messages with the handlers or in mailboxes,
// and frames queued for writing.
const MemoryKindMessages = "messages"

// ConnFixedBytes estimates the memory of an open connection that is not
// charged to the budget: wsgate's Conn and its table slot, and gnet's
// connection (its struct, the socket's poll registration and the
// net.Addr values it keeps). gnet's part was measured: the Go heap of a
// gateway process, divided by its idle connections
// (cmd/gateway TestConnFixedEstimate checks the figure).
const ConnFixedBytes = int64(unsafe.Sizeof(Conn{})) + 8 + gnetConnBytes

// gnetConnBytes is the measured heap of one idle gnet connection.
const gnetConnBytes = 400

// memBudget is the server's account; nil when the budget is off.
type memBudget struct {
	limit     int64 // the budget
	refuseAt  int64 // 90%: upgrades refused, sheds start, paused reads resume below
	lowWater  int64 // 80%: sheds stop
	quantum   int64 // loop batches are folded at this many bytes either way
	holderMin int64 // connections holding this much releasable memory are listed

	total atomic.Int64 // folded charges
	_     [56]byte
}

func newMemBudget(limit int64, loops int) *memBudget {
	m := &memBudget{limit: limit, refuseAt: limit / 10 * 9, lowWater: limit / 10 * 8}
	m.quantum = min(max(limit/int64(64*loops), 4<<10), 64<<10)
	m.holderMin = min(max(limit/1024, 4<<10), 1<<20)
	return m
}

// loopBudget is a loop's side of the account.
type loopBudget struct {
	// Loop-owned.
	delta   int64              // charges not folded into the account yet
	seen    int64              // the account as of the last fold
	kinds   [numMemKinds]int64 // loop-side charges held now, by kind
	holders []*Conn            // connections that held holderMin or more (budget_shed.go)
	waiting []*Conn            // reads paused for the budget
	shed    []*Conn            // shed, their output still draining
	shedFn  func()             // shedRound, made once

	// Shared.
	remote   atomic.Int64 // charges made off the loop for its connections
	pub      [numMemKinds]atomic.Int64
	top      atomic.Int64 // largest releasable holder at the last scan
	shedding atomic.Int64 // output of shed connections still draining
	asked    atomic.Bool  // a shed round is queued
}

// bufCap returns the capacity getBuffer(n) gives.
func bufCap(n int) int {
	if n <= 0 {
		return 0
	}
	c := classOf(n)
	if c >= numClasses {
		return n
	}
	return 1 << (c + minClassShift)
}

// charge accounts n bytes of kind k that exist already (negative:
// released), on the loop.
func (l *eventLoop) charge(k memKind, n int64) {
	lb := &l.budget
	lb.kinds[k] += n
	l.chargeRaw(n)
}

// chargeRaw accounts n bytes of messages (no loop-side kind), on the loop.
func (l *eventLoop) chargeRaw(n int64) {
	lb := &l.budget
	lb.delta += n
	if q := l.srv.mem.quantum; lb.delta >= q || lb.delta <= -q {
		l.fold()
		if lb.seen >= l.srv.mem.refuseAt {
			l.askShed() // from a read path: the round runs in the next inbox run
		}
	}
}

// fold adds the loop's batch and its remote charges to the account.
func (l *eventLoop) fold() {
	lb := &l.budget
	lb.seen = l.srv.mem.total.Add(lb.delta + lb.remote.Swap(0))
	lb.delta = 0
}

// memEstimate is the account as this loop knows it, without an atomic
// operation: exact up to what others charged since its last fold.
func (l *eventLoop) memEstimate() int64 { return l.budget.seen + l.budget.delta }

// memNow is the account now, as well as the loops' batches let anyone know
// it (one atomic load).
func (l *eventLoop) memNow() int64 { return l.srv.mem.total.Load() + l.budget.delta }

// underMark reports whether the account is under mark. A "no" is checked
// again with every loop's remote charges folded in, so that releases not
// folded yet (less than a quantum per loop) do not keep it over.
func (l *eventLoop) underMark(mark int64) bool {
	if l.memNow() < mark {
		return true
	}
	l.srv.settleMem()
	return l.memNow() < mark
}

// mayTake reports whether n more bytes fit the budget, on the loop. A
// refusal is checked again with every loop's remote charges folded in, so
// that releases not folded yet do not refuse it.
func (l *eventLoop) mayTake(n int64) bool {
	m := l.srv.mem
	if l.memEstimate()+n <= m.limit {
		return true
	}
	l.fold()
	if l.budget.seen+n <= m.limit {
		return true
	}
	l.srv.settleMem()
	l.budget.seen = m.total.Load()
	return l.budget.seen+n <= m.limit
}

// take charges n bytes of kind k if they fit, on the loop.
func (l *eventLoop) take(k memKind, n int64) bool {
	if !l.mayTake(n) {
		return false
	}
	l.charge(k, n)
	return true
}

// chargeRemote accounts n bytes for a connection of l from any goroutine
// and returns the remote batch after it.
func (l *eventLoop) chargeRemote(n int64) int64 {
	r := &l.budget.remote
	v := r.Add(n)
	if q := l.srv.mem.quantum; v >= q || v <= -q {
		l.srv.mem.total.Add(r.Swap(0))
		return 0
	}
	return v
}

// settleMem folds every loop's remote charges into the account. It runs on
// refusal paths only.
func (s *Server) settleMem() {
	for _, l := range s.eventLoops() {
		if v := l.budget.remote.Swap(0); v != 0 {
			s.mem.total.Add(v)
		}
	}
}

// chargeSend charges a frame Send queues for c (its buffer's capacity),
// off the loop. It reports false, charging nothing, if the budget cannot
// take it.
func (c *Conn) chargeSend(n int) bool {
	s := c.loop.srv
	m := s.mem
	cost := int64(bufCap(n))
	v := c.loop.chargeRemote(cost)
	est := m.total.Load() + v
	if est <= m.limit {
		if est >= m.refuseAt && !c.loop.budget.asked.Load() {
			c.loop.askShed()
		}
		return true
	}
	s.settleMem()
	if m.total.Load()+c.loop.budget.remote.Load() <= m.limit {
		return true
	}
	c.loop.chargeRemote(-cost)
	s.counters.budgetRefused[budgetSend].Add(1)
	c.loop.askShed()
	return false
}

// releaseSend returns what chargeSend took once the loop has written the
// frame (gnet then holds what the socket did not take, charged as
// outbound) or dropped it.
func (l *eventLoop) releaseSend(n int) {
	if l.srv.mem != nil {
		l.chargeRaw(-int64(bufCap(n)))
	}
}

// putHandled returns a message's buffer once its handler is done with it,
// and its charge; on a worker.
func (s *Server) putHandled(c *Conn, b *buffer) {
	if b != nil && s.mem != nil {
		c.loop.chargeRemote(-int64(cap(b.b)))
	}
	putBuffer(b)
}

// chargeFrame charges a publish's shared frame, off the loops.
func (s *Server) chargeFrame(f *sharedFrame) bool {
	m := s.mem
	if m == nil {
		return true
	}
	cost := f.cost()
	if m.total.Add(cost) > m.limit {
		s.settleMem()
		if m.total.Load() > m.limit {
			m.total.Add(-cost)
			s.counters.budgetRefused[budgetPublish].Add(1)
			if loops := s.eventLoops(); len(loops) > 0 {
				loops[0].askShed()
			}
			return false
		}
	}
	f.mem = m
	return true
}

// memStats fills the budget's part of st.
func (s *Server) memStats(st *Stats) {
	m := s.mem
	st.MemoryCharges = map[string]int64{MemoryKindMessages: 0}
	for _, k := range memKindNames {
		st.MemoryCharges[k] = 0
	}
	st.MemoryConnFixed = ConnFixedBytes
	if m == nil {
		return
	}
	st.MemoryBudget = m.limit
	// Once the loops have stopped, their own figures can be read.
	stopped := false
	select {
	case <-s.done:
		stopped = true
	default:
	}
	total := m.total.Load()
	var kinds int64
	for _, l := range s.eventLoops() {
		total += l.budget.remote.Load()
		if stopped {
			total += l.budget.delta
		}
		for k := range numMemKinds {
			v := l.budget.pub[k].Load()
			if stopped {
				v = l.budget.kinds[k]
			}
			st.MemoryCharges[memKindNames[k]] += v
			kinds += v
		}
		st.MemoryConnVariableMax = max(st.MemoryConnVariableMax, l.budget.top.Load())
	}
	st.MemoryCharged = max(total, 0)
	st.MemoryCharges[MemoryKindMessages] = max(st.MemoryCharged-kinds, 0)
	if st.WSConns > 0 {
		st.MemoryConnVariable = st.MemoryCharged / st.WSConns
	}
}
