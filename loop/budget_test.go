package loop

import (
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/panjf2000/gnet/v2"
)

// budgetLoops makes a server with a memory budget and n loops that are
// never started: the account is driven by hand, with made-up sizes. The
// loops are marked busy, so that a command queued for them (a shed round)
// stays in their inbox for the test to see.
func budgetLoops(t testing.TB, budget int64, n int) (*Server, []*eventLoop) {
	t.Helper()
	o := testConfig()
	o.Loops = n
	o.MaxMessageSize = 64 << 10
	o.MemoryBudget = int(budget)
	s := newTestServer(t, o, blockHandler{})
	t.Cleanup(s.pool.Release)
	var loops []*eventLoop
	for i := range n {
		l := newEventLoop(s, nil)
		l.idx = i
		l.budget.shedFn = func() {}
		l.busy.Store(true)
		loops = append(loops, l)
	}
	s.loopList.Store(&loops)
	return s, loops
}

// exact is the account with every loop's batch and remote charges in.
func exact(s *Server) int64 {
	n := s.mem.total.Load()
	for _, l := range s.eventLoops() {
		n += l.budget.delta + l.budget.remote.Load()
	}
	return n
}

func queued(l *eventLoop) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.inbox)
}

func TestBudgetMarks(t *testing.T) {
	for _, c := range []struct {
		limit                                int64
		loops                                int
		refuseAt, lowWater, quantum, holders int64
	}{
		{64 << 20, 2, 64 << 20 / 10 * 9, 64 << 20 / 10 * 8, 64 << 10, 64 << 10},
		{1 << 20, 1, 1 << 20 / 10 * 9, 1 << 20 / 10 * 8, 16 << 10, 4 << 10},
		{64 << 30, 16, 64 << 30 / 10 * 9, 64 << 30 / 10 * 8, 64 << 10, 1 << 20},
		{256 << 10, 8, 256 << 10 / 10 * 9, 256 << 10 / 10 * 8, 4 << 10, 4 << 10},
	} {
		m := newMemBudget(c.limit, c.loops)
		if m.refuseAt != c.refuseAt || m.lowWater != c.lowWater || m.quantum != c.quantum || m.holderMin != c.holders {
			t.Errorf("budget %d, %d loops: refuse at %d, low water %d, quantum %d, holders from %d; want %d %d %d %d",
				c.limit, c.loops, m.refuseAt, m.lowWater, m.quantum, m.holderMin, c.refuseAt, c.lowWater, c.quantum, c.holders)
		}
	}
}

func TestBufCap(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 64, 64: 64, 65: 128, 1 << 20: 1 << 20, 1<<20 + 1: 2 << 20, 16 << 20: 16 << 20, 16<<20 + 1: 16<<20 + 1} {
		if got := bufCap(n); got != want {
			t.Errorf("bufCap(%d) = %d, want %d", n, got, want)
		}
		if n > 0 {
			b := getBuffer(n)
			if cap(b.b) != bufCap(n) {
				t.Errorf("getBuffer(%d) has cap %d, bufCap says %d", n, cap(b.b), bufCap(n))
			}
			putBuffer(b)
		}
	}
}

// A loop's charges reach the account in batches: the account is off by
// less than one quantum per loop, and is exact once folded.
func TestBudgetBatching(t *testing.T) {
	s, loops := budgetLoops(t, 64<<20, 2)
	l := loops[0]
	q := s.mem.quantum
	var sum int64
	for i := range 1000 {
		n := int64(1000)
		if i%3 == 0 {
			n = -700
		}
		l.charge(memOutbound, n)
		sum += n
		if e := exact(s); e != sum {
			t.Fatalf("after %d charges the account is %d, want %d", i+1, e, sum)
		}
		if d := sum - s.mem.total.Load(); d >= q || d <= -q {
			t.Fatalf("the account is off by %d, a quantum is %d", d, q)
		}
	}
	if l.budget.kinds[memOutbound] != sum {
		t.Fatalf("outbound kind %d, want %d", l.budget.kinds[memOutbound], sum)
	}
	l.fold()
	if s.mem.total.Load() != sum || l.memEstimate() != sum {
		t.Fatalf("folded: %d (estimate %d), want %d", s.mem.total.Load(), l.memEstimate(), sum)
	}
	// Remote charges (Send, workers) fold at a quantum too.
	r := loops[1]
	for range 100 {
		r.chargeRemote(3000)
		sum += 3000
		if d := sum - s.mem.total.Load(); d >= 2*q || d <= -2*q {
			t.Fatalf("the account is off by %d with remote charges", d)
		}
	}
	if exact(s) != sum {
		t.Fatalf("account %d, want %d", exact(s), sum)
	}
}

