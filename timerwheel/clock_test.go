package timerwheel

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestClockJumpForward(t *testing.T) {
	// A 1ns tick and a jump of 2^62 ticks: walking tick by tick would not
	// finish, walking one rotation does at once.
	h := newHarness(1, 8, 0, 6)
	deadlines := []int64{3, 5, 12, 1 << 40, 1<<62 - 1, math.MaxInt64}
	for i, d := range deadlines {
		h.w.Schedule(&h.nodes[i], d)
	}
	done := make(chan int)
	go func() { done <- h.w.Advance(1 << 62) }()
	select {
	case fired := <-done:
		if fired != 5 {
			t.Errorf("fired %d, want 5", fired)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Advance over a huge jump did not return")
	}
	if !h.nodes[5].Scheduled() || h.w.Len() != 1 {
		t.Error("the MaxInt64 deadline fired or was lost")
	}
	// Time keeps running after the jump.
	h.w.Schedule(&h.nodes[0], 1<<62+3)
	h.w.Advance(1<<62 + 2)
	if h.w.Advance(1<<62+3) != 1 {
		t.Error("deadline after the jump did not fire on time")
	}
}

func TestClockJumpBackward(t *testing.T) {
	h := newHarness(10, 8, 0, 3)
	h.w.Schedule(&h.nodes[0], 1005)
	h.w.Advance(1000)
	if h.w.Advance(500) != 0 || h.w.Now() != 1000 {
		t.Fatalf("going back fired, or moved Now to %d", h.w.Now())
	}
	h.w.Schedule(&h.nodes[1], 900) // past for the wheel, future for the caller
	h.w.Schedule(&h.nodes[2], 1001)
	if got := h.w.Advance(0); got != 1 || !slices.Equal(h.ids(), []int{1}) {
		t.Fatalf("Advance(0) fired %d, want the past deadline only", got)
	}
	if h.w.Advance(1009) != 0 {
		t.Fatal("fired before the tick")
	}
	if got := h.w.Advance(1010); got != 2 {
		t.Errorf("Advance(1010) fired %d, want 2", got)
	}
}

func TestJumpFiresWhatIsDue(t *testing.T) {
	// A jump of several rotations fires exactly the deadlines up to the
	// tick reached, whatever their slot.
	h := newHarness(10, 8, 0, 200)
	for i := range h.nodes {
		h.w.Schedule(&h.nodes[i], int64(i*7))
	}
	h.w.Advance(505)
	for i, n := range h.nodes {
		if due := int64(i*7) <= 500; due == n.Scheduled() {
			t.Errorf("deadline %d: Scheduled %v after Advance(505)", i*7, n.Scheduled())
		}
	}
	if h.w.Len() != 200-72 {
		t.Errorf("Len %d, want %d", h.w.Len(), 200-72)
	}
}
