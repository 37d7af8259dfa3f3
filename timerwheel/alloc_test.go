package timerwheel

import (
	"testing"
	"unsafe"
)

// session stands for the gateway's per-connection struct with its embedded
// timer node.
type session struct {
	id    int
	timer Node[*session]
}

func newSessions(count int) []session {
	ss := make([]session, count)
	for i := range ss {
		ss[i].id = i
		ss[i].timer.Value = &ss[i]
	}
	return ss
}

func TestNodeSize(t *testing.T) {
	// Three words of links and deadline, plus the payload. Growing it costs
	// a million connections 8 MB a word.
	if got, want := unsafe.Sizeof(Node[*session]{}), 4*unsafe.Sizeof(uintptr(0)); got != want {
		t.Errorf("unsafe.Sizeof(Node[*session]) = %d, want %d", got, want)
	}
	// A caller that finds its owner by the node's offset pays no payload
	// word: Value comes first, so a zero-size one is not padded.
	if got, want := unsafe.Sizeof(Node[struct{}]{}), 3*unsafe.Sizeof(uintptr(0)); got != want {
		t.Errorf("unsafe.Sizeof(Node[struct{}]) = %d, want %d", got, want)
	}
}

func TestZeroAllocs(t *testing.T) {
	const runs = 200
	const tick = 10
	var w *Wheel[*session]
	var now int64
	w = New(tick, 64, 0, func(n *Node[*session], now int64) {
		w.Schedule(&n.Value.timer, now+int64(n.Value.id%300)+1)
	})
	ss := newSessions(4 * (runs + 1))
	next := 0
	take := func() *Node[*session] {
		n := &ss[next%len(ss)].timer
		next++
		return n
	}
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{name: "Schedule", f: func() { w.Schedule(take(), now+int64(next)) }},
		{name: "Schedule past", f: func() { w.Schedule(take(), now-1) }},
		{name: "reschedule", f: func() { w.Schedule(&ss[next%len(ss)].timer, now+int64(next*7)); next++ }},
		{name: "Cancel", f: func() { w.Cancel(take()) }},
		{name: "Schedule and Cancel", f: func() { n := take(); w.Schedule(n, now+5); w.Cancel(n) }},
		{name: "Advance firing", f: func() {
			now += tick
			if w.Advance(now) == 0 {
				t.Fatal("Advance fired nothing")
			}
		}},
		{name: "Advance jump", f: func() {
			now += 100 * 64 * tick
			if w.Advance(now) == 0 {
				t.Fatal("Advance fired nothing")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Keep the wheel populated so that every case finds work.
			for i := range ss {
				if !ss[i].timer.Scheduled() {
					w.Schedule(&ss[i].timer, now+int64(i%500))
				}
			}
			if avg := testing.AllocsPerRun(runs, tc.f); avg != 0 {
				t.Errorf("%s allocates %.1f times per call", tc.name, avg)
			}
		})
	}
}