// take charges up to the budget and refuses the byte beyond; a refusal
// first folds every loop's remote charges, so releases made off the loops
// are seen.
func TestBudgetTake(t *testing.T) {
	s, loops := budgetLoops(t, 1<<20, 2)
	a, b := loops[0], loops[1]
	if !a.take(memAssembly, 1<<20-100) || !a.take(memAssembly, 100) {
		t.Fatal("refused within the budget")
	}
	if a.take(memAssembly, 1) || a.mayTake(1) {
		t.Fatal("took a byte over the budget")
	}
	if exact(s) != 1<<20 {
		t.Fatalf("account %d after a refusal", exact(s))
	}
	b.chargeRemote(-200) // a worker on b released a message: under a quantum, not folded
	if s.mem.total.Load() != 1<<20 {
		t.Fatal("a remote charge under a quantum was folded")
	}
	if !a.take(memAssembly, 200) {
		t.Fatal("the release on the other loop was not seen")
	}
	if a.take(memAssembly, 1) {
		t.Fatal("took a byte over the budget")
	}
}

// Send's charge refuses what does not fit, counts it, charges nothing, and
// asks for one shed round however many refusals.
func TestBudgetChargeSend(t *testing.T) {
	s, loops := budgetLoops(t, 1<<20, 1)
	l := loops[0]
	c := &Conn{loop: l}
	if !c.chargeSend(512 << 10) { // a 512 KiB buffer
		t.Fatal("refused within the budget")
	}
	if queued(l) != 0 {
		t.Fatal("a shed round at 50%")
	}
	if !c.chargeSend(400 << 10) { // 512 KiB more: 100%
		t.Fatal("refused at the budget")
	}
	if queued(l) != 1 {
		t.Fatalf("%d commands queued at 100%%, want one shed round", queued(l))
	}
	for range 3 {
		if c.chargeSend(1) {
			t.Fatal("charged over the budget")
		}
	}
	if exact(s) != 1<<20 || s.counters.budgetRefused[budgetSend].Load() != 3 || queued(l) != 1 {
		t.Fatalf("account %d, refusals %d, %d commands queued", exact(s), s.counters.budgetRefused[budgetSend].Load(), queued(l))
	}
	l.releaseSend(512 << 10) // the loop wrote one
	if !c.chargeSend(100) {
		t.Fatal("refused after a release")
	}
}

// Whatever the order of takes, releases and remote charges on several
// loops, the account never goes over the budget by more than one take and
// one quantum per loop (made-up sizes, a fixed seed).
func TestBudgetBound(t *testing.T) {
	const budget, maxTake = 4 << 20, 64 << 10
	s, loops := budgetLoops(t, budget, 4)
	rng := rand.New(rand.NewPCG(1, 2))
	held := make([][]int64, len(loops))
	bound := int64(budget + len(loops)*int(maxTake+s.mem.quantum))
	var peak int64
	for range 100000 {
		i := rng.IntN(len(loops))
		l := loops[i]
		switch op := rng.IntN(10); {
		case op < 6:
			n := int64(1 + rng.IntN(maxTake))
			if l.take(memAssembly, n) {
				held[i] = append(held[i], n)
			}
		case op < 9 && len(held[i]) > 0:
			k := rng.IntN(len(held[i]))
			n := held[i][k]
			held[i] = append(held[i][:k], held[i][k+1:]...)
			if op == 8 {
				l.chargeRemote(-n) // released by a worker
				l.budget.kinds[memAssembly] -= n
			} else {
				l.charge(memAssembly, -n)
			}
		default:
			l.fold()
		}
		var want int64
		for _, h := range held {
			for _, n := range h {
				want += n
			}
		}
		if e := exact(s); e != want {
			t.Fatalf("account %d, held %d", e, want)
		}
		peak = max(peak, want)
		if want > bound {
			t.Fatalf("held %d, over the bound %d", want, bound)
		}
	}
	t.Logf("peak %d of a %d budget (bound %d)", peak, budget, bound)
	if peak < budget*9/10 {
		t.Fatalf("peak %d: the takes never came near the budget", peak)
	}
}

