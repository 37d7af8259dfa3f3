package timerwheel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// modelTimer is the reference's view of one node.
type modelTimer struct {
	scheduled bool
	deadline  int64
	epoch     int  // Advance calls begun when it was scheduled
	past      bool // deadline not after the wheel's time when scheduled
}

// model drives a wheel with random operations, from the test and from inside
// the callback, and checks every firing against a plain per-node reference:
// a node fires exactly once per scheduling, at the first Advance that begins
// after it was scheduled and either finds it past when scheduled or reaches
// its deadline rounded up to the tick.
type model struct {
	t      *testing.T
	rng    *rand.Rand
	tick   int64
	slots  int64
	origin int64

	w      *Wheel[int]
	nodes  []Node[int]
	timers []modelTimer

	now       int64 // wheel time
	epoch     int   // Advance calls begun
	limit     int64 // time of the tick reached by the running Advance
	prevLimit int64 // the same for the previous Advance
	fired     int   // callbacks in the running Advance
}

func newModel(t *testing.T, seed uint64, tick time.Duration, slots, count int) *model {
	m := &model{
		t:      t,
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		tick:   int64(tick),
		nodes:  make([]Node[int], count),
		timers: make([]modelTimer, count),
	}
	m.origin = m.rng.Int64N(2_000_000) - 1_000_000
	m.now, m.limit, m.prevLimit = m.origin, m.origin, m.origin
	for i := range m.nodes {
		m.nodes[i].Value = i
	}
	m.w = New(tick, slots, m.origin, m.onFire)
	m.slots = int64(m.w.Slots())
	return m
}

// deadline picks a deadline around the wheel's time: mostly within a few
// rotations, some in the past, a few at the extremes.
func (m *model) deadline() int64 {
	switch r := m.rng.IntN(100); {
	case r < 1:
		return math.MaxInt64
	case r < 2:
		return math.MinInt64
	case r < 15:
		return m.now - m.rng.Int64N(3*m.tick+1)
	default:
		return m.now + 1 + m.rng.Int64N(5*m.slots*m.tick)
	}
}

func (m *model) schedule(i int, d int64) {
	m.w.Schedule(&m.nodes[i], d)
	m.timers[i] = modelTimer{scheduled: true, deadline: d, epoch: m.epoch, past: d <= m.now}
}

func (m *model) cancel(i int) {
	m.w.Cancel(&m.nodes[i])
	m.timers[i].scheduled = false
}

func (m *model) onFire(n *Node[int], now int64) {
	i := n.Value
	tm := m.timers[i]
	switch {
	case !tm.scheduled:
		m.t.Fatalf("node %d fired while not scheduled (twice, or after Cancel)", i)
	case tm.epoch >= m.epoch:
		m.t.Fatalf("node %d fired in the Advance that scheduled it", i)
	case now != m.now:
		m.t.Fatalf("callback now %d, wheel time %d", now, m.now)
	case tm.deadline > now:
		m.t.Fatalf("node %d fired early: deadline %d, now %d", i, tm.deadline, now)
	case tm.past && tm.epoch != m.epoch-1:
		m.t.Fatalf("past node %d skipped an Advance", i)
	case !tm.past && tm.deadline > m.limit:
		m.t.Fatalf("node %d fired before its tick: deadline %d, tick reached %d", i, tm.deadline, m.limit)
	case !tm.past && tm.deadline <= m.prevLimit:
		m.t.Fatalf("node %d fired a tick late: deadline %d, previous tick %d", i, tm.deadline, m.prevLimit)
	}
	if n.Scheduled() {
		m.t.Fatalf("node %d Scheduled inside its callback", i)
	}
	m.timers[i].scheduled = false
	m.fired++

	// Re-arm, and touch other nodes: maybe ones still due in this Advance.
	if m.rng.IntN(3) == 0 {
		m.schedule(i, now-m.tick+m.rng.Int64N(20*m.tick))
	}
	for range m.rng.IntN(3) {
		j := m.rng.IntN(len(m.nodes))
		if m.rng.IntN(2) == 0 {
			m.cancel(j)
		} else {
			m.schedule(j, m.deadline())
		}
	}
}

func (m *model) advance() {
	var now int64
	switch r := m.rng.IntN(100); {
	case r < 10:
		now = m.now - m.rng.Int64N(10*m.tick) // backwards
	case r < 20:
		now = m.now
	case r < 27:
		now = m.now + m.slots*m.tick + m.rng.Int64N(5*m.slots*m.tick) // jump
	case r < 28:
		now = m.now + 1<<40
	default:
		now = m.now + m.rng.Int64N(2*m.tick+1)
	}
	m.epoch++
	m.now = max(m.now, now)
	m.prevLimit = m.limit
	m.limit = m.origin + (m.now-m.origin)/m.tick*m.tick
	m.fired = 0
	if got := m.w.Advance(now); got != m.fired {
		m.t.Fatalf("Advance returned %d, callback ran %d times", got, m.fired)
	}
	for i, tm := range m.timers {
		if tm.scheduled && tm.epoch < m.epoch && (tm.past || tm.deadline <= m.limit) {
			m.t.Fatalf("node %d (deadline %d, past %v) not fired by Advance(%d)", i, tm.deadline, tm.past, now)
		}
	}
}

func (m *model) check() {
	count := 0
	for i, tm := range m.timers {
		n := &m.nodes[i]
		if n.Scheduled() != tm.scheduled || (tm.scheduled && n.Deadline() != tm.deadline) {
			m.t.Fatalf("node %d: Scheduled %v Deadline %d, model %+v", i, n.Scheduled(), n.Deadline(), tm)
		}
		if tm.scheduled {
			count++
		}
	}
	if m.w.Len() != count || m.w.Now() != m.now {
		m.t.Fatalf("Len %d Now %d, model %d %d", m.w.Len(), m.w.Now(), count, m.now)
	}
}

func TestModel(t *testing.T) {
	for _, tc := range []struct {
		tick  time.Duration
		slots int
	}{
		{tick: 10, slots: 8},
		{tick: 7, slots: 1},
		{tick: 1, slots: 4},
		{tick: 100 * time.Millisecond, slots: 64},
	} {
		for seed := uint64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("tick=%d/slots=%d/seed=%d", tc.tick, tc.slots, seed), func(t *testing.T) {
				m := newModel(t, seed, tc.tick, tc.slots, 48)
				for range 4000 {
					switch r := m.rng.IntN(10); {
					case r < 5:
						m.schedule(m.rng.IntN(len(m.nodes)), m.deadline())
					case r < 7:
						m.cancel(m.rng.IntN(len(m.nodes)))
					default:
						m.advance()
					}
					m.check()
				}
			})
		}
	}
}
