package timerwheel

import (
	"math/rand/v2"
	"testing"
	"unsafe"
)

const benchEntries = 1_000_000

// benchSet is a million sessions on a wheel with the default shape, touched
// in a random order as an event loop would touch its connections.
type benchSet struct {
	w         *Wheel[*session]
	ss        []session
	order     []int32 // a permutation of the sessions
	deadlines []int64 // spread over two rotations
	rotation  int64
	now       int64
}

// newBenchSet builds the set; fire may refer to the wheel through the set.
func newBenchSet(b *testing.B, fire func(bs *benchSet, n *Node[*session], now int64)) *benchSet {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	bs := &benchSet{ss: newSessions(benchEntries), deadlines: make([]int64, benchEntries)}
	bs.w = New(DefaultTick, DefaultSlots, 0, func(n *Node[*session], now int64) { fire(bs, n, now) })
	bs.rotation = int64(DefaultTick) * int64(bs.w.Slots())
	bs.order = make([]int32, benchEntries)
	for i := range bs.order {
		bs.order[i] = int32(i)
	}
	rng.Shuffle(len(bs.order), func(i, j int) { bs.order[i], bs.order[j] = bs.order[j], bs.order[i] })
	for i := range bs.deadlines {
		bs.deadlines[i] = 1 + rng.Int64N(2*bs.rotation)
	}
	return bs
}

// scheduleAll puts every session on the wheel at base plus its deadline.
func (bs *benchSet) scheduleAll(base int64) {
	for i := range bs.ss {
		bs.w.Schedule(&bs.ss[i].timer, base+bs.deadlines[i])
	}
}

// report adds the memory per entry: the node plus the wheel's fixed part
// (struct and slot array) shared among the entries.
func (bs *benchSet) report(b *testing.B) {
	fixed := unsafe.Sizeof(*bs.w) + uintptr(bs.w.Slots())*unsafe.Sizeof((*Node[*session])(nil))
	perEntry := float64(unsafe.Sizeof(Node[*session]{})) + float64(fixed)/benchEntries
	b.ReportMetric(perEntry, "B/entry")
}

// rotate advances the wheel through one full rotation, tick by tick, and
// returns how many nodes fired.
func (bs *benchSet) rotate() (fired int) {
	for range bs.w.Slots() {
		bs.now += int64(DefaultTick)
		fired += bs.w.Advance(bs.now)
	}
	return fired
}

func noFire(*benchSet, *Node[*session], int64) {}

// BenchmarkSchedule inserts unscheduled nodes until the wheel holds a
// million, then empties it off the clock and starts over.
func BenchmarkSchedule(b *testing.B) {
	bs := newBenchSet(b, noFire)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i % benchEntries
		if j == 0 && i > 0 {
			b.StopTimer()
			for k := range bs.ss {
				bs.w.Cancel(&bs.ss[k].timer)
			}
			b.StartTimer()
		}
		k := bs.order[j]
		bs.w.Schedule(&bs.ss[k].timer, bs.deadlines[k])
	}
	bs.report(b)
}

// BenchmarkReschedule moves scheduled nodes of a full wheel to new deadlines
// (the eager reset an idle timer would do on every frame).
func BenchmarkReschedule(b *testing.B) {
	bs := newBenchSet(b, noFire)
	bs.scheduleAll(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i % benchEntries
		k := bs.order[j]
		d := bs.deadlines[(j+i/benchEntries*7919+benchEntries/2)%benchEntries]
		bs.w.Schedule(&bs.ss[k].timer, d)
	}
	bs.report(b)
}

// BenchmarkCancel removes nodes from a full wheel, refilling it off the
// clock every million.
func BenchmarkCancel(b *testing.B) {
	bs := newBenchSet(b, noFire)
	bs.scheduleAll(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i % benchEntries
		if j == 0 && i > 0 {
			b.StopTimer()
			bs.scheduleAll(0)
			b.StartTimer()
		}
		bs.w.Cancel(&bs.ss[bs.order[j]].timer)
	}
	bs.report(b)
}

// BenchmarkAdvanceFiring runs a full rotation, tick by tick, over a million
// entries spread across it: every entry fires once and its callback re-arms
// it one rotation later, as a periodic ping would. One op is one rotation.
func BenchmarkAdvanceFiring(b *testing.B) {
	bs := newBenchSet(b, func(bs *benchSet, n *Node[*session], now int64) {
		bs.w.Schedule(n, n.Deadline()+bs.rotation)
	})
	for i := range bs.ss {
		bs.w.Schedule(&bs.ss[i].timer, 1+bs.deadlines[i]%bs.rotation)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if fired := bs.rotate(); fired != benchEntries {
			b.Fatalf("rotation fired %d, want %d", fired, benchEntries)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchEntries, "ns/entry")
	bs.report(b)
}

// BenchmarkAdvanceIdle runs a full rotation over a million entries that are
// all due in later rotations: each is looked at once and none fires.
func BenchmarkAdvanceIdle(b *testing.B) {
	bs := newBenchSet(b, noFire)
	bs.scheduleAll(1 << 50) // about 13 days: later than any run
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if fired := bs.rotate(); fired != 0 {
			b.Fatalf("rotation fired %d", fired)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchEntries, "ns/entry")
	bs.report(b)
}