// holderConn stands for a gnet connection the holder list only checks for.
type holderConn struct{ gnet.Conn }

// The holder list: a connection is listed once, a scan returns the one
// whose closing frees the most (output queued; a fragmented message, not a
// single frame), and drops those that hold little now.
func TestBudgetHolders(t *testing.T) {
	s, loops := budgetLoops(t, 64<<20, 1)
	l := loops[0]
	min := s.mem.holderMin
	l.fake = holderConn{}
	mk := func(out int64) *Conn {
		c := &Conn{loop: l, gp: unsafe.Pointer(new(holderConn)), state: stateOpen}
		c.d().outBuffered.Store(out)
		return c
	}
	a, b := mk(3*min), mk(5*min)
	frag := mk(0)
	frag.d().msgBuf = getBuffer(int(8 * min))
	frag.d().frame.msgOp, frag.d().frame.fin = OpBinary, false
	single := mk(0)
	single.d().msgBuf = getBuffer(int(16 * min))
	single.d().frame.msgOp, single.d().frame.fin, single.d().frame.inFrame = OpBinary, true, true
	for _, c := range []*Conn{a, b, a, frag, single, b} {
		l.noteHolder(c)
	}
	if len(l.budget.holders) != 4 {
		t.Fatalf("%d listed, want 4 (once each)", len(l.budget.holders))
	}
	c, size, why := l.scanHolders()
	if c != frag || size != 8*min || why != shedAssembly {
		t.Fatalf("largest: %p %d %d, want the fragmented message", c, size, why)
	}
	frag.d().frame.msgOp = 0 // its message completed
	a.d().outBuffered.Store(min / 4)
	c, size, why = l.scanHolders()
	if c != b || size != 5*min || why != shedOutbound {
		t.Fatalf("largest: %p %d %d, want b's output", c, size, why)
	}
	if len(l.budget.holders) != 1 || l.budget.top.Load() != 5*min {
		t.Fatalf("%d listed (top %d), want b alone", len(l.budget.holders), l.budget.top.Load())
	}
	if a.mflags&mHolder != 0 || b.mflags&mHolder == 0 {
		t.Fatal("the listed flags do not match the list")
	}
	putBuffer(frag.d().msgBuf)
	putBuffer(single.d().msgBuf)
}

// The budget's work for one echoed 16-byte message: the reservation at
// its header, the hand-off to the handler, the worker's release, Send's
// charge and the loop's release after the write; "pool" is the buffer
// traffic alone that the message costs without a budget.
//
//	go test -run '^$' -bench BenchmarkBudgetEcho -benchmem ./loop/
func BenchmarkBudgetEcho(b *testing.B) {
	s, loops := budgetLoops(b, 64<<20, 1)
	l := loops[0]
	c := &Conn{loop: l, state: stateOpen}
	b.Run("pool", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			putBuffer(getBuffer(16))
		}
	})
	b.Run("budget", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			l.reserveFrame(c, 16, false, true)
			buf := c.d().msgBuf
			c.d().msgBuf = nil
			l.handOff(buf)
			s.putHandled(c, buf)
			c.chargeSend(16 + 14)
			l.releaseSend(16 + 14)
		}
	})
}
