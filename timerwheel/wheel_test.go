package timerwheel

import (
	"math"
	"slices"
	"testing"
	"time"
)

// firing is one call of the fire callback.
type firing struct {
	id  int
	now int64
}

// harness is a wheel of int-valued nodes that records its firings. hook, if
// set, runs inside the callback after recording.
type harness struct {
	w     *Wheel[int]
	nodes []Node[int]
	fired []firing
	hook  func(n *Node[int], now int64)
}

func newHarness(tick time.Duration, slots int, now int64, count int) *harness {
	h := &harness{nodes: make([]Node[int], count)}
	for i := range h.nodes {
		h.nodes[i].Value = i
	}
	h.w = New(tick, slots, now, func(n *Node[int], now int64) {
		h.fired = append(h.fired, firing{n.Value, now})
		if h.hook != nil {
			h.hook(n, now)
		}
	})
	return h
}

// take returns the firings recorded so far and forgets them.
func (h *harness) take() []firing {
	f := h.fired
	h.fired = nil
	return f
}

func (h *harness) ids() []int {
	var ids []int
	for _, f := range h.take() {
		ids = append(ids, f.id)
	}
	return ids
}

func TestNew(t *testing.T) {
	fire := func(*Node[int], int64) {}
	for _, tc := range []struct {
		name      string
		tick      time.Duration
		slots     int
		wantTick  time.Duration
		wantSlots int
	}{
		{name: "defaults", wantTick: DefaultTick, wantSlots: DefaultSlots},
		{name: "negative", tick: -1, slots: -1, wantTick: DefaultTick, wantSlots: DefaultSlots},
		{name: "round up", tick: time.Millisecond, slots: 500, wantTick: time.Millisecond, wantSlots: 512},
		{name: "one slot", tick: 1, slots: 1, wantTick: 1, wantSlots: 1},
		{name: "power of two", tick: 10, slots: 64, wantTick: 10, wantSlots: 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := New(tc.tick, tc.slots, 5, fire)
			if w.Tick() != tc.wantTick || w.Slots() != tc.wantSlots || w.Now() != 5 || w.Len() != 0 {
				t.Errorf("Tick %v Slots %d Now %d Len %d, want %v %d 5 0",
					w.Tick(), w.Slots(), w.Now(), w.Len(), tc.wantTick, tc.wantSlots)
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("New with a nil callback did not panic")
		}
	}()
	New[int](10, 8, 0, nil)
}

func TestOrderOfExpiry(t *testing.T) {
	deadlines := []int64{75, 5, 31, 40, 11, 69, 10, 1, 58, 20}
	for _, step := range []int64{10, 7, 80} {
		h := newHarness(10, 16, 0, len(deadlines))
		for i, d := range deadlines {
			h.w.Schedule(&h.nodes[i], d)
		}
		for now := step; h.w.Len() > 0; now += step {
			h.w.Advance(now)
		}
		var prevTick int64
		for _, f := range h.take() {
			d := deadlines[f.id]
			tick := (d + 9) / 10
			if tick < prevTick {
				t.Errorf("step %d: deadline %d fired after one of tick %d", step, d, prevTick)
			}
			prevTick = tick
			// Never early; with Advance every step, late by less than a
			// step plus a tick.
			if f.now < d || f.now >= tick*10+step {
				t.Errorf("step %d: deadline %d fired at %d", step, d, f.now)
			}
		}
	}
}

func TestFarFuture(t *testing.T) {
	// Rotation is 80ns; deadlines lie many rotations out, all in slot 3.
	deadlines := []int64{30, 110, 830, 8030, 80030, 800030}
	h := newHarness(10, 8, 0, len(deadlines))
	for i, d := range deadlines {
		h.w.Schedule(&h.nodes[i], d)
	}
	for now := int64(0); now <= 800040; now += 10 {
		h.w.Advance(now)
		for _, f := range h.take() {
			if d := deadlines[f.id]; f.now != d {
				t.Errorf("deadline %d fired at %d", d, f.now)
			}
		}
	}
	if h.w.Len() != 0 {
		t.Errorf("Len %d after all deadlines", h.w.Len())
	}
}

func TestPastDeadline(t *testing.T) {
	h := newHarness(10, 8, 100, 4)
	h.w.Schedule(&h.nodes[0], 100)           // equal to Now
	h.w.Schedule(&h.nodes[1], 42)            // in the past
	h.w.Schedule(&h.nodes[2], math.MinInt64) // far in the past
	h.w.Schedule(&h.nodes[3], 101)           // due in the next tick only
	// The next Advance fires the past ones even if no tick has passed.
	if n := h.w.Advance(100); n != 3 {
		t.Errorf("Advance(100) fired %d, want 3", n)
	}
	if got := h.ids(); !slices.Equal(sorted(got), []int{0, 1, 2}) {
		t.Errorf("fired %v, want 0 1 2", got)
	}
	if h.w.Advance(109); len(h.fired) != 0 {
		t.Errorf("deadline 101 fired early at 109")
	}
	if h.w.Advance(110); !slices.Equal(h.ids(), []int{3}) {
		t.Errorf("deadline 101 did not fire at 110")
	}
}

func TestScheduleMoves(t *testing.T) {
	h := newHarness(10, 8, 0, 1)
	n := &h.nodes[0]
	h.w.Schedule(n, 50)
	h.w.Schedule(n, 200) // later, next rotation
	if h.w.Len() != 1 || n.Deadline() != 200 || !n.Scheduled() {
		t.Fatalf("Len %d Deadline %d Scheduled %v", h.w.Len(), n.Deadline(), n.Scheduled())
	}
	if h.w.Advance(190); len(h.fired) != 0 {
		t.Fatalf("moved node fired at its old deadline")
	}
	h.w.Schedule(n, 195) // earlier, same tick as 200
	h.w.Schedule(n, -5)  // into the past
	h.w.Schedule(n, 300) // and out again
	h.w.Schedule(n, 250)
	for now := int64(200); now <= 400; now += 10 {
		h.w.Advance(now)
	}
	if got := h.take(); !slices.Equal(got, []firing{{0, 250}}) {
		t.Errorf("fired %v, want once at 250", got)
	}
}

func TestLen(t *testing.T) {
	h := newHarness(10, 8, 0, 3)
	a, b, c := &h.nodes[0], &h.nodes[1], &h.nodes[2]
	check := func(want int) {
		t.Helper()
		if h.w.Len() != want {
			t.Errorf("Len %d, want %d", h.w.Len(), want)
		}
	}
	h.w.Cancel(a) // not scheduled: no-op
	check(0)
	h.w.Schedule(a, 10)
	h.w.Schedule(b, 1000)
	h.w.Schedule(c, -1)
	check(3)
	h.w.Schedule(a, 20) // move
	check(3)
	h.w.Cancel(b)
	h.w.Cancel(b)
	check(2)
	if b.Scheduled() {
		t.Error("cancelled node still Scheduled")
	}
	h.w.Advance(20)
	check(0)
	if a.Scheduled() || c.Scheduled() || a.Deadline() != 20 {
		t.Error("fired nodes still Scheduled, or Deadline lost")
	}
}

func TestCancelDuringAdvance(t *testing.T) {
	// a, b, c share slot 1; d is due in a later slot of the same Advance;
	// e is due at a later Advance. Whichever of a, b, c fires first cancels
	// the other two, d and e (d and e from a different slot than its own).
	h := newHarness(10, 8, 0, 5)
	h.w.Schedule(&h.nodes[0], 10)
	h.w.Schedule(&h.nodes[1], 10)
	h.w.Schedule(&h.nodes[2], 5)
	h.w.Schedule(&h.nodes[3], 30)
	h.w.Schedule(&h.nodes[4], 70)
	h.hook = func(n *Node[int], now int64) {
		if !n.Scheduled() {
			h.w.Cancel(n) // cancelling oneself in the callback is a no-op
		}
		for i := range h.nodes {
			h.w.Cancel(&h.nodes[i])
		}
	}
	if fired := h.w.Advance(40); fired != 1 || len(h.fired) != 1 || h.w.Len() != 0 {
		t.Errorf("fired %d %v, Len %d; want one firing and nothing left", fired, h.fired, h.w.Len())
	}
	if h.w.Advance(1000) != 0 {
		t.Error("cancelled nodes fired later")
	}
}

func TestRearmInCallback(t *testing.T) {
	h := newHarness(10, 8, 0, 2)
	period, past := &h.nodes[0], &h.nodes[1]
	h.hook = func(n *Node[int], now int64) {
		switch n {
		case period:
			h.w.Schedule(n, now+25)
		case past:
			if h.w.Len() > 5 {
				t.Fatal("runaway")
			}
			h.w.Schedule(n, now-1000) // already due: must wait for the next Advance
		}
	}
	h.w.Schedule(period, 25)
	h.w.Schedule(past, 5)
	// One Advance over many periods fires each node once.
	if fired := h.w.Advance(1000); fired != 2 {
		t.Fatalf("Advance(1000) fired %d, want 2", fired)
	}
	if got := h.take(); !slices.Equal(sorted(idsOf(got)), []int{0, 1}) {
		t.Fatalf("fired %v", got)
	}
	if period.Deadline() != 1025 || !period.Scheduled() || !past.Scheduled() {
		t.Fatalf("not re-armed: deadline %d", period.Deadline())
	}
	// The past re-arm fires at every Advance, even without time passing.
	for range 3 {
		if got := h.w.Advance(1000); got != 1 || !slices.Equal(h.ids(), []int{1}) {
			t.Fatalf("past re-arm fired %d", got)
		}
	}
	for now := int64(1010); now <= 1100; now += 10 {
		h.w.Advance(now)
	}
	var times []int64
	for _, f := range h.take() {
		if f.id == 0 {
			times = append(times, f.now)
		}
	}
	if !slices.Equal(times, []int64{1030, 1060, 1090}) {
		t.Errorf("periodic fired at %v, want 1030 1060 1090", times)
	}
}

func TestCallbackSchedulesOthers(t *testing.T) {
	// Node 0 fires first (tick 1) and schedules: 1 into the past, 2 into the
	// slot being walked (a later rotation), 3 from a later slot of this
	// Advance out to the future, 4 due within this Advance's time span.
	h := newHarness(10, 8, 0, 5)
	h.w.Schedule(&h.nodes[0], 10)
	h.w.Schedule(&h.nodes[3], 30)
	h.hook = func(n *Node[int], now int64) {
		if n.Value != 0 {
			return
		}
		h.w.Schedule(&h.nodes[1], 0)
		h.w.Schedule(&h.nodes[2], 90)
		h.w.Schedule(&h.nodes[3], 500)
		h.w.Schedule(&h.nodes[4], 35)
	}
	h.w.Advance(50)
	if got := h.ids(); !slices.Equal(got, []int{0}) {
		t.Fatalf("first Advance fired %v, want only 0", got)
	}
	h.w.Advance(50)
	if got := sorted(h.ids()); !slices.Equal(got, []int{1, 4}) {
		t.Fatalf("second Advance fired %v, want 1 4", got)
	}
	h.w.Advance(90)
	if got := h.ids(); !slices.Equal(got, []int{2}) {
		t.Fatalf("Advance(90) fired %v, want 2", got)
	}
}

func TestAdvanceFromCallbackPanics(t *testing.T) {
	h := newHarness(10, 8, 0, 1)
	var got any
	h.hook = func(*Node[int], int64) {
		defer func() { got = recover() }()
		h.w.Advance(100)
	}
	h.w.Schedule(&h.nodes[0], 0)
	h.w.Advance(0)
	if got == nil {
		t.Error("Advance from the callback did not panic")
	}
}

func TestCallbackPanicLeavesWheelUsable(t *testing.T) {
	h := newHarness(10, 8, 0, 4)
	for i := range h.nodes {
		h.w.Schedule(&h.nodes[i], int64(10*(i/2+1))) // two in tick 1, two in tick 2
	}
	h.hook = func(n *Node[int], now int64) {
		if n.Value == 1 {
			panic("boom")
		}
	}
	func() {
		defer func() { recover() }()
		h.w.Advance(30)
	}()
	h.hook = nil
	h.w.Advance(30)
	if got := sorted(h.ids()); !slices.Equal(got, []int{0, 1, 2, 3}) || h.w.Len() != 0 {
		t.Errorf("fired %v, Len %d; want each node once and nothing left", got, h.w.Len())
	}
}

func idsOf(fs []firing) []int {
	var ids []int
	for _, f := range fs {
		ids = append(ids, f.id)
	}
	return ids
}

func sorted(s []int) []int {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
